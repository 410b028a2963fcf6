use serde_json::{Value, json};

use crate::helpers::{files_under, spawn_app};

const ROUTES: [&str; 3] = ["/api/v1/upload-url", "/api/v1/download-url", "/api/v1/confirm-upload"];

fn bad_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "",
        "/etc/passwd",
        "a//b",
        "a/",
        "..",
        ".",
        "../escape",
        "a/../../b",
        "a/./b",
        "back\\slash",
        "nul\0byte",
        "line\nfeed",
        "carriage\rreturn",
        "del\u{7f}",
        "tab\there",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("x".repeat(1025));
    names
}

#[tokio::test]
async fn every_bad_object_name_is_refused_on_every_route_and_nothing_is_written() {
    let app = spawn_app().await;
    let before = files_under(&app.data_dir);
    for route in ROUTES {
        for name in bad_names() {
            app.post(route, &json!({ "object_name": name })).await.error(400, "INVALID_OBJECT_NAME");
        }
    }
    assert_eq!(files_under(&app.data_dir), before);
}

#[tokio::test]
async fn the_longest_valid_name_is_accepted() {
    let app = spawn_app().await;
    let name = format!("{}/{}", "d".repeat(200), "n".repeat(200));
    app.upload(&name, None, b"ok").await;
    app.confirm(&name).await.ok();
    assert!(app.upload_url(&"x".repeat(1024), None).await.status == 200);
}

#[tokio::test]
async fn malformed_bodies_are_400_invalid_request_never_500() {
    let app = spawn_app().await;
    let bodies: [(&str, Option<&str>, &'static str); 7] = [
        ("not json", Some("application/json"), "{not json"),
        ("truncated", Some("application/json"), r#"{"object_name": "a"#),
        ("an array", Some("application/json"), r#"["a"]"#),
        ("a number for the name", Some("application/json"), r#"{"object_name": 42}"#),
        ("null for the name", Some("application/json"), r#"{"object_name": null}"#),
        ("a missing name", Some("application/json"), r#"{"name": "a"}"#),
        ("a form body", Some("application/x-www-form-urlencoded"), "object_name=a"),
    ];
    for route in ROUTES {
        for (what, content_type, body) in bodies {
            let answer = app.post_raw(route, content_type, body).await;
            assert_eq!(answer.status, 400, "{route} with {what}: {:?}", answer.body);
            answer.error(400, "INVALID_REQUEST");
        }
        app.post(route, &json!({ "object_name": "a", "unexpected": 1 })).await.error(400, "INVALID_REQUEST");
    }
    app.post("/api/v1/download-url", &json!({ "object_name": "a", "stage": "attic" }))
        .await
        .error(400, "INVALID_REQUEST");
    for bad_type in ["jpeg", "image/", "text/html\r\nx: y", ""] {
        app.upload_url("a.jpg", Some(bad_type)).await.error(400, "INVALID_REQUEST");
    }
    app.post("/api/v1/draft-bucket", &json!({ "surprise": true })).await.error(400, "INVALID_REQUEST");
    // Above the 2 MiB body limit.
    let huge: &'static str = Box::leak(format!(r#"{{"object_name": "{}"}}"#, "a".repeat(2_200_000)).into_boxed_str());
    app.post_raw("/api/v1/upload-url", Some("application/json"), huge).await.error(400, "INVALID_REQUEST");
}

#[tokio::test]
async fn optional_bodies_may_be_left_out_but_blanks_are_not_json() {
    let app = spawn_app().await;
    assert_eq!(app.post_raw("/api/v1/draft-bucket", None, "").await.ok(), json!({ "success": true }));
    assert!(app.post_raw("/api/v1/list-drafts", None, "").await.ok()["drafts"].is_array());
    for route in ["/api/v1/draft-bucket", "/api/v1/list-drafts"] {
        for blanks in ["\t", " ", "\u{c}"] {
            app.post_raw(route, Some("application/json"), blanks).await.error(400, "INVALID_REQUEST");
        }
    }
}

#[tokio::test]
async fn unknown_routes_answer_json_404() {
    let app = spawn_app().await;
    let answer = app.get("/api/v1/nothing").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["success"], Value::Bool(false));
}
