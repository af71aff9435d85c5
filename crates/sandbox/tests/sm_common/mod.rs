//! Helpers shared by the Secrets Manager, STS, faults, control and scenario tests: start a
//! sandbox on a free port and talk to it over real HTTP, as an AWS client would.

#![allow(dead_code)]

use sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::Value;

/// A sandbox serving `toml` on a free port.
pub async fn start(toml: &str) -> Sandbox {
    Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::from_toml(toml).expect("test scenario parses"),
        speed: None,
        seed: None,
    })
    .await
    .expect("sandbox starts")
}

/// A SigV4-looking Authorization header for an access key (the sandbox reads the key id,
/// it does not verify signatures).
pub fn auth(key: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={key}/20260101/eu-west-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000"
    )
}

/// Answer of a JSON 1.1 call: status, body, `x-amzn-errortype`.
pub struct JsonAnswer {
    pub status: u16,
    pub body: Value,
    pub error_type: Option<String>,
}

/// A raw JSON 1.1 call: `target` is `secretsmanager.GetSecretValue` etc.
pub async fn raw_json(sb: &Sandbox, target: &str, key: Option<&str>, body: &str) -> JsonAnswer {
    let mut req = reqwest::Client::new()
        .post(sb.endpoint())
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header("authorization", auth(k, "secretsmanager"));
    }
    let resp = req.send().await.expect("HTTP answer");
    let status = resp.status().as_u16();
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    JsonAnswer {
        status,
        body,
        error_type,
    }
}

/// A Secrets Manager call without credentials.
pub async fn sm(sb: &Sandbox, op: &str, body: Value) -> JsonAnswer {
    raw_json(sb, &format!("secretsmanager.{op}"), None, &body.to_string()).await
}

/// A Secrets Manager call that must succeed; returns the body.
pub async fn sm_ok(sb: &Sandbox, op: &str, body: Value) -> Value {
    let a = sm(sb, op, body).await;
    assert_eq!(a.status, 200, "{op}: {}", a.body);
    a.body
}

/// Asserts an AWS JSON error: status, `__type`, and the `x-amzn-errortype` header.
pub fn assert_error(a: &JsonAnswer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["__type"], code, "{}", a.body);
    assert_eq!(a.error_type.as_deref(), Some(code));
    assert!(a.body["message"].is_string(), "{}", a.body);
}

/// An STS query-protocol call; returns status and XML text.
pub async fn sts(sb: &Sandbox, key: Option<&str>, params: &[(&str, &str)]) -> (u16, String) {
    let mut form: Vec<(&str, &str)> = vec![("Version", "2011-06-15")];
    form.extend_from_slice(params);
    let mut req = reqwest::Client::new()
        .post(sb.endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form).expect("form"));
    if let Some(k) = key {
        req = req.header("authorization", auth(k, "sts"));
    }
    let resp = req.send().await.expect("HTTP answer");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The text of the first `<tag>` element of an XML document.
pub fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

/// A control API call; returns status and JSON body.
pub async fn control(sb: &Sandbox, method: &str, path: &str, body: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", sb.endpoint()))
        .body(body.to_string())
        .send()
        .await
        .expect("HTTP answer");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
