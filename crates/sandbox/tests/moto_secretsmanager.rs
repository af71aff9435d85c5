//! One Secrets Manager suite, through the AWS SDK for Rust, run against the sandbox and
//! against moto server: where two independent emulators agree on the wire shapes and the
//! semantics our tool relies on, the sandbox is not merely agreeing with itself.
//!
//! Where moto and AWS differ, the suite asserts what AWS does
//! (`shared/reference/aws-behaviour.md`) and runs that assertion on the sandbox only; each
//! such place says so.

#[path = "../../secret-rollout/tests/common/moto.rs"]
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::Client;
use sandbox::{Sandbox, SandboxOptions, Scenario};

const NAME: &str = "e2e/moto-compare/app_key";
const T1: &str = "11111111-aaaa-4bbb-8ccc-000000000001";
const T2: &str = "11111111-aaaa-4bbb-8ccc-000000000002";

/// Which emulator the suite runs against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Sandbox,
    Moto,
}

fn client(endpoint: &str) -> Client {
    Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "t"))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build(),
    )
}

/// The error code (`__type`) of a failed call.
fn code<T, E: ProvideErrorMetadata + std::fmt::Debug>(r: Result<T, E>, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what}: expected an error, got success"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("{what}: error without a code: {e:?}"))
            .to_string(),
    }
}

async fn stages(sm: &Client) -> BTreeMap<String, BTreeSet<String>> {
    let d = sm.describe_secret().secret_id(NAME).send().await.unwrap();
    d.version_ids_to_stages()
        .expect("VersionIdsToStages")
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect()
}

fn labels(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    pairs
        .iter()
        .map(|(id, s)| (id.to_string(), s.iter().map(|x| x.to_string()).collect()))
        .collect()
}

async fn value(sm: &Client, stage: Option<&str>, id: Option<&str>) -> (String, String) {
    let g = sm
        .get_secret_value()
        .secret_id(NAME)
        .set_version_stage(stage.map(str::to_string))
        .set_version_id(id.map(str::to_string))
        .send()
        .await
        .unwrap();
    (
        g.version_id().unwrap().to_string(),
        g.secret_string().unwrap().to_string(),
    )
}

/// The suite: every operation our tool and the sandbox's users rely on, in the order a
/// rotation uses them.
async fn suite(endpoint: &str, target: Target) {
    let sm = client(endpoint);

    // CreateSecret: the token becomes the first version; the ARN carries a 6-character suffix.
    let created = sm
        .create_secret()
        .name(NAME)
        .secret_string("v1")
        .client_request_token(T1)
        .send()
        .await
        .unwrap();
    assert_eq!(created.version_id(), Some(T1));
    let arn = created.arn().unwrap().to_string();
    let suffix = arn
        .strip_prefix(&format!(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:{NAME}-"
        ))
        .unwrap_or_else(|| panic!("{target:?}: ARN {arn}"));
    assert_eq!(suffix.len(), 6, "{arn}");
    assert_eq!(
        code(
            sm.create_secret()
                .name(NAME)
                .secret_string("again")
                .send()
                .await,
            "CreateSecret twice"
        ),
        "ResourceExistsException"
    );

    // PutSecretValue with an explicit token: that token is the new version, AWSCURRENT
    // moves to it and AWSPREVIOUS to the version that held AWSCURRENT.
    let put = sm
        .put_secret_value()
        .secret_id(NAME)
        .secret_string("v2")
        .client_request_token(T2)
        .send()
        .await
        .unwrap();
    assert_eq!(put.version_id(), Some(T2));
    assert_eq!(put.version_stages(), ["AWSCURRENT".to_string()]);
    assert_eq!(put.arn(), Some(arn.as_str()));
    // Idempotency: the same token and value again changes nothing.
    let again = sm
        .put_secret_value()
        .secret_id(NAME)
        .secret_string("v2")
        .client_request_token(T2)
        .send()
        .await
        .unwrap();
    assert_eq!(again.version_id(), Some(T2));
    assert_eq!(
        stages(&sm).await,
        labels(&[(T1, &["AWSPREVIOUS"]), (T2, &["AWSCURRENT"])])
    );
    // The same token with another value: AWS refuses (a version is immutable). moto
    // overwrites the version's value instead, so this runs on the sandbox only.
    if target == Target::Sandbox {
        assert_eq!(
            code(
                sm.put_secret_value()
                    .secret_id(NAME)
                    .secret_string("v2-other")
                    .client_request_token(T2)
                    .send()
                    .await,
                "token reused with another value"
            ),
            "ResourceExistsException"
        );
    }

    // GetSecretValue by stage and by version id.
    assert_eq!(value(&sm, None, None).await, (T2.into(), "v2".into()));
    assert_eq!(
        value(&sm, Some("AWSPREVIOUS"), None).await,
        (T1.into(), "v1".into())
    );
    assert_eq!(value(&sm, None, Some(T1)).await, (T1.into(), "v1".into()));
    assert_eq!(
        code(
            sm.get_secret_value()
                .secret_id(NAME)
                .version_stage("NO_SUCH_STAGE")
                .send()
                .await,
            "unknown stage"
        ),
        "ResourceNotFoundException"
    );

    // ListSecretVersionIds: both versions with their labels.
    let listed = sm
        .list_secret_version_ids()
        .secret_id(NAME)
        .send()
        .await
        .unwrap();
    let listed: BTreeMap<String, BTreeSet<String>> = listed
        .versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap().to_string(),
                v.version_stages().iter().cloned().collect(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        labels(&[(T1, &["AWSPREVIOUS"]), (T2, &["AWSCURRENT"])])
    );

    // Rollback: AWSCURRENT back to T1; AWSPREVIOUS follows to T2 on AWS.
    sm.update_secret_version_stage()
        .secret_id(NAME)
        .version_stage("AWSCURRENT")
        .move_to_version_id(T1)
        .remove_from_version_id(T2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        value(&sm, Some("AWSCURRENT"), None).await,
        (T1.into(), "v1".into())
    );
    if target == Target::Sandbox {
        // AWS answers a GetSecretValue without stage or version with AWSCURRENT. moto
        // answers with the version of the last put, whatever the labels say since.
        assert_eq!(value(&sm, None, None).await, (T1.into(), "v1".into()));
    }
    assert_eq!(
        stages(&sm).await,
        labels(&[(T1, &["AWSCURRENT"]), (T2, &["AWSPREVIOUS"])])
    );
    // RemoveFromVersionId must name the version holding the label.
    assert_eq!(
        code(
            sm.update_secret_version_stage()
                .secret_id(NAME)
                .version_stage("AWSCURRENT")
                .move_to_version_id(T2)
                .remove_from_version_id(T2)
                .send()
                .await,
            "RemoveFromVersionId not the holder"
        ),
        "InvalidParameterException"
    );
    assert_eq!(
        stages(&sm).await,
        labels(&[(T1, &["AWSCURRENT"]), (T2, &["AWSPREVIOUS"])]),
        "a refused move changes nothing"
    );

    // ListSecrets finds it by name, with its ARN.
    let all = sm.list_secrets().send().await.unwrap();
    let found = all
        .secret_list()
        .iter()
        .find(|s| s.name() == Some(NAME))
        .expect("ListSecrets lists the secret");
    assert_eq!(found.arn(), Some(arn.as_str()));

    // Lookup by full ARN works like lookup by name.
    let by_arn = sm.describe_secret().secret_id(&arn).send().await.unwrap();
    assert_eq!(by_arn.name(), Some(NAME));

    // DeleteSecret schedules deletion: DeletedDate set, the value cannot be read.
    let deleted = sm
        .delete_secret()
        .secret_id(NAME)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert!(deleted.deletion_date().is_some());
    let d = sm.describe_secret().secret_id(NAME).send().await.unwrap();
    assert!(d.deleted_date().is_some(), "{target:?}: DeletedDate");
    assert_eq!(
        code(
            sm.get_secret_value().secret_id(NAME).send().await,
            "read a deleted secret"
        ),
        "InvalidRequestException"
    );
    // AWS refuses writes to a secret scheduled for deletion; moto accepts them, so this
    // runs on the sandbox only.
    if target == Target::Sandbox {
        assert_eq!(
            code(
                sm.put_secret_value()
                    .secret_id(NAME)
                    .secret_string("v3")
                    .send()
                    .await,
                "write a deleted secret"
            ),
            "InvalidRequestException"
        );
    }

    // RestoreSecret: back, with its versions.
    sm.restore_secret().secret_id(NAME).send().await.unwrap();
    let d = sm.describe_secret().secret_id(NAME).send().await.unwrap();
    assert!(d.deleted_date().is_none(), "{target:?}: restored");
    assert_eq!(
        value(&sm, Some("AWSCURRENT"), None).await,
        (T1.into(), "v1".into())
    );

    // An unknown secret: ResourceNotFoundException from every operation.
    let missing = "e2e/moto-compare/no_such_secret";
    assert_eq!(
        code(
            sm.get_secret_value().secret_id(missing).send().await,
            "GetSecretValue unknown"
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(
            sm.describe_secret().secret_id(missing).send().await,
            "DescribeSecret unknown"
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(
            sm.put_secret_value()
                .secret_id(missing)
                .secret_string("x")
                .send()
                .await,
            "PutSecretValue unknown"
        ),
        "ResourceNotFoundException"
    );
    // moto answers this one with an HTML 500 (a crash in its handler), so it runs on the
    // sandbox only.
    if target == Target::Sandbox {
        assert_eq!(
            code(
                sm.list_secret_version_ids().secret_id(missing).send().await,
                "ListSecretVersionIds unknown"
            ),
            "ResourceNotFoundException"
        );
    }
}

/// `LastChangedDate` ("modified in any way"), which secret-rollout's holding rule reads
/// at every poll. Both emulators move it on PutSecretValue. moto leaves it on stage
/// moves and tag edits; the sandbox moves it there too, the conservative reading of the
/// documentation (unconfirmed on AWS), so those assertions run on the sandbox only.
async fn last_changed(endpoint: &str, target: Target) {
    let sm = client(endpoint);
    let name = "e2e/moto-compare/last_changed";
    let changed = |sm: Client| async move {
        let d = sm.describe_secret().secret_id(name).send().await.unwrap();
        d.last_changed_date()
            .expect("LastChangedDate")
            .as_secs_f64()
    };
    sm.create_secret()
        .name(name)
        .secret_string("v1")
        .client_request_token(T1)
        .send()
        .await
        .unwrap();
    let at_create = changed(sm.clone()).await;
    // moto keeps whole seconds: wait past one so a move shows.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sm.put_secret_value()
        .secret_id(name)
        .secret_string("v2")
        .client_request_token(T2)
        .send()
        .await
        .unwrap();
    let at_put = changed(sm.clone()).await;
    assert!(
        at_put > at_create,
        "{target:?}: a put moves LastChangedDate"
    );
    let versions = sm
        .list_secret_version_ids()
        .secret_id(name)
        .send()
        .await
        .unwrap();
    let created = versions
        .versions()
        .iter()
        .find(|v| v.version_id() == Some(T2))
        .and_then(|v| v.created_date())
        .expect("CreatedDate of the new version")
        .as_secs_f64();
    assert!(
        (at_put - created).abs() < 2.0,
        "{target:?}: the put's LastChangedDate is its version's creation ({at_put} vs {created})"
    );
    if target == Target::Sandbox {
        tokio::time::sleep(Duration::from_millis(20)).await;
        sm.update_secret_version_stage()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .move_to_version_id(T1)
            .remove_from_version_id(T2)
            .send()
            .await
            .unwrap();
        let at_move = changed(sm.clone()).await;
        assert!(at_move > at_put, "a stage move moves LastChangedDate");
        tokio::time::sleep(Duration::from_millis(20)).await;
        sm.tag_resource()
            .secret_id(name)
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("team")
                    .value("lpa")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let at_tag = changed(sm.clone()).await;
        assert!(at_tag > at_move, "a tag edit moves LastChangedDate");
        tokio::time::sleep(Duration::from_millis(20)).await;
        sm.update_secret()
            .secret_id(name)
            .description("the app key")
            .send()
            .await
            .unwrap();
        assert!(
            changed(sm.clone()).await > at_tag,
            "a description edit moves it"
        );
        assert_eq!(
            stages_of(&sm, name).await,
            labels(&[(T1, &["AWSCURRENT"]), (T2, &["AWSPREVIOUS"])]),
            "metadata edits move no label"
        );
    }
}

async fn stages_of(sm: &Client, name: &str) -> BTreeMap<String, BTreeSet<String>> {
    let d = sm.describe_secret().secret_id(name).send().await.unwrap();
    d.version_ids_to_stages()
        .expect("VersionIdsToStages")
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect()
}

#[tokio::test]
async fn the_suite_passes_on_the_sandbox() {
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::from_toml("").expect("an empty scenario"),
        speed: None,
        seed: Some(1),
    })
    .await
    .expect("sandbox starts");
    suite(&sb.endpoint(), Target::Sandbox).await;
    last_changed(&sb.endpoint(), Target::Sandbox).await;
}

#[tokio::test]
async fn the_suite_passes_on_moto_server() {
    let moto = tokio::task::spawn_blocking(moto::Moto::start)
        .await
        .expect("join");
    suite(&moto.endpoint, Target::Moto).await;
    last_changed(&moto.endpoint, Target::Moto).await;
}
