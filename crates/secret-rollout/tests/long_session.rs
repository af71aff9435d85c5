//! Credentials that last (issue 15): a rollout longer than the role's maximum session
//! finishes with the one MFA code typed at the prompt, the role re-assumed from the MFA
//! session (GetSessionToken) as its credentials near their end; and a role whose trust
//! policy demands a recent MFA (`aws:MultiFactorAuthAge`) makes the tool ask again, in
//! flight, saying why.
//!
//! The sandbox's clock stands still (speed 0) until the sandbox's STS log shows the role
//! renewed, so the rollout outlives the role's sessions whatever the machine's speed;
//! then it runs fast and finishes. Ground truth is the sandbox's: its STS call log (who
//! signed each call, whether a code came with it) and the version every task resolved.

#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::{start_with, TestEnv, CLUSTER, SHARED};
use nix::sys::wait::WaitStatus;
use sandbox::sts::{totp_code, wall_clock_secs, AccessKey, Role};
use sandbox::Scenario;
use secret_rollout_core::error::exit;
use serde_json::Value;

const SEED: &str = "JBSWY3DPEHPK3PXP";
const ROLE: &str = "arn:aws:iam::123456789012:role/operator";
const SERIAL: &str = "arn:aws:iam::111111111111:mfa/alice";
const ALICE_KEY: &str = "AKIAALICE00000000000";
/// Alice's long-term secret key (the sandbox does not check signatures).
const ALICE_SECRET: &str = "alice-long-term-secret-do-not-show";
/// The role's maximum session: far shorter than the rollout.
const ROLE_SECONDS: u64 = 3;
/// A hang guard, never an assertion on timing.
const HANG: Duration = Duration::from_secs(120);

/// The sample environment, with alice's keys, her MFA device, and a role whose sessions
/// last [`ROLE_SECONDS`] (and whose trust policy wants an MFA at most `max_mfa_age`
/// seconds old, when given).
fn scenario(max_mfa_age: Option<u64>) -> Scenario {
    let mut s = Scenario::sample();
    s.sts.min_session_seconds = Some(1);
    s.sts.keys = vec![AccessKey {
        access_key_id: ALICE_KEY.into(),
        secret_access_key: ALICE_SECRET.into(),
        arn: Some("arn:aws:iam::111111111111:user/alice".into()),
        account: None,
    }];
    s.sts.roles.push(Role {
        arn: ROLE.into(),
        mfa_serial: Some(SERIAL.into()),
        totp_seed: Some(SEED.into()),
        max_session_seconds: Some(ROLE_SECONDS),
        allowed_callers: Some(vec!["arn:aws:iam::111111111111:user/alice".into()]),
        max_mfa_age_seconds: max_mfa_age,
    });
    s
}

fn write_profiles(env: &TestEnv) {
    write_profiles_with(env, "");
}

/// [`write_profiles`], with `extra` lines in the source profile's credentials.
fn write_profiles_with(env: &TestEnv, extra: &str) {
    std::fs::write(
        env.dir.path().join("aws-config"),
        format!(
            "[profile identity]\nregion = eu-west-1\n\n[profile production]\nregion = eu-west-1\nrole_arn = {ROLE}\nsource_profile = identity\nmfa_serial = {SERIAL}\nduration_seconds = {ROLE_SECONDS}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        env.dir.path().join("aws-credentials"),
        format!(
            "[identity]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n{extra}"
        ),
    )
    .unwrap();
}

fn good_code() -> String {
    totp_code(SEED, wall_clock_secs()).unwrap()
}

/// A code valid at no step the sandbox accepts (now, and one step either side).
fn wrong_code() -> String {
    let t = wall_clock_secs();
    let valid: Vec<String> = [t - 60, t - 30, t, t + 30, t + 60]
        .iter()
        .map(|s| totp_code(SEED, *s).unwrap())
        .collect();
    (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// `replace SHARED --generate` on the sample cluster, signed in with the `production`
/// profile only (no keys in the environment), the code asked at the terminal.
fn replace(env: &TestEnv) -> std::process::Command {
    let mut cmd = env.cli();
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
    ] {
        cmd.env_remove(k);
    }
    cmd.args([
        "replace",
        SHARED,
        "--generate",
        "--cluster",
        CLUSTER,
        "--yes",
        "--max-poll",
        "100ms",
        "--profile",
        "production",
        "--endpoint-url",
        &env.sandbox.endpoint(),
    ]);
    cmd
}

/// Waits until `ready` holds of the sandbox; panics if the tool ended first.
async fn wait_for(
    env: &TestEnv,
    tool: &tokio::task::JoinHandle<(i32, String)>,
    what: &str,
    ready: impl Fn(&TestEnv) -> bool,
) {
    let t0 = Instant::now();
    while !ready(env) {
        assert!(!tool.is_finished(), "the tool ended before {what}");
        assert!(t0.elapsed() < HANG, "never reached: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sts_calls(env: &TestEnv, op: &str) -> Vec<Value> {
    env.calls_of(op)
        .into_iter()
        .map(|c| {
            let mut s = c["subject"].clone();
            s["error"] = c["error"].clone();
            s
        })
        .collect()
}

/// Every running task that reads the shared secret holds the current version, and the
/// rotation made one.
fn assert_rotated(env: &TestEnv, old: &str) {
    let current = env.current_version(SHARED);
    assert_ne!(current, old, "a new version is current");
    let tasks: Vec<Value> = env.state()["ecs"]["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["desiredStatus"] == "RUNNING")
        .filter(|t| {
            t["secrets"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == SHARED))
        })
        .collect();
    assert!(tasks.len() >= 3, "the sample's consumers run: {tasks:?}");
    for t in &tasks {
        for s in t["secrets"].as_array().unwrap() {
            if s["name"] == SHARED {
                assert_eq!(s["version_id"], current.as_str(), "task {}", t["taskArn"]);
            }
        }
    }
}

fn exited(p: &rexpect::session::PtySession) -> i32 {
    match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("the command did not exit: {other:?}"),
    }
}

/// No session token (every token the sandbox issues starts alike), no secret key of the
/// cached sessions, and not alice's secret key, in the output; nothing of alice's keys in
/// the cache. Access key ids are identifiers, not secrets (CloudTrail shows them, and the
/// SDK's debug log names them).
fn no_credentials_shown(env: &TestEnv, out: &str) {
    assert!(
        !out.contains("FwoGZXIvYXdzE"),
        "a session token shown: {out}"
    );
    assert!(
        !out.contains(ALICE_SECRET),
        "the long-term secret shown: {out}"
    );
    let cache = env.dir.path().join("cache");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(!files.is_empty(), "sessions cached in {}", cache.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains(ALICE_KEY) && !text.contains(ALICE_SECRET),
            "the long-term key cached: {f:?}"
        );
        let entry: Value = serde_json::from_str(&text).unwrap();
        for field in ["secret_access_key", "session_token"] {
            let secret = entry[field].as_str().unwrap();
            assert!(secret.len() >= 20, "{f:?} {field}");
            assert!(!out.contains(secret), "the {field} of {f:?} shown");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_longer_than_the_role_session_needs_one_mfa_code() {
    let env = start_with(scenario(None), 0.0).await;
    write_profiles(&env);
    let old = env.current_version(SHARED);
    let prompt = format!("MFA code for {SERIAL}: ");
    let mut cmd = replace(&env);
    // Debug logging on: the renewals log no credential either.
    cmd.arg("-vv");
    let tool = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(HANG.as_millis() as u64)).unwrap();
        p.exp_string(&prompt).unwrap();
        p.send_line(&good_code()).unwrap();
        let rest = p.exp_eof().unwrap();
        (exited(&p), rest)
    });
    // The clock stands still: the deployments cannot finish until the role has been
    // assumed three times (two renewals) from the one MFA session.
    wait_for(&env, &tool, "three AssumeRole", |e| {
        e.calls("AssumeRole") >= 3
    })
    .await;
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(2000.0)
        .unwrap();
    let (code, out) = tool.await.unwrap();
    assert_eq!(code, exit::OK, "{out}");
    assert!(
        !out.contains("MFA code for"),
        "asked for a code again: {out}"
    );
    no_credentials_shown(&env, &out);

    // The STS log: one GetSessionToken, with the code, signed with alice's key; every
    // AssumeRole signed with the session it issued, none with a code, none refused.
    let gst = sts_calls(&env, "GetSessionToken");
    assert_eq!(gst.len(), 1, "{gst:?}");
    assert_eq!(gst[0]["mfa_code"], true);
    assert_eq!(gst[0]["SerialNumber"], SERIAL);
    assert_eq!(gst[0]["signed_with"], ALICE_KEY);
    let session = gst[0]["issued"].as_str().expect("a session issued");
    let assumed = sts_calls(&env, "AssumeRole");
    assert!(assumed.len() >= 3, "{assumed:?}");
    for a in &assumed {
        assert_eq!(a["signed_with"], session, "{a}");
        assert_eq!(a["mfa_code"], false, "{a}");
        assert_eq!(a["RoleArn"], ROLE, "{a}");
        assert_eq!(a["error"], Value::Null, "{a}");
    }
    // No call was refused for expired credentials.
    let expired: Vec<Value> = env.state()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["error"].as_str().is_some_and(|e| e.contains("Expired")))
        .cloned()
        .collect();
    assert!(expired.is_empty(), "{expired:?}");
    assert_rotated(&env, &old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_demands_a_recent_mfa_makes_the_tool_ask_again_and_say_why() {
    let env = start_with(scenario(Some(600)), 0.0).await;
    write_profiles(&env);
    let old = env.current_version(SHARED);
    let prompt = format!("MFA code for {SERIAL}: ");
    let cmd = replace(&env);
    let tool = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(HANG.as_millis() as u64)).unwrap();
        p.exp_string(&prompt).unwrap();
        p.send_line(&good_code()).unwrap();
        // Asked again, in flight, and told why.
        let (before, _) = p.exp_regex("MFA code for [^ ]+: ").unwrap();
        p.send_line(&good_code()).unwrap();
        let rest = p.exp_eof().unwrap();
        (exited(&p), format!("{before}{rest}"))
    });
    // Renewed once from the MFA session; then the session's MFA is an hour old, past the
    // role's 10 minutes: the next renewal is refused.
    wait_for(&env, &tool, "two AssumeRole", |e| {
        e.calls("AssumeRole") >= 2
    })
    .await;
    env.sandbox.world().lock().unwrap().sts.age_mfa(3600);
    wait_for(
        &env,
        &tool,
        "a second MFA session and a role from it",
        |e| {
            let gst = sts_calls(e, "GetSessionToken");
            gst.len() == 2
                && sts_calls(e, "AssumeRole")
                    .iter()
                    .any(|a| a["signed_with"] == gst[1]["issued"] && a["error"].is_null())
        },
    )
    .await;
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(2000.0)
        .unwrap();
    let (code, out) = tool.await.unwrap();
    assert_eq!(code, exit::OK, "{out}");
    assert!(
        out.contains("refused the MFA session of profile `identity`")
            && out.contains("aws:MultiFactorAuthAge")
            && out.contains("a new MFA code is needed"),
        "{out}"
    );
    no_credentials_shown(&env, &out);

    // Two MFA sessions, each with a code; exactly one AssumeRole refused (the aged
    // session's), and the role assumed from the new session after it.
    let gst = sts_calls(&env, "GetSessionToken");
    assert_eq!(gst.len(), 2, "{gst:?}");
    assert!(gst.iter().all(|g| g["mfa_code"] == true), "{gst:?}");
    let assumed = sts_calls(&env, "AssumeRole");
    let refused: Vec<&Value> = assumed.iter().filter(|a| !a["error"].is_null()).collect();
    assert_eq!(refused.len(), 1, "{assumed:?}");
    assert_eq!(refused[0]["error"], "AccessDenied");
    assert_eq!(refused[0]["signed_with"], gst[0]["issued"]);
    let last = assumed.last().unwrap();
    assert_eq!(last["signed_with"], gst[1]["issued"], "{assumed:?}");
    assert!(assumed.iter().all(|a| a["mfa_code"] == false));
    assert_rotated(&env, &old);
}

/// A source profile with temporary keys (`aws_session_token`: what another tool left
/// there) cannot hold an MFA session: the code goes to AssumeRole, and before the role's
/// credentials end the tool asks for a new one, in flight, and says why. A wrong code
/// typed then is refused and the next one asked: a typo does not cost the rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_source_keys_make_the_tool_ask_before_the_role_ends_and_say_why() {
    let env = start_with(scenario(None), 0.0).await;
    write_profiles_with(&env, "aws_session_token = from-another-tool\n");
    let old = env.current_version(SHARED);
    let prompt = format!("MFA code for {SERIAL}: ");
    let cmd = replace(&env);
    let tool = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(HANG.as_millis() as u64)).unwrap();
        p.exp_string(&prompt).unwrap();
        p.send_line(&good_code()).unwrap();
        let (before, _) = p.exp_regex("MFA code for [^ ]+: ").unwrap();
        p.send_line(&wrong_code()).unwrap();
        let (refused, _) = p.exp_regex("MFA code for [^ ]+: ").unwrap();
        p.send_line(&good_code()).unwrap();
        let rest = p.exp_eof().unwrap();
        (exited(&p), format!("{before}{refused}{rest}"))
    });
    wait_for(&env, &tool, "two AssumeRole", |e| {
        sts_calls(e, "AssumeRole")
            .iter()
            .filter(|a| a["error"].is_null())
            .count()
            >= 2
    })
    .await;
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(2000.0)
        .unwrap();
    let (code, out) = tool.await.unwrap();
    assert_eq!(code, exit::OK, "{out}");
    assert!(
        out.contains(&format!("the credentials of role {ROLE} end at"))
            && out.contains("source profile `identity` are temporary")
            && out.contains("a new MFA code is needed"),
        "{out}"
    );
    assert!(
        out.contains("the MFA code was not accepted") && out.contains("type the next code"),
        "{out}"
    );
    no_credentials_shown(&env, &out);
    // No MFA session: each AssumeRole carries a code, signed with the source's keys; the
    // wrong one was refused.
    assert_eq!(env.calls("GetSessionToken"), 0);
    let assumed = sts_calls(&env, "AssumeRole");
    assert_eq!(assumed.len(), 3, "{assumed:?}");
    for a in &assumed {
        assert_eq!(a["mfa_code"], true, "{a}");
        assert_eq!(a["signed_with"], ALICE_KEY, "{a}");
    }
    let errors: Vec<&Value> = assumed.iter().map(|a| &a["error"]).collect();
    assert_eq!(
        errors,
        [&Value::Null, &Value::from("AccessDenied"), &Value::Null],
        "{assumed:?}"
    );
    assert_rotated(&env, &old);
}
