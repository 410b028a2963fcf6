//! CONTENT_CHECKS, MAX_IMAGE_PIXELS and the scan's settings.

use std::time::Duration;

use clap::Args;

use super::ClamdAddress;
use crate::setting::{self, Setting, Unset};

/// What a draft's bytes are checked for at confirm: their type, an image's size, and with a scanner, viruses.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct CheckSettings {
    /// Check at confirm that a draft's first bytes are what its declared content type says (`on`), or trust the
    /// declared type (`off`); image dimensions are checked only when this is on.
    #[arg(long, env = "CONTENT_CHECKS", default_value = "on", value_name = "on|off", value_parser = setting::boolean())]
    pub content_checks: bool,
    /// Most pixels (width × height, read from the header) an image draft may have (1 to 10^12).
    #[arg(long, env = "MAX_IMAGE_PIXELS", default_value = "100000000", value_name = "PIXELS")]
    #[arg(value_parser = setting::pixels(1, 1_000_000_000_000))]
    pub max_image_pixels: u64,
    /// clamd to scan every draft with before it is promoted, `tcp://host:port` or `unix:/path/to/clamd.sock`; the
    /// draft's bytes are streamed from the store to it [default: no scan].
    #[arg(long, env = "CLAMD_ADDRESS", value_name = "ADDRESS", value_parser = setting::optional(clamd_address()))]
    pub clamd_address: Unset<ClamdAddress>,
    /// Seconds a scan may go without progress (clamd taking no bytes, or not answering once it has them all)
    /// before the confirm fails with 503 and the draft is kept (1 to 3600).
    #[arg(long, env = "SCAN_TIMEOUT", default_value = "60", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, 3600))]
    pub scan_timeout: Duration,
    /// Largest draft scanned, in bytes; keep it at or below clamd's `StreamMaxLength` [default: 100 MiB].
    #[arg(long, env = "SCAN_MAX_SIZE", default_value = "104857600", value_name = "BYTES")]
    #[arg(value_parser = setting::bytes(1, 5 << 40))]
    pub scan_max_size: u64,
    /// What happens to a draft above SCAN_MAX_SIZE: `refuse` it (fail closed) or `skip` the scan and promote it,
    /// its scan result saying `skipped`.
    #[arg(long, env = "SCAN_OVERSIZE", default_value = "refuse", value_name = "refuse|skip")]
    #[arg(value_parser = setting::choice(&[("refuse", ScanOversize::Refuse), ("skip", ScanOversize::Skip)]))]
    pub scan_oversize: ScanOversize,
}

/// What happens to a draft too large to scan (SCAN_OVERSIZE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOversize {
    /// Fail closed: the confirm is refused.
    Refuse,
    /// Promote it unscanned, its scan result saying `skipped`.
    Skip,
}

/// Where clamd listens.
fn clamd_address() -> Setting<ClamdAddress> {
    Setting::new(|text| ClamdAddress::parse(text).map_err(|e| setting::invalid(text, e)))
}
