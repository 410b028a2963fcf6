//! A closed-loop gRPC load generator for `GetUploadURL`. Usage: grpc-load URI CONNECTIONS IN_FLIGHT SECONDS.
//! Prints one JSON object: requests, errors, requests per second, p50 and p99 latency in milliseconds.

use std::time::{Duration, Instant};

use draftstore_proto::draft::v1::GetUploadUrlRequest;
use draftstore_proto::draft::v1::draft_service_client::DraftServiceClient;
use tonic::transport::Channel;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (uri, connections, in_flight, seconds) = match args.as_slice() {
        [_, uri, connections, in_flight, seconds] => {
            (uri.clone(), connections.parse::<usize>()?, in_flight.parse::<usize>()?, seconds.parse::<u64>()?)
        }
        _ => return Err("usage: grpc-load URI CONNECTIONS IN_FLIGHT SECONDS".into()),
    };
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(Channel::from_shared(uri.clone())?.connect().await?);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for worker in 0..in_flight {
        let mut client = DraftServiceClient::new(channels[worker % connections].clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let request = GetUploadUrlRequest {
                    object_name: "bench/object.bin".to_owned(),
                    content_type: "application/octet-stream".to_owned(),
                    ..GetUploadUrlRequest::default()
                };
                let started = Instant::now();
                match client.get_upload_url(request).await {
                    Ok(_) => latencies.push(started.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (mine, failed) = worker.await?;
        latencies.extend(mine);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64().max(seconds as f64);
    latencies.sort();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{}",
        serde_json::json!({
            "requests": latencies.len(),
            "errors": errors,
            "rps": latencies.len() as f64 / elapsed,
            "p50_ms": quantile(0.50),
            "p99_ms": quantile(0.99),
        })
    );
    Ok(())
}
