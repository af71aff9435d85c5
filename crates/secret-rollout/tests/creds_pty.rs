//! The MFA code typed at a real terminal prompt (a pseudo-terminal driven by rexpect).
//!
//! The CLI's `whoami` is wired by the lead; until then the program under the terminal is
//! this test binary itself, re-run in "child" mode: it signs in with
//! `MfaCodeSource::Prompt` exactly as the CLI will (rpassword on /dev/tty) and prints
//! one `RESULT` line. To switch to the real CLI, replace [`spawn_child`]'s command with
//! `secret-rollout whoami --profile production --endpoint-url URL` (assert_cmd's
//! `cargo_bin("secret-rollout")` path) and the `RESULT` expectations with whoami's
//! output; to switch to the sandbox STS, replace `FakeSts` with `sandbox::Sandbox` and
//! type the TOTP code computed from its seed instead of `GOOD_CODE`.

#![cfg(unix)]

mod creds_common;

use std::process::Command;

use creds_common::*;
use secret_rollout::aws::{self, AwsOptions};
use secret_rollout::credentials::{self, CredentialSource, MfaCodeSource};

const CHILD: &str = "CREDS_PTY_CHILD";
const TEST_NAME: &str = "mfa_code_typed_at_a_terminal_prompt";

/// Child mode: sign in from the process environment with the terminal prompt.
fn child_main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let opts = AwsOptions {
        profile: std::env::var("CREDS_PTY_PROFILE").ok(),
        endpoint_url: std::env::var("CREDS_PTY_ENDPOINT").ok(),
        mfa_code: if std::env::var_os("CREDS_PTY_STDIN").is_some() {
            MfaCodeSource::Stdin
        } else {
            MfaCodeSource::Prompt
        },
        max_attempts: Some(1),
        ..AwsOptions::default()
    };
    let outcome = rt.block_on(async {
        let ctx = aws::load(&opts).await?;
        let who = credentials::whoami(&ctx).await?;
        Ok::<_, secret_rollout::error::Error>((who, ctx.source))
    });
    match outcome {
        Ok((who, source)) => {
            let cached = matches!(source, CredentialSource::Profile { cached: true, .. });
            println!("RESULT ok account={} cached={cached}", who.account);
        }
        Err(e) => println!("RESULT failed {}", e.render()),
    }
}

fn spawn_child(fx: &Fixture, sts: &FakeSts) -> rexpect::session::PtySession {
    let cmd = child_command(fx, sts, TEST_NAME);
    // The timeout only bounds a hung child; nothing here depends on timing.
    rexpect::session::spawn_command(cmd, Some(60_000)).unwrap()
}

/// This test binary re-run as a child that signs in (see `child_main`).
fn child_command(fx: &Fixture, sts: &FakeSts, test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1", "-q"]);
    // Only the variables a user's shell would have for this: no AWS_* from the runner.
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let p = |f: &str| fx.dir.path().join(f);
    cmd.env(CHILD, "1")
        .env("CREDS_PTY_PROFILE", "production")
        .env("CREDS_PTY_ENDPOINT", &sts.url)
        .env("HOME", p("home"))
        .env("USER", "alice")
        .env("AWS_CONFIG_FILE", p("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", p("credentials"))
        .env("SECRET_ROLLOUT_CACHE_DIR", fx.cache_dir());
    cmd
}

const PROMPT: &str = "MFA code for arn:aws:iam::111111111111:mfa/alice: ";

#[test]
fn mfa_code_typed_at_a_terminal_prompt() {
    if std::env::var_os(CHILD).is_some() {
        child_main();
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sts = rt.block_on(FakeSts::start());
    let fx = Fixture::new();

    // 1. First run: the prompt appears on the terminal; the typed code signs in.
    let mut p = spawn_child(&fx, &sts);
    p.exp_string(PROMPT).unwrap();
    p.send_line(GOOD_CODE).unwrap();
    p.exp_string("RESULT ok account=123456789012 cached=false")
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(sts.assume_roles().len(), 1);
    assert_eq!(sts.assume_roles()[0].params["TokenCode"], GOOD_CODE);
    let cache_file = fx.cache_files().pop().expect("session cached");

    // 2. Second run within the session: no prompt at all.
    let mut p = spawn_child(&fx, &sts);
    let before = p
        .exp_string("RESULT ok account=123456789012 cached=true")
        .unwrap();
    assert!(!before.contains("MFA code"), "prompted again: {before}");
    p.exp_eof().unwrap();
    assert_eq!(sts.assume_roles().len(), 1);

    // 3. The session gets within 5 minutes of expiry (the clock moved on): a wrong code
    //    is refused clearly and the cache is left as it was.
    let mut session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
    let soon = time::OffsetDateTime::now_utc().unix_timestamp() + 60;
    session["expiration"] = soon.into();
    std::fs::write(&cache_file, session.to_string()).unwrap();
    let stale = std::fs::read(&cache_file).unwrap();
    let mut p = spawn_child(&fx, &sts);
    p.exp_string(PROMPT).unwrap();
    p.send_line("000000").unwrap();
    p.exp_string("RESULT failed error: the MFA code was not accepted")
        .unwrap();
    p.exp_string("wait for the next code and try again")
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(
        std::fs::read(&cache_file).unwrap(),
        stale,
        "a failed sign-in wrote the cache"
    );

    // 4. The right code: prompted again, new session cached.
    let mut p = spawn_child(&fx, &sts);
    p.exp_string(PROMPT).unwrap();
    p.send_line(GOOD_CODE).unwrap();
    p.exp_string("RESULT ok account=123456789012 cached=false")
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(sts.assume_roles().len(), 3);
    assert_ne!(std::fs::read(&cache_file).unwrap(), stale);
}

#[test]
fn mfa_code_piped_on_stdin_for_scripts() {
    if std::env::var_os(CHILD).is_some() {
        child_main();
        return;
    }
    use std::io::Write;
    use std::process::Stdio;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sts = rt.block_on(FakeSts::start());
    let fx = Fixture::new();
    let mut cmd = child_command(&fx, &sts, "mfa_code_piped_on_stdin_for_scripts");
    cmd.env("CREDS_PTY_STDIN", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{GOOD_CODE}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("RESULT ok account=123456789012 cached=false"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("MFA code for"),
        "prompted although --mfa-code-stdin"
    );
    assert_eq!(sts.assume_roles()[0].params["TokenCode"], GOOD_CODE);
}
