//! The AWS SDK for Rust against the sandbox: if the SDK parses our answers and maps our
//! errors to its typed variants, the wire shapes are AWS's.

mod sm_common;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::Client as SmClient;
use aws_sdk_sts::Client as StsClient;
use sm_common::*;

const SCENARIO: &str = r#"
[sts]
min_session_seconds = 900
[[sts.keys]]
access_key_id = "AKIAALICE00000000000"
secret_access_key = "alice-secret"
arn = "arn:aws:iam::123456789012:user/alice"
[[sts.roles]]
arn = "arn:aws:iam::123456789012:role/operator"
mfa_serial = "arn:aws:iam::123456789012:mfa/alice"
totp_seed = "JBSWY3DPEHPK3PXP"

[[secrets]]
name = "production/app_key"
value = "v1"
version_id = "11111111-1111-4111-8111-111111111111"
"#;

fn creds(key: &str, secret: &str, token: Option<String>) -> Credentials {
    Credentials::new(key, secret, token, None, "test")
}

fn sm_client(sb: &sandbox::Sandbox, c: Credentials) -> SmClient {
    SmClient::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(sb.endpoint())
            .credentials_provider(c)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build(),
    )
}

fn sts_client(sb: &sandbox::Sandbox, c: Credentials) -> StsClient {
    StsClient::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(sb.endpoint())
            .credentials_provider(c)
            .build(),
    )
}

/// The sandbox's state of secret `name` (ground truth, without values).
fn secret_truth(sb: &sandbox::Sandbox, name: &str) -> serde_json::Value {
    let snap = sb.world().lock().unwrap().snapshot();
    snap["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in the sandbox"))
        .clone()
}

/// The sandbox's CreatedDate of version `id` of a secret from [`secret_truth`].
fn version_created(secret: &serde_json::Value, id: &str) -> serde_json::Value {
    secret["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("version {id}: {secret}"))["created"]
        .clone()
}

/// An SDK date equals the sandbox's epoch seconds, to the wire format's millisecond.
fn assert_same_time(sdk: Option<f64>, truth: &serde_json::Value) {
    let truth = truth.as_f64().expect("a date in the sandbox");
    let sdk = sdk.expect("a date in the answer");
    assert!((sdk - truth).abs() < 1e-3, "{sdk} vs the sandbox's {truth}");
}

fn alice() -> Credentials {
    creds("AKIAALICE00000000000", "alice-secret", None)
}

#[tokio::test]
async fn put_rollback_and_describe_through_the_sdk() {
    let sb = start(SCENARIO).await;
    let sm = sm_client(&sb, alice());
    let token = "22222222-2222-4222-8222-222222222222";
    let put = sm
        .put_secret_value()
        .secret_id("production/app_key")
        .secret_string("v2")
        .client_request_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(put.version_id(), Some(token));
    assert_eq!(put.version_stages(), ["AWSCURRENT"]);

    let d = sm
        .describe_secret()
        .secret_id("production/app_key")
        .send()
        .await
        .unwrap();
    let stages = d.version_ids_to_stages().unwrap();
    assert_eq!(stages[token], ["AWSCURRENT"]);
    assert_eq!(
        stages["11111111-1111-4111-8111-111111111111"],
        ["AWSPREVIOUS"]
    );
    // The dates are the sandbox's own (its clock at creation and at the put), exactly,
    // to the millisecond of the wire format.
    let truth = secret_truth(&sb, "production/app_key");
    let put_created = version_created(&truth, token);
    assert_same_time(d.created_date().map(|t| t.as_secs_f64()), &truth["created"]);
    assert_same_time(d.last_changed_date().map(|t| t.as_secs_f64()), &put_created);
    assert_eq!(d.rotation_enabled(), None);

    sm.update_secret_version_stage()
        .secret_id(d.arn().unwrap())
        .version_stage("AWSCURRENT")
        .move_to_version_id("11111111-1111-4111-8111-111111111111")
        .remove_from_version_id(token)
        .send()
        .await
        .unwrap();
    let v = sm
        .get_secret_value()
        .secret_id("production/app_key")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("v1"));
    assert_same_time(
        v.created_date().map(|t| t.as_secs_f64()),
        &version_created(&truth, "11111111-1111-4111-8111-111111111111"),
    );

    let list = sm
        .list_secret_version_ids()
        .secret_id("production/app_key")
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    assert_eq!(list.versions().len(), 2);
}

#[tokio::test]
async fn errors_map_to_the_sdk_typed_variants() {
    let sb = start(SCENARIO).await;
    let sm = sm_client(&sb, alice());
    let err = sm
        .get_secret_value()
        .secret_id("nope")
        .send()
        .await
        .unwrap_err();
    let service_err = err.into_service_error();
    assert!(
        service_err.is_resource_not_found_exception(),
        "{service_err:?}"
    );
    let err = sm
        .put_secret_value()
        .secret_id("production/app_key")
        .secret_string("other")
        .client_request_token("11111111-1111-4111-8111-111111111111")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_exists_exception());

    let stranger = sm_client(&sb, creds("AKIASTRANGER", "x", None));
    let err = stranger.list_secrets().send().await.unwrap_err();
    let SdkError::ServiceError(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.raw().status().as_u16(), 400);
    assert_eq!(
        aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(e.err()),
        Some("UnrecognizedClientException")
    );
}

#[tokio::test]
async fn sdk_retries_a_throttled_call() {
    let sb = start(SCENARIO).await;
    sb.world()
        .lock()
        .unwrap()
        .set_faults(vec![serde_json::from_value(serde_json::json!(
            {"operation": "GetSecretValue", "kind": "throttling", "nth": [1]}
        ))
        .unwrap()])
        .unwrap();
    let sm = sm_client(&sb, alice());
    let v = sm
        .get_secret_value()
        .secret_id("production/app_key")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("v1"));
    let calls: Vec<_> = sb
        .world()
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.operation == "GetSecretValue")
        .map(|c| c.error.clone())
        .collect();
    assert_eq!(calls, vec![Some("ThrottlingException".to_string()), None]);
}

#[tokio::test]
async fn assume_role_with_mfa_through_the_sdk() {
    let sb = start(SCENARIO).await;
    let sts = sts_client(&sb, alice());
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some("arn:aws:iam::123456789012:user/alice"));
    assert_eq!(me.account(), Some("123456789012"));

    let code =
        sandbox::sts::totp_code("JBSWY3DPEHPK3PXP", sandbox::sts::wall_clock_secs()).unwrap();
    // Expiry is on the real clock (AWS's clients compare it with theirs): bracketed by
    // the wall clock before and after the call, 3600s (the default duration) after it.
    let issued_from = sandbox::sts::wall_clock_secs() as i64;
    let out = sts
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/operator")
        .role_session_name("secret-rollout")
        .serial_number("arn:aws:iam::123456789012:mfa/alice")
        .token_code(code)
        .send()
        .await
        .unwrap();
    let issued_to = sandbox::sts::wall_clock_secs() as i64;
    let c = out.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));
    let exp = c.expiration().secs();
    assert!(
        (issued_from + 3600..=issued_to + 3600).contains(&exp),
        "{exp}: 3600s after a moment in [{issued_from}, {issued_to}]"
    );

    let session = creds(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
    );
    let me = sts_client(&sb, session.clone())
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::123456789012:assumed-role/operator/secret-rollout")
    );

    sb.world().lock().unwrap().expire_sessions();
    let err = sm_client(&sb, session)
        .list_secrets()
        .send()
        .await
        .unwrap_err();
    let SdkError::ServiceError(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(e.err()),
        Some("ExpiredTokenException")
    );

    let err = sts
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/operator")
        .role_session_name("secret-rollout")
        .send()
        .await
        .unwrap_err();
    let SdkError::ServiceError(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        aws_sdk_sts::error::ProvideErrorMetadata::message(e.err()),
        Some("MultiFactorAuthentication failed with invalid MFA one time pass code.")
    );
}
