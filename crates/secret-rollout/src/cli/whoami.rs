//! `whoami`: who the credentials are, and how long they last.

use std::io::Write;

use clap::Args;
use secret_rollout_core::credentials::{self, AwsOptions, MfaCodeSource};
use secret_rollout_core::error::{exit, Result};
use serde_json::json;

use super::args::{Global, Output, Target};
use super::ndjson;
use super::session;

/// `whoami`.
#[derive(Debug, Args, Clone)]
pub struct WhoamiArgs {
    /// Where.
    #[command(flatten)]
    pub target: Target,
}

/// `whoami`. Needs no cluster: only the region, profile and expected account of the
/// environment (when `--env` is given), with the flags on top.
pub async fn run(global: &Global, a: &WhoamiArgs) -> Result<i32> {
    let t = &a.target;
    let env = match &t.env {
        Some(name) => {
            let config = session::load_config(global)?;
            let config =
                config.ok_or_else(|| secret_rollout_core::config::no_config_error(name))?;
            Some(config.environment(name)?.clone())
        }
        None => None,
    };
    let opts = AwsOptions {
        region: t
            .region
            .clone()
            .or_else(|| env.as_ref().map(|e| e.region.clone())),
        profile: t
            .profile
            .clone()
            .or_else(|| env.as_ref().and_then(|e| e.profile.clone())),
        profile_from: session::profile_from(t, env.as_ref().map(|e| e.name.as_str())),
        endpoint_url: t.endpoint_url.clone(),
        mfa_code: if t.mfa_code_stdin {
            MfaCodeSource::Stdin
        } else {
            MfaCodeSource::Prompt
        },
        expected_account: env.as_ref().and_then(|e| e.account_id.clone()),
        max_attempts: None,
    };
    let (ctx, _) = credentials::load_identified(&opts).await?;
    session::print_sign_in_messages(&ctx);
    let who = credentials::whoami(&ctx).await?;
    let doc = || {
        json!({
            "account": who.account,
            "arn": who.arn,
            "source": who.source.to_string(),
            // Where the MFA session is cached: persistent-keyring, user-keyring, keychain,
            // credential-manager or file (null: not an MFA session, or not cached).
            "session_store": who.source.session_store().map(|s| s.id()),
            "expires_at": who.expires_at.map(secret_rollout_core::history::rfc3339),
            "seconds_left": who.time_left.map(|d| d.as_secs()),
            "expected_account": who.expected_account,
            "matches": who.matches,
        })
    };
    let mut stdout = std::io::stdout().lock();
    match global.output {
        Output::Ndjson => ndjson::print_document("whoami", &doc()),
        Output::Json => {
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&doc()).unwrap_or_default()
            );
        }
        Output::Text => {
            let _ = writeln!(stdout, "{who}");
        }
    }
    // Credentials past their expiry (aws-vault's AWS_CREDENTIAL_EXPIRATION, a cached
    // session) answer GetCallerIdentity no more than any other call will: say so, exit 3.
    if let Some(at) = who
        .expires_at
        .filter(|at| *at <= time::OffsetDateTime::now_utc())
    {
        eprintln!(
            "error: these credentials expired at {}\n  hint: sign in again (`aws-vault exec PROFILE -- secret-rollout ...`, or `secret-rollout logout` and rerun)",
            secret_rollout_core::history::rfc3339(at)
        );
        return Ok(exit::CREDENTIALS);
    }
    Ok(if who.matches == Some(false) {
        eprintln!(
            "error: these credentials are for account {}, not the environment's {}\n  hint: sign in to the right account (check --profile or aws-vault exec PROFILE), or fix account_id in secret-rollout.toml",
            who.account,
            who.expected_account.as_deref().unwrap_or_default()
        );
        exit::CREDENTIALS
    } else {
        exit::OK
    })
}
