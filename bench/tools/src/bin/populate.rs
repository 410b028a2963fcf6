//! Fills a bucket with small objects for the cleaner benchmark. Usage:
//! populate ENDPOINT ACCESS_KEY SECRET_KEY BUCKET COUNT CONCURRENCY. Keys are `d/<i % 100>/<i>.bin`, 16 bytes each.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, access_key, secret_key, bucket, count, concurrency] = args.as_slice() else {
        return Err("usage: populate ENDPOINT ACCESS_KEY SECRET_KEY BUCKET COUNT CONCURRENCY".into());
    };
    let (count, concurrency): (u64, usize) = (count.parse()?, concurrency.parse()?);
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "bench"))
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    let failures = futures_util::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            async move {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("d/{}/{i}.bin", i % 100))
                    .body(vec![b'x'; 16].into())
                    .send()
                    .await
                    .is_err()
            }
        })
        .buffer_unordered(concurrency)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    if failures > 0 {
        return Err(format!("{failures} of {count} puts failed").into());
    }
    Ok(())
}
