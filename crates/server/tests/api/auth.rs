//! Authentication on REST and gRPC, and tenants that cannot reach each other's objects.

use std::path::Path;
use std::process::Command;

use draftstore_proto::draft::v1 as pb;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::Digest;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{Backend, TestApp, grpc_confirm, on_both_backends, spawn_app_with};
use crate::seaweed;

pub fn api_keys(keys: &[(&str, &str)]) -> String {
    keys.iter()
        .map(|(tenant, key)| format!("{tenant}:{}", hex::encode(sha2::Sha256::digest(key))))
        .collect::<Vec<_>>()
        .join(",")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn token(key: &EncodingKey, alg: Algorithm, kid: Option<&str>, claims: serde_json::Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key).expect("signs")
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl").args(args).current_dir(dir).status().expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

/// What one credential gets: the REST status and the gRPC code of an upload-url request.
async fn outcome(app: &TestApp) -> (u16, Code) {
    let rest = app.upload_url("a.txt", None).await;
    let mut grpc = app.grpc().await;
    let rpc = grpc
        .get_upload_url(app.rpc(pb::GetUploadUrlRequest { object_name: "a.txt".into(), ..Default::default() }))
        .await;
    let code = match rpc {
        Ok(_) => Code::Ok,
        Err(status) => {
            let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
            assert_eq!(info.reason, "ACCESS_DENIED");
            assert_eq!(status.message(), "missing or invalid credentials", "nothing else is revealed");
            status.code()
        }
    };
    if rest.status == 401 {
        rest.error(401, "ACCESS_DENIED");
        assert_eq!(rest.body["error_message"], "missing or invalid credentials");
    }
    (rest.status, code)
}

async fn expect(app: &TestApp, bearer: Option<&str>, allowed: bool, case: &str) {
    let caller = match bearer {
        Some(bearer) => app.as_caller(bearer),
        None => app.as_caller("").without_bearer(),
    };
    let wanted = if allowed { (200, Code::Ok) } else { (401, Code::Unauthenticated) };
    assert_eq!(outcome(&caller).await, wanted, "{case}");
}

#[tokio::test]
async fn auth_mode_none_trusts_every_caller() {
    let app = spawn_app_with(&["--auth-mode", "none"]).await;
    expect(&app, None, true, "none, missing").await;
    expect(&app, Some("anything"), true, "none, any bearer").await;
}

#[tokio::test]
async fn api_keys_admit_known_keys_only() {
    let keys = api_keys(&[("alice", "key-of-alice")]);
    let app = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    expect(&app, Some("key-of-alice"), true, "api-key, valid").await;
    expect(&app, None, false, "api-key, missing").await;
    expect(&app, Some("key-of-mallory"), false, "api-key, wrong").await;
    expect(&app, Some("key-of-alic"), false, "api-key, prefix of a valid key").await;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys");
    std::fs::write(&file, format!("# tenant:sha256\n{}\n", api_keys(&[("bob", "key-of-bob")]))).expect("write");
    let from_file = spawn_app_with(&["--auth-mode", "api-key", "--api-keys-file", file.to_str().expect("utf-8")]).await;
    expect(&from_file, Some("key-of-bob"), true, "api-key file, valid").await;
    expect(&from_file, Some("key-of-alice"), false, "api-key file, other key").await;
}

#[tokio::test]
async fn hs256_tokens_are_checked_for_signature_expiry_issuer_and_audience() {
    let app = spawn_app_with(&[
        "--auth-mode",
        "jwt",
        "--jwt-secret",
        "a-test-secret-of-enough-length-32",
        "--jwt-issuer",
        "https://issuer.test",
        "--jwt-audience",
        "draftstore",
    ])
    .await;
    let key = EncodingKey::from_secret(b"a-test-secret-of-enough-length-32");
    let claims = |exp: i64, nbf: i64, iss: &str, aud: &str| json!({ "sub": "alice", "exp": exp, "nbf": nbf, "iss": iss, "aud": aud });
    let valid =
        token(&key, Algorithm::HS256, None, claims(now() + 600, now() - 10, "https://issuer.test", "draftstore"));
    expect(&app, Some(&valid), true, "jwt, valid").await;
    expect(&app, None, false, "jwt, missing").await;
    let other = EncodingKey::from_secret(b"another-secret-entirely-0000000");
    let forged =
        token(&other, Algorithm::HS256, None, claims(now() + 600, now() - 10, "https://issuer.test", "draftstore"));
    expect(&app, Some(&forged), false, "jwt, wrong key").await;
    let expired =
        token(&key, Algorithm::HS256, None, claims(now() - 600, now() - 900, "https://issuer.test", "draftstore"));
    expect(&app, Some(&expired), false, "jwt, expired").await;
    let early =
        token(&key, Algorithm::HS256, None, claims(now() + 600, now() + 300, "https://issuer.test", "draftstore"));
    expect(&app, Some(&early), false, "jwt, not yet valid").await;
    let issuer =
        token(&key, Algorithm::HS256, None, claims(now() + 600, now() - 10, "https://evil.test", "draftstore"));
    expect(&app, Some(&issuer), false, "jwt, wrong issuer").await;
    let audience = token(&key, Algorithm::HS256, None, claims(now() + 600, now() - 10, "https://issuer.test", "other"));
    expect(&app, Some(&audience), false, "jwt, wrong audience").await;
    let no_exp = token(
        &key,
        Algorithm::HS256,
        None,
        json!({ "sub": "alice", "iss": "https://issuer.test", "aud": "draftstore" }),
    );
    expect(&app, Some(&no_exp), false, "jwt, no expiry").await;
    let bad_tenant = token(
        &key,
        Algorithm::HS256,
        None,
        json!({ "sub": "a/b", "exp": now() + 600, "iss": "https://issuer.test", "aud": "draftstore" }),
    );
    expect(&app, Some(&bad_tenant), false, "jwt, tenant that is not a name segment").await;
}

#[tokio::test]
async fn rs256_public_keys_and_es256_key_sets_verify_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    openssl(dir.path(), &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.pem"]);
    openssl(dir.path(), &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"]);
    openssl(dir.path(), &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem"]);
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(dir.path().join("rsa.pem")).expect("key")).expect("RSA key");
    let ec = EncodingKey::from_ec_pem(&std::fs::read(dir.path().join("ec.pem")).expect("key")).expect("EC key");

    let public = dir.path().join("rsa.pub.pem");
    // Public keys need the issuer and the audience (issue 39): a token for any other application of the provider
    // would verify.
    let app = spawn_app_with(&[
        "--auth-mode",
        "jwt",
        "--jwt-public-key-file",
        public.to_str().expect("utf-8"),
        "--jwt-issuer",
        "https://issuer.test",
        "--jwt-audience",
        "draftstore",
    ])
    .await;
    let claims = |exp: i64| json!({ "sub": "carol", "exp": exp, "iss": "https://issuer.test", "aud": "draftstore" });
    expect(&app, Some(&token(&rsa, Algorithm::RS256, None, claims(now() + 600))), true, "RS256, valid").await;
    expect(&app, Some(&token(&rsa, Algorithm::RS256, None, claims(now() - 600))), false, "RS256, expired").await;
    expect(&app, Some(&token(&ec, Algorithm::ES256, None, claims(now() + 600))), false, "RS256 key, ES256 token").await;

    let mut jwk = Jwk::from_encoding_key(&ec, Algorithm::ES256).expect("JWK");
    jwk.common.key_id = Some("k1".to_owned());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("json")).expect("write");
    let app = spawn_app_with(&[
        "--auth-mode",
        "jwt",
        "--jwks-file",
        jwks.to_str().expect("utf-8"),
        "--jwt-tenant-claim",
        "team",
        "--jwt-issuer",
        "https://issuer.test",
        "--jwt-audience",
        "draftstore",
    ])
    .await;
    let team =
        |exp: i64| json!({ "sub": "x", "team": "blue", "exp": exp, "iss": "https://issuer.test", "aud": "draftstore" });
    expect(&app, Some(&token(&ec, Algorithm::ES256, Some("k1"), team(now() + 600))), true, "JWKS, valid").await;
    expect(&app, Some(&token(&ec, Algorithm::ES256, Some("k2"), team(now() + 600))), false, "JWKS, unknown kid").await;
    expect(&app, Some(&token(&ec, Algorithm::ES256, Some("k1"), team(now() - 600))), false, "JWKS, expired").await;
    let hmac = EncodingKey::from_secret(b"guessing-the-alg-confusion-trick");
    expect(&app, Some(&token(&hmac, Algorithm::HS256, Some("k1"), team(now() + 600))), false, "JWKS, HS256 forgery")
        .await;
}

#[tokio::test]
async fn probes_and_metrics_stay_open_while_the_api_needs_credentials() {
    let keys = api_keys(&[("alice", "key-of-alice")]);
    // Alice is named an operator: draft-bucket is an operator call (issue 39).
    let app = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &keys, "--admin-tenants", "alice"]).await;
    for route in ["/health", "/ready", "/openapi.json"] {
        assert_eq!(app.get(route).await.status, 200, "{route}");
    }
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.expect("sent");
    assert_eq!(metrics.status(), 200);
    for route in ["/api/v1/upload-url", "/api/v1/download-url", "/api/v1/confirm-upload", "/api/v1/draft-bucket"] {
        let response =
            app.client.post(format!("{}{route}", app.address)).json(&json!({ "object_name": "a" })).send().await;
        let response = response.expect("sent");
        assert_eq!(response.status(), 401, "{route}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    let mut grpc = app.grpc().await;
    let status = grpc.create_draft_bucket(pb::CreateDraftBucketRequest {}).await.expect_err("needs credentials");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(grpc.create_draft_bucket(app.as_caller("key-of-alice").rpc(pb::CreateDraftBucketRequest {})).await.is_ok());
}

/// Alice and Bob use the same names; neither reaches the other's objects on any route.
async fn tenants_are_isolated(app: &TestApp) {
    let (alice, bob) = (app.as_caller("key-of-alice"), app.as_caller("key-of-bob"));
    alice.upload("doc.txt", Some("text/plain"), b"alice's").await;
    bob.download_url("doc.txt", None).await.error(404, "OBJECT_NOT_FOUND");
    bob.download_url("doc.txt", Some("draft")).await.error(404, "OBJECT_NOT_FOUND");
    bob.download_url("alice/doc.txt", None).await.error(404, "OBJECT_NOT_FOUND");
    bob.confirm("doc.txt").await.error(404, "OBJECT_NOT_FOUND");
    bob.confirm("alice/doc.txt").await.error(404, "OBJECT_NOT_FOUND");
    bob.post("/api/v1/confirm-upload", &json!({ "object_name": "../alice/doc.txt" }))
        .await
        .error(400, "INVALID_OBJECT_NAME");
    let mut grpc = app.grpc().await;
    let status = grpc.confirm_upload(bob.rpc(grpc_confirm("doc.txt"))).await.expect_err("not bob's");
    assert_eq!(status.code(), Code::NotFound);

    bob.upload("doc.txt", Some("text/plain"), b"bob's").await;
    assert_eq!(alice.download("doc.txt", None).await.1, b"alice's", "bob's upload did not overwrite alice's draft");
    let confirmed = alice.confirm("doc.txt").await.ok();
    assert_eq!(confirmed["object_name"], "doc.txt");
    assert!(confirmed["final_location"].as_str().expect("string").ends_with("/alice/doc.txt"), "{confirmed}");
    bob.download_url("doc.txt", Some("main")).await.error(404, "OBJECT_NOT_FOUND");
    bob.confirm("doc.txt").await.ok();
    assert_eq!(alice.download("doc.txt", Some("main")).await.1, b"alice's");
    assert_eq!(bob.download("doc.txt", Some("main")).await.1, b"bob's");
    let via_grpc = grpc
        .get_download_url(bob.rpc(pb::GetDownloadUrlRequest {
            object_name: "doc.txt".into(),
            stage: 0,
            ..Default::default()
        }))
        .await
        .expect("bob's own")
        .into_inner();
    let bytes = app.client.get(&via_grpc.url).send().await.expect("GET").bytes().await.expect("body");
    assert_eq!(bytes.as_ref(), b"bob's");
}

fn tenant_args() -> Vec<String> {
    vec![
        "--auth-mode".into(),
        "api-key".into(),
        "--api-keys".into(),
        api_keys(&[("alice", "key-of-alice"), ("bob", "key-of-bob")]),
    ]
}

/// Each tenant's objects under a folder of its own in the main bucket.
async fn tenants_are_isolated_on(backend: Backend) {
    let args = tenant_args();
    let (app, bucket) = backend.spawn_with_bucket(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    tenants_are_isolated(&app).await;
    match backend {
        Backend::Local => assert!(
            app.data_dir.join("main/alice/doc.txt").is_file() && app.data_dir.join("main/bob/doc.txt").is_file()
        ),
        Backend::SeaweedFs => {
            let weed = seaweed::shared().await;
            let listed = weed.client().list_objects_v2().bucket(&bucket).send().await.expect("list");
            let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
            assert_eq!(keys, ["alice/doc.txt", "bob/doc.txt"]);
        }
    }
}

on_both_backends!(tenants_are_isolated_on);
