//! The ScreenMeet ingress through the router (no sockets): every bad input
//! gets its exact status and error code, and the journal proves what was kept.

use axum::body::Body;
use base64::Engine as _;
use http::Request;

use crate::support::{self, KEY, OLD_KEY, PATH, batch, harness, sign_hex, signed};

const ONE: &[u8] = br#"[{"type":"session.closed","id":"Ab3dE9","ts":"2026-11-30T14:00:00.000Z"}]"#;

fn post() -> http::request::Builder {
    Request::post(PATH).header("content-type", "text/plain")
}

#[tokio::test]
async fn signed_batch_is_journaled_with_its_exact_bytes() {
    let h = harness();
    let body = br#"[ {"type":"a", "z":1,"id":"x1"} ,{"id":"x2","type":"b"}]"#;
    let a = h.post_signed(body).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(
        a.json,
        serde_json::json!({"accepted":2,"duplicates":0,"rejected":0})
    );
    let stored = h.query_strings("SELECT body FROM events ORDER BY id").await;
    assert_eq!(
        stored,
        vec![
            r#"{"type":"a", "z":1,"id":"x1"}"#,
            r#"{"id":"x2","type":"b"}"#
        ]
    );
    assert_eq!(
        h.query_strings("SELECT type FROM events ORDER BY id").await,
        vec!["a", "b"]
    );
    assert_eq!(
        h.query_strings("SELECT key_label FROM events").await,
        vec!["current", "current"]
    );
}

#[tokio::test]
async fn missing_signature_is_401_and_stores_nothing() {
    let h = harness();
    let a = h.call(post().body(Body::from(ONE)).unwrap()).await;
    assert_eq!((a.status, a.error()), (401, "missing_signature"));
    assert_eq!((h.events().await, h.quarantined().await), (0, 0));
}

#[tokio::test]
async fn two_signature_headers_are_401_even_if_one_is_right() {
    let h = harness();
    let good = sign_hex(KEY, ONE);
    let req = post()
        .header("x-signature", good.clone())
        .header("x-signature", "00")
        .body(Body::from(ONE))
        .unwrap();
    let a = h.call(req).await;
    assert_eq!((a.status, a.error()), (401, "duplicate_signature"));
    let req = post()
        .header("x-signature", good.clone())
        .header("x-signature", good)
        .body(Body::from(ONE))
        .unwrap();
    assert_eq!(h.call(req).await.status, 401);
    assert_eq!(h.events().await, 0);
}

#[tokio::test]
async fn sha1_algorithm_is_401_unsupported_algorithm() {
    let h = harness();
    let req = post()
        .header("x-signature-algo", "sha1")
        .header("x-signature", sign_hex(KEY, ONE))
        .body(Body::from(ONE))
        .unwrap();
    let a = h.call(req).await;
    assert_eq!((a.status, a.error()), (401, "unsupported_algorithm"));
    assert_eq!(h.events().await, 0);
}

#[tokio::test]
async fn wrong_signatures_are_401_bad_signature_and_store_nothing() {
    let h = harness();
    let good = sign_hex(KEY, ONE);
    let cases = [
        ("another body", sign_hex(KEY, b"[]")),
        ("another key", sign_hex("not-the-key", ONE)),
        ("truncated", good[..40].to_owned()),
        ("not hex or base64", "zz-not-a-signature-!!".to_owned()),
        ("empty", String::new()),
        ("sha256= with nothing", "sha256=".to_owned()),
    ];
    for (what, sig) in cases {
        let req = post()
            .header("x-signature", sig)
            .body(Body::from(ONE))
            .unwrap();
        let a = h.call(req).await;
        assert_eq!((a.status, a.error()), (401, "bad_signature"), "{what}");
    }
    assert_eq!((h.events().await, h.quarantined().await), (0, 0));
}

#[tokio::test]
async fn every_signature_encoding_is_accepted_and_recorded() {
    let h = harness();
    let raw = switchyard::ingress::verify::mac(KEY.as_bytes(), &[ONE]);
    let forms = [
        (hex::encode(raw), "hex"),
        (hex::encode_upper(raw), "HEX"),
        (format!("sha256={}", hex::encode(raw)), "hex"),
        (
            base64::engine::general_purpose::STANDARD.encode(raw),
            "base64",
        ),
        (
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
            "base64",
        ),
    ];
    for (sig, _) in &forms {
        let req = post()
            .header("x-signature", sig)
            .body(Body::from(ONE))
            .unwrap();
        let a = h.call(req).await;
        assert_eq!(a.status, 200, "{sig}: {:?}", a.json);
    }
    // One event stored; the rest were duplicates of it.
    assert_eq!(h.events().await, 1);
    let m = h.metrics.render();
    assert!(m.contains(r#"form="HEX""#), "{m}");
    assert!(m.contains(r#"form="base64""#), "{m}");
}

#[tokio::test]
async fn previous_key_is_accepted_and_reported_by_label() {
    let h = harness();
    let req = post()
        .header("x-signature", sign_hex(OLD_KEY, ONE))
        .body(Body::from(ONE))
        .unwrap();
    let a = h.call(req).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(
        h.query_strings("SELECT key_label FROM events").await,
        vec!["previous"]
    );
    let m = h.metrics.render();
    assert!(
        m.contains(r#"switchyard_ingress_key_matches_total{source="screenmeet",key="previous",form="hex"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn application_json_content_type_is_verified_on_raw_bytes() {
    let h = harness();
    let body = b"[ {\"type\" : \"x\",\n \"n\": 1.50} ]";
    let req = Request::post(PATH)
        .header("content-type", "application/json")
        .header("x-signature", sign_hex(KEY, body))
        .body(Body::from(body.to_vec()))
        .unwrap();
    let a = h.call(req).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(
        h.query_strings("SELECT body FROM events").await,
        vec!["{\"type\" : \"x\",\n \"n\": 1.50}"]
    );
}

async fn assert_quarantined(body: &[u8], code: &str) {
    let h = harness();
    let a = h.post_signed(body).await;
    assert_eq!((a.status, a.error()), (400, code), "{:?}", a.json);
    assert_eq!(h.events().await, 0, "{code}: no events");
    assert_eq!(h.quarantined().await, 1, "{code}: body kept for inspection");
    let kept = h.query_strings("SELECT code FROM quarantine").await;
    assert_eq!(kept, vec![code]);
}

#[tokio::test]
async fn empty_body_is_400_empty_body_and_quarantined() {
    assert_quarantined(b"", "empty_body").await;
}

#[tokio::test]
async fn invalid_json_is_400_invalid_json_and_quarantined() {
    assert_quarantined(b"[{\"type\":\"a\",}]", "invalid_json").await;
}

#[tokio::test]
async fn invalid_utf8_is_400_invalid_utf8_and_quarantined() {
    assert_quarantined(b"[{\"type\":\"a\xff\xfe\"}]", "invalid_utf8").await;
}

#[tokio::test]
async fn json_object_is_400_not_an_array_and_quarantined() {
    assert_quarantined(br#"{"type":"session.closed"}"#, "not_an_array").await;
}

#[tokio::test]
async fn empty_array_is_400_empty_batch_and_quarantined() {
    assert_quarantined(b"[]", "empty_batch").await;
}

#[tokio::test]
async fn hundred_thousand_nested_brackets_are_400_without_a_crash() {
    assert_quarantined(&vec![b'['; 100_000], "nesting_too_deep").await;
}

#[tokio::test]
async fn quarantine_keeps_one_copy_of_a_resent_body() {
    let h = harness();
    for _ in 0..3 {
        assert_eq!(h.post_signed(b"nope").await.status, 400);
    }
    assert_eq!(h.quarantined().await, 1);
}

#[tokio::test]
async fn body_over_the_cap_is_413_with_content_length() {
    let h = support::harness_with(support::env_with_cap(1000));
    let body = batch(20, "big", 100);
    assert!(body.len() > 1000);
    let a = h.post_signed(&body).await;
    assert_eq!((a.status, a.error()), (413, "body_too_large"));
    assert_eq!((h.events().await, h.quarantined().await), (0, 0));
}

#[tokio::test]
async fn chunked_body_over_the_cap_is_413_without_content_length() {
    let h = support::harness_with(support::env_with_cap(1000));
    let body = batch(20, "big", 100);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
        .chunks(100)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let req = Request::post(PATH)
        .header("x-signature", sign_hex(KEY, &body))
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    assert!(req.headers().get("content-length").is_none());
    let a = h.call(req).await;
    assert_eq!((a.status, a.error()), (413, "body_too_large"));
    assert_eq!((h.events().await, h.quarantined().await), (0, 0));
}

#[tokio::test]
async fn unknown_path_is_404_and_get_is_405() {
    let h = harness();
    let a = h
        .call(Request::post("/hooks/nope").body(Body::from(ONE)).unwrap())
        .await;
    assert_eq!((a.status, a.error()), (404, "not_found"));
    let a = h
        .call(Request::get(PATH).body(Body::empty()).unwrap())
        .await;
    assert_eq!((a.status, a.error()), (405, "method_not_allowed"));
    assert_eq!(a.headers.get("allow").unwrap(), "POST");
    assert_eq!(h.events().await, 0);
}

#[tokio::test]
async fn element_without_type_is_rejected_while_the_rest_are_accepted() {
    let h = harness();
    let body = std::fs::read("examples/events/mixed-with-invalid.json").unwrap();
    let a = h.post_signed(&body).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json,
        serde_json::json!({"accepted":2,"duplicates":0,"rejected":1})
    );
    assert_eq!(
        h.query_strings("SELECT state || ':' || coalesce(reason,'') FROM events ORDER BY id")
            .await,
        vec!["pending:", "rejected:missing `type`", "pending:"]
    );
}

#[tokio::test]
async fn unreadable_elements_are_rejected_with_their_reason() {
    let h = harness();
    let deep = format!(
        r#"{{"type":"deep","v":{}1{}}}"#,
        "[".repeat(70),
        "]".repeat(70)
    );
    let body = format!(
        r#"[{deep},{{"type":"s","v":"\ud800"}},{{"type":"n","v":1e400}},{{"type":7}},"str",{{"type":"ok"}}]"#
    );
    let a = h.post_signed(body.as_bytes()).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(
        a.json,
        serde_json::json!({"accepted":1,"duplicates":0,"rejected":5})
    );
    let reasons = h
        .query_strings("SELECT reason FROM events WHERE state='rejected' ORDER BY id")
        .await;
    assert_eq!(reasons[0], "nested deeper than 64 levels");
    assert_eq!(reasons[1], "lone surrogate \\ud800 in a string");
    assert!(
        reasons[2].starts_with("number 1e400 is out of range"),
        "{}",
        reasons[2]
    );
    assert_eq!(reasons[3], "`type` is not a string");
    assert_eq!(reasons[4], "not a JSON object");
}

#[tokio::test]
async fn the_same_batch_twice_is_stored_once() {
    let h = harness();
    let body = batch(3, "dup", 10);
    assert_eq!(h.post_signed(&body).await.json["accepted"], 3);
    let a = h.post_signed(&body).await;
    assert_eq!(
        a.json,
        serde_json::json!({"accepted":0,"duplicates":3,"rejected":0})
    );
    assert_eq!(h.events().await, 3);
}

#[tokio::test]
async fn the_same_batch_twenty_times_at_once_is_stored_once() {
    let h = harness();
    let body = batch(5, "conc", 10);
    let answers = futures_util::future::join_all((0..20).map(|_| h.call(signed(&body)))).await;
    let accepted: u64 = answers
        .iter()
        .map(|a| a.json["accepted"].as_u64().unwrap())
        .sum();
    let dups: u64 = answers
        .iter()
        .map(|a| a.json["duplicates"].as_u64().unwrap())
        .sum();
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!((accepted, dups), (5, 95));
    assert_eq!(h.events().await, 5);
}

#[tokio::test]
async fn duplicate_inside_one_batch_is_counted() {
    let h = harness();
    let a = h.post_signed(br#"[{"type":"a"},{"type":"a"}]"#).await;
    assert_eq!(
        a.json,
        serde_json::json!({"accepted":1,"duplicates":1,"rejected":0})
    );
}

#[tokio::test]
async fn five_thousand_events_under_the_cap_are_all_accepted() {
    let h = harness();
    let body = batch(5000, "bulk", 60);
    assert!(body.len() < 1024 * 1024);
    let a = h.post_signed(&body).await;
    assert_eq!(
        a.json,
        serde_json::json!({"accepted":5000,"duplicates":0,"rejected":0})
    );
    assert_eq!(h.events().await, 5000);
}

#[tokio::test]
async fn dedup_fields_make_cosmetic_resends_duplicates() {
    let env = support::env_with("", "    dedup_fields: [type, id]\n");
    let h = support::harness_with(env);
    let a = h.post_signed(br#"[{"type":"a","id":"S1","ts":"1"}]"#).await;
    assert_eq!(a.json["accepted"], 1);
    let a = h
        .post_signed(br#"[{"id":"S1", "ts":"2","type":"a"}]"#)
        .await;
    assert_eq!(a.json["duplicates"], 1, "{:?}", a.json);
    let a = h.post_signed(br#"[{"type":"a","id":"S2"}]"#).await;
    assert_eq!(a.json["accepted"], 1);
    assert_eq!(h.events().await, 2);
}

#[tokio::test]
async fn a_balanced_but_absurdly_deep_element_is_rejected_not_parsed() {
    let h = harness();
    let body = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    let a = h.post_signed(body.as_bytes()).await;
    assert_eq!(
        a.json,
        serde_json::json!({"accepted":0,"duplicates":0,"rejected":1})
    );
    assert_eq!(
        h.query_strings("SELECT reason FROM events").await,
        vec!["nested deeper than 64 levels"]
    );
}
