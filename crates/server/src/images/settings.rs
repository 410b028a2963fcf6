//! The settings of the image pipeline, and the variant specs `IMAGE_VARIANTS` declares.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use clap::Args;

use crate::setting::{self, Setting, Unset, invalid};

/// Largest width or height a variant may ask for.
pub const MAX_VARIANT_SIDE: u32 = 8192;

/// What the image pipeline makes of every image, and how much it may spend on one.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct ImageSettings {
    /// Variants made of every image at confirm, `;`-separated: `NAME=WIDTHxHEIGHT,FIT,FORMAT[,qQUALITY]`, e.g.
    /// `thumb=256x256,cover,webp;preview=1600x1600,contain,jpeg,q80`; fit `cover` (fill, then crop the middle) or
    /// `contain` (fit inside); format `jpeg`, `png` or `webp`; quality 1 to 100 for jpeg and webp [default: none].
    #[arg(id = "image_variants", long = "image-variants", env = "IMAGE_VARIANTS", value_name = "VARIANTS", value_parser = variants())]
    pub variants: Variants,
    /// What an image's original keeps of its metadata: `strip-location` drops its GPS position, `strip-all` every
    /// EXIF, XMP and IPTC record but the ICC profile and the orientation, `keep` leaves it untouched.
    #[arg(id = "image_metadata", long = "image-metadata", env = "IMAGE_METADATA", default_value = "strip-location")]
    #[arg(value_name = "strip-location|strip-all|keep", value_parser = metadata_policy())]
    pub metadata: MetadataPolicy,
    /// Images decoded at once, each on a thread of its own (1 to 256) [default: the number of cores].
    #[arg(id = "image_workers", long = "image-workers", env = "IMAGE_WORKERS", value_name = "COUNT")]
    #[arg(value_parser = setting::optional(setting::count(1, 256)))]
    pub workers: Unset<usize>,
    /// Seconds one image may take to decode and make its variants, and to wait for a worker (1 to 600).
    #[arg(
        id = "image_timeout",
        long = "image-timeout",
        env = "IMAGE_TIMEOUT",
        default_value = "10",
        value_name = "SECONDS"
    )]
    #[arg(value_parser = setting::seconds(1, 600))]
    pub timeout: Duration,
}

/// IMAGE_METADATA's three choices.
fn metadata_policy() -> Setting<MetadataPolicy> {
    setting::choice(&[
        ("strip-location", MetadataPolicy::StripLocation),
        ("strip-all", MetadataPolicy::StripAll),
        ("keep", MetadataPolicy::Keep),
    ])
}

impl ImageSettings {
    /// IMAGE_WORKERS, or the number of cores the process may use.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    }
}

/// What the original of an image keeps of its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataPolicy {
    /// The GPS position removed, the rest kept.
    StripLocation,
    /// EXIF, XMP and IPTC removed; the ICC profile and the orientation kept.
    StripAll,
    /// Untouched.
    Keep,
}

/// How a variant fills its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Fills the box, its middle kept and the overflow cropped.
    Cover,
    /// Fits inside the box, the aspect ratio kept.
    Contain,
}

/// The encoding of a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
}

impl Format {
    /// The media type of the encoded bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }

    /// The quality used when the spec gives none (the formats with a quality).
    fn default_quality(self) -> Option<u8> {
        match self {
            Format::Jpeg => Some(82),
            Format::Webp => Some(80),
            Format::Png => None,
        }
    }
}

/// The name of a variant: 1 to 32 of `a-z`, `0-9` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VariantName(String);

impl VariantName {
    /// The name, or why it is not one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = (1..=32).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(invalid(text, "a variant name is 1 to 32 of a-z, 0-9 and -"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VariantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One variant: its name, its box, how it fills the box, its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: VariantName,
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    pub format: Format,
    /// 1 to 100, for the formats with a quality; `None` for PNG.
    pub quality: Option<u8>,
}

impl Variant {
    /// One spec, `NAME=WIDTHxHEIGHT,FIT,FORMAT[,qQUALITY]`, or what is wrong with it.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let wrong = |reason: &str| invalid(spec, reason);
        let (name, rest) = spec.split_once('=').ok_or_else(|| wrong("expected NAME=WIDTHxHEIGHT,FIT,FORMAT"))?;
        let name = VariantName::parse(name.trim())?;
        let items: Vec<&str> = rest.split(',').map(str::trim).collect();
        let [size, fit, format, more @ ..] = items.as_slice() else {
            return Err(wrong("expected NAME=WIDTHxHEIGHT,FIT,FORMAT"));
        };
        let (width, height) = size.split_once('x').ok_or_else(|| wrong("expected a size such as 256x256"))?;
        let side = |text: &str| {
            text.parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_VARIANT_SIDE).contains(n))
                .ok_or_else(|| wrong(&format!("a width and a height are 1 to {MAX_VARIANT_SIDE}")))
        };
        let (width, height) = (side(width)?, side(height)?);
        let fit = match *fit {
            "cover" => Fit::Cover,
            "contain" => Fit::Contain,
            _ => return Err(wrong("the fit is cover or contain")),
        };
        let format = match *format {
            "jpeg" => Format::Jpeg,
            "png" => Format::Png,
            "webp" => Format::Webp,
            _ => return Err(wrong("the format is jpeg, png or webp")),
        };
        let quality = match more {
            [] => format.default_quality(),
            [quality] => {
                if format.default_quality().is_none() {
                    return Err(wrong("png has no quality"));
                }
                let number = quality.strip_prefix('q').and_then(|n| n.parse::<u8>().ok());
                Some(number.filter(|q| (1..=100).contains(q)).ok_or_else(|| wrong("a quality is q1 to q100"))?)
            }
            _ => return Err(wrong("expected at most a quality after the format")),
        };
        Ok(Self { name, width, height, fit, format, quality })
    }
}

/// The variants IMAGE_VARIANTS declares, their names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variants(pub Vec<Variant>);

impl Variants {
    /// `;`-separated specs (empty ones skipped), or what is wrong with the first bad one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut names = HashSet::new();
        let mut variants = Vec::new();
        for spec in text.split(';').map(str::trim).filter(|spec| !spec.is_empty()) {
            let variant = Variant::parse(spec)?;
            if !names.insert(variant.name.clone()) {
                return Err(invalid(spec, format!("the name {} is declared twice", variant.name)));
            }
            variants.push(variant);
        }
        Ok(Self(variants))
    }
}

/// The parser of IMAGE_VARIANTS.
fn variants() -> Setting<Variants> {
    Setting::new(Variants::parse)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        images: ImageSettings,
    }

    fn parse(args: &[&str]) -> Result<ImageSettings, String> {
        let args = std::iter::once("draftstore").chain(args.iter().copied());
        Cli::try_parse_from(args).map(|cli| cli.images).map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_example_parses_into_two_variants() {
        let settings = parse(&["--image-variants", "thumb=256x256,cover,webp;preview=1600x1600,contain,jpeg,q90"])
            .expect("valid settings");
        let variants = settings.variants.0;
        assert_eq!(variants.len(), 2);
        assert_eq!(variants[0].name.as_str(), "thumb");
        assert_eq!((variants[0].width, variants[0].height), (256, 256));
        assert_eq!(variants[0].fit, Fit::Cover);
        assert_eq!(variants[0].format, Format::Webp);
        assert_eq!(variants[0].quality, Some(80));
        assert_eq!(variants[1].fit, Fit::Contain);
        assert_eq!(variants[1].format, Format::Jpeg);
        assert_eq!(variants[1].quality, Some(90));
    }

    #[test]
    fn defaults_are_no_variants_strip_location_and_ten_seconds() {
        let settings = parse(&[]).expect("valid settings");
        assert!(settings.variants.0.is_empty());
        assert_eq!(settings.metadata, MetadataPolicy::StripLocation);
        assert_eq!(settings.timeout, Duration::from_secs(10));
        assert_eq!(settings.workers, None);
        assert!(settings.worker_count() >= 1);
    }

    #[test]
    fn bad_variants_are_refused_with_the_variable_and_the_value() {
        for (value, reason) in [
            ("Thumb=256x256,cover,webp", "a variant name is"),
            ("thumb=256x256,cover,webp;thumb=64x64,cover,png", "declared twice"),
            ("thumb=0x256,cover,webp", "1 to 8192"),
            ("thumb=8193x256,cover,webp", "1 to 8192"),
            ("thumb=256,cover,webp", "a size such as"),
            ("thumb=256x256,fill,webp", "cover or contain"),
            ("thumb=256x256,cover,gif", "jpeg, png or webp"),
            ("thumb=256x256,cover,png,q80", "png has no quality"),
            ("thumb=256x256,cover,jpeg,q101", "q1 to q100"),
            ("thumb=256x256,cover,jpeg,80", "q1 to q100"),
            ("thumb", "expected NAME="),
            (&format!("{}=1x1,cover,png", "a".repeat(33)), "a variant name is"),
        ] {
            let error = parse(&["--image-variants", value]).expect_err("the value is refused");
            assert!(error.contains("IMAGE_VARIANTS"), "{value}: {error}");
            assert!(error.contains(reason), "{value}: {error}");
        }
    }

    #[test]
    fn the_metadata_workers_and_timeout_settings_parse() {
        let settings = parse(&["--image-metadata", "strip-all", "--image-workers", "3", "--image-timeout", "5"])
            .expect("valid settings");
        assert_eq!(settings.metadata, MetadataPolicy::StripAll);
        assert_eq!(settings.worker_count(), 3);
        assert_eq!(settings.timeout, Duration::from_secs(5));
        let error = parse(&["--image-metadata", "none"]).expect_err("the value is refused");
        assert!(error.contains("IMAGE_METADATA") && error.contains("'none'"), "{error}");
        let error = parse(&["--image-workers", "0"]).expect_err("the value is refused");
        assert!(error.contains("IMAGE_WORKERS"), "{error}");
    }
}
