//! Secrets Manager over real HTTP: the operations, token idempotency, staging-label moves,
//! rollback, lookups, deletion, pagination and AWS-shaped errors.

mod sm_common;

use serde_json::{json, Value};
use sm_common::*;

const EMPTY: &str = "region = \"eu-west-1\"\naccount = \"123456789012\"\n";
const T1: &str = "11111111-1111-4111-8111-111111111111";
const T2: &str = "22222222-2222-4222-8222-222222222222";

async fn with_secret() -> (sandbox::Sandbox, String) {
    let sb = start(EMPTY).await;
    let out = sm_ok(
        &sb,
        "CreateSecret",
        json!({"Name": "production/app_key", "SecretString": "old-value", "ClientRequestToken": T1, "Description": "d"}),
    )
    .await;
    assert_eq!(out["VersionId"], T1);
    (sb, out["ARN"].as_str().unwrap().to_string())
}

fn stages(describe: &Value) -> Value {
    describe["VersionIdsToStages"].clone()
}

#[tokio::test]
async fn create_get_describe() {
    let (sb, arn) = with_secret().await;
    let re = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/app_key-";
    assert!(arn.starts_with(re) && arn.len() == re.len() + 6, "{arn}");
    let got = sm_ok(
        &sb,
        "GetSecretValue",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_eq!(got["SecretString"], "old-value");
    assert_eq!(got["VersionId"], T1);
    assert_eq!(got["VersionStages"], json!(["AWSCURRENT"]));
    assert!(got["CreatedDate"].is_number());
    let d = sm_ok(&sb, "DescribeSecret", json!({"SecretId": arn})).await;
    assert_eq!(d["Name"], "production/app_key");
    assert_eq!(d["Description"], "d");
    assert_eq!(stages(&d), json!({T1: ["AWSCURRENT"]}));
    assert!(
        d.get("RotationEnabled").is_none(),
        "absent when never configured"
    );
    assert!(d.get("DeletedDate").is_none());
    assert!(d["CreatedDate"].is_number() && d["LastChangedDate"].is_number());
    // Creating it again fails.
    let again = sm(
        &sb,
        "CreateSecret",
        json!({"Name": "production/app_key", "SecretString": "x"}),
    )
    .await;
    assert_error(&again, 400, "ResourceExistsException");
}

#[tokio::test]
async fn put_moves_labels_and_tokens_are_idempotent() {
    let (sb, _) = with_secret().await;
    let put = json!({"SecretId": "production/app_key", "SecretString": "new-value", "ClientRequestToken": T2});
    let out = sm_ok(&sb, "PutSecretValue", put.clone()).await;
    assert_eq!(out["VersionId"], T2);
    assert_eq!(out["VersionStages"], json!(["AWSCURRENT"]));
    let d = sm_ok(
        &sb,
        "DescribeSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_eq!(stages(&d), json!({T1: ["AWSPREVIOUS"], T2: ["AWSCURRENT"]}));

    // Same token, same value: success, nothing changes.
    let again = sm_ok(&sb, "PutSecretValue", put).await;
    assert_eq!(again["VersionId"], T2);
    let v = sm_ok(
        &sb,
        "ListSecretVersionIds",
        json!({"SecretId": "production/app_key", "IncludeDeprecated": true}),
    )
    .await;
    assert_eq!(v["Versions"].as_array().unwrap().len(), 2);

    // Same token, different value: a version is immutable.
    let clash = sm(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "production/app_key", "SecretString": "other", "ClientRequestToken": T2}),
    )
    .await;
    assert_error(&clash, 400, "ResourceExistsException");

    // A token outside 32..64 characters is refused.
    let short = sm(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "production/app_key", "SecretString": "x", "ClientRequestToken": "short"}),
    )
    .await;
    assert_error(&short, 400, "InvalidParameterException");

    // A third put deprecates the first version: unlabelled, listed only with
    // IncludeDeprecated.
    sm_ok(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "production/app_key", "SecretString": "third"}),
    )
    .await;
    let labelled = sm_ok(
        &sb,
        "ListSecretVersionIds",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    let ids: Vec<_> = labelled["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VersionId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&T1.to_string()));
    let all = sm_ok(
        &sb,
        "ListSecretVersionIds",
        json!({"SecretId": "production/app_key", "IncludeDeprecated": true}),
    )
    .await;
    assert_eq!(all["Versions"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn read_by_stage_and_version_id() {
    let (sb, _) = with_secret().await;
    sm_ok(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "production/app_key", "SecretString": "new-value", "ClientRequestToken": T2}),
    )
    .await;
    let prev = sm_ok(
        &sb,
        "GetSecretValue",
        json!({"SecretId": "production/app_key", "VersionStage": "AWSPREVIOUS"}),
    )
    .await;
    assert_eq!(prev["SecretString"], "old-value");
    let by_id = sm_ok(
        &sb,
        "GetSecretValue",
        json!({"SecretId": "production/app_key", "VersionId": T1}),
    )
    .await;
    assert_eq!(by_id["SecretString"], "old-value");
    let missing = sm(
        &sb,
        "GetSecretValue",
        json!({"SecretId": "production/app_key", "VersionStage": "AWSPENDING"}),
    )
    .await;
    assert_error(&missing, 400, "ResourceNotFoundException");
}

#[tokio::test]
async fn rollback_with_update_secret_version_stage() {
    let (sb, _) = with_secret().await;
    sm_ok(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "production/app_key", "SecretString": "bad-value", "ClientRequestToken": T2}),
    )
    .await;
    // Without RemoveFromVersionId while the label is on T2: refused.
    let no_remove = sm(
        &sb,
        "UpdateSecretVersionStage",
        json!({"SecretId": "production/app_key", "VersionStage": "AWSCURRENT", "MoveToVersionId": T1}),
    )
    .await;
    assert_error(&no_remove, 400, "InvalidParameterException");
    // With a RemoveFromVersionId that does not hold the label: refused.
    let wrong = sm(
        &sb,
        "UpdateSecretVersionStage",
        json!({"SecretId": "production/app_key", "VersionStage": "AWSCURRENT", "MoveToVersionId": T1, "RemoveFromVersionId": T1}),
    )
    .await;
    assert_error(&wrong, 400, "InvalidParameterException");
    let d = sm_ok(
        &sb,
        "DescribeSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_eq!(
        stages(&d),
        json!({T1: ["AWSPREVIOUS"], T2: ["AWSCURRENT"]}),
        "unchanged"
    );

    let out = sm_ok(
        &sb,
        "UpdateSecretVersionStage",
        json!({"SecretId": "production/app_key", "VersionStage": "AWSCURRENT", "MoveToVersionId": T1, "RemoveFromVersionId": T2}),
    )
    .await;
    assert_eq!(out["Name"], "production/app_key");
    let d = sm_ok(
        &sb,
        "DescribeSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    // AWSPREVIOUS follows to the version that had AWSCURRENT.
    assert_eq!(stages(&d), json!({T1: ["AWSCURRENT"], T2: ["AWSPREVIOUS"]}));
    let cur = sm_ok(
        &sb,
        "GetSecretValue",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_eq!(cur["SecretString"], "old-value");

    // A custom label can be removed on its own.
    sm_ok(
        &sb,
        "UpdateSecretVersionStage",
        json!({"SecretId": "production/app_key", "VersionStage": "blue", "MoveToVersionId": T2}),
    )
    .await;
    sm_ok(
        &sb,
        "UpdateSecretVersionStage",
        json!({"SecretId": "production/app_key", "VersionStage": "blue", "RemoveFromVersionId": T2}),
    )
    .await;
    let d = sm_ok(
        &sb,
        "DescribeSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_eq!(stages(&d)[T2], json!(["AWSPREVIOUS"]));
}

#[tokio::test]
async fn lookup_by_name_full_and_partial_arn() {
    let (sb, arn) = with_secret().await;
    let partial = &arn[..arn.len() - 7];
    for id in [arn.as_str(), partial, "production/app_key"] {
        let d = sm_ok(&sb, "DescribeSecret", json!({"SecretId": id})).await;
        assert_eq!(d["ARN"], arn.as_str(), "{id}");
    }
    let wrong_suffix = format!("{partial}-ZZZZZZ");
    let a = sm(&sb, "DescribeSecret", json!({"SecretId": wrong_suffix})).await;
    assert_error(&a, 400, "ResourceNotFoundException");
    assert_eq!(
        a.body["message"],
        "Secrets Manager can't find the specified secret."
    );
}

#[tokio::test]
async fn delete_and_restore() {
    let (sb, _) = with_secret().await;
    let bad_window = sm(
        &sb,
        "DeleteSecret",
        json!({"SecretId": "production/app_key", "RecoveryWindowInDays": 3}),
    )
    .await;
    assert_error(&bad_window, 400, "InvalidParameterException");
    let del = sm_ok(
        &sb,
        "DeleteSecret",
        json!({"SecretId": "production/app_key", "RecoveryWindowInDays": 7}),
    )
    .await;
    let d = sm_ok(
        &sb,
        "DescribeSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    let deleted = d["DeletedDate"].as_f64().expect("DeletedDate");
    let deletion = del["DeletionDate"].as_f64().unwrap();
    assert!(
        (deletion - deleted - 7.0 * 86400.0).abs() < 5.0,
        "{deletion} {deleted}"
    );

    for (op, body) in [
        ("GetSecretValue", json!({"SecretId": "production/app_key"})),
        (
            "PutSecretValue",
            json!({"SecretId": "production/app_key", "SecretString": "x"}),
        ),
    ] {
        let a = sm(&sb, op, body).await;
        assert_error(&a, 400, "InvalidRequestException");
        assert_eq!(
            a.body["message"],
            "You can't perform this operation on the secret because it was marked for deletion."
        );
    }
    let listed = sm_ok(&sb, "ListSecrets", json!({})).await;
    assert_eq!(listed["SecretList"], json!([]));
    let listed = sm_ok(&sb, "ListSecrets", json!({"IncludePlannedDeletion": true})).await;
    assert_eq!(listed["SecretList"].as_array().unwrap().len(), 1);

    sm_ok(
        &sb,
        "RestoreSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    let got = sm_ok(
        &sb,
        "GetSecretValue",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_eq!(got["SecretString"], "old-value");
    let d = sm_ok(
        &sb,
        "DescribeSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert!(d.get("DeletedDate").is_none());

    sm_ok(
        &sb,
        "DeleteSecret",
        json!({"SecretId": "production/app_key", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    let gone = sm(
        &sb,
        "DescribeSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_error(&gone, 400, "ResourceNotFoundException");
}

#[tokio::test]
async fn rotation_can_be_enabled_through_the_api() {
    let (sb, _) = with_secret().await;
    let no_lambda = sm(
        &sb,
        "RotateSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_eq!(no_lambda.status, 400);
    sm_ok(
        &sb,
        "RotateSecret",
        json!({"SecretId": "production/app_key",
               "RotationLambdaARN": "arn:aws:lambda:eu-west-1:123456789012:function:rotate",
               "RotationRules": {"AutomaticallyAfterDays": 30}}),
    )
    .await;
    let d = sm_ok(
        &sb,
        "DescribeSecret",
        json!({"SecretId": "production/app_key"}),
    )
    .await;
    assert_eq!(d["RotationEnabled"], true);
    assert_eq!(
        d["RotationLambdaARN"],
        "arn:aws:lambda:eu-west-1:123456789012:function:rotate"
    );
    assert_eq!(d["RotationRules"]["AutomaticallyAfterDays"], 30);
}

#[tokio::test]
async fn list_secrets_paginates_and_filters() {
    let sb = start(EMPTY).await;
    for i in 0..5 {
        sm_ok(
            &sb,
            "CreateSecret",
            json!({"Name": format!("team{}/s{i}", i % 2), "SecretString": "v"}),
        )
        .await;
    }
    let mut names = vec![];
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"MaxResults": 2});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let out = sm_ok(&sb, "ListSecrets", body).await;
        pages += 1;
        let list = out["SecretList"].as_array().unwrap();
        assert!(list.len() <= 2);
        for s in list {
            assert!(s["SecretVersionsToStages"].is_object());
            names.push(s["Name"].as_str().unwrap().to_string());
        }
        match out.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    names.sort();
    assert_eq!(
        names,
        ["team0/s0", "team0/s2", "team0/s4", "team1/s1", "team1/s3"]
    );

    let filtered = sm_ok(
        &sb,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": ["team1/"]}]}),
    )
    .await;
    assert_eq!(filtered["SecretList"].as_array().unwrap().len(), 2);
    let negated = sm_ok(
        &sb,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": ["!team1/"]}]}),
    )
    .await;
    assert_eq!(negated["SecretList"].as_array().unwrap().len(), 3);
    let case = sm_ok(
        &sb,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": ["TEAM1/"]}]}),
    )
    .await;
    assert_eq!(
        case["SecretList"],
        json!([]),
        "name filters are case-sensitive"
    );
    let bad = sm(&sb, "ListSecrets", json!({"NextToken": "garbage"})).await;
    assert_error(&bad, 400, "InvalidNextTokenException");
    let bad = sm(&sb, "ListSecrets", json!({"MaxResults": 0})).await;
    assert_error(&bad, 400, "InvalidParameterException");

    // Versions page too.
    for _ in 0..4 {
        sm_ok(
            &sb,
            "PutSecretValue",
            json!({"SecretId": "team0/s0", "SecretString": "w"}),
        )
        .await;
    }
    let first = sm_ok(
        &sb,
        "ListSecretVersionIds",
        json!({"SecretId": "team0/s0", "IncludeDeprecated": true, "MaxResults": 3}),
    )
    .await;
    assert_eq!(first["Versions"].as_array().unwrap().len(), 3);
    let rest = sm_ok(
        &sb,
        "ListSecretVersionIds",
        json!({"SecretId": "team0/s0", "IncludeDeprecated": true, "MaxResults": 3,
               "NextToken": first["NextToken"]}),
    )
    .await;
    assert_eq!(rest["Versions"].as_array().unwrap().len(), 2);
    assert!(rest.get("NextToken").is_none());
}

#[tokio::test]
async fn bad_requests_get_aws_shaped_errors() {
    let (sb, _) = with_secret().await;
    let a = raw_json(&sb, "secretsmanager.GetSecretValue", None, "{not json").await;
    assert_error(&a, 400, "SerializationException");
    let a = sm(&sb, "FlyToTheMoon", json!({})).await;
    assert_error(&a, 400, "UnknownOperationException");
    let a = sm(&sb, "GetSecretValue", json!({})).await;
    assert_error(&a, 400, "InvalidParameterException");
    assert!(a.body["message"].as_str().unwrap().contains("SecretId"));
    let a = sm(&sb, "GetSecretValue", json!({"SecretId": "nope"})).await;
    assert_error(&a, 400, "ResourceNotFoundException");
    assert_eq!(
        a.body["message"],
        "Secrets Manager can't find the specified secret."
    );
    let a = sm(&sb, "GetSecretValue", json!({"SecretId": 5})).await;
    assert_error(&a, 400, "SerializationException");
    let a = sm(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "production/app_key", "SecretString": ""}),
    )
    .await;
    assert_error(&a, 400, "InvalidParameterException");
    let a = sm(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "production/app_key", "SecretString": "x".repeat(65_537)}),
    )
    .await;
    assert_error(&a, 400, "InvalidParameterException");
    let a = sm(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "production/app_key", "SecretString": "x".repeat(65_536)}),
    )
    .await;
    assert_eq!(a.status, 200, "65,536 bytes is allowed");
}

#[tokio::test]
async fn state_never_holds_values() {
    let (sb, _) = with_secret().await;
    let state = sb.snapshot();
    let text = state.to_string();
    assert!(!text.contains("old-value"), "{text}");
    let secrets = state["secrets"].as_array().unwrap();
    assert_eq!(secrets[0]["versions"][0]["id"], T1);
    assert_eq!(secrets[0]["versions"][0]["stages"], json!(["AWSCURRENT"]));
}
