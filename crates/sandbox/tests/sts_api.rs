//! STS over real HTTP: caller identity, listed keys, AssumeRole with MFA (real TOTP
//! codes), allowed callers, session credentials and their expiry.

mod sm_common;

use sandbox::sts::{totp_code, wall_clock_secs};
use serde_json::json;
use sm_common::*;

const SEED: &str = "JBSWY3DPEHPK3PXP";
const ALICE: &str = "AKIAALICE00000000000";
const OPERATOR: &str = "arn:aws:iam::123456789012:role/operator";
const MFA: &str = "arn:aws:iam::111111111111:mfa/alice";

const SCENARIO: &str = r#"
region = "eu-west-1"
account = "123456789012"

[sts]
min_session_seconds = 1

[[sts.keys]]
access_key_id = "AKIAALICE00000000000"
secret_access_key = "alice-secret"
arn = "arn:aws:iam::111111111111:user/alice"

[[sts.roles]]
arn = "arn:aws:iam::123456789012:role/operator"
mfa_serial = "arn:aws:iam::111111111111:mfa/alice"
totp_seed = "JBSWY3DPEHPK3PXP"
max_session_seconds = 7200

[[sts.roles]]
arn = "arn:aws:iam::123456789012:role/restricted"
allowed_callers = ["arn:aws:iam::111111111111:user/bob"]

[[sts.roles]]
arn = "arn:aws:iam::123456789012:role/open"

[[sts.roles]]
arn = "arn:aws:iam::123456789012:role/recent-mfa"
mfa_serial = "arn:aws:iam::111111111111:mfa/alice"
max_mfa_age_seconds = 600

[[secrets]]
name = "s"
value = "v"
"#;

fn code_now() -> String {
    totp_code(SEED, wall_clock_secs()).unwrap()
}

fn wrong_code() -> String {
    // A code that is valid at no step within ±2 of now.
    let now = wall_clock_secs();
    let near: Vec<String> = (0..5)
        .map(|i| totp_code(SEED, now + i * 30 - 60).unwrap())
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

#[tokio::test]
async fn get_caller_identity_of_a_listed_key() {
    let sb = start(SCENARIO).await;
    let (status, xml) = sts(&sb, Some(ALICE), &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains("xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\""));
    assert_eq!(
        xml_field(&xml, "Arn").unwrap(),
        "arn:aws:iam::111111111111:user/alice"
    );
    assert_eq!(xml_field(&xml, "Account").unwrap(), "111111111111");
    assert!(xml_field(&xml, "UserId").unwrap().starts_with("AIDA"));
    assert!(xml_field(&xml, "RequestId").is_some());
}

#[tokio::test]
async fn any_key_is_accepted_when_none_are_listed() {
    let sb = start("account = \"210987654321\"\n").await;
    let (status, xml) = sts(&sb, Some("AKIAWHOEVER"), &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(
        xml_field(&xml, "Arn").unwrap(),
        "arn:aws:iam::210987654321:user/sandbox"
    );
    let a = raw_json(&sb, "secretsmanager.ListSecrets", Some("AKIAWHOEVER"), "{}").await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn unknown_keys_are_rejected_when_keys_are_listed() {
    let sb = start(SCENARIO).await;
    let (status, xml) = sts(&sb, Some("AKIAMALLORY"), &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 403);
    assert_eq!(xml_field(&xml, "Code").unwrap(), "InvalidClientTokenId");
    assert_eq!(
        xml_field(&xml, "Message").unwrap(),
        "The security token included in the request is invalid."
    );
    let a = raw_json(&sb, "secretsmanager.ListSecrets", Some("AKIAMALLORY"), "{}").await;
    assert_error(&a, 400, "UnrecognizedClientException");
    let a = raw_json(&sb, "secretsmanager.ListSecrets", Some(ALICE), "{}").await;
    assert_eq!(a.status, 200);
}

async fn assume(sb: &sandbox::Sandbox, role: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let mut params = vec![
        ("Action", "AssumeRole"),
        ("RoleArn", role),
        ("RoleSessionName", "secret-rollout"),
    ];
    params.extend_from_slice(extra);
    sts(sb, Some(ALICE), &params).await
}

#[tokio::test]
async fn assume_role_with_the_right_mfa_code() {
    let sb = start(SCENARIO).await;
    let code = code_now();
    // Session expiry is on the real clock (as in AWS: clients compare it with theirs), so
    // it is bracketed by the wall clock read before and after the call: the sandbox reads
    // it once in between and adds exactly the duration asked for.
    let issued_from = wall_clock_secs();
    let (status, xml) = assume(
        &sb,
        OPERATOR,
        &[
            ("SerialNumber", MFA),
            ("TokenCode", &code),
            ("DurationSeconds", "7200"),
        ],
    )
    .await;
    let issued_to = wall_clock_secs();
    assert_eq!(status, 200, "{xml}");
    let key = xml_field(&xml, "AccessKeyId").unwrap();
    assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
    assert_eq!(xml_field(&xml, "SecretAccessKey").unwrap().len(), 40);
    assert!(!xml_field(&xml, "SessionToken").unwrap().is_empty());
    let expiration = xml_field(&xml, "Expiration").unwrap();
    let exp =
        time::OffsetDateTime::parse(&expiration, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp() as u64;
    assert!(
        (issued_from + 7200..=issued_to + 7200).contains(&exp),
        "{expiration}: 7200s after a moment in [{issued_from}, {issued_to}]"
    );
    assert_eq!(
        xml_field(&xml, "Arn").unwrap(),
        "arn:aws:sts::123456789012:assumed-role/operator/secret-rollout"
    );
    assert!(xml_field(&xml, "AssumedRoleId")
        .unwrap()
        .ends_with(":secret-rollout"));

    // The session key is now accepted and is the assumed role.
    let (status, me) = sts(&sb, Some(&key), &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        xml_field(&me, "Arn").unwrap(),
        "arn:aws:sts::123456789012:assumed-role/operator/secret-rollout"
    );
    assert_eq!(xml_field(&me, "Account").unwrap(), "123456789012");
    let a = raw_json(
        &sb,
        "secretsmanager.GetSecretValue",
        Some(&key),
        &json!({"SecretId": "s"}).to_string(),
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn assume_role_with_a_wrong_or_missing_mfa_code_is_denied() {
    let sb = start(SCENARIO).await;
    let wrong = wrong_code();
    let code = code_now();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("SerialNumber", MFA), ("TokenCode", &wrong)],
        vec![("SerialNumber", MFA)],
        vec![],
        vec![
            ("SerialNumber", "arn:aws:iam::111111111111:mfa/bob"),
            ("TokenCode", &code),
        ],
    ];
    for extra in cases {
        let (status, xml) = assume(&sb, OPERATOR, &extra).await;
        assert_eq!(status, 403, "{extra:?}: {xml}");
        assert_eq!(xml_field(&xml, "Code").unwrap(), "AccessDenied");
        assert_eq!(
            xml_field(&xml, "Message").unwrap(),
            "MultiFactorAuthentication failed with invalid MFA one time pass code."
        );
    }
}

#[tokio::test]
async fn unknown_role_or_caller_not_allowed_is_denied() {
    let sb = start(SCENARIO).await;
    for role in [
        "arn:aws:iam::123456789012:role/restricted",
        "arn:aws:iam::123456789012:role/nope",
    ] {
        let (status, xml) = assume(&sb, role, &[]).await;
        assert_eq!(status, 403, "{xml}");
        assert_eq!(xml_field(&xml, "Code").unwrap(), "AccessDenied");
        assert_eq!(
            xml_field(&xml, "Message").unwrap(),
            format!("User: arn:aws:iam::111111111111:user/alice is not authorized to perform: sts:AssumeRole on resource: {role}")
        );
    }
    // Over the role's maximum (3600 by default).
    let (status, xml) = assume(
        &sb,
        "arn:aws:iam::123456789012:role/open",
        &[("DurationSeconds", "7200")],
    )
    .await;
    assert_eq!(status, 400, "{xml}");
    assert_eq!(xml_field(&xml, "Code").unwrap(), "ValidationError");
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let sb = start(SCENARIO).await;
    let (status, xml) = assume(
        &sb,
        "arn:aws:iam::123456789012:role/open",
        &[("DurationSeconds", "900")],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let key = xml_field(&xml, "AccessKeyId").unwrap();
    let a = raw_json(&sb, "secretsmanager.ListSecrets", Some(&key), "{}").await;
    assert_eq!(a.status, 200);

    let (status, _) = control(&sb, "POST", "/_sandbox/sts/expire-sessions", "").await;
    assert_eq!(status, 200);

    let a = raw_json(&sb, "secretsmanager.ListSecrets", Some(&key), "{}").await;
    assert_error(&a, 400, "ExpiredTokenException");
    assert_eq!(
        a.body["message"],
        "The security token included in the request is expired"
    );
    let (status, xml) = sts(&sb, Some(&key), &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 403);
    assert_eq!(xml_field(&xml, "Code").unwrap(), "ExpiredToken");
    // The long-term key is unaffected.
    let a = raw_json(&sb, "secretsmanager.ListSecrets", Some(ALICE), "{}").await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn minimum_duration_comes_from_the_scenario() {
    let sb = start(SCENARIO).await;
    let (status, xml) = assume(
        &sb,
        "arn:aws:iam::123456789012:role/open",
        &[("DurationSeconds", "1")],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let strict = start("[[sts.roles]]\narn = \"arn:aws:iam::123456789012:role/open\"\n").await;
    let (status, xml) = sts(
        &strict,
        Some("AKIAANY"),
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", "arn:aws:iam::123456789012:role/open"),
            ("RoleSessionName", "s1"),
            ("DurationSeconds", "1"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{xml}");
    assert_eq!(xml_field(&xml, "Code").unwrap(), "ValidationError");
    assert!(xml.contains("greater than or equal to 900"), "{xml}");
}

#[tokio::test]
async fn unknown_action_and_missing_parameters() {
    let sb = start(SCENARIO).await;
    let (status, xml) = sts(&sb, Some(ALICE), &[("Action", "DecodeEverything")]).await;
    assert_eq!(status, 400);
    assert_eq!(xml_field(&xml, "Code").unwrap(), "InvalidAction");
    let (status, xml) = sts(&sb, Some(ALICE), &[("Action", "AssumeRole")]).await;
    assert_eq!(status, 400);
    assert_eq!(xml_field(&xml, "Code").unwrap(), "ValidationError");
}

/// GetSessionToken: an IAM user's MFA session (12 hours by default) that roles wanting MFA
/// accept without a new code, whose MFA age a role's `max_mfa_age_seconds` limits; the
/// call log names the key each STS call was signed with and the key it issued, never the
/// code.
#[tokio::test]
async fn get_session_token_carries_the_mfa_context_and_its_age_into_assume_role() {
    let sb = start(SCENARIO).await;
    let code = code_now();
    let before = wall_clock_secs();
    let (status, xml) = sts(
        &sb,
        Some(ALICE),
        &[
            ("Action", "GetSessionToken"),
            ("SerialNumber", MFA),
            ("TokenCode", &code),
        ],
    )
    .await;
    let after = wall_clock_secs();
    assert_eq!(status, 200, "{xml}");
    assert!(
        xml.contains("<GetSessionTokenResult><Credentials>"),
        "{xml}"
    );
    let session = xml_field(&xml, "AccessKeyId").unwrap();
    assert!(session.starts_with("ASIA"), "{session}");
    let exp = time::OffsetDateTime::parse(
        &xml_field(&xml, "Expiration").unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp() as u64;
    assert!(
        (before + 43_200..=after + 43_200).contains(&exp),
        "12 hours by default"
    );
    // The session is alice.
    let (_, who) = sts(&sb, Some(&session), &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(
        xml_field(&who, "Arn").unwrap(),
        "arn:aws:iam::111111111111:user/alice"
    );
    // A role wanting MFA takes the session without a code; so does one wanting it recent.
    for role in [OPERATOR, "arn:aws:iam::123456789012:role/recent-mfa"] {
        let (status, xml) = sts(
            &sb,
            Some(&session),
            &[
                ("Action", "AssumeRole"),
                ("RoleArn", role),
                ("RoleSessionName", "session"),
                ("DurationSeconds", "900"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{role}: {xml}");
    }
    // A session cannot ask for another.
    let (status, xml) = sts(&sb, Some(&session), &[("Action", "GetSessionToken")]).await;
    assert_eq!(status, 403, "{xml}");
    assert_eq!(xml_field(&xml, "Code").unwrap(), "AccessDenied");
    // An hour later the session's MFA is too old for the role that wants it recent, which
    // says only "not authorized", as AWS does; the other role still takes it.
    let (status, _) = control(&sb, "POST", "/_sandbox/sts/age-mfa", r#"{"seconds": 3600}"#).await;
    assert_eq!(status, 200);
    let (status, _) = control(&sb, "POST", "/_sandbox/sts/age-mfa", r#"{"seconds": -1}"#).await;
    assert_eq!(status, 400, "a negative age is refused");
    let assume_from = |role: &'static str| {
        let sb = &sb;
        let session = session.clone();
        async move {
            sts(
                sb,
                Some(&session),
                &[
                    ("Action", "AssumeRole"),
                    ("RoleArn", role),
                    ("RoleSessionName", "session"),
                    ("DurationSeconds", "900"),
                ],
            )
            .await
        }
    };
    let (status, xml) = assume_from("arn:aws:iam::123456789012:role/recent-mfa").await;
    assert_eq!(status, 403, "{xml}");
    assert_eq!(
        xml_field(&xml, "Message").unwrap(),
        "User: arn:aws:iam::111111111111:user/alice is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/recent-mfa"
    );
    let (status, xml) = assume_from(OPERATOR).await;
    assert_eq!(status, 200, "{xml}");

    // Without a code: a session without MFA, which a role wanting MFA refuses.
    let (status, xml) = sts(&sb, Some(ALICE), &[("Action", "GetSessionToken")]).await;
    assert_eq!(status, 200, "{xml}");
    let plain = xml_field(&xml, "AccessKeyId").unwrap();
    let (status, xml) = sts(
        &sb,
        Some(&plain),
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", OPERATOR),
            ("RoleSessionName", "session"),
            ("DurationSeconds", "900"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{xml}");
    assert!(xml_field(&xml, "Message")
        .unwrap()
        .contains("MultiFactorAuthentication"));
    // A wrong code, and a duration past 36 hours.
    let (status, xml) = sts(
        &sb,
        Some(ALICE),
        &[
            ("Action", "GetSessionToken"),
            ("SerialNumber", MFA),
            ("TokenCode", &wrong_code()),
        ],
    )
    .await;
    assert_eq!(status, 403, "{xml}");
    assert!(xml_field(&xml, "Message")
        .unwrap()
        .contains("MultiFactorAuthentication"));
    let (status, xml) = sts(
        &sb,
        Some(ALICE),
        &[("Action", "GetSessionToken"), ("DurationSeconds", "129601")],
    )
    .await;
    assert_eq!(status, 400, "{xml}");
    assert_eq!(xml_field(&xml, "Code").unwrap(), "ValidationError");

    // The call log: who signed, what was issued, whether a code came; never the code.
    let calls = sb.snapshot()["calls"].clone();
    let first = calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["operation"] == "GetSessionToken")
        .unwrap()
        .clone();
    assert_eq!(first["subject"]["signed_with"], ALICE);
    assert_eq!(first["subject"]["issued"], session.as_str());
    assert_eq!(first["subject"]["mfa_code"], true);
    assert_eq!(first["subject"]["SerialNumber"], MFA);
    assert!(
        !calls.to_string().contains(&code),
        "the code is in the call log"
    );
}
