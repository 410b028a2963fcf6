//! The settings as the command line and the environment give them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use url::Url;

use super::*;
use crate::backend::StorageType;

fn serve(args: &[&str]) -> Result<ServeSettings, String> {
    // What the binary prints after `error: `.
    let message = |e: clap::Error| e.to_string().lines().next().unwrap_or_default().replacen("error: ", "", 1);
    let cli =
        Cli::try_parse_from(std::iter::once("draftstore").chain(std::iter::once("serve")).chain(args.iter().copied()))
            .map_err(message)?;
    let Command::Serve(settings) = cli.command else { unreachable!("serve was given") };
    settings.validate().map_err(|e| e.to_string())?;
    Ok(*settings)
}

#[test]
fn defaults_run_the_local_backend() {
    let settings = serve(&[]).expect("defaults are valid");
    assert!(settings.common.storage.kind == StorageType::Local);
    assert_eq!(settings.common.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(settings.common.service.buckets.main.as_str(), "main");
    assert_eq!(settings.common.service.buckets.draft.as_str(), "main-draft");
    assert_eq!((settings.http_port, settings.grpc_port), (8080, 50051));
    assert_eq!(settings.common.service.upload_ttl, Duration::from_secs(3600));
    assert_eq!(settings.common.service.object_lifetime, Duration::from_secs(86400));
}

#[test]
fn hook_urls_take_a_token_and_never_show_it() {
    let secret = ["--webhook-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"];
    let url = "https://spy:hunter2@hooks.example/in?token=s3cr3t";
    let settings = serve(&[&["--confirm-hook-url", url, "--events-url", url][..], &secret].concat())
        .expect("a receiver's URL may hold a token and credentials");
    assert_eq!(settings.common.hooks.confirm_url.as_ref().map(Url::as_str), Some(url));
    for bad in ["https://spy:hunter2@hooks.example/in?token=s3cr3t#frag", "ftp://spy:hunter2@h/?token=s3cr3t"] {
        let error = serve(&[&["--events-url", bad][..], &secret].concat()).expect_err("refused");
        assert!(error.contains("EVENTS_URL") && error.contains("hooks.example") == bad.contains("hooks"), "{error}");
        assert!(!error.contains("hunter2") && !error.contains("s3cr3t"), "{error}");
    }
    let error = serve(&["--confirm-hook-url", "https://spy:hunter2@[::1"]).expect_err("not a URL");
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn bad_values_name_the_variable_and_the_value() {
    assert_eq!(serve(&["--upload-ttl", "abc"]).expect_err("bad"), "UPLOAD_TTL: 'abc' is not a number of seconds");
    assert!(serve(&["--download-ttl", "0"]).expect_err("bad").starts_with("DOWNLOAD_TTL: '0' is out of range"));
    assert!(serve(&["--upload-ttl", "604801"]).expect_err("bad").starts_with("UPLOAD_TTL:"));
    assert!(serve(&["--http-port", "99999"]).expect_err("bad").starts_with("HTTP_PORT: '99999'"));
    assert!(serve(&["--storage-type", "ftp"]).expect_err("bad").starts_with("STORAGE_TYPE: 'ftp'"));
    assert!(serve(&["--bucket-name", "Bad_Name"]).expect_err("bad").starts_with("BUCKET_NAME: 'Bad_Name'"));
    assert!(serve(&["--bucket-name", &"a".repeat(60)]).expect_err("bad").contains("draft bucket"));
    assert!(serve(&["--log-format", "xml"]).expect_err("bad").starts_with("LOG_FORMAT: 'xml'"));
    assert!(serve(&["--public-url", "ftp://x"]).expect_err("bad").starts_with("PUBLIC_URL: 'ftp://x'"));
    let short_key = serve(&["--signing-key", "short"]).expect_err("bad");
    assert!(short_key.starts_with("SIGNING_KEY:") && !short_key.contains("short'"), "{short_key}");
}

#[test]
fn an_empty_value_is_an_unset_one() {
    let settings =
        serve(&["--cleanup-interval", "", "--public-url", "", "--rate-limit-burst", "", "--s3-conditional-writes", ""])
            .expect("empty values are valid");
    assert_eq!(settings.cleanup_interval, None);
    assert_eq!(settings.public_url, None);
    assert_eq!(settings.rate_limit.burst, None);
    assert_eq!(settings.common.storage.s3_conditional_writes, None);
    assert_eq!(serve(&["--cleanup-interval", "0"]).expect("valid").cleanup_interval, None);
    assert_eq!(serve(&["--cleanup-interval", "60"]).expect("valid").cleanup_interval, Some(Duration::from_secs(60)));
}

#[test]
fn minio_settings_become_a_path_style_endpoint() {
    let keys = ["--minio-access-key", "app", "--minio-secret-key", "app-secret"];
    let settings = serve(
        &[&["--storage-type", "minio", "--minio-endpoint", "minio-service:9000", "--minio-use-ssl", "true"], &keys[..]]
            .concat(),
    )
    .expect("valid");
    let s3 = settings
        .common
        .storage
        .s3_config(settings.common.service.storage_timeout)
        .expect("valid")
        .expect("minio is S3");
    assert_eq!(s3.endpoint.map(String::from).as_deref(), Some("https://minio-service:9000/"));
    assert!(s3.force_path_style);
    assert!(
        serve(&[&["--storage-type", "minio", "--minio-endpoint", "http://x:9000"], &keys[..]].concat())
            .expect_err("bad")
            .starts_with("MINIO_ENDPOINT:")
    );
    assert!(
        serve(&["--storage-type", "minio", "--minio-endpoint", ""]).expect_err("bad").starts_with("MINIO_ENDPOINT:")
    );
    assert!(
        serve(&["--storage-type", "s3", "--aws-access-key-id", "x"])
            .expect_err("bad")
            .starts_with("AWS_SECRET_ACCESS_KEY:")
    );
}

#[test]
fn minio_credentials_are_required_and_have_no_default() {
    let refused = serve(&["--storage-type", "minio"]).expect_err("no credentials");
    assert!(refused.starts_with("MINIO_ACCESS_KEY: is required with STORAGE_TYPE=minio"), "{refused}");
    let refused = serve(&["--storage-type", "minio", "--minio-access-key", "app"]).expect_err("no secret");
    assert!(refused.starts_with("MINIO_SECRET_KEY: is required"), "{refused}");
    assert!(serve(&[]).is_ok(), "the local backend needs none");
}

#[test]
fn without_authentication_the_servers_bind_loopback_unless_told_otherwise() {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    assert_eq!(serve(&[]).expect("valid").bind_address(), loopback);
    let refused = serve(&["--bind-address", "0.0.0.0"]).expect_err("open to the network");
    assert!(refused.starts_with("BIND_ADDRESS: 0.0.0.0 is not a loopback address"), "{refused}");
    assert!(refused.contains("AUTH_MODE=api-key or jwt") && refused.contains("ALLOW_UNAUTHENTICATED=true"));
    let allowed = serve(&["--bind-address", "0.0.0.0", "--allow-unauthenticated", "true"]).expect("on purpose");
    assert_eq!(allowed.bind_address(), std::net::IpAddr::from([0, 0, 0, 0]));
    assert_eq!(serve(&["--bind-address", "::1"]).expect("loopback").bind_address().to_string(), "::1");
    let keyed = serve(&["--auth-mode", "api-key"]).expect("valid");
    assert_eq!(keyed.bind_address(), std::net::IpAddr::from([0, 0, 0, 0]), "authenticated: every address");
}

#[test]
fn a_short_jwt_secret_and_a_cleartext_key_set_url_are_refused() {
    let refused = serve(&["--auth-mode", "jwt", "--jwt-secret", "secret"]).expect_err("6 bytes");
    assert!(refused.starts_with("JWT_SECRET: must be at least 32 bytes long; this one has 6"), "{refused}");
    assert!(!refused.contains("'secret'"), "{refused}");
    assert!(serve(&["--jwt-secret", &"s".repeat(32)]).is_ok());
    let refused = serve(&["--jwks-url", "http://idp.example/keys"]).expect_err("in the clear");
    assert!(refused.starts_with("JWKS_URL: 'http://idp.example/keys' is invalid: expected an https://"));
    assert!(serve(&["--jwks-url", "http://127.0.0.1:9/keys"]).is_ok());
    assert!(serve(&["--jwks-url", "https://idp.example/.well-known/jwks.json"]).is_ok());
}

#[test]
fn the_settings_debug_carries_no_secret() {
    let secrets = [
        "aws-secret-never-shown",
        "aws-session-never-shown",
        "minio-secret-never-shown",
        "jwt-secret-never-shown-0123456789abcdef",
        "api-keys-never-shown",
        "signing-key-never-shown",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ];
    let settings = serve(&[
        "--aws-access-key-id",
        "AKIDVISIBLE",
        "--aws-secret-access-key",
        secrets[0],
        "--aws-session-token",
        secrets[1],
        "--minio-access-key",
        "minio-user",
        "--minio-secret-key",
        secrets[2],
        "--jwt-secret",
        secrets[3],
        "--api-keys",
        secrets[4],
        "--signing-key",
        secrets[5],
        "--webhook-secret",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ])
    .expect("valid");
    let debug = format!("{settings:?}");
    assert!(debug.contains("AKIDVISIBLE") && debug.contains("minio-user"), "what is not secret still shows");
    for secret in secrets {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    let cli = Cli::try_parse_from(["draftstore", "ls", "--token", "token-never-shown"]).expect("parses");
    assert!(!format!("{cli:?}").contains("token-never-shown"));
}
