//! The core's Parameter Store adapter (`aws::ssm`) and its pure decisions (`parameter`)
//! against the sandbox: an overwrite keeps the parameter's KMS key, tier and data type;
//! `PutParameter` is sent once (no SDK retry can make a second version); a write the tool
//! never saw answered (its client gone, AWS acting on it) is found again from the history
//! by the journaled intent; the latest version judged by the one soundness rule. Ground
//! truth from the sandbox's state and call log.

mod common;

use common::gate::wait_for;
use sandbox::faults::{FaultKind, FaultRule, Release, Which};
use sandbox::Scenario;
use secret_rollout_core::aws::ssm;
use secret_rollout_core::holding::{judge, Holding, Question};
use secret_rollout_core::parameter::{self, resolve_written, Intent, Written};
use secret_rollout_core::value::SecretValue;

const PARAM: &str = "/production/api/db_password";

const SCENARIO: &str = r#"
[[parameters]]
name = "/production/api/db_password"
value = "second-value"
versions = ["first-value"]
key_id = "alias/production"
tier = "Advanced"
"#;

async fn caller(env: &common::TestEnv) -> String {
    env.clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .arn()
        .expect("an ARN")
        .to_string()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

fn latest_version(env: &common::TestEnv) -> serde_json::Value {
    let state = env.state();
    let p = state["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == PARAM)
        .expect("the parameter")
        .clone();
    p["versions"]
        .as_array()
        .expect("versions")
        .last()
        .expect("a version")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_keeps_key_tier_and_type_and_is_one_version() {
    let env = common::start_with(Scenario::from_toml(SCENARIO).expect("scenario"), 1.0).await;
    let ssm_client = &env.clients.ssm;
    let me = caller(&env).await;

    let info = ssm::describe(ssm_client, PARAM).await.expect("describe");
    assert_eq!(info.name, PARAM);
    assert_eq!(
        info.history.iter().map(|h| h.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(info.spec.kind, "SecureString");
    assert_eq!(info.spec.key_id.as_deref(), Some("alias/production"));
    assert_eq!(info.spec.tier, "Advanced");
    assert_eq!(info.spec.data_type, "text");
    parameter::guard_type(PARAM, &info.spec, false).expect("a SecureString passes");
    // Advanced: a value of 5000 bytes fits (it would not in the standard tier).
    parameter::check_size(PARAM, &info.spec, 5000).expect("fits the advanced tier");

    let intent = Intent {
        previous: info.latest().expect("a latest version").0,
        caller: &me,
        at: now(),
    };
    env.sandbox.world().lock().unwrap().clear_calls();
    let value = SecretValue::new("third-value".to_string());
    let written = ssm::put(ssm_client, PARAM, &info.spec, &value)
        .await
        .expect("put");
    assert_eq!(written, 3);
    assert_eq!(env.calls("PutParameter"), 1);

    // Ground truth: the new version kept the key, tier and type, written by our caller.
    let v = latest_version(&env);
    assert_eq!(v["version"], 3);
    assert_eq!(v["key_id"], "alias/production");
    assert_eq!(v["tier"], "Advanced");
    assert_eq!(v["type"], "SecureString");
    assert_eq!(v["data_type"], "text");
    assert_eq!(v["modified_user"], me.as_str());

    // The history names it as this write's, and the values read back by version.
    let info = ssm::describe(ssm_client, PARAM).await.expect("describe");
    assert_eq!(
        resolve_written(&intent, &info.history, 5.0),
        Written::Ours(3)
    );
    let old = ssm::value(ssm_client, PARAM, 2).await.expect("value 2");
    assert_eq!(old.expose(), "second-value");
    let new = ssm::value(ssm_client, PARAM, 3).await.expect("value 3");
    assert_eq!(new.expose(), "third-value");

    // The proof's looks: version 3 is the latest from its write on.
    let first = ssm::latest(ssm_client, PARAM).await.expect("latest");
    let second = ssm::latest(ssm_client, PARAM).await.expect("latest");
    let looks = [parameter::look(1.0, first), parameter::look(10.0, second)];
    let q = Question {
        version: "3",
        created: None,
        looks: &looks,
        listed_at: Some(2.0),
        margin: 5.0,
    };
    assert!(
        matches!(judge(&q), Holding::Holds { .. }),
        "{:?}",
        judge(&q)
    );
    assert_eq!(
        ssm::latest(ssm_client, "/production/nope")
            .await
            .expect("latest"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_put_is_sent_once_and_the_history_says_it_did_not_happen() {
    let env = common::start_with(Scenario::from_toml(SCENARIO).expect("scenario"), 1.0).await;
    let me = caller(&env).await;
    let intent = Intent {
        previous: 2,
        caller: &me,
        at: now(),
    };
    env.gate(vec![FaultRule::on(
        "ssm",
        "PutParameter",
        FaultKind::Unavailable,
    )]);
    env.sandbox.world().lock().unwrap().clear_calls();
    let info = ssm::describe(&env.clients.ssm, PARAM)
        .await
        .expect("describe");
    let value = SecretValue::new("third-value".to_string());
    let err = ssm::put(&env.clients.ssm, PARAM, &info.spec, &value)
        .await
        .expect_err("503");
    assert!(err.fault.may_heal(), "{err:?}");
    // The SDK retries other calls; this one went out exactly once.
    assert_eq!(env.calls("PutParameter"), 1);
    env.open_gate();
    let info = ssm::describe(&env.clients.ssm, PARAM)
        .await
        .expect("describe");
    assert_eq!(info.history.len(), 2, "no version was written");
    assert_eq!(
        resolve_written(&intent, &info.history, 5.0),
        Written::NotWritten { others: 0 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_was_never_seen_is_found_from_the_history() {
    let env = common::start_with(Scenario::from_toml(SCENARIO).expect("scenario"), 1.0).await;
    let me = caller(&env).await;
    let info = ssm::describe(&env.clients.ssm, PARAM)
        .await
        .expect("describe");
    let intent_at = now();
    env.gate(vec![FaultRule::gate("ssm", "PutParameter")]);
    // The writer goes away while its PutParameter waits at the gate (as after kill -9);
    // AWS then acts on the request it received.
    let (client, spec) = (env.clients.ssm.clone(), info.spec.clone());
    let writer = tokio::spawn(async move {
        let value = SecretValue::new("third-value".to_string());
        ssm::put(&client, PARAM, &spec, &value).await
    });
    wait_for("the write waits at the gate", || env.held().len() == 1).await;
    writer.abort();
    assert!(writer.await.expect_err("aborted").is_cancelled());
    env.release(Which::All, Release::Run);
    env.open_gate();
    wait_for("the released write ran", || {
        latest_version(&env)["version"] == 3
    })
    .await;

    let info = ssm::describe(&env.clients.ssm, PARAM)
        .await
        .expect("describe");
    let intent = Intent {
        previous: 2,
        caller: &me,
        at: intent_at,
    };
    assert_eq!(
        resolve_written(&intent, &info.history, 5.0),
        Written::Ours(3)
    );
    assert_eq!(env.calls("PutParameter"), 1);
}
