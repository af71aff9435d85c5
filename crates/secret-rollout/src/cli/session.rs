//! Turning command-line flags into a signed-in session: config, target, credentials,
//! clients, caller, and the guards that must pass before any write.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secret_rollout_core::clients::Clients;
use secret_rollout_core::config::{self, Config, Target, TargetFlags};
use secret_rollout_core::credentials::{self, AwsContext, AwsOptions, MfaCodeSource, ProfileFrom};
use secret_rollout_core::error::{Error, Reach, Result};
use secret_rollout_core::journal;
use secret_rollout_core::rotation::Caller;
use secret_rollout_core::state::{self, Backend, S3Location, S3State};
use secret_rollout_core::value::{Charset as CoreCharset, Newline, SecretValue, Source};

use super::args::{self, Charset, Global};

/// A signed-in session for one command.
pub struct Session {
    /// Where.
    pub target: Target,
    /// The SDK config and where credentials came from.
    pub ctx: AwsContext,
    /// The clients.
    pub clients: Clients,
    /// Who.
    pub caller: Caller,
}

/// The config file, if any.
pub fn load_config(global: &Global) -> Result<Option<Config>> {
    Config::load(global.config.as_deref())
}

/// The options of this command that reach its environment, as typed: every command it
/// suggests carries them (see [`Reach`]). `--mfa-code-stdin` is not one of them: a pasted
/// command asks for the code, or finds the session cached.
pub fn reach(global: &Global, t: &args::Target) -> Reach {
    let mut words = Vec::new();
    if let Some(path) = &global.config {
        words.push("--config".to_string());
        words.push(path.display().to_string());
    }
    let mut flag = |name: &str, value: &str| {
        words.push(name.to_string());
        words.push(value.to_string());
    };
    if let Some(env) = &t.env {
        flag("--env", env);
    }
    if let Some(region) = &t.region {
        flag("--region", region);
    }
    for cluster in &t.clusters {
        flag("--cluster", cluster);
    }
    if let Some(profile) = &t.profile {
        flag("--profile", profile);
    }
    if let Some(url) = &t.endpoint_url {
        flag("--endpoint-url", url);
    }
    Reach::new(words)
}

/// Resolves the target from `--env` and flags.
pub fn target(global: &Global, t: &args::Target) -> Result<Target> {
    config::resolve_target(
        load_config(global)?.as_ref(),
        &flags(t),
        config::ambient_region(),
    )
}

fn flags(t: &args::Target) -> TargetFlags {
    TargetFlags {
        env: t.env.clone(),
        region: t.region.clone(),
        profile: t.profile.clone(),
        // `--cluster c --cluster c` is one cluster, not its services twice.
        clusters: t.clusters.iter().fold(Vec::new(), |mut all, c| {
            if !all.contains(c) {
                all.push(c.clone());
            }
            all
        }),
    }
}

/// Resolves the target for a command that needs no cluster (Secrets Manager only).
pub fn account_target(global: &Global, t: &args::Target) -> Result<Target> {
    config::resolve_account_target(
        load_config(global)?.as_ref(),
        &flags(t),
        config::ambient_region(),
    )
}

/// Signs in for `target`: credentials, clients, the caller, and the account check.
pub async fn sign_in(target: Target, t: &args::Target) -> Result<Session> {
    sign_in_as(target, t, false).await
}

/// Signs in with `unattended`: never asks for an MFA code (a profile that needs one fails
/// with a hint to use the SDK chain's credentials: a task role, an instance profile, the
/// environment).
pub async fn sign_in_as(target: Target, t: &args::Target, unattended: bool) -> Result<Session> {
    let refuse: secret_rollout_core::credentials::mfa::CodeFn = std::sync::Arc::new(
        |serial: &str| {
            Err(std::io::Error::other(format!(
            "an unattended run never asks for an MFA code ({serial}): give it credentials from the SDK chain (an ECS task role, an instance profile, AWS_* in the environment)"
        )))
        },
    );
    let opts = AwsOptions {
        region: Some(target.region.clone()),
        profile: target.profile.clone(),
        profile_from: profile_from(t, target.environment.as_deref()),
        endpoint_url: t.endpoint_url.clone(),
        mfa_code: if unattended {
            MfaCodeSource::Callback(refuse)
        } else if t.mfa_code_stdin {
            MfaCodeSource::Stdin
        } else {
            MfaCodeSource::Prompt
        },
        expected_account: target.account_id.clone(),
        max_attempts: None,
    };
    let (ctx, caller) = credentials::load_identified(&opts).await?;
    print_sign_in_messages(&ctx);
    if let Some(expected) = &target.account_id {
        if expected != &caller.account {
            return Err(Error::credentials(format!(
                "the credentials are for account {} but environment {} is account {expected}",
                caller.account,
                target.label()
            ))
            .hint("sign in to the right account (check --profile or aws-vault exec PROFILE), or fix account_id in secret-rollout.toml"));
        }
    }
    let clients = Clients::new(&ctx.sdk_config);
    Ok(Session {
        target,
        ctx,
        clients,
        caller: Caller {
            account: caller.account,
            arn: caller.arn,
        },
    })
}

/// Where a signed-in command acts and who it is, for questions and plans:
/// `environment production (account 123456789012, region eu-west-1) as ARN`.
pub fn place(s: &Session) -> String {
    let environment = match &s.target.environment {
        Some(name) => format!("environment {name}"),
        None => format!("clusters {}", s.target.clusters.join(", ")),
    };
    format!(
        "{environment} (account {}, region {}) as {}",
        s.caller.account, s.target.region, s.caller.arn
    )
}

/// Where the profile of a command comes from: `--profile` when typed, else the
/// environment's `profile` in secret-rollout.toml (which credentials in the environment
/// win over).
pub fn profile_from(t: &args::Target, environment: Option<&str>) -> ProfileFrom {
    match (&t.profile, environment) {
        (None, Some(environment)) => ProfileFrom::Config {
            environment: environment.to_string(),
        },
        _ => ProfileFrom::Flag,
    }
}

/// Prints what the sign-in warns of and what it passed over, on stderr.
pub fn print_sign_in_messages(ctx: &AwsContext) {
    for w in &ctx.warnings {
        eprintln!("warning: {w}");
    }
    for n in &ctx.notes {
        eprintln!("note: {n}");
    }
}

/// Refuses credentials that expire before `timeout` would end.
pub fn check_credential_lifetime(
    ctx: &AwsContext,
    timeout: Duration,
    allow_short: bool,
) -> Result<()> {
    let Some(expires) = ctx.expires_at else {
        return Ok(());
    };
    let left = expires - time::OffsetDateTime::now_utc();
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    if left.is_zero() {
        return Err(Error::credentials(format!(
            "the credentials from {} have expired",
            ctx.source
        ))
        .hint(
            "sign in again (aws-vault exec PROFILE -- ..., or secret-rollout logout and rerun)",
        ));
    }
    if left < timeout && ctx.renewed_by_prompt {
        // The role is renewed with a new code asked at the terminal when it nears its end.
        eprintln!(
            "note: the credentials from {} expire in {}, before --timeout {} would end; a new MFA code will be asked then",
            ctx.source,
            secret_rollout_core::credentials::format_duration(left),
            secret_rollout_core::credentials::format_duration(timeout)
        );
        return Ok(());
    }
    if left < timeout && !allow_short {
        return Err(Error::credentials(format!(
            "the credentials expire in {}, before --timeout {} would end",
            secret_rollout_core::credentials::format_duration(left),
            secret_rollout_core::credentials::format_duration(timeout)
        ))
        .hint("get longer ones (aws-vault exec --duration=2h PROFILE, or duration_seconds in the profile), pass a shorter --timeout, or --allow-short-credentials"));
    }
    Ok(())
}

/// The state directory (journal, locks).
pub fn state_dir() -> Result<PathBuf> {
    journal::state_dir()
}

/// The team state (`state = "s3://..."`) of the session's environment, or the local one.
pub fn backend(global: &Global, t: &args::Target, s: &Session) -> Result<Backend> {
    let Some(env) = &s.target.environment else {
        return Ok(Backend::Local);
    };
    let config = load_config(global)?;
    let Some(url) = config
        .as_ref()
        .and_then(|c| c.environments.get(env))
        .and_then(|e| e.state.clone())
    else {
        return Ok(Backend::Local);
    };
    let location = S3Location::parse(&url)?;
    Ok(Backend::S3(Arc::new(
        S3State::new(
            &s.ctx.sdk_config,
            t.endpoint_url.as_deref(),
            location,
            env,
            &s.target.region,
            &s.caller.arn,
        )?
        .with_reach(reach(global, t)),
    )))
}

/// [`backend`], with the local state directory brought level with it: rotations started
/// on other machines are seen, records not pushed yet are pushed.
pub async fn synced_backend(global: &Global, t: &args::Target, s: &Session) -> Result<Backend> {
    let backend = backend(global, t, s)?;
    if let Some(s3) = backend.s3() {
        state::sync(&state_dir()?, s3).await?;
    }
    Ok(backend)
}

/// Refuses value flags that cannot work together, before anything else runs:
/// `--mfa-code-stdin` with `--value-stdin` (both would read the same stdin, and the code
/// could end up in the secret), and flags that would be silently ignored (`--trim-newline`
/// without `--value-stdin`, `--length`/`--charset` without `--generate`). clap's
/// `requires` does not fire for these: a `SetTrue` flag's default counts as present.
pub fn check_value_flags(t: &args::Target, v: &args::ValueArgs) -> Result<()> {
    if t.mfa_code_stdin && v.value_stdin {
        return Err(Error::bad_input("--mfa-code-stdin and --value-stdin would both read stdin")
            .hint("give the value with --value-file or --generate, or type the MFA code at the prompt"));
    }
    let reads_text = v.value_stdin || !v.value_file.is_empty();
    for (given, flag) in [
        (v.trim_newline, "--trim-newline"),
        (v.keep_newline, "--keep-newline"),
    ] {
        if given && !reads_text {
            return Err(Error::bad_input(format!(
                "{flag} applies to --value-stdin and --value-file only"
            ))
            .hint(format!("drop {flag}")));
        }
    }
    if v.generate {
        let (length, charset) = generate_settings(v);
        secret_rollout_core::value::check_generated_strength(length, charset, v.allow_weak_value)?;
    } else {
        for (given, flag) in [
            (v.length.is_some(), "--length"),
            (v.charset.is_some(), "--charset"),
            (v.allow_weak_value, "--allow-weak-value"),
        ] {
            if given {
                return Err(
                    Error::bad_input(format!("{flag} applies to --generate only"))
                        .hint(format!("add --generate, or drop {flag}")),
                );
            }
        }
    }
    Ok(())
}

/// What `--trim-newline` / `--keep-newline` say of a trailing newline.
fn newline(v: &args::ValueArgs) -> Newline {
    match (v.trim_newline, v.keep_newline) {
        (true, _) => Newline::Trim,
        (_, true) => Newline::Keep,
        _ => Newline::Refuse,
    }
}

/// How the new value is read, from the flags; `index` picks the n-th `--value-file`.
pub fn value_source(v: &args::ValueArgs, index: usize, count: usize) -> Result<Source> {
    if v.value_stdin {
        if count > 1 {
            return Err(Error::bad_input(
                "--value-stdin gives one value but several secrets were named",
            )
            .hint("give one --value-file per secret, in order, or --generate"));
        }
        return Ok(Source::Stdin {
            newline: newline(v),
        });
    }
    if !v.value_file.is_empty() {
        if v.value_file.len() != count {
            return Err(Error::bad_input(format!(
                "{} --value-file given for {count} secrets",
                v.value_file.len()
            ))
            .hint("give one --value-file per secret, in the order the secrets are named"));
        }
        return Ok(Source::File {
            path: v.value_file[index].clone(),
            newline: newline(v),
        });
    }
    if v.generate {
        let (length, charset) = generate_settings(v);
        return Ok(Source::Generate { length, charset });
    }
    Ok(Source::Prompt)
}

/// `--length` and `--charset` of `--generate`, defaults filled in.
fn generate_settings(v: &args::ValueArgs) -> (usize, CoreCharset) {
    let charset = match v.charset.unwrap_or(Charset::Base64url) {
        Charset::Base64url => CoreCharset::Base64Url,
        Charset::Alphanumeric => CoreCharset::Alphanumeric,
        Charset::Hex => CoreCharset::Hex,
    };
    (
        v.length
            .unwrap_or(secret_rollout_core::value::DEFAULT_GENERATE_LENGTH),
        charset,
    )
}

/// Reads the value of the `index`-th secret from its source.
pub fn read_value(
    v: &args::ValueArgs,
    index: usize,
    count: usize,
    label: &str,
) -> Result<SecretValue> {
    let source = value_source(v, index, count)?;
    let value = source.read(label, &mut std::io::stdin().lock())?;
    // Checked as soon as it is read (empty, too large, NUL), not after the sign-in and
    // the plan; a `--json-key` member is checked once merged into the secret.
    if v.json_key.is_none() {
        secret_rollout_core::value::validate(&value, None).map_err(|e| Error {
            message: format!("{label}: {}", e.message),
            ..e
        })?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flag combinations that would be ignored or fight over stdin are refused with one
    /// line that names the flag; the others pass.
    #[test]
    fn value_flag_combinations() {
        let target = args::Target::default();
        let v = |f: &dyn Fn(&mut args::ValueArgs)| {
            let mut a = args::ValueArgs::default();
            f(&mut a);
            a
        };
        let refused: Vec<(args::ValueArgs, &str)> = vec![
            (
                v(&|a| a.trim_newline = true),
                "--trim-newline applies to --value-stdin and --value-file only",
            ),
            (
                v(&|a| {
                    a.trim_newline = true;
                    a.generate = true
                }),
                "--trim-newline applies to --value-stdin and --value-file only",
            ),
            (
                v(&|a| a.keep_newline = true),
                "--keep-newline applies to --value-stdin and --value-file only",
            ),
            (
                v(&|a| {
                    a.value_stdin = true;
                    a.length = Some(8)
                }),
                "--length applies to --generate only",
            ),
            (
                v(&|a| {
                    a.value_file = vec!["f".into()];
                    a.charset = Some(args::Charset::Hex)
                }),
                "--charset applies to --generate only",
            ),
            (
                v(&|a| {
                    a.value_stdin = true;
                    a.allow_weak_value = true
                }),
                "--allow-weak-value applies to --generate only",
            ),
            (
                v(&|a| {
                    a.generate = true;
                    a.length = Some(2);
                    a.charset = Some(args::Charset::Hex)
                }),
                "--generate --length 2 --charset hex gives 8 bits of randomness, under the floor of 128",
            ),
        ];
        for (a, message) in refused {
            let e = check_value_flags(&target, &a).unwrap_err();
            assert_eq!(e.message, message);
            assert_eq!(e.exit_code(), 2);
            assert!(e.hint.is_some());
        }
        for a in [
            v(&|a| {
                a.value_stdin = true;
                a.trim_newline = true
            }),
            v(&|a| {
                a.value_file = vec!["f".into()];
                a.keep_newline = true
            }),
            v(&|a| {
                a.generate = true;
                a.length = Some(32);
                a.charset = Some(args::Charset::Hex)
            }),
            v(&|a| {
                a.generate = true;
                a.length = Some(8);
                a.charset = Some(args::Charset::Hex);
                a.allow_weak_value = true
            }),
            v(&|_| {}),
        ] {
            check_value_flags(&target, &a).unwrap();
        }
    }
}
