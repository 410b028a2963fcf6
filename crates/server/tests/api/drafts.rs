//! Listing and discarding drafts, tenant by tenant, on the local backend and on SeaweedFS, over REST and gRPC.

use draftstore_proto::draft::v1 as pb;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Code;

use crate::helpers::{Backend, on_both_backends, spawn_app_with};

fn api_keys() -> String {
    crate::helpers::api_keys(&crate::helpers::TENANTS)
}

fn names(page: &Value) -> Vec<String> {
    page["drafts"]
        .as_array()
        .expect("drafts")
        .iter()
        .map(|d| d["object_name"].as_str().expect("name").to_owned())
        .collect()
}

async fn drafts_are_listed_and_discarded_per_tenant(backend: Backend) {
    let app = &backend.spawn(&["--auth-mode", "api-key", "--api-keys", &api_keys()]).await;
    let (alice, mallory) = (app.as_caller("key-of-alice"), app.as_caller("key-of-mallory"));
    alice.upload("photos/b.png", Some("image/png"), b"bbbb").await;
    alice.upload("photos/a.jpg", Some("image/jpeg"), b"aaa").await;
    alice.upload("docs/c.txt", Some("text/plain"), b"cc").await;
    alice.upload("photos-old/d.gif", None, b"d").await;
    mallory.upload("photos/m.jpg", Some("image/jpeg"), b"m").await;
    alice.confirm("docs/c.txt").await.ok();

    // Pages of two: every draft once, none of another tenant's, the confirmed one no longer a draft.
    let first = alice.post("/api/v1/list-drafts", &json!({ "page_size": 2 })).await.ok();
    assert_eq!(names(&first).len(), 2);
    let token = first["next_page_token"].as_str().expect("more follow");
    let second = alice.post("/api/v1/list-drafts", &json!({ "page_size": 2, "page_token": token })).await.ok();
    assert_eq!(second["next_page_token"], Value::Null);
    let mut all = [names(&first), names(&second)].concat();
    all.sort();
    assert_eq!(all, ["photos-old/d.gif", "photos/a.jpg", "photos/b.png"]);
    // A token is bound to its listing: another tenant cannot follow it.
    app.as_caller("key-of-mallory")
        .post("/api/v1/list-drafts", &json!({ "page_size": 2, "page_token": token }))
        .await
        .error(400, "INVALID_REQUEST");

    let photos = alice.post("/api/v1/list-drafts", &json!({ "prefix": "photos/" })).await.ok();
    assert_eq!(names(&photos), ["photos/a.jpg", "photos/b.png"]);
    let a = &photos["drafts"][0];
    assert_eq!((a["size"].as_u64(), a["content_type"].as_str()), (Some(3), Some("image/jpeg")));
    let at = |field: &str| OffsetDateTime::parse(a[field].as_str().expect("time"), &Rfc3339).expect("RFC 3339");
    assert!((OffsetDateTime::now_utc() - at("uploaded_at")).whole_seconds().abs() < 60);
    assert_eq!((at("expires_at") - at("uploaded_at")).whole_seconds(), 86_400, "uploaded_at + OBJECT_LIFETIME");

    let theirs = mallory.post("/api/v1/list-drafts", &json!({})).await.ok();
    assert_eq!(names(&theirs), ["photos/m.jpg"], "a tenant sees its own drafts only");

    mallory
        .post("/api/v1/discard-draft", &json!({ "object_name": "photos/b.png" }))
        .await
        .error(404, "OBJECT_NOT_FOUND");
    alice.post("/api/v1/discard-draft", &json!({ "object_name": "photos/b.png" })).await.ok();
    alice.post("/api/v1/discard-draft", &json!({ "object_name": "photos/b.png" })).await.error(404, "OBJECT_NOT_FOUND");
    alice.post("/api/v1/discard-draft", &json!({ "object_name": "docs/c.txt" })).await.error(404, "OBJECT_NOT_FOUND");
    let photos = alice.post("/api/v1/list-drafts", &json!({ "prefix": "photos/" })).await.ok();
    assert_eq!(names(&photos), ["photos/a.jpg"]);
    assert_eq!(alice.download("docs/c.txt", Some("main")).await.1, b"cc", "a confirmed object is not a draft");
    assert_eq!(names(&mallory.post("/api/v1/list-drafts", &json!({})).await.ok()), ["photos/m.jpg"]);

    for bad in [
        json!({ "prefix": "../" }),
        json!({ "prefix": "/a" }),
        json!({ "page_size": 0 }),
        json!({ "page_size": 1001 }),
        json!({ "page_token": "a//b" }),
    ] {
        alice.post("/api/v1/list-drafts", &bad).await.error(400, "INVALID_REQUEST");
    }
    alice.post("/api/v1/discard-draft", &json!({ "object_name": "../x" })).await.error(400, "INVALID_OBJECT_NAME");
}

on_both_backends!(drafts_are_listed_and_discarded_per_tenant);

async fn a_long_listing_pages_through_every_draft_once(backend: Backend) {
    let app = &backend.spawn(&[]).await;
    let mut expected: Vec<String> = (0..25).map(|i| format!("many/{}/{i:02}.txt", i % 3)).collect();
    expected.extend(["many/0-x".to_owned(), "many/0/sub/deep.txt".to_owned(), "many-not/x".to_owned()]);
    for name in &expected {
        app.upload(name, None, b"x").await;
    }
    expected.retain(|name| name.starts_with("many/"));
    expected.sort();
    let mut seen = Vec::new();
    let mut token = Value::Null;
    loop {
        let mut body = json!({ "prefix": "many/", "page_size": 4 });
        if !token.is_null() {
            body["page_token"] = token.clone();
        }
        let page = app.post("/api/v1/list-drafts", &body).await.ok();
        seen.extend(names(&page));
        token = page["next_page_token"].clone();
        if token.is_null() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, expected);
}

on_both_backends!(a_long_listing_pages_through_every_draft_once);

#[tokio::test]
async fn drafts_are_listed_and_discarded_over_grpc() {
    let app = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &api_keys()]).await;
    let alice = app.as_caller("key-of-alice");
    alice.upload("x/one.txt", Some("text/plain"), b"1").await;
    alice.upload("x/two.txt", Some("text/plain"), b"22").await;
    let mut grpc = app.grpc().await;
    let page = grpc
        .list_drafts(alice.rpc(pb::ListDraftsRequest {
            prefix: "x/".into(),
            page_size: Some(1),
            page_token: String::new(),
        }))
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(page.drafts.iter().map(|d| (d.object_name.as_str(), d.size)).collect::<Vec<_>>(), [("x/one.txt", 1)]);
    let rest = grpc
        .list_drafts(alice.rpc(pb::ListDraftsRequest {
            prefix: "x/".into(),
            page_size: None,
            page_token: page.next_page_token,
        }))
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(rest.drafts.iter().map(|d| d.object_name.as_str()).collect::<Vec<_>>(), ["x/two.txt"]);
    assert!(rest.next_page_token.is_empty());
    grpc.discard_draft(alice.rpc(pb::DiscardDraftRequest { object_name: "x/one.txt".into() }))
        .await
        .expect("discarded");
    let again = grpc.discard_draft(alice.rpc(pb::DiscardDraftRequest { object_name: "x/one.txt".into() })).await;
    assert_eq!(again.expect_err("gone").code(), Code::NotFound);
    let mallory = app.as_caller("key-of-mallory");
    let theirs = grpc.discard_draft(mallory.rpc(pb::DiscardDraftRequest { object_name: "x/two.txt".into() })).await;
    assert_eq!(theirs.expect_err("not theirs").code(), Code::NotFound);
    let unauthenticated = grpc.list_drafts(pb::ListDraftsRequest::default()).await;
    assert_eq!(unauthenticated.expect_err("no key").code(), Code::Unauthenticated);
}
