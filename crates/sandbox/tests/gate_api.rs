//! The gate fault over the control API: a matching call is held unanswered and unrun;
//! release lets the oldest, a named one, or all of them go, to run and answer exactly as an
//! unheld call would, or to be dropped unrun; a released call runs even when its client
//! has gone; new rules open the gate.

mod sm_common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sm_common::*;
use tokio::task::JoinHandle;

const SCENARIO: &str = r#"
[[secrets]]
name = "a"
value = "value-a"
[[secrets]]
name = "b"
value = "value-b"
[[secrets]]
name = "c"
value = "value-c"
"#;

async fn set_faults(sb: &sandbox::Sandbox, rules: Value) {
    let (status, body) = control(sb, "PUT", "/_sandbox/faults", &rules.to_string()).await;
    assert_eq!(status, 200, "{body}");
}

async fn held(sb: &sandbox::Sandbox) -> Vec<Value> {
    let (status, body) = control(sb, "GET", "/_sandbox/gate", "").await;
    assert_eq!(status, 200, "{body}");
    body["held"]
        .as_array()
        .expect("a list of held calls")
        .clone()
}

/// Waits until `n` calls are held; panics if that never happens (a hang guard, not a
/// timing assertion: a held call arrives in milliseconds).
async fn wait_held(sb: &sandbox::Sandbox, n: usize) -> Vec<Value> {
    let t0 = Instant::now();
    loop {
        let h = held(sb).await;
        if h.len() >= n {
            return h;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never {n} held: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn release(sb: &sandbox::Sandbox, body: Value) -> Vec<Value> {
    let (status, out) = control(sb, "POST", "/_sandbox/gate/release", &body.to_string()).await;
    assert_eq!(status, 200, "{out}");
    out["released"].as_array().expect("released calls").clone()
}

fn secret_ids(calls: &[Value]) -> Vec<&str> {
    calls
        .iter()
        .map(|c| c["subject"]["SecretId"].as_str().unwrap_or_default())
        .collect()
}

/// GetSecretValue of `id` in a task of its own, held or not.
fn get_later(sb: &sandbox::Sandbox, id: &str) -> JoinHandle<Result<(u16, Value), String>> {
    let url = sb.endpoint();
    let body = json!({ "SecretId": id }).to_string();
    tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "secretsmanager.GetSecretValue")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let v = resp.json().await.map_err(|e| e.to_string())?;
        Ok((status, v))
    })
}

fn versions(sb: &sandbox::Sandbox, name: &str) -> Vec<Value> {
    sb.snapshot()["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .find(|s| s["name"] == name)
        .expect("the secret")["versions"]
        .as_array()
        .expect("versions")
        .clone()
}

#[tokio::test]
async fn a_held_call_waits_unrun_and_answers_normally_when_released() {
    let sb = start(SCENARIO).await;
    assert!(held(&sb).await.is_empty(), "nothing held before any rule");
    set_faults(
        &sb,
        json!([{"service": "secretsmanager", "operation": "PutSecretValue", "kind": "gate"}]),
    )
    .await;
    let token = "11111111-2222-3333-4444-555555555555";
    let url = sb.endpoint();
    let put = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "secretsmanager.PutSecretValue")
            .body(
                json!({"SecretId": "a", "SecretString": "value-a-2", "ClientRequestToken": token})
                    .to_string(),
            )
            .send()
            .await
            .expect("an answer");
        (
            resp.status().as_u16(),
            resp.json::<Value>().await.expect("JSON"),
        )
    });
    let h = wait_held(&sb, 1).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["id"], 1);
    assert_eq!(h[0]["service"], "secretsmanager");
    assert_eq!(h[0]["operation"], "PutSecretValue");
    assert_eq!(h[0]["subject"], json!({"SecretId": "a"}));
    // Held: unanswered, and not run (no new version), though logged as arrived.
    assert!(!put.is_finished(), "a held call is not answered");
    assert_eq!(versions(&sb, "a").len(), 1, "a held write has not run");
    let (_, calls) = control(&sb, "GET", "/_sandbox/calls?operation=PutSecretValue", "").await;
    assert_eq!(calls["calls"].as_array().map(Vec::len), Some(1));
    // Calls the rule does not match go on meanwhile.
    let other = sm(&sb, "GetSecretValue", json!({"SecretId": "a"})).await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.body["SecretString"], "value-a");

    let released = release(&sb, json!({})).await;
    assert_eq!(released, h, "the oldest (only) call was released");
    let (status, answer) = put.await.expect("the client task");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Name"], "a");
    assert_eq!(answer["VersionId"], token);
    assert_eq!(answer["VersionStages"], json!(["AWSCURRENT"]));
    assert!(held(&sb).await.is_empty());
    let now = versions(&sb, "a");
    assert_eq!(now.len(), 2, "the released write ran once");
    let current: Vec<&Value> = now
        .iter()
        .filter(|v| {
            v["stages"]
                .as_array()
                .is_some_and(|s| s.contains(&json!("AWSCURRENT")))
        })
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], token);
    let (_, calls) = control(&sb, "GET", "/_sandbox/calls?operation=PutSecretValue", "").await;
    assert_eq!(
        calls["calls"][0]["error"],
        Value::Null,
        "answered without error"
    );
}

#[tokio::test]
async fn release_one_by_one_by_id_and_all() {
    let sb = start(SCENARIO).await;
    set_faults(
        &sb,
        json!([{"operation": "GetSecretValue", "kind": "gate"}]),
    )
    .await;
    // One at a time, so the order of arrival is known.
    let mut clients = Vec::new();
    for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
        clients.push(get_later(&sb, id));
        wait_held(&sb, i + 1).await;
    }
    let h = held(&sb).await;
    assert_eq!(secret_ids(&h), ["a", "b", "c"]);
    let ids: Vec<u64> = h.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3]);
    let [a, b, c] = <[_; 3]>::try_from(clients).expect("three clients");

    // Release one: the oldest goes, answers as usual; the others stay held.
    let released = release(&sb, json!({"count": 1})).await;
    assert_eq!(secret_ids(&released), ["a"]);
    let (status, body) = a.await.expect("task").expect("answer");
    assert_eq!(
        (status, body["SecretString"].clone()),
        (200, json!("value-a"))
    );
    assert!(!b.is_finished() && !c.is_finished(), "b and c still held");
    assert_eq!(secret_ids(&held(&sb).await), ["b", "c"]);

    // By id: the newest, out of order.
    let released = release(&sb, json!({"id": 3})).await;
    assert_eq!(secret_ids(&released), ["c"]);
    let (status, body) = c.await.expect("task").expect("answer");
    assert_eq!(
        (status, body["SecretString"].clone()),
        (200, json!("value-c"))
    );
    assert!(!b.is_finished(), "b still held");

    // Asking for more than is held releases nothing.
    let (status, out) = control(&sb, "POST", "/_sandbox/gate/release", r#"{"count": 2}"#).await;
    assert_eq!(status, 409, "{out}");
    assert!(out["error"].as_str().unwrap().contains("1 held"), "{out}");
    let (status, out) = control(&sb, "POST", "/_sandbox/gate/release", r#"{"id": 1}"#).await;
    assert_eq!(status, 409, "a released call is no longer held: {out}");
    assert!(!b.is_finished(), "b still held");

    // Two more arrive; all three go at once.
    let d = get_later(&sb, "a");
    let e = get_later(&sb, "c");
    wait_held(&sb, 3).await;
    let released = release(&sb, json!({"all": true})).await;
    assert_eq!(released.len(), 3);
    assert_eq!(secret_ids(&released)[0], "b", "oldest first");
    for (client, value) in [(b, "value-b"), (d, "value-a"), (e, "value-c")] {
        let (status, body) = client.await.expect("task").expect("answer");
        assert_eq!((status, body["SecretString"].clone()), (200, json!(value)));
    }
    assert!(held(&sb).await.is_empty());
    // Nothing held: one is refused, all is nothing.
    let (status, _) = control(&sb, "POST", "/_sandbox/gate/release", "").await;
    assert_eq!(status, 409);
    assert!(release(&sb, json!({"all": true})).await.is_empty());
}

#[tokio::test]
async fn a_gate_for_one_resource_holds_only_its_calls_and_drop_closes_them_unrun() {
    let sb = start(SCENARIO).await;
    // The resource is matched by name and by ARN.
    let arn_b = sm_ok(&sb, "DescribeSecret", json!({"SecretId": "b"})).await["ARN"]
        .as_str()
        .unwrap()
        .to_string();
    set_faults(
        &sb,
        json!([{"operation": "GetSecretValue", "resource": "b", "kind": "gate"}]),
    )
    .await;
    let by_name = get_later(&sb, "b");
    wait_held(&sb, 1).await;
    let by_arn = get_later(&sb, &arn_b);
    wait_held(&sb, 2).await;
    let other = sm(&sb, "GetSecretValue", json!({"SecretId": "a"})).await;
    assert_eq!(other.status, 200, "a is not gated: {}", other.body);
    assert_eq!(held(&sb).await.len(), 2, "a never waited");

    let dropped = release(&sb, json!({"all": true, "drop": true})).await;
    assert_eq!(secret_ids(&dropped), ["b", arn_b.as_str()]);
    for client in [by_name, by_arn] {
        let err = client.await.expect("task").expect_err("no answer");
        assert!(!err.is_empty());
    }
    let (_, calls) = control(&sb, "GET", "/_sandbox/calls?operation=GetSecretValue", "").await;
    let errors: Vec<Value> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["error"].clone())
        .collect();
    // In arrival order: b and its ARN dropped, a answered.
    assert_eq!(
        errors,
        [
            json!("DroppedConnection"),
            json!("DroppedConnection"),
            Value::Null
        ]
    );

    // New rules open the gate: a call held under the old ones runs.
    let held_b = get_later(&sb, "b");
    wait_held(&sb, 1).await;
    set_faults(&sb, json!([])).await;
    let (status, body) = held_b.await.expect("task").expect("answer");
    assert_eq!(
        (status, body["SecretString"].clone()),
        (200, json!("value-b"))
    );
    assert!(held(&sb).await.is_empty());
}

#[tokio::test]
async fn a_released_call_runs_even_when_its_client_has_gone() {
    use tokio::io::AsyncWriteExt;
    let sb = start(SCENARIO).await;
    set_faults(
        &sb,
        json!([{"operation": "PutSecretValue", "kind": "gate"}]),
    )
    .await;
    let body = json!({"SecretId": "c", "SecretString": "value-c-2"}).to_string();
    let mut stream = tokio::net::TcpStream::connect(sb.addr())
        .await
        .expect("connects");
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: secretsmanager.PutSecretValue\r\ncontent-length: {}\r\n\r\n{body}",
        sb.addr(),
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    wait_held(&sb, 1).await;
    // The client goes away before any answer.
    drop(stream);
    assert_eq!(versions(&sb, "c").len(), 1, "not run while held");
    let released = release(&sb, json!({})).await;
    assert_eq!(secret_ids(&released), ["c"]);
    // The write runs though nobody waits for its answer, as AWS would run it.
    let t0 = Instant::now();
    while versions(&sb, "c").len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(60), "never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(versions(&sb, "c").len(), 2, "ran once");
}

#[tokio::test]
async fn sts_calls_are_held_and_answer_in_xml_when_released() {
    let sb = start(SCENARIO).await;
    set_faults(&sb, json!([{"service": "sts", "kind": "gate"}])).await;
    let url = sb.endpoint();
    let client = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("Action=GetCallerIdentity&Version=2011-06-15")
            .send()
            .await
            .expect("an answer");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    });
    let h = wait_held(&sb, 1).await;
    assert_eq!(h[0]["service"], "sts");
    assert_eq!(h[0]["operation"], "GetCallerIdentity");
    assert!(!client.is_finished());
    release(&sb, json!({"id": h[0]["id"]})).await;
    let (status, xml) = client.await.expect("task");
    assert_eq!(status, 200, "{xml}");
    assert!(xml_field(&xml, "Account").is_some(), "{xml}");
}

#[tokio::test]
async fn bad_gate_requests_are_refused() {
    let sb = start(SCENARIO).await;
    for body in [
        r#"{"count": 1, "id": 1}"#,
        r#"{"all": true, "count": 2}"#,
        r#"{"count": 0}"#,
        r#"{"oldest": 1}"#,
        "not json",
    ] {
        let (status, out) = control(&sb, "POST", "/_sandbox/gate/release", body).await;
        assert_eq!(status, 400, "{body}: {out}");
        assert!(out["error"].is_string(), "{out}");
    }
    let (status, out) = control(
        &sb,
        "PUT",
        "/_sandbox/faults",
        r#"[{"kind": "gate", "resource": ""}]"#,
    )
    .await;
    assert_eq!(status, 400, "{out}");
    let (status, _) = control(&sb, "PUT", "/_sandbox/gate", "").await;
    assert_eq!(status, 405);
    let (status, _) = control(&sb, "GET", "/_sandbox/gate/release", "").await;
    assert_eq!(status, 405);
    // Nothing was gated by any of it.
    assert_eq!(
        sm(&sb, "GetSecretValue", json!({"SecretId": "a"}))
            .await
            .status,
        200
    );
}
