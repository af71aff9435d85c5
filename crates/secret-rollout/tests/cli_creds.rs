//! Signing in through the binary against the sandbox's STS: an AWS config profile with
//! `role_arn`, `source_profile` and `mfa_serial`, real TOTP codes, the session cache,
//! expiry, a wrong code, and the environment aws-vault sets.

mod common;

use std::path::PathBuf;
use std::process::{Output, Stdio};

use common::{start_with, text, TestEnv};
use sandbox::sts::totp_code;
use sandbox::Scenario;
use secret_rollout_core::error::exit;

const SEED: &str = "JBSWY3DPEHPK3PXP";
const ROLE: &str = "arn:aws:iam::123456789012:role/operator";
const SERIAL: &str = "arn:aws:iam::111111111111:mfa/alice";
const ALICE_KEY: &str = "AKIAALICE00000000000";

fn scenario() -> Scenario {
    Scenario::from_toml(&format!(
        r#"
region = "eu-west-1"
account = "123456789012"

[sts]
[[sts.keys]]
access_key_id = "{ALICE_KEY}"
secret_access_key = "not-checked"
arn = "arn:aws:iam::111111111111:user/alice"

[[sts.keys]]
access_key_id = "ASIAVAULT00000000000"
secret_access_key = "not-checked"
arn = "arn:aws:sts::123456789012:assumed-role/operator/vault"

[[sts.roles]]
arn = "{ROLE}"
mfa_serial = "{SERIAL}"
totp_seed = "{SEED}"
allowed_callers = ["arn:aws:iam::111111111111:user/alice"]
"#
    ))
    .expect("scenario parses")
}

/// Writes the user's AWS config files: `production` assumes the role from `identity`
/// with MFA.
fn write_profiles(env: &TestEnv) {
    std::fs::write(
        env.dir.path().join("aws-config"),
        format!(
            "[profile identity]\nregion = eu-west-1\n\n[profile production]\nregion = eu-west-1\nrole_arn = {ROLE}\nsource_profile = identity\nmfa_serial = {SERIAL}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        env.dir.path().join("aws-credentials"),
        format!(
            "[identity]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = not-checked\n"
        ),
    )
    .unwrap();
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn good_code() -> String {
    totp_code(SEED, now()).unwrap()
}

/// A code valid at no step the sandbox accepts (now, and one step either side).
fn wrong_code() -> String {
    let t = now();
    let valid: Vec<String> = [t - 60, t - 30, t, t + 30, t + 60]
        .iter()
        .map(|s| totp_code(SEED, *s).unwrap())
        .collect();
    (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

fn cache_dir(env: &TestEnv) -> PathBuf {
    env.dir.path().join("cache")
}

fn cache_files(env: &TestEnv) -> Vec<PathBuf> {
    std::fs::read_dir(cache_dir(env))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Runs the binary like a user with only config files: no keys or endpoint in the
/// environment (the endpoint comes from `--endpoint-url`).
async fn run_user(
    env: &TestEnv,
    args: &[&str],
    stdin: Option<String>,
    extra: &[(&str, &str)],
) -> Output {
    let mut cmd = env.cli();
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let endpoint = env.sandbox.endpoint();
    cmd.args(args);
    if args.first() != Some(&"logout") {
        cmd.args(["--endpoint-url", &endpoint]);
    }
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(s) = stdin {
            let _ = child.stdin.take().unwrap().write_all(s.as_bytes());
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_profile_signs_in_once_reuses_the_session_and_asks_again_after_expiry() {
    let env = start_with(scenario(), 1.0).await;
    write_profiles(&env);
    let whoami = [
        "whoami",
        "--profile",
        "production",
        "--mfa-code-stdin",
        "--output",
        "json",
    ];

    // 1. First run: the code from stdin, AssumeRole with MFA, the session cached.
    let out = run_user(&env, &whoami, Some(format!("{}\n", good_code())), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["account"], "123456789012");
    assert!(
        doc["arn"]
            .as_str()
            .unwrap()
            .contains("assumed-role/operator/"),
        "{doc}"
    );
    assert!(
        doc["source"].as_str().unwrap().contains("new MFA session"),
        "{doc}"
    );
    assert!(doc["seconds_left"].as_u64().unwrap() > 3000, "{doc}");
    assert_eq!(env.calls("AssumeRole"), 1);
    let files = cache_files(&env);
    assert_eq!(files.len(), 1, "one session cached: {files:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cached = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!cached.contains(ALICE_KEY), "no long-term key in the cache");

    // 2. Second run: no code on stdin at all, and it works from the cache.
    let out = run_user(&env, &whoami, None, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("cached MFA session"),
        "{}",
        text(&out)
    );
    assert_eq!(env.calls("AssumeRole"), 1, "no second AssumeRole");

    // 3. Past its useful life (the cache is reused until 5 minutes before expiry): it
    //    asks again. Without a code that fails, asking for one.
    let mut session: serde_json::Value = serde_json::from_str(&cached).unwrap();
    session["expiration"] = (now() + 60).into();
    std::fs::write(&files[0], session.to_string()).unwrap();
    let out = run_user(&env, &whoami, None, &[]).await;
    assert_eq!(out.status.code(), Some(exit::CREDENTIALS), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mfa-code-stdin"),
        "{}",
        text(&out)
    );
    let out = run_user(&env, &whoami, Some(good_code()), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.calls("AssumeRole"), 2);

    // 4. The sandbox expires every session: the cached one is refused, forgotten, and the
    //    same run asks for a new code (none given: a clear credentials error).
    env.sandbox.world().lock().unwrap().expire_sessions();
    let out = run_user(&env, &whoami, None, &[]).await;
    assert_eq!(out.status.code(), Some(exit::CREDENTIALS), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signing in again"),
        "{}",
        text(&out)
    );
    assert!(
        cache_files(&env).is_empty(),
        "the refused session is forgotten"
    );
    // With a code, the run after expiry signs in again by itself.
    let out = run_user(&env, &whoami, Some(good_code()), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(cache_files(&env).len(), 1);
    let out = run_user(&env, &["logout", "--profile", "production"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("forgot"), "{}", text(&out));
    assert!(cache_files(&env).is_empty());
    assert_eq!(env.calls("AssumeRole"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_mfa_code_fails_clearly_and_caches_nothing() {
    let env = start_with(scenario(), 1.0).await;
    write_profiles(&env);
    let out = run_user(
        &env,
        &["whoami", "--profile", "production", "--mfa-code-stdin"],
        Some(wrong_code()),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(exit::CREDENTIALS), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MFA code was not accepted"), "{err}");
    assert!(err.contains(SERIAL), "{err}");
    assert!(out.stdout.is_empty());
    assert!(cache_files(&env).is_empty(), "nothing cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_vault_keys_are_used_for_its_own_profile_without_reading_the_config() {
    let env = start_with(scenario(), 1.0).await;
    // A config file that would fail to parse: it must not be read under aws-vault.
    std::fs::write(
        env.dir.path().join("aws-config"),
        "[profile broken\nnot ini",
    )
    .unwrap();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::minutes(45);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let out = run_user(
        &env,
        &["whoami", "--profile", "production"],
        None,
        &[
            ("AWS_VAULT", "production"),
            ("AWS_ACCESS_KEY_ID", "ASIAVAULT00000000000"),
            ("AWS_SECRET_ACCESS_KEY", "not-checked"),
            ("AWS_SESSION_TOKEN", "vault-session-token"),
            ("AWS_CREDENTIAL_EXPIRATION", &expires),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let so = stdout(&out);
    assert!(so.contains("assumed-role/operator/vault"), "{so}");
    assert!(so.contains("aws-vault (profile production)"), "{so}");
    assert!(
        so.contains("left)"),
        "expiry from AWS_CREDENTIAL_EXPIRATION: {so}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "nothing passed over, nothing said: {err}");
    assert_eq!(env.calls("AssumeRole"), 0);
}

/// Issue 21, item 5: credential precedence through the binary, one row per case, the way
/// the aws CLI decides it. Keys in the environment (CI, aws-vault, another credential
/// helper) win over the environment's `profile` in secret-rollout.toml, with a note naming
/// it; a typed `--profile` wins over both; no message mentions a `--profile` nobody typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_precedence_table() {
    let env = start_with(scenario(), 1.0).await;
    write_profiles(&env);
    let config = env.dir.path().join("secret-rollout.toml");
    std::fs::write(
        &config,
        "[environments.production]\nregion = \"eu-west-1\"\nprofile = \"production\"\nclusters = [\"c\"]\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap().to_string();
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let helper: Vec<(&str, &str)> = vec![
        ("AWS_ACCESS_KEY_ID", "ASIAVAULT00000000000"),
        ("AWS_SECRET_ACCESS_KEY", "not-checked"),
        ("AWS_SESSION_TOKEN", "helper-session-token"),
        ("AWS_CREDENTIAL_EXPIRATION", &expires),
    ];
    let vault = |profile: &'static str| {
        let mut v = helper.clone();
        v.push(("AWS_VAULT", profile));
        v
    };
    struct Row<'a> {
        what: &'a str,
        args: Vec<&'a str>,
        vars: Vec<(&'a str, &'a str)>,
        mfa: bool,
        source: &'a str,
        note: Option<&'a str>,
    }
    let env_prod = vec!["--config", cfg.as_str(), "--env", "production"];
    let with = |extra: &[&'static str]| {
        let mut a = env_prod.clone();
        a.extend_from_slice(extra);
        a
    };
    let rows = vec![
        Row {
            what: "the config's MFA profile alone: signed in with it",
            args: env_prod.clone(),
            vars: vec![],
            mfa: true,
            source: "profile production, role arn:aws:iam::123456789012:role/operator, new MFA session",
            note: None,
        },
        Row {
            what: "keys of a credential helper win over the config's profile",
            args: env_prod.clone(),
            vars: helper.clone(),
            mfa: false,
            source: "environment variables (AWS_ACCESS_KEY_ID)",
            note: Some("note: signing in with the credentials in the environment (AWS_ACCESS_KEY_ID), not with profile production (environment production in secret-rollout.toml); pass --profile production to use the profile"),
        },
        Row {
            what: "aws-vault of another profile wins over the config's profile",
            args: env_prod.clone(),
            vars: vault("operator"),
            mfa: false,
            source: "aws-vault (profile operator)",
            note: Some("note: signing in with the credentials aws-vault put in the environment (profile operator), not with profile production (environment production in secret-rollout.toml); pass --profile production to use the profile"),
        },
        Row {
            what: "aws-vault of the config's profile: nothing to say",
            args: env_prod.clone(),
            vars: vault("production"),
            mfa: false,
            source: "aws-vault (profile production)",
            note: None,
        },
        Row {
            what: "a typed --profile wins over keys in the environment",
            args: with(&["--profile", "identity"]),
            vars: helper.clone(),
            mfa: false,
            source: "profile identity",
            note: Some("note: signing in with profile identity (--profile), not with the credentials in the environment (AWS_ACCESS_KEY_ID)"),
        },
        Row {
            what: "a typed --profile wins over aws-vault of another profile",
            args: with(&["--profile", "identity"]),
            vars: vault("operator"),
            mfa: false,
            source: "profile identity",
            note: Some("note: signing in with profile identity (--profile), not with the credentials aws-vault put in the environment (profile operator)"),
        },
        Row {
            what: "a typed --profile wins over the config's profile",
            args: with(&["--profile", "identity"]),
            vars: vec![],
            mfa: false,
            source: "profile identity",
            note: None,
        },
    ];
    for row in rows {
        let mut args = vec!["whoami", "--output", "json"];
        args.extend(row.args.iter().copied());
        if row.mfa {
            args.push("--mfa-code-stdin");
        }
        let before = env.calls("AssumeRole");
        let stdin = row.mfa.then(good_code);
        let out = run_user(&env, &args, stdin, &row.vars).await;
        let what = row.what;
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["source"], row.source, "{what}");
        assert_eq!(
            env.calls("AssumeRole") - before,
            usize::from(row.mfa),
            "{what}: an MFA sign-in exactly when the profile is used"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        match row.note {
            Some(note) => assert_eq!(err.trim_end(), note, "{what}"),
            None => assert!(err.is_empty(), "{what}: {err}"),
        }
        assert!(!err.contains("ignoring"), "{what}: {err}");
        if !row.args.contains(&"--profile") {
            assert!(!err.contains("--profile)"), "{what}: {err}");
        }
        let _ = std::fs::remove_dir_all(cache_dir(&env));
    }
}

/// Credentials past their `AWS_CREDENTIAL_EXPIRATION` are not "who you are": exit 3 with
/// one line and the way to sign in again, instead of "(expired)" and exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_with_expired_credentials_exits_3() {
    let env = start_with(scenario(), 1.0).await;
    let out = run_user(
        &env,
        &["whoami"],
        None,
        &[
            ("AWS_VAULT", "production"),
            ("AWS_ACCESS_KEY_ID", "ASIAVAULT00000000000"),
            ("AWS_SECRET_ACCESS_KEY", "not-checked"),
            ("AWS_SESSION_TOKEN", "vault-session-token"),
            ("AWS_CREDENTIAL_EXPIRATION", "2020-01-01T00:00:00Z"),
        ],
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        err.contains("error: these credentials expired at 2020-01-01"),
        "{err}"
    );
    assert!(err.contains("hint: sign in again"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_checks_the_environment_account_without_needing_clusters() {
    let env = start_with(scenario(), 1.0).await;
    std::fs::create_dir_all(env.dir.path().join("config")).unwrap();
    let config = env.dir.path().join("secret-rollout.toml");
    std::fs::write(
        &config,
        "[environments.right]\nregion = \"eu-west-1\"\naccount_id = \"111111111111\"\nclusters = [\"c\"]\n\n[environments.wrong]\nregion = \"eu-west-1\"\naccount_id = \"999999999999\"\nclusters = [\"c\"]\n",
    )
    .unwrap();
    let keys = [
        ("AWS_ACCESS_KEY_ID", ALICE_KEY),
        ("AWS_SECRET_ACCESS_KEY", "not-checked"),
    ];
    let cfg = config.to_str().unwrap();
    let out = run_user(
        &env,
        &["whoami", "--config", cfg, "--env", "right"],
        None,
        &keys,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("matches account 111111111111"),
        "{}",
        text(&out)
    );
    let out = run_user(
        &env,
        &[
            "whoami", "--config", cfg, "--env", "wrong", "--output", "json",
        ],
        None,
        &keys,
    )
    .await;
    assert_eq!(out.status.code(), Some(exit::CREDENTIALS), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["matches"], false);
    assert_eq!(doc["expected_account"], "999999999999");
}

/// The code typed at the real prompt, through a pseudo-terminal: asked once, then the
/// cached session; after logout a wrong code is refused and nothing is cached.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_code_typed_at_the_terminal_prompt() {
    let env = start_with(scenario(), 1.0).await;
    write_profiles(&env);
    let endpoint = env.sandbox.endpoint();
    let command = |args: &[&str]| {
        let mut cmd = env.cli();
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL",
        ] {
            cmd.env_remove(k);
        }
        cmd.args(args);
        cmd
    };
    let whoami = [
        "whoami",
        "--profile",
        "production",
        "--endpoint-url",
        &endpoint,
    ];
    let prompt = format!("MFA code for {SERIAL}: ");
    // The timeout only bounds a hung child; nothing depends on timing.
    let spawn = |cmd| rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();

    let (first, second) = (command(&whoami), command(&whoami));
    let prompt2 = prompt.clone();
    tokio::task::spawn_blocking(move || {
        let mut p = spawn(first);
        p.exp_string(&prompt2).unwrap();
        p.send_line(&good_code()).unwrap();
        p.exp_string("account:     123456789012").unwrap();
        p.exp_string("new MFA session").unwrap();
        p.exp_eof().unwrap();

        let mut p = spawn(second);
        let before = p.exp_string("cached MFA session").unwrap();
        assert!(!before.contains("MFA code"), "asked again: {before}");
        p.exp_eof().unwrap();
    })
    .await
    .unwrap();
    assert_eq!(env.calls("AssumeRole"), 1);

    let out = run_user(&env, &["logout"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(cache_files(&env).is_empty());
    let third = command(&whoami);
    tokio::task::spawn_blocking(move || {
        let mut p = spawn(third);
        p.exp_string(&prompt).unwrap();
        p.send_line(&wrong_code()).unwrap();
        p.exp_string("the MFA code was not accepted").unwrap();
        p.exp_eof().unwrap();
    })
    .await
    .unwrap();
    assert!(
        cache_files(&env).is_empty(),
        "a failed sign-in cached nothing"
    );
    assert_eq!(env.calls("AssumeRole"), 2);
}
