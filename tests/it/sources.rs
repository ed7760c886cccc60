//! The other verifier kinds end to end through the router, each against
//! its published test vector or scheme.

use axum::body::Body;
use http::Request;
use switchyard::ingress::verify::mac;

use crate::support::{env_with, harness_with};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_BODY: &[u8] = br#"{"type":"invoice.paid","test": 2432232314}"#;

fn sw_key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(WHSEC.trim_start_matches("whsec_"))
        .unwrap()
}

fn sw_request(id: &str, ts: i64, body: &[u8]) -> Request<Body> {
    let ts_s = ts.to_string();
    let sig = mac(
        &sw_key(),
        &[id.as_bytes(), b".", ts_s.as_bytes(), b".", body],
    );
    use base64::Engine as _;
    Request::post("/hooks/billing")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts_s)
        .header(
            "webhook-signature",
            format!(
                "v1,bm90LXRoaXM= v1,{}",
                base64::engine::general_purpose::STANDARD.encode(sig)
            ),
        )
        .body(Body::from(body.to_vec()))
        .unwrap()
}

fn now() -> i64 {
    switchyard::domain::now_millis() / 1000
}

const SW_SOURCE: &str = "  billing:\n    path: /hooks/billing\n    verify: standard-webhooks\n    keys: [ { label: current, secret: \"${WHSEC}\" } ]\n";

#[tokio::test]
async fn standard_webhooks_accepts_a_signed_message_and_dedups_by_id() {
    let h = harness_with(env_with("", SW_SOURCE));
    let a = h.call(sw_request("msg_1", now(), SW_BODY)).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(a.json["accepted"], 1);
    // Same id, even with a new timestamp and signature: a redelivery.
    let a = h.call(sw_request("msg_1", now() + 1, SW_BODY)).await;
    assert_eq!(a.json["duplicates"], 1, "{:?}", a.json);
    assert_eq!(
        h.query_strings("SELECT type FROM events").await,
        vec!["invoice.paid"]
    );
}

#[tokio::test]
async fn standard_webhooks_refuses_a_timestamp_outside_five_minutes() {
    let h = harness_with(env_with("", SW_SOURCE));
    for ts in [now() - 301, now() + 301] {
        let a = h.call(sw_request("msg_old", ts, SW_BODY)).await;
        assert_eq!((a.status, a.error()), (401, "stale_timestamp"));
    }
    assert_eq!(h.events().await, 0);
}

#[tokio::test]
async fn standard_webhooks_refuses_a_tampered_body_and_missing_headers() {
    let h = harness_with(env_with("", SW_SOURCE));
    let mut req = sw_request("msg_2", now(), SW_BODY);
    *req.body_mut() = Body::from(r#"{"type":"invoice.paid","test": 1}"#);
    let a = h.call(req).await;
    assert_eq!((a.status, a.error()), (401, "bad_signature"));
    let mut req = sw_request("msg_3", now(), SW_BODY);
    req.headers_mut().remove("webhook-id");
    let a = h.call(req).await;
    assert_eq!((a.status, a.error()), (401, "missing_header"));
    assert_eq!(h.events().await, 0);
}

const GH_SOURCE: &str = "  github:\n    path: /hooks/github\n    verify: github\n    keys: [ { label: current, secret: \"It's a Secret to Everybody\" } ]\n";

#[tokio::test]
async fn github_uses_the_event_header_as_type_and_delivery_as_dedup_key() {
    let h = harness_with(env_with("", GH_SOURCE));
    let body = br#"{"action":"opened","issue":{"number":7}}"#;
    let sig = format!(
        "sha256={}",
        hex::encode(mac(b"It's a Secret to Everybody", &[body]))
    );
    let req = |delivery: &str| {
        Request::post("/hooks/github")
            .header("x-hub-signature-256", sig.clone())
            .header("x-github-event", "issues")
            .header("x-github-delivery", delivery)
            .body(Body::from(body.to_vec()))
            .unwrap()
    };
    assert_eq!(h.call(req("d-1")).await.json["accepted"], 1);
    assert_eq!(h.call(req("d-1")).await.json["duplicates"], 1);
    assert_eq!(h.call(req("d-2")).await.json["accepted"], 1);
    assert_eq!(
        h.query_strings("SELECT type FROM events").await,
        vec!["issues", "issues"]
    );
    let bad = Request::post("/hooks/github")
        .header(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode([0u8; 32])),
        )
        .body(Body::from(body.to_vec()))
        .unwrap();
    assert_eq!(h.call(bad).await.error(), "bad_signature");
}

#[tokio::test]
async fn generic_hmac_uses_the_configured_header_prefix_and_encoding() {
    let src = "  monitoring:\n    path: /hooks/mon\n    verify: hmac\n    header: X-Mon-Sig\n    prefix: \"v1=\"\n    signature_encoding: base64\n    key_encoding: hex\n    keys: [ { label: k1, secret: \"00ff10\" } ]\n";
    let h = harness_with(env_with("", src));
    let body = br#"[{"type":"alert.fired"}]"#;
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD.encode(mac(&[0x00, 0xff, 0x10], &[body]));
    let req = |v: String| {
        Request::post("/hooks/mon")
            .header("x-mon-sig", v)
            .body(Body::from(body.to_vec()))
            .unwrap()
    };
    let a = h.call(req(format!("v1={sig}"))).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    let a = h.call(req(sig.clone())).await;
    assert_eq!(
        (a.status, a.error()),
        (401, "bad_signature"),
        "prefix is required"
    );
    let a = h
        .call(
            Request::post("/hooks/mon")
                .body(Body::from(body.to_vec()))
                .unwrap(),
        )
        .await;
    assert_eq!((a.status, a.error()), (401, "missing_signature"));
}

#[tokio::test]
async fn verify_none_accepts_unsigned_requests_on_loopback() {
    let h = harness_with(env_with(
        "",
        "  dev:\n    path: /hooks/dev\n    verify: none\n",
    ));
    let a = h
        .call(
            Request::post("/hooks/dev")
                .body(Body::from(r#"[{"type":"t"}]"#))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        h.query_strings("SELECT coalesce(key_label,'-') FROM events")
            .await,
        vec!["-"]
    );
}
