//! The image pipeline (issue 42): an image's bytes in; its upright size, a placeholder, its named variants and its
//! original stripped of metadata out.

mod settings;

pub use settings::{Fit, Format, ImageSettings, MetadataPolicy, Variant, VariantName, Variants};
