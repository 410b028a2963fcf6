//! The real binary refuses bad configuration at start-up, naming the variable and the value.

use std::process::Command;

fn draftstore(envs: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_draftstore"));
    command.args(args).env("DATA_DIR", dir.path()).env("HTTP_PORT", "0");
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().expect("the binary runs")
}

#[test]
fn a_bad_value_stops_start_up_with_a_message_naming_the_variable() {
    let cases = [
        ("UPLOAD_TTL", "abc", "UPLOAD_TTL: 'abc' is not a number of seconds"),
        ("HTTP_PORT", "http", "HTTP_PORT: 'http' is not a port number"),
        ("STORAGE_TYPE", "floppy", "STORAGE_TYPE: 'floppy' is invalid"),
        ("BUCKET_NAME", "UPPER", "BUCKET_NAME: 'UPPER' is invalid"),
        ("LOG_FORMAT", "yaml", "LOG_FORMAT: 'yaml' is invalid"),
        ("RATE_LIMIT", "fast", "RATE_LIMIT: 'fast' is invalid"),
        ("RATE_LIMIT", "-1", "RATE_LIMIT: '-1' is invalid"),
        ("CONFIRM_HOOK_URL", "ftp://scanner", "CONFIRM_HOOK_URL: 'ftp://scanner' is invalid"),
        ("EVENTS_URL", "http://127.0.0.1:9/", "WEBHOOK_SECRET: is required with CONFIRM_HOOK_URL or EVENTS_URL"),
        ("WEBHOOK_SECRET", "whsec_c2hvcnQ=", "WEBHOOK_SECRET: is not a Standard Webhooks secret"),
        ("HOOK_TIMEOUT", "0", "HOOK_TIMEOUT: '0' is out of range"),
    ];
    for (name, value, message) in cases {
        let output = draftstore(&[(name, value)], &["serve"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}={value} started");
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(message), "{name}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn help_lists_every_variable_with_its_default_and_hides_secrets() {
    let output = draftstore(
        &[("MINIO_SECRET_KEY", "super-secret-value"), ("WEBHOOK_SECRET", "whsec_super-secret-webhook")],
        &["serve", "--help"],
    );
    let help = String::from_utf8_lossy(&output.stdout);
    for var in [
        "STORAGE_TYPE",
        "BUCKET_NAME",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "MINIO_ENDPOINT",
        "MINIO_ACCESS_KEY",
        "MINIO_SECRET_KEY",
        "MINIO_USE_SSL",
        "MINIO_REGION",
        "GRPC_PORT",
        "HTTP_PORT",
        "UPLOAD_TTL",
        "DOWNLOAD_TTL",
        "OBJECT_LIFETIME",
        "DATA_DIR",
        "PUBLIC_URL",
        "SIGNING_KEY",
        "LOG_FORMAT",
        "CONFIRM_HOOK_URL",
        "HOOK_TIMEOUT",
        "EVENTS_URL",
        "EVENTS_MAX_AGE",
        "WEBHOOK_SECRET",
    ] {
        assert!(help.contains(&format!("env: {var}")), "{var} missing from --help");
    }
    assert!(help.contains("[default: 3600]") && help.contains("[default: ./data]"));
    assert!(!help.contains("super-secret-value") && !help.contains("super-secret-webhook"));
    let clean = draftstore(&[], &["clean", "--help"]);
    let clean_help = String::from_utf8_lossy(&clean.stdout);
    assert!(clean_help.contains("--dry-run") && clean_help.contains("env: OBJECT_LIFETIME"));
}
