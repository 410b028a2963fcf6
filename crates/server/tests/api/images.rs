//! Images at confirm (issue 42), on the local backend and on SeaweedFS, with images made by ImageMagick, libvips,
//! Chromium's canvas and a camera-style JPEG tagged by exiftool, read back by ImageMagick and exiftool: variants of
//! the declared size, fit and type, upright; originals without their GPS position and with their pixels; the
//! placeholder everywhere; variants downloaded, replaced, deleted, hidden from other tenants and from listings,
//! swept by the cleaner; a set with an undecodable image promoting nothing; and decompression bombs refused or cut
//! off in time, with the server's peak memory measured.

use std::time::{Duration, Instant};

use draftstore::config::ServeSettings;
use draftstore_storage::Checksum;
use serde_json::{Value, json};
use sha2::Digest;
use time::OffsetDateTime;

use crate::helpers::images::{
    Fixtures, GIF_SCREEN, MARK, SCENE, by_chromium, gif_of_frames, identify, jpeg_declaring, metadata_tags, pixel_at,
    pixels, png_declaring, png_with_ztxt, tags, undecodable_png, zlib_of_zeros,
};
use crate::helpers::{Answer, Backend, TENANTS, TestApp, api_keys, on_both_backends, report};

/// The variants every test server makes: one of each fit and format.
const VARIANTS: &str = "thumb=64x64,cover,webp;card=120x80,cover,jpeg,q80;fit=160x160,contain,png";

/// One variant of [`VARIANTS`]: its name, box, fit, media type and the format `identify` names.
struct Spec {
    name: &'static str,
    width: u32,
    height: u32,
    cover: bool,
    content_type: &'static str,
    format: &'static str,
}

const SPECS: [Spec; 3] = [
    Spec { name: "thumb", width: 64, height: 64, cover: true, content_type: "image/webp", format: "WEBP" },
    Spec { name: "card", width: 120, height: 80, cover: true, content_type: "image/jpeg", format: "JPEG" },
    Spec { name: "fit", width: 160, height: 160, cover: false, content_type: "image/png", format: "PNG" },
];

/// A server on `backend` making [`VARIANTS`], with extra arguments; and its settings.
async fn images_on(backend: Backend, extra: &[&str]) -> (TestApp, ServeSettings) {
    let mut args = vec!["--image-variants", VARIANTS];
    args.extend_from_slice(extra);
    backend.spawn_with_settings(&args).await
}

/// Uploads a draft declared as `content_type` and confirms it.
async fn confirm_as(app: &TestApp, name: &str, content_type: &str, bytes: &[u8]) -> Answer {
    app.upload(name, Some(content_type), bytes).await;
    app.confirm(name).await
}

/// A GET of a URL: its status, content type and body.
async fn fetch(app: &TestApp, url: &str) -> (u16, String, Vec<u8>) {
    let response = app.client.get(url).send().await.expect("sent");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|t| t.to_str().expect("ascii").to_owned()).unwrap_or_default();
    (status, content_type, response.bytes().await.expect("body").to_vec())
}

/// A download URL of an object's variant.
async fn variant_url(app: &TestApp, name: &str, variant: &str) -> Answer {
    app.post("/api/v1/download-url", &json!({"object_name": name, "variant": variant})).await
}

/// A variant as served: its content type and bytes.
async fn download_variant(app: &TestApp, name: &str, variant: &str) -> (String, Vec<u8>) {
    let ticket = variant_url(app, name, variant).await.ok();
    let (status, content_type, bytes) = fetch(app, ticket["download_url"].as_str().expect("a URL")).await;
    assert_eq!(status, 200, "{name} {variant}");
    (content_type, bytes)
}

/// The keys under `images/` in the records bucket: every image folder's variants, originals and descriptions.
async fn image_files(app: &TestApp, settings: &ServeSettings) -> Vec<String> {
    let events = &settings.common.service.buckets.events;
    let page = app.storage.list_prefix(events, "images/", None, 1000).await.expect("the records listed");
    page.objects.into_iter().map(|object| object.key.as_str().to_owned()).collect()
}

/// How many image folders (descriptions) the records bucket holds.
async fn image_folders(app: &TestApp, settings: &ServeSettings) -> usize {
    image_files(app, settings).await.iter().filter(|key| key.ends_with("/image.json")).count()
}

/// Asserts that every declared variant of `image` (an `ImageReport`) is listed in order, is served with its type,
/// holds bytes of that type and of the listed size and dimensions, and has its box's size (cover) or fits in it
/// with the aspect of an image shown `upright` (contain). Returns the variants' bytes in [`SPECS`]'s order.
async fn assert_variants(app: &TestApp, name: &str, image: &Value, upright: (u32, u32)) -> Vec<Vec<u8>> {
    let listed = image["variants"].as_array().expect("variants");
    let names: Vec<&str> = listed.iter().map(|v| v["name"].as_str().expect("a name")).collect();
    assert_eq!(names, ["thumb", "card", "fit"], "{name}");
    let mut all = Vec::new();
    for (spec, variant) in SPECS.iter().zip(listed) {
        let (width, height) =
            (variant["width"].as_u64().expect("w") as u32, variant["height"].as_u64().expect("h") as u32);
        assert_eq!(variant["content_type"], spec.content_type, "{name} {}", spec.name);
        let (served_as, bytes) = download_variant(app, name, spec.name).await;
        assert_eq!(served_as, spec.content_type, "{name} {}", spec.name);
        assert_eq!(variant["size"], bytes.len(), "{name} {}", spec.name);
        assert_eq!(identify(&bytes), (spec.format.to_owned(), width, height), "{name} {}: decoded", spec.name);
        if spec.cover {
            assert_eq!((width, height), (spec.width, spec.height), "{name} {}: cover fills its box", spec.name);
        } else {
            let (source_width, source_height) = upright;
            assert!(width <= spec.width && height <= spec.height, "{name} {}: {width} × {height}", spec.name);
            // Never enlarged; one side touches the box (or is the image's own).
            let touches = width == spec.width.min(source_width) || height == spec.height.min(source_height);
            assert!(touches, "{name} {}: {width} × {height} does not fill its box", spec.name);
            // The aspect kept, to the rounding of one pixel.
            let skew =
                (i64::from(width) * i64::from(source_height) - i64::from(height) * i64::from(source_width)).abs();
            assert!(skew <= i64::from(source_width.max(source_height)), "{name} {}: {width} × {height}", spec.name);
        }
        all.push(bytes);
    }
    all
}

/// Whether a pixel is the scene's white mark (lossy encoders and resizing leave it near white).
fn is_white([r, g, b]: [u8; 3]) -> bool {
    r > 200 && g > 200 && b > 200
}

/// Images of every encoder, in every format the pipeline decodes, become variants of the declared size, fit and
/// type; a camera JPEG stored 300 × 200 with orientation 6 is shown 200 × 300 with its mark top right.
async fn variants_have_their_size_fit_and_type_and_are_upright(backend: Backend) {
    let (app, _) = images_on(backend, &[]).await;
    let fixtures = Fixtures::new();
    let mut images: Vec<(String, String, Vec<u8>)> = Vec::new();
    for (extension, content_type) in [
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("webp", "image/webp"),
        ("gif", "image/gif"),
        ("bmp", "image/bmp"),
        ("tiff", "image/tiff"),
    ] {
        images.push((format!("magick.{extension}"), content_type.to_owned(), fixtures.by_imagemagick(extension)));
    }
    for (extension, content_type) in [("png", "image/png"), ("jpg", "image/jpeg"), ("webp", "image/webp")] {
        images.push((format!("vips.{extension}"), content_type.to_owned(), fixtures.by_vips(extension)));
    }
    for (content_type, bytes) in by_chromium().await {
        let (format, ..) = identify(&bytes);
        assert_eq!(format!("image/{}", format.to_lowercase()), content_type, "Chromium encoded {content_type}");
        images.push((format!("chromium.{}", format.to_lowercase()), content_type, bytes));
    }
    for (name, content_type, bytes) in &images {
        let confirmed = confirm_as(&app, name, content_type, bytes).await.ok();
        let image = &confirmed["image"];
        assert_eq!((image["width"].clone(), image["height"].clone()), (json!(SCENE.0), json!(SCENE.1)), "{name}");
        let made = assert_variants(&app, name, image, SCENE).await;
        // The lossless variant shows the mark where the scene has it: top left.
        let fit = &made[2];
        assert!(is_white(pixel_at(fit, 3, 3)), "{name}: the mark is not top left");
        let (_, width, _) = identify(fit);
        assert!(!is_white(pixel_at(fit, width - 4, 3)), "{name}: the top right is the mark's");
    }

    let confirmed = confirm_as(&app, "camera.jpg", "image/jpeg", &fixtures.camera_jpeg()).await.ok();
    let image = &confirmed["image"];
    assert_eq!((image["width"].clone(), image["height"].clone()), (json!(SCENE.1), json!(SCENE.0)), "turned upright");
    let made = assert_variants(&app, "camera.jpg", image, (SCENE.1, SCENE.0)).await;
    let fit = &made[2];
    assert_eq!(identify(fit), ("PNG".to_owned(), 107, 160));
    // Orientation 6 turns the stored image 90° clockwise: its top-left mark is shown top right.
    let mark = MARK * 160 / SCENE.0;
    assert!(is_white(pixel_at(fit, 106 - mark / 2, mark / 2)), "the mark is not top right");
    assert!(!is_white(pixel_at(fit, mark / 2, mark / 2)), "the mark stayed top left: not turned");
    assert!(!is_white(pixel_at(fit, 106 - mark / 2, 159 - mark / 2)), "turned the wrong way");
    report(&format!(
        "images ({}): {} images of 4 encoders, 3 variants each, checked",
        backend.label(),
        images.len() + 1
    ));
}

on_both_backends!(variants_have_their_size_fit_and_type_and_are_upright);

/// The base64 SHA-256 of bytes, as the API gives it.
fn sha256(bytes: &[u8]) -> String {
    Checksum::from_digest(&sha2::Sha256::digest(bytes).into()).to_string()
}

/// Asserts that a confirm rewrote the original: its answer gives the promoted bytes' size and SHA-256, as
/// stat-object does, and the pixels are the upload's. Returns the promoted bytes.
async fn assert_rewritten(app: &TestApp, name: &str, confirmed: &Value, uploaded: &[u8]) -> Vec<u8> {
    let (_, promoted) = app.download(name, Some("main")).await;
    assert_ne!(promoted, uploaded, "{name}: nothing stripped");
    assert_eq!(confirmed["size"], promoted.len(), "{name}");
    assert_eq!(confirmed["sha256"], sha256(&promoted), "{name}");
    let stat = app.post("/api/v1/stat-object", &json!({"object_name": name})).await.ok();
    assert_eq!(
        (stat["size"].clone(), stat["sha256"].clone()),
        (confirmed["size"].clone(), confirmed["sha256"].clone())
    );
    assert!(pixels(&promoted) == pixels(uploaded), "{name}: the pixels changed");
    promoted
}

fn gps_tags(bytes: &[u8]) -> Vec<String> {
    tags(bytes).keys().filter(|key| key.contains("GPS")).cloned().collect()
}

/// IMAGE_METADATA: by default no GPS tag is left and the rest is; with strip-all only the orientation is; with
/// keep the bytes are the upload's. The confirm answer gives a size and SHA-256 exactly when the bytes changed.
async fn originals_lose_their_location_and_keep_their_pixels(backend: Backend) {
    let fixtures = Fixtures::new();
    let camera = fixtures.camera_jpeg();
    assert!(!gps_tags(&camera).is_empty(), "the fixture has a location");

    let (app, _) = images_on(backend, &[]).await;
    let confirmed = confirm_as(&app, "camera.jpg", "image/jpeg", &camera).await.ok();
    let promoted = assert_rewritten(&app, "camera.jpg", &confirmed, &camera).await;
    assert_eq!(gps_tags(&promoted), Vec::<String>::new(), "exiftool finds a location");
    let kept = tags(&promoted);
    assert_eq!(kept["IFD0:Orientation"], 6);
    assert_eq!((kept["XMP-dc:Creator"].clone(), kept["IPTC:Keywords"].clone()), (json!("Ada"), json!("home")));
    for (content_type, located) in fixtures.located_png_and_webp() {
        let name = format!("located.{}", content_type.trim_start_matches("image/"));
        assert!(!gps_tags(&located).is_empty(), "{name}: the fixture has a location");
        let confirmed = confirm_as(&app, &name, content_type, &located).await.ok();
        let promoted = assert_rewritten(&app, &name, &confirmed, &located).await;
        assert_eq!(gps_tags(&promoted), Vec::<String>::new(), "{name}: exiftool finds a location");
    }
    // Nothing to strip: the upload's bytes, and no size or SHA-256 in the answer.
    let clean = fixtures.by_imagemagick("png");
    let confirmed = confirm_as(&app, "clean.png", "image/png", &clean).await.ok();
    assert_eq!((confirmed.get("size"), confirmed.get("sha256")), (None, None), "{confirmed}");
    assert_eq!(app.download("clean.png", Some("main")).await.1, clean);

    let (all, _) = images_on(backend, &["--image-metadata", "strip-all"]).await;
    let confirmed = confirm_as(&all, "camera.jpg", "image/jpeg", &camera).await.ok();
    let promoted = assert_rewritten(&all, "camera.jpg", &confirmed, &camera).await;
    assert_eq!(metadata_tags(&promoted), ["IFD0:Orientation"], "only the orientation is left");
    assert_eq!(tags(&promoted)["IFD0:Orientation"], 6);

    let (keep, _) = images_on(backend, &["--image-metadata", "keep"]).await;
    let confirmed = confirm_as(&keep, "camera.jpg", "image/jpeg", &camera).await.ok();
    assert_eq!((confirmed.get("size"), confirmed.get("sha256")), (None, None), "{confirmed}");
    assert_eq!(keep.download("camera.jpg", Some("main")).await.1, camera, "kept as uploaded");
    assert_eq!(confirmed["image"]["variants"].as_array().map(Vec::len), Some(3));
}

on_both_backends!(originals_lose_their_location_and_keep_their_pixels);

/// The image's dimensions and placeholder are the same in the confirm answer, stat-object and list-objects.
async fn placeholders_and_dimensions_agree_everywhere(backend: Backend) {
    use base64::Engine;
    let (app, _) = images_on(backend, &[]).await;
    let fixtures = Fixtures::new();
    let mut confirmed = Vec::new();
    for (name, content_type, bytes) in [
        ("pictures/camera.jpg", "image/jpeg", fixtures.camera_jpeg()),
        ("pictures/scene.webp", "image/webp", fixtures.by_vips("webp")),
    ] {
        let image = confirm_as(&app, name, content_type, &bytes).await.ok()["image"].clone();
        let placeholder = image["placeholder"].as_str().expect("a placeholder");
        let hash = base64::engine::general_purpose::STANDARD.decode(placeholder).expect("base64");
        // A ThumbHash is 5 bytes of header and at least a few of detail.
        assert!((5..=40).contains(&hash.len()), "{name}: {placeholder}");
        let stat = app.post("/api/v1/stat-object", &json!({"object_name": name})).await.ok();
        assert_eq!(stat["image"], image, "{name}: stat");
        confirmed.push(image);
    }
    assert_ne!(confirmed[0]["placeholder"], confirmed[1]["placeholder"], "each image its own placeholder");
    let listed = app.post("/api/v1/list-objects", &json!({"prefix": "pictures/"})).await.ok();
    let images: Vec<Value> =
        listed["objects"].as_array().expect("objects").iter().map(|o| o["image"].clone()).collect();
    assert_eq!(images, confirmed, "list gives what confirm gave");
    let (width, height) = (confirmed[0]["width"].clone(), confirmed[0]["height"].clone());
    assert_eq!((width, height), (json!(200), json!(300)));
}

on_both_backends!(placeholders_and_dimensions_agree_everywhere);

/// download-url's `variant`: served with the variant's type; refused for an unknown variant, a draft, a bad name
/// and an object that is no image.
async fn variants_are_downloaded_by_name(backend: Backend) {
    let (app, _) = images_on(backend, &[]).await;
    let fixtures = Fixtures::new();
    confirm_as(&app, "pic.png", "image/png", &fixtures.by_imagemagick("png")).await.ok();
    for spec in &SPECS {
        let (content_type, bytes) = download_variant(&app, "pic.png", spec.name).await;
        assert_eq!((content_type.as_str(), identify(&bytes).0), (spec.content_type, spec.format.to_owned()));
    }
    let (content_type, _) = app.download("pic.png", Some("main")).await;
    assert_eq!(content_type, "image/png", "the object itself without a variant");

    variant_url(&app, "pic.png", "poster").await.error(404, "VARIANT_NOT_FOUND");
    let draft = json!({"object_name": "pic.png", "variant": "thumb", "stage": "draft"});
    app.post("/api/v1/download-url", &draft).await.error(404, "VARIANT_NOT_FOUND");
    for bad in ["Thumb", "thumb!", "", "../thumb", &"a".repeat(33)] {
        variant_url(&app, "pic.png", bad).await.error(400, "INVALID_REQUEST");
    }
    confirm_as(&app, "notes.txt", "text/plain", b"no pixels here").await.ok();
    variant_url(&app, "notes.txt", "thumb").await.error(404, "VARIANT_NOT_FOUND");
    variant_url(&app, "nowhere.png", "thumb").await.error(404, "OBJECT_NOT_FOUND");
    // A draft not yet confirmed has no variants, whatever it holds.
    app.upload("later.png", Some("image/png"), &fixtures.by_imagemagick("png")).await;
    variant_url(&app, "later.png", "thumb").await.error(404, "OBJECT_NOT_FOUND");
}

on_both_backends!(variants_are_downloaded_by_name);

/// A set with one image that does not decode promotes nothing and keeps every draft; without it, every member is
/// promoted with its variants.
async fn a_set_with_an_undecodable_image_promotes_nothing(backend: Backend) {
    let (app, settings) = images_on(backend, &[]).await;
    let fixtures = Fixtures::new();
    app.upload("album/one.png", Some("image/png"), &fixtures.by_imagemagick("png")).await;
    app.upload("album/two.jpg", Some("image/jpeg"), &fixtures.camera_jpeg()).await;
    app.upload("album/bad.png", Some("image/png"), &undecodable_png()).await;
    let member = |name: &str| json!({"object_name": format!("album/{name}"), "final_name": format!("final/{name}")});
    let drafts = json!([member("one.png"), member("two.jpg"), member("bad.png")]);
    let refused = app.post("/api/v1/confirm-set", &json!({"idempotency_key": "album-1", "drafts": drafts})).await;
    refused.error(422, "IMAGE_UNREADABLE");
    let message = refused.body["error_message"].as_str().expect("a message");
    assert!(message.contains("album/bad.png"), "{message}");
    let drafts_left = app.post("/api/v1/list-drafts", &json!({"prefix": "album/"})).await.ok();
    assert_eq!(drafts_left["drafts"].as_array().map(Vec::len), Some(3), "every draft kept");
    let objects = app.post("/api/v1/list-objects", &json!({})).await.ok();
    assert_eq!(objects["objects"], json!([]), "nothing promoted");
    for name in ["final/one.png", "final/two.jpg"] {
        variant_url(&app, name, "thumb").await.error(404, "OBJECT_NOT_FOUND");
    }
    assert_eq!(image_files(&app, &settings).await, Vec::<String>::new(), "no variant written");

    let drafts = json!([member("one.png"), member("two.jpg")]);
    let set = app.post("/api/v1/confirm-set", &json!({"idempotency_key": "album-2", "drafts": drafts})).await.ok();
    for (answer, (name, upright)) in set["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .zip([("final/one.png", SCENE), ("final/two.jpg", (SCENE.1, SCENE.0))])
    {
        assert_eq!(answer["object_name"], name);
        assert_variants(&app, name, &answer["image"], upright).await;
        let stat = app.post("/api/v1/stat-object", &json!({"object_name": name})).await.ok();
        assert_eq!(stat["image"], answer["image"], "{name}");
    }
    assert_eq!(image_folders(&app, &settings).await, 2);
}

on_both_backends!(a_set_with_an_undecodable_image_promotes_nothing);

/// An overwrite replaces the variants; delete-object removes them (a URL signed before no longer serves); another
/// tenant cannot reach them; no listing shows them.
async fn variants_follow_their_object_and_tenant(backend: Backend) {
    let keys = api_keys(&TENANTS);
    let (app, settings) = images_on(backend, &["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let (alice, mallory) = (app.as_caller("key-of-alice"), app.as_caller("key-of-mallory"));
    let fixtures = Fixtures::new();
    confirm_as(&alice, "me.png", "image/png", &fixtures.by_imagemagick("png")).await.ok();
    let (_, first) = download_variant(&alice, "me.png", "fit").await;
    assert_eq!(identify(&first).1, 160);

    let replaced = confirm_as(&alice, "me.png", "image/jpeg", &fixtures.camera_jpeg()).await.ok();
    let (_, second) = download_variant(&alice, "me.png", "fit").await;
    assert_eq!(identify(&second), ("PNG".to_owned(), 107, 160), "the new image's variant");
    let stat = alice.post("/api/v1/stat-object", &json!({"object_name": "me.png"})).await.ok();
    assert_eq!(stat["image"], replaced["image"]);

    // Another tenant: not even the object is there; the same name is its own.
    mallory.download_url("me.png", None).await.error(404, "OBJECT_NOT_FOUND");
    variant_url(&mallory, "me.png", "thumb").await.error(404, "OBJECT_NOT_FOUND");
    confirm_as(&mallory, "me.png", "image/png", &fixtures.by_vips("png")).await.ok();
    assert_eq!(identify(&download_variant(&mallory, "me.png", "fit").await.1).1, 160, "mallory's own image");
    assert_eq!(identify(&download_variant(&alice, "me.png", "fit").await.1).1, 107, "alice's still");

    // Listings show the caller's objects only, never a variant.
    alice.upload("draft.png", Some("image/png"), &fixtures.by_imagemagick("png")).await;
    for (route, field, expected) in
        [("/api/v1/list-objects", "objects", vec!["me.png"]), ("/api/v1/list-drafts", "drafts", vec!["draft.png"])]
    {
        let listed = alice.post(route, &json!({})).await.ok();
        let names: Vec<&str> = listed[field]
            .as_array()
            .expect("a list")
            .iter()
            .map(|o| o["object_name"].as_str().expect("a name"))
            .collect();
        assert_eq!(names, expected, "{route}");
    }
    assert_eq!(image_folders(&app, &settings).await, 3, "alice's two (the replaced one until swept), mallory's");

    let signed = variant_url(&alice, "me.png", "thumb").await.ok();
    let url = signed["download_url"].as_str().expect("a URL");
    assert_eq!(fetch(&alice, url).await.0, 200);
    alice.post("/api/v1/delete-object", &json!({"object_name": "me.png"})).await.ok();
    let (status, ..) = fetch(&alice, url).await;
    assert!(status == 404 || status == 403, "a deleted object's variant is still served: {status}");
    variant_url(&alice, "me.png", "thumb").await.error(404, "OBJECT_NOT_FOUND");
    assert_eq!(image_folders(&app, &settings).await, 2, "the deleted object's folder went with it");
    assert_eq!(identify(&download_variant(&mallory, "me.png", "fit").await.1).1, 160, "mallory's untouched");
}

on_both_backends!(variants_follow_their_object_and_tenant);

/// Twelve confirms of one image whose original is stripped, at once, five times: every one succeeds, one object is
/// promoted, and its every variant is served (once, a losing confirm removed the folder the winner's object leads
/// to).
async fn racing_confirms_of_one_image_leave_its_variants_served(backend: Backend) {
    let fixtures = Fixtures::new();
    let camera = fixtures.camera_jpeg();
    let (app, _) = images_on(backend, &[]).await;
    for round in 0..5 {
        let name = format!("race/{round}.jpg");
        app.upload(&name, Some("image/jpeg"), &camera).await;
        let answers = futures_util::future::join_all((0..12).map(|_| app.confirm(&name))).await;
        let images: Vec<_> = answers.into_iter().map(Answer::ok).filter_map(|a| a.get("image").cloned()).collect();
        assert!(!images.is_empty() && images.iter().all(|i| *i == images[0]), "{images:?}");
        let stat = app.post("/api/v1/stat-object", &json!({"object_name": name})).await.ok();
        assert_eq!(stat["image"], images[0], "{name}");
        for spec in &SPECS {
            let (content_type, bytes) = download_variant(&app, &name, spec.name).await;
            assert_eq!(content_type, spec.content_type, "{name} {}", spec.name);
            assert!(!bytes.is_empty());
        }
    }
}

on_both_backends!(racing_confirms_of_one_image_leave_its_variants_served);

/// The cleaner removes the folder of a replaced image once older than its grace of an hour, and only that one.
async fn the_cleaner_sweeps_variants_whose_object_is_gone(backend: Backend) {
    let (app, settings) = images_on(backend, &[]).await;
    let fixtures = Fixtures::new();
    confirm_as(&app, "pic.png", "image/png", &fixtures.by_imagemagick("png")).await.ok();
    let old = variant_url(&app, "pic.png", "thumb").await.ok()["download_url"].as_str().expect("a URL").to_owned();
    confirm_as(&app, "pic.png", "image/jpeg", &fixtures.camera_jpeg()).await.ok();
    confirm_as(&app, "other.png", "image/png", &fixtures.by_vips("png")).await.ok();
    assert_eq!(image_folders(&app, &settings).await, 3);
    // A URL signed before the overwrite still reads the old folder until it is swept.
    assert_eq!(fetch(&app, &old).await.0, 200);

    let cleaner = settings.common.cleaner(app.store.clone());
    let fresh = cleaner.clean_once(OffsetDateTime::now_utc()).await;
    assert_eq!((fresh.images_removed, fresh.incomplete.clone()), (0, None), "within the grace: {fresh:?}");
    assert_eq!(image_folders(&app, &settings).await, 3);

    let later = OffsetDateTime::now_utc() + Duration::from_secs(3600 + 60);
    let swept = settings.common.cleaner(app.store.clone()).clean_once(later).await;
    assert_eq!((swept.images_removed, swept.incomplete.clone()), (1, None), "{swept:?}");
    assert!(swept.summary().contains("the variants of 1 images whose object is gone removed"), "{}", swept.summary());
    assert_eq!(image_folders(&app, &settings).await, 2);
    let (status, ..) = fetch(&app, &old).await;
    assert!(status == 404 || status == 403, "a swept variant is still served: {status}");
    assert_eq!(identify(&download_variant(&app, "pic.png", "fit").await.1).1, 107, "the current image's kept");
    assert_eq!(identify(&download_variant(&app, "other.png", "fit").await.1).1, 160);
    let again = settings.common.cleaner(app.store.clone()).clean_once(later).await;
    assert_eq!(again.images_removed, 0);
}

on_both_backends!(the_cleaner_sweeps_variants_whose_object_is_gone);

/// IMAGE_TIMEOUT of the bomb tests.
const BOMB_TIMEOUT: u64 = 2;
/// What the server may hold resident at its peak through the bombs. It reads an image whole for the pipeline (the
/// 50 MB zTXt bomb: its bytes, once read from the store, and the PNG decoder's copy of the chunk), and a decode may
/// allocate up to 400 MB for the largest image MAX_IMAGE_PIXELS admits (100 MP at 4 bytes a pixel) — which no bomb
/// here reaches: a bomb that inflated would take gigabytes, far past this bound.
const PEAK_RSS_BOUND_MIB: u64 = 600;

/// Confirms a hostile draft on the child server; its answer and how long the confirm took, reported with the
/// server's peak memory so far.
async fn confirm_bomb(
    server: &crate::helpers::images::ChildApp,
    label: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (Answer, Duration) {
    let size = bytes.len();
    server.upload(name, content_type, bytes).await;
    let started = Instant::now();
    let answer = server.confirm(name).await;
    let took = started.elapsed();
    let outcome = match answer.status {
        200 => "confirmed".to_owned(),
        status => format!("{status} {}", answer.body["error_type"].as_str().unwrap_or_default()),
    };
    report(&format!(
        "image bombs ({label}): {name} ({size} bytes): {outcome} in {:.2} s; server peak RSS so far {} MiB",
        took.as_secs_f64(),
        server.peak_rss_mib()
    ));
    // IMAGE_TIMEOUT bounds the decode and the variants; reading the draft and writing what was made come on top.
    assert!(took < Duration::from_secs(BOMB_TIMEOUT + 3), "{name} took {took:?}");
    (answer, took)
}

/// Asserts a bomb was refused with this error and left nothing: the draft deleted, no object, no variant.
async fn assert_nothing_left(server: &crate::helpers::images::ChildApp, name: &str, answer: &Answer, error_type: &str) {
    answer.error(422, error_type);
    for stage in ["draft", "main"] {
        let request = json!({"object_name": name, "stage": stage});
        server.post("/api/v1/download-url", &request).await.error(404, "OBJECT_NOT_FOUND");
    }
    let variant = json!({"object_name": name, "variant": "thumb"});
    server.post("/api/v1/download-url", &variant).await.error(404, "OBJECT_NOT_FOUND");
}

/// Decompression bombs, on the server as its own process with IMAGE_TIMEOUT=2: each refused or cut off in time,
/// the server's peak resident memory measured and bounded.
async fn decompression_bombs_are_refused_in_time_with_memory_bounded(backend: Backend) {
    use crate::helpers::images::ChildApp;
    let timeout = BOMB_TIMEOUT.to_string();
    let args = ["--image-variants", VARIANTS, "--image-timeout", &timeout, "--image-workers", "2"];
    let server = ChildApp::start(backend, &args).await;
    let label = backend.label();
    let fixtures = Fixtures::new();
    // A real image first, so that the baseline holds a pipeline that ran.
    server.upload("plain.jpg", "image/jpeg", fixtures.camera_jpeg()).await;
    server.confirm("plain.jpg").await.ok();
    let baseline = server.server.pid();
    let baseline = crate::helpers::images::peak_rss_kib(baseline) / 1024;
    report(&format!("image bombs ({label}): server peak RSS after one plain image: {baseline} MiB"));

    // Headers declaring more pixels than MAX_IMAGE_PIXELS: refused by the checks, before a byte is decoded. A JPEG
    // cannot declare 100,000: its frame header has 16 bits a side; this one is a real JPEG claiming 65,535².
    let jpeg = fixtures.by_imagemagick("jpg");
    let (answer, _) = confirm_bomb(&server, label, "wide.png", "image/png", png_declaring(100_000, 100_000)).await;
    assert_nothing_left(&server, "wide.png", &answer, "IMAGE_TOO_LARGE").await;
    let (answer, _) =
        confirm_bomb(&server, label, "wide.jpg", "image/jpeg", jpeg_declaring(&jpeg, 65_535, 65_535)).await;
    assert_nothing_left(&server, "wide.jpg", &answer, "IMAGE_TOO_LARGE").await;

    // 10,000 frames: only the first is decoded, so it is an image like another.
    let (answer, _) = confirm_bomb(&server, label, "frames.gif", "image/gif", gif_of_frames(10_000)).await;
    let image = answer.ok()["image"].clone();
    assert_eq!((image["width"].clone(), image["height"].clone()), (json!(GIF_SCREEN), json!(GIF_SCREEN)));

    // A JPEG cut short is refused rather than promoted half grey.
    let whole = fixtures.noisy_jpeg(1600, 1200);
    let cut = whole[..whole.len() * 6 / 10].to_vec();
    let (answer, _) = confirm_bomb(&server, label, "cut.jpg", "image/jpeg", cut).await;
    assert_nothing_left(&server, "cut.jpg", &answer, "IMAGE_UNREADABLE").await;

    // 50 MB of compressed text that would inflate to about 50 GB: never inflated, the image decoded past it.
    let (zlib, inflated) = zlib_of_zeros(50 << 20);
    let png = fixtures.by_imagemagick("png");
    let (answer, _) = confirm_bomb(&server, label, "ztxt.png", "image/png", png_with_ztxt(&png, &zlib)).await;
    report(&format!("image bombs ({label}): the zTXt chunk inflates to {inflated} bytes"));
    let image = answer.ok()["image"].clone();
    assert_eq!((image["width"].clone(), image["height"].clone()), (json!(SCENE.0), json!(SCENE.1)));

    let peak = server.peak_rss_mib();
    report(&format!(
        "image bombs ({label}): server peak RSS through the bombs: {peak} MiB (bound {PEAK_RSS_BOUND_MIB})"
    ));
    assert!(peak < PEAK_RSS_BOUND_MIB, "the server held {peak} MiB");

    // With MAX_IMAGE_PIXELS raised past them, the header bombs reach the pipeline, whose decoders refuse them.
    let lax = ChildApp::start(backend, &[&args[..], &["--max-image-pixels", "1000000000000"]].concat()).await;
    let (answer, _) = confirm_bomb(&lax, label, "wide.png", "image/png", png_declaring(100_000, 100_000)).await;
    assert_nothing_left(&lax, "wide.png", &answer, "IMAGE_TOO_LARGE").await;
    let (answer, _) = confirm_bomb(&lax, label, "wide.jpg", "image/jpeg", jpeg_declaring(&jpeg, 65_535, 65_535)).await;
    assert_nothing_left(&lax, "wide.jpg", &answer, "IMAGE_TOO_LARGE").await;
    report(&format!("image bombs ({label}): lax server peak RSS: {} MiB", lax.peak_rss_mib()));
}

on_both_backends!(decompression_bombs_are_refused_in_time_with_memory_bounded);
