//! Times the image pipeline in-process, without its process start-up, file reads or writes. Usage:
//! image-thumb --variants SPEC [--repeat N] FILE...; SPEC is IMAGE_VARIANTS' form (`thumb=256x256,contain,webp`).
//! Prints JSON: for each file, every run's wall time in seconds, the best and the median.

use std::time::{Duration, Instant};

use draftstore::images::{ImagePipeline, ImageSettings, MetadataPolicy, Variants};
use serde::Serialize;

/// The pixels the server allows by default (MAX_IMAGE_PIXELS), so a 12 MP photo passes.
const MAX_PIXELS: u64 = 100_000_000;

#[derive(Serialize)]
struct Timing {
    file: String,
    variants: Vec<String>,
    runs: Vec<f64>,
    best: f64,
    median: f64,
}

fn usage() -> Box<dyn std::error::Error> {
    "usage: image-thumb --variants SPEC [--repeat N] FILE...".into()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut spec, mut repeat, mut files) = (None, 1_usize, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--variants" => spec = Some(args.next().ok_or_else(usage)?),
            "--repeat" => repeat = args.next().ok_or_else(usage)?.parse()?,
            _ => files.push(arg),
        }
    }
    let spec = spec.ok_or_else(usage)?;
    if files.is_empty() || repeat == 0 {
        return Err(usage());
    }
    // One worker and metadata kept: the thumbnailers compared with it make the variant only, on one core.
    let settings = ImageSettings {
        variants: Variants::parse(&spec)?,
        metadata: MetadataPolicy::Keep,
        workers: Some(1),
        timeout: Duration::from_secs(600),
    };
    let pipeline = ImagePipeline::new(&settings, MAX_PIXELS);
    let mut timings = Vec::new();
    for file in files {
        let bytes = bytes::Bytes::from(std::fs::read(&file).map_err(|error| format!("{file}: {error}"))?);
        let mut runs = Vec::with_capacity(repeat);
        let mut variants = Vec::new();
        for _ in 0..repeat {
            let started = Instant::now();
            let image = pipeline.process(bytes.clone()).await.map_err(|error| format!("{file}: {error}"))?;
            runs.push(started.elapsed().as_secs_f64());
            variants = image
                .variants
                .iter()
                .map(|v| format!("{}: {}x{} {}", v.name.as_str(), v.width, v.height, v.content_type))
                .collect();
        }
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        timings.push(Timing { file, variants, best: sorted[0], median: sorted[sorted.len() / 2], runs });
    }
    println!("{}", serde_json::to_string(&timings)?);
    Ok(())
}
