//! The tool's secret writes (`secret_rollout_core::secret`) against moto server: describe, a
//! write with an explicit request token (and its retry), the version list, reading a
//! version back and the rollback label move. moto is an emulator we did not write, so this
//! checks our calls against someone else's reading of the API, not only the sandbox's.

mod common;

use common::moto::Moto;
use secret_rollout_core::clients::Clients;
use secret_rollout_core::error::Kind;
use secret_rollout_core::secret;
use secret_rollout_core::value::SecretValue;

const NAME: &str = "production/e2e_moto_secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_writes_pass_against_moto_server() {
    // A generous bound that turns a hang (an endless pagination loop once hung this test)
    // into a failure; it measures nothing.
    tokio::time::timeout(std::time::Duration::from_secs(120), writes_against_moto())
        .await
        .expect("the moto test finished (a call loops or hangs otherwise)");
}

async fn writes_against_moto() {
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("join");
    let clients = Clients::new(&common::sdk_config(&moto.endpoint).await);
    let sm = &clients.sm;
    let first = sm
        .create_secret()
        .name(NAME)
        .secret_string("first-value")
        .send()
        .await
        .expect("CreateSecret on moto");
    let first_version = first.version_id().expect("a version").to_string();

    // describe: by name, current version known, nothing in the way of a write.
    let info = secret::describe(sm, NAME).await.expect("describe");
    assert_eq!(info.name, NAME);
    assert_eq!(info.arn, first.arn().unwrap());
    assert_eq!(info.current.as_deref(), Some(first_version.as_str()));
    assert!(info.deleted_date.is_none());
    secret::guard(&info, false).expect("a plain secret may be written");

    // put: the token becomes the version id; a retry with the same token and value makes
    // no second version.
    let token = uuid::Uuid::new_v4().to_string();
    let new = SecretValue::new("second-value".to_string());
    let reach = secret_rollout_core::error::Reach::default();
    let rotation = (uuid::Uuid::new_v4(), &reach);
    let written = secret::put(sm, &info.arn, &token, &new, rotation)
        .await
        .expect("put");
    assert_eq!(written, token);
    let retried = secret::put(sm, &info.arn, &token, &new, rotation)
        .await
        .expect("retried put");
    assert_eq!(retried, token);

    let versions = secret::versions(sm, &info.arn).await.expect("versions");
    assert_eq!(versions.len(), 2, "one new version, retry included");
    let stages_of = |id: &str| {
        versions
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.stages.clone())
            .unwrap_or_default()
    };
    assert_eq!(stages_of(&token), ["AWSCURRENT"]);
    assert_eq!(stages_of(&first_version), ["AWSPREVIOUS"]);

    // value: each version reads back as written.
    assert!(secret::value(sm, &info.arn, &token)
        .await
        .expect("read new")
        .same_as(&new));
    assert!(secret::value(sm, &info.arn, &first_version)
        .await
        .expect("read old")
        .same_as(&SecretValue::new("first-value".into())));

    // move_current: the rollback puts AWSCURRENT back; AWSPREVIOUS follows to the new one.
    secret::move_current(sm, &info.arn, &first_version, &token)
        .await
        .expect("move_current");
    let info = secret::describe(sm, &info.arn).await.expect("describe");
    assert_eq!(info.current.as_deref(), Some(first_version.as_str()));
    assert_eq!(info.previous.as_deref(), Some(token.as_str()));

    // An unknown secret is the user's input problem, not an AWS failure.
    let err = secret::describe(sm, "production/e2e_no_such_secret")
        .await
        .expect_err("unknown secret");
    assert_eq!(err.kind, Kind::BadInput, "{}", err.message);
}
