//! The storage contract, one suite for every backend: the local backend on a temporary folder and the S3 backend
//! on SeaweedFS pass the same checks, one function per capability of
//! [`draftstore_storage::conformance`], with real HTTP requests to the URLs they sign. Every method of every
//! capability's trait is called, and each guarantee its documentation states is checked.

use draftstore_storage::BucketName;
use draftstore_storage::conformance::{self, Target};

use crate::helpers::{TestApp, serve_settings, spawn, spawn_app};
use crate::seaweed;

/// Every capability's checks, on the store of `app`, whose buckets `main` and `draft` exist.
async fn check(app: &TestApp, main: &str, draft: &str) {
    let (main, draft) = (BucketName::parse(main).expect("valid"), BucketName::parse(draft).expect("valid"));
    let target = Target::new(&app.store, &main, &draft);
    conformance::buckets(&target).await;
    conformance::signing(&target).await;
    conformance::objects(&target).await;
    conformance::multipart(&target).await;
    conformance::records(&target).await;
    conformance::listing(&target).await;
    conformance::probe(&target).await;
}

#[tokio::test]
async fn the_local_backend_passes_the_conformance_suite() {
    let app = spawn_app().await;
    check(&app, "main", "main-draft").await;
}

#[tokio::test]
async fn the_s3_backend_passes_the_conformance_suite_on_seaweedfs() {
    let weed = seaweed::shared().await;
    let name = seaweed::unique_bucket();
    let args = weed.s3_args(&name);
    let app = spawn(serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>())).await;
    check(&app, &name, &format!("{name}-draft")).await;
}

/// The suite reaches every method the capabilities declare: a method added to a trait fails this until the contract
/// checks it.
#[test]
fn the_suite_calls_every_method_of_the_trait() {
    let declared = [include_str!("../../../storage/src/store.rs"), include_str!("../../../storage/src/probe.rs")];
    let suite = [
        include_str!("../../../storage/src/conformance/mod.rs"),
        include_str!("../../../storage/src/conformance/objects.rs"),
        include_str!("../../../storage/src/conformance/multipart.rs"),
        include_str!("../../../storage/src/conformance/listing.rs"),
    ]
    .concat();
    let mut methods = Vec::new();
    for source in declared {
        for (_, rest) in source.match_indices("pub trait ").map(|(i, _)| source.split_at(i)) {
            let (name, rest) = rest["pub trait ".len()..].split_once(':').expect("a trait with bounds");
            let body = rest.split("\n}\n").next().expect("the trait's body");
            let declared = body
                .split("fn ")
                .skip(1)
                .filter_map(|rest| rest.split(['(', '<']).next())
                .filter(|method| method.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            methods.extend(declared.map(|method| (name.to_owned(), method.to_owned())));
        }
    }
    assert!(methods.len() >= 25, "{methods:?}");
    for (name, method) in methods {
        assert!(suite.contains(&format!(".{method}(")), "the contract suite never calls {name}::{method}");
    }
}
