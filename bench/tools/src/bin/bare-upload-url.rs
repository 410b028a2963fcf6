//! The ceiling for `POST /api/v1/upload-url`: an axum endpoint that parses the same JSON body and answers a body of
//! the same shape and size, with a fixed URL and no signing. Usage: bare-upload-url PORT.

use std::collections::BTreeMap;

use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    object_name: String,
    #[serde(default)]
    content_type: Option<String>,
}

#[derive(Serialize)]
struct Response {
    upload_url: String,
    object_name: String,
    expires_at: String,
    method: String,
    headers: BTreeMap<String, String>,
}

const URL: &str = "http://localhost:8080/blobs/main-draft/bench/object.bin?X-DS-Expires=1795824860&X-DS-SignedHeaders=content-type&X-DS-Signature=21d09428dc0f7647e8122d751ccfde9970c2b0cb495950fac203fadb71abaf0f";

async fn upload_url(Json(request): Json<Request>) -> Json<Response> {
    let mut headers = BTreeMap::new();
    if let Some(content_type) = request.content_type {
        headers.insert("Content-Type".to_owned(), content_type);
    }
    Json(Response {
        upload_url: URL.to_owned(),
        object_name: request.object_name,
        expires_at: "2026-11-28T00:14:20Z".to_owned(),
        method: "PUT".to_owned(),
        headers,
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", listener.local_addr()?.port());
    // As DraftStore does.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, Router::new().route("/api/v1/upload-url", post(upload_url))).await
}
