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

    // 1. First run: the code from stdin goes to GetSessionToken (the MFA session), the
    //    role is assumed from that session; both are cached.
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
    // The time left is the MFA session's (12 hours): the role is renewed from it.
    assert!(doc["seconds_left"].as_u64().unwrap() > 11 * 3600, "{doc}");
    assert_eq!(env.calls("GetSessionToken"), 1);
    assert_eq!(env.calls("AssumeRole"), 1);
    let gst = &env.calls_of("GetSessionToken")[0]["subject"];
    assert_eq!(gst["SerialNumber"], SERIAL);
    assert_eq!(gst["mfa_code"], true);
    assert_eq!(gst["signed_with"], ALICE_KEY);
    let ar = &env.calls_of("AssumeRole")[0]["subject"];
    assert_eq!(ar["mfa_code"], false, "the code went to GetSessionToken");
    assert_eq!(
        ar["signed_with"], gst["issued"],
        "assumed from the MFA session"
    );
    let files = cache_files(&env);
    assert_eq!(files.len(), 2, "the role's and the MFA session: {files:?}");
    let role_file = cache_dir(&env).join("session-production.json");
    let mfa_file = cache_dir(&env).join("session-mfa-session_identity.json");
    for f in [&role_file, &mfa_file] {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let cached = std::fs::read_to_string(f).unwrap();
        assert!(!cached.contains(ALICE_KEY), "no long-term key in the cache");
    }
    let cached = std::fs::read_to_string(&role_file).unwrap();

    // 2. Second run: no code on stdin at all, and it works from the cache.
    let out = run_user(&env, &whoami, None, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("cached MFA session"),
        "{}",
        text(&out)
    );
    assert_eq!(env.calls("AssumeRole"), 1, "no second AssumeRole");

    // 3. The role's credentials past their useful life (reused until 5 minutes before
    //    expiry): assumed again from the cached MFA session, no code asked.
    let mut session: serde_json::Value = serde_json::from_str(&cached).unwrap();
    session["expiration"] = (now() + 60).into();
    std::fs::write(&role_file, session.to_string()).unwrap();
    let out = run_user(&env, &whoami, None, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.calls("AssumeRole"), 2);
    assert_eq!(env.calls("GetSessionToken"), 1, "no new code");
    // The MFA session itself near its end: a code is asked. Without one that fails,
    // asking for one; with one, a new MFA session.
    let mut mfa: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mfa_file).unwrap()).unwrap();
    mfa["expiration"] = (now() + 60).into();
    std::fs::write(&mfa_file, mfa.to_string()).unwrap();
    std::fs::write(&role_file, session.to_string()).unwrap();
    let out = run_user(&env, &whoami, None, &[]).await;
    assert_eq!(out.status.code(), Some(exit::CREDENTIALS), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mfa-code-stdin"),
        "{}",
        text(&out)
    );
    let out = run_user(&env, &whoami, Some(good_code()), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.calls("GetSessionToken"), 2);
    assert_eq!(env.calls("AssumeRole"), 3);

    // 4. The sandbox expires every session: the cached one is refused, forgotten (with
    //    its MFA session), and the same run asks for a new code (none given: a clear
    //    credentials error).
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
    assert_eq!(cache_files(&env).len(), 2);
    let out = run_user(&env, &["logout", "--profile", "production"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("forgot"), "{}", text(&out));
    assert!(cache_files(&env).is_empty());
    assert_eq!(env.calls("AssumeRole"), 4);
    assert_eq!(env.calls("GetSessionToken"), 3);
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
        if row.mfa {
            // SECRET_ROLLOUT_CACHE_DIR: the session is cached in the file there.
            let file = cache_dir(&env).join("session-production.json");
            // The role is renewed from the MFA session of `identity` (GetSessionToken).
            let source = format!(
                "{}, cached in the file {}, renewed from the MFA session of profile identity",
                row.source,
                file.display()
            );
            assert_eq!(doc["source"], source, "{what}");
            assert_eq!(doc["session_store"], "file", "{what}");
        } else {
            assert_eq!(doc["source"], row.source, "{what}");
            assert_eq!(doc["session_store"], serde_json::Value::Null, "{what}");
        }
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
    // The wrong code went to GetSessionToken: no role was assumed with it.
    assert_eq!(env.calls("AssumeRole"), 1);
    assert_eq!(env.calls("GetSessionToken"), 2);
}

/// A store name the system does not have is bad input: one line naming the fix, exit 2,
/// before any call to AWS; logout refuses it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_store_is_refused_before_any_call() {
    let env = start_with(scenario(), 1.0).await;
    write_profiles(&env);
    let bad = [("SECRET_ROLLOUT_SESSION_STORE", "gnome-keyring")];
    let args = ["whoami", "--profile", "production", "--mfa-code-stdin"];
    let out = run_user(&env, &args, Some(good_code()), &bad).await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: SECRET_ROLLOUT_SESSION_STORE=gnome-keyring is not a session store"),
        "{err}"
    );
    assert!(err.contains("hint: use one of"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(env.calls("AssumeRole"), 0);
    assert_eq!(env.calls("GetCallerIdentity"), 0);
    assert!(cache_files(&env).is_empty());
    let out = run_user(&env, &["logout"], None, &bad).await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
}

/// The MFA session as a user has it, keyring on (no `SECRET_ROLLOUT_CACHE_DIR`), in
/// processes without a login session keyring, each with an anonymous session keyring of
/// its own that is gone when it exits (as under systemd, in CI, in a container's exec, or
/// `keyctl session -`): the session typed in one process is served to the next by the
/// store that outlives them, and `logout` removes it from there.
#[cfg(target_os = "linux")]
mod kernel_keyring {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    use nix::sys::wait::WaitStatus;

    use super::*;

    /// The kernel keyrings that outlive a process on this machine, best first, asked of
    /// the kernel (not of the tool): the persistent keyring if there is one, the user
    /// keyring if it takes a key. Both linked into this process's keyring, so this
    /// process possesses them and can read what the tool's processes left there.
    fn kernel_keyrings_here() -> Vec<(&'static str, &'static str, KeyRing)> {
        let mut rings = Vec::new();
        if let Ok(ring) = KeyRing::get_persistent(KeyRingIdentifier::Process) {
            rings.push(("persistent-keyring", "kernel persistent keyring", ring));
        }
        let user = || -> Option<KeyRing> {
            KeyRing::from_special_id(KeyRingIdentifier::Process, true)
                .ok()?
                .link_keyring_id(KeyRingIdentifier::User)
                .ok()?;
            let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true).ok()?;
            let probe = format!("secret-rollout-test-probe-{}", std::process::id());
            ring.add_key(&probe, b"probe").ok()?.invalidate().ok()?;
            Some(ring)
        };
        if let Some(ring) = user() {
            rings.push(("user-keyring", "kernel user keyring", ring));
        }
        rings
    }

    /// Runs `cmd` in a new anonymous session keyring (KEYCTL_JOIN_SESSION_KEYRING with no
    /// name), so nothing it writes there outlives it. Where the kernel offers keyrings the
    /// join must work; where it refuses every keyctl (a seccomp profile) so does the tool.
    fn own_session_keyring(cmd: &mut Command, keyrings_work: bool) {
        const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
        // SAFETY: only the async-signal-safe keyctl syscall runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::syscall(
                    libc::SYS_keyctl,
                    KEYCTL_JOIN_SESSION_KEYRING,
                    std::ptr::null::<libc::c_char>(),
                );
                if r < 0 && keyrings_work {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// Forgets the test's keyring entry even when the test fails half-way: the entry is
    /// named after the test's own cache directory, so nothing else is touched.
    struct Forget(Vec<KeyRing>, String);

    impl Drop for Forget {
        fn drop(&mut self) {
            for ring in &self.0 {
                if let Ok(key) = ring.search(&self.1) {
                    let _ = key.invalidate();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mfa_session_outlives_the_process_in_the_store_that_persists_and_logout_clears_it() {
        across_processes(None).await;
    }

    /// `SECRET_ROLLOUT_SESSION_STORE=user-keyring`: the user keyring, which a process with
    /// a session keyring of its own does not possess until it links it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_user_keyring_when_named_also_outlives_the_process() {
        across_processes(Some("user-keyring")).await;
    }

    /// Signs in through a pseudo-terminal, then runs the next commands each in a session
    /// keyring of its own; `store`: what `SECRET_ROLLOUT_SESSION_STORE` names.
    async fn across_processes(store: Option<&'static str>) {
        let env = start_with(scenario(), 1.0).await;
        write_profiles(&env);
        let rings = kernel_keyrings_here();
        let keyrings_work = !rings.is_empty();
        let here = rings
            .iter()
            .find(|(id, _, _)| store.is_none_or(|s| s == *id))
            .cloned();
        // A home of the test's own; XDG_CACHE_HOME unset, as most users have it.
        let home = env.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let cache_dir = home.join(".cache").join("secret-rollout");
        let file = cache_dir.join("session-production.json");
        let name = format!("secret-rollout:{}:production", cache_dir.display());
        let _forget = Forget(rings.iter().map(|r| r.2).collect(), name.clone());
        let (store_id, store_text) = match &here {
            Some((id, text, _)) => (id.to_string(), text.to_string()),
            None => ("file".to_string(), format!("file {}", file.display())),
        };

        let endpoint = env.sandbox.endpoint();
        let command = |args: &[&str]| {
            let mut cmd = env.cli();
            for k in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_ENDPOINT_URL",
                // The keyring as a user has it: no cache dir override.
                "SECRET_ROLLOUT_CACHE_DIR",
                "XDG_CACHE_HOME",
            ] {
                cmd.env_remove(k);
            }
            cmd.env("HOME", &home).args(args);
            if let Some(store) = store {
                cmd.env("SECRET_ROLLOUT_SESSION_STORE", store);
            }
            own_session_keyring(&mut cmd, keyrings_work);
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

        // 1. The code typed at the terminal; the session goes to the store that persists.
        let first = command(&whoami);
        let (prompt1, new_line) = (
            prompt.clone(),
            format!("new MFA session, cached in the {store_text}"),
        );
        tokio::task::spawn_blocking(move || {
            let mut p = spawn(first);
            p.exp_string(&prompt1).unwrap();
            p.send_line(&good_code()).unwrap();
            p.exp_string("account:     123456789012").unwrap();
            p.exp_string(&new_line).unwrap();
            p.exp_eof().unwrap();
            assert_eq!(exited(&p), exit::OK);
        })
        .await
        .unwrap();
        assert_eq!(env.calls("AssumeRole"), 1);
        // Ground truth from the kernel and the disk, not from the tool.
        match &here {
            Some((_, _, ring)) => {
                let key = ring
                    .search(&name)
                    .expect("the session is in the keyring that persists");
                let json = key.read_to_vec().unwrap();
                let held: serde_json::Value = serde_json::from_slice(&json).unwrap();
                assert_eq!(held["profile"], "production");
                assert_eq!(held["role_arn"], ROLE);
                assert!(held["access_key_id"].as_str().unwrap().starts_with("ASIA"));
                assert!(!file.exists(), "and not in a file");
                for (id, _, other) in rings.iter().filter(|r| r.2 != *ring) {
                    assert!(other.search(&name).is_err(), "also in the {id}");
                }
            }
            None => {
                use std::os::unix::fs::PermissionsExt;
                let mode = |p: &std::path::Path| {
                    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
                };
                assert_eq!(mode(&file), 0o600);
                assert_eq!(mode(&cache_dir), 0o700);
            }
        }

        // 2. The next process, in a session keyring of its own again: no prompt, the
        // cached session, from that store.
        let second = command(&whoami);
        let cached_line = format!("cached MFA session from the {store_text}");
        tokio::task::spawn_blocking(move || {
            let mut p = spawn(second);
            let before = p.exp_string(&cached_line).unwrap();
            assert!(!before.contains("MFA code"), "asked again: {before}");
            p.exp_eof().unwrap();
            assert_eq!(exited(&p), exit::OK);
        })
        .await
        .unwrap();
        let mut json = command(&whoami);
        json.args(["--output", "json"]);
        let out = run(json).await;
        assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["session_store"], store_id.as_str(), "{doc}");
        assert_eq!(env.calls("AssumeRole"), 1, "no new sign-in");
        let shown = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(
            !shown.contains("ASIA"),
            "no session credential shown: {shown}"
        );

        // 3. logout forgets it there; the next command asks again.
        let out = run(command(&["logout"])).await;
        assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
        // The role's credentials and the MFA session they are renewed from.
        assert_eq!(stdout(&out).trim(), "forgot 2 cached session(s)");
        for (id, _, ring) in &rings {
            assert!(ring.search(&name).is_err(), "still in the {id}");
        }
        assert!(!file.exists());
        let third = command(&whoami);
        tokio::task::spawn_blocking(move || {
            let mut p = spawn(third);
            p.exp_string(&prompt).unwrap();
            p.send_line(&wrong_code()).unwrap();
            p.exp_string("the MFA code was not accepted").unwrap();
            p.exp_eof().unwrap();
            assert_eq!(exited(&p), exit::CREDENTIALS);
        })
        .await
        .unwrap();
        // The wrong code went to GetSessionToken: no role was assumed with it.
        assert_eq!(env.calls("AssumeRole"), 1);
        assert_eq!(env.calls("GetSessionToken"), 2);
        for (id, _, ring) in &rings {
            assert!(
                ring.search(&name).is_err(),
                "a failed sign-in cached in the {id}"
            );
        }
        assert!(!file.exists());
    }

    async fn run(mut cmd: Command) -> std::process::Output {
        tokio::task::spawn_blocking(move || {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }
}
