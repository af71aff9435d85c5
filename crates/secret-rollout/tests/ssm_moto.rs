//! The core's Parameter Store adapter (`aws::ssm`) and the history resolution of a
//! journaled intent (`parameter::resolve_written`) against moto server's SSM, an emulator
//! we did not write: an overwrite keeps the key and tier and makes exactly one version,
//! the history lists every version with its labels, a version's value reads back, and the
//! write is found again by the intent.

mod common;

use common::moto::Moto;
use secret_rollout_core::aws::ssm;
use secret_rollout_core::clients::Clients;
use secret_rollout_core::parameter::{self, Intent, WriteSpec, Written};
use secret_rollout_core::value::SecretValue;

const NAME: &str = "/production/moto/api_key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_writes_history_and_labels_pass_against_moto_server() {
    tokio::time::timeout(std::time::Duration::from_secs(120), against_moto())
        .await
        .expect("the moto test finished (a call loops or hangs otherwise)");
}

async fn against_moto() {
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("join");
    let clients = Clients::new(&common::sdk_config(&moto.endpoint).await);
    let c = &clients.ssm;
    let spec = WriteSpec {
        kind: "SecureString".into(),
        key_id: Some("alias/production".into()),
        tier: "Standard".into(),
        data_type: "text".into(),
    };
    // The first version (an overwrite of nothing creates it).
    let v1 = ssm::put(c, NAME, &spec, &SecretValue::new("first-value".into()))
        .await
        .expect("first PutParameter on moto");
    assert_eq!(v1, 1);

    let info = ssm::describe(c, NAME).await.expect("describe");
    assert_eq!(info.name, NAME);
    assert!(
        info.arn.ends_with(":parameter/production/moto/api_key"),
        "{}",
        info.arn
    );
    assert_eq!(info.history.len(), 1);
    assert_eq!(info.spec.kind, "SecureString");
    assert_eq!(info.spec.key_id.as_deref(), Some("alias/production"));
    parameter::guard_type(&info.name, &info.spec, false).expect("a SecureString may be written");

    // The rotation's write: its intent first, then one PutParameter sending the same key.
    let caller = info.history[0].user.clone();
    let at = info.history[0].modified;
    let v2 = ssm::put(
        c,
        NAME,
        &info.spec,
        &SecretValue::new("second-value".into()),
    )
    .await
    .expect("the rotation's PutParameter");
    assert_eq!(v2, 2, "exactly one new version");
    let info = ssm::describe(c, NAME).await.expect("describe again");
    assert_eq!(
        info.history.iter().map(|h| h.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(info.latest().map(|(v, _)| v), Some(2));
    assert_eq!(
        info.spec.key_id.as_deref(),
        Some("alias/production"),
        "the key was kept"
    );
    assert_eq!(
        ssm::latest(c, NAME).await.expect("latest").map(|l| l.0),
        Some(2)
    );

    // The intent resolves to our version when moto records the writer; without a writer
    // in the history (moto may leave it out), nothing is called ours.
    if let Some(caller) = caller.as_deref() {
        let intent = Intent {
            previous: 1,
            caller,
            at,
        };
        assert_eq!(
            parameter::resolve_written(&intent, &info.history, 300.0),
            Written::Ours(2)
        );
    } else {
        let intent = Intent {
            previous: 1,
            caller: "arn:aws:iam::123456789012:user/sandbox",
            at,
        };
        assert_eq!(
            parameter::resolve_written(&intent, &info.history, 300.0),
            Written::NotWritten { others: 1 }
        );
    }

    // The previous version's value reads back (the restore's read), decrypted.
    assert_eq!(
        ssm::value(c, NAME, 1).await.expect("value").expose(),
        "first-value"
    );

    // Labels: a valid one lands on its version; a bad one comes back in InvalidLabels.
    let out = c
        .label_parameter_version()
        .name(NAME)
        .parameter_version(1)
        .labels("rotation-previous")
        .labels("aws-bad")
        .send()
        .await
        .expect("LabelParameterVersion");
    assert_eq!(out.invalid_labels(), ["aws-bad"]);
    assert!(!parameter::valid_label("aws-bad") && parameter::valid_label("rotation-previous"));
    let info = ssm::describe(c, NAME).await.expect("describe with labels");
    assert_eq!(info.history[0].labels, ["rotation-previous"]);
    assert!(info.history[1].labels.is_empty());
    // Unlabelled again, as a rotation leaves none behind.
    c.unlabel_parameter_version()
        .name(NAME)
        .parameter_version(1)
        .labels("rotation-previous")
        .send()
        .await
        .expect("UnlabelParameterVersion");
    let info = ssm::describe(c, NAME).await.expect("describe unlabelled");
    assert!(info.history.iter().all(|h| h.labels.is_empty()));
}
