//! `plan` (and `replace --dry-run`): what `replace` would do, with nothing written.
//!
//! It runs every check `replace` runs before its first write (the value flags, the value
//! read from its source, the secrets' guards, consumers that cannot be redeployed, the
//! value against the current one, `--json-key` against the current JSON), through the
//! same functions, so a plan that passes is one `replace` would not refuse for these.

use clap::Args;
use secret_rollout_core::error::{exit, Result};
use secret_rollout_core::rotation;
use secret_rollout_core::value::{SecretValue, Source};

use super::args::{self, Global, ValueArgs};
use super::output;
use super::session;

/// `plan`.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// Secret names or ARNs.
    #[arg(required = true, value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// Where.
    #[command(flatten)]
    pub target: args::Target,
    /// The new value, as `replace` takes it: checked (against the current one too), never
    /// written. Without one, only `--json-key` is checked against the current value.
    #[command(flatten)]
    pub value: ValueArgs,
    /// Only these consumers.
    #[arg(long, value_delimiter = ',', value_name = "A,B", value_parser = super::parse::service_name)]
    pub services: Vec<String>,
    /// Plan as `replace --force-with-rotation` would (a secret with rotation enabled is
    /// refused otherwise, as `replace` refuses it).
    #[arg(long)]
    pub force_with_rotation: bool,
    /// Plan as `replace --allow-plaintext` would (a `String` parameter, stored
    /// unencrypted, is refused otherwise).
    #[arg(long)]
    pub allow_plaintext: bool,
}

/// What to plan: the arguments `plan` and `replace --dry-run` share.
pub struct Request<'a> {
    /// Secret names or ARNs.
    pub secrets: &'a [String],
    /// Where.
    pub target: &'a args::Target,
    /// The value flags.
    pub value: &'a ValueArgs,
    /// `--services`.
    pub services: &'a [String],
    /// `--force-with-rotation`.
    pub allow_rotation: bool,
    /// `--allow-plaintext`.
    pub allow_plaintext: bool,
    /// `--timeout` and `--allow-short-credentials` of `replace --dry-run`: the credentials
    /// must outlast the rollout, as `replace` checks.
    pub lifetime: Option<(std::time::Duration, bool)>,
}

/// `plan`.
pub async fn run(global: &Global, a: &PlanArgs) -> Result<i32> {
    show(
        global,
        &Request {
            secrets: &a.secrets,
            target: &a.target,
            value: &a.value,
            services: &a.services,
            allow_rotation: a.force_with_rotation,
            allow_plaintext: a.allow_plaintext,
            lifetime: None,
        },
    )
    .await
}

/// Runs `replace`'s checks, shows the plan whole, then refuses with why `replace` would
/// stop, if it would. A value is read from its source when one is given (never prompted
/// for: a plan asks nothing), checked, and dropped.
pub async fn show(global: &Global, r: &Request<'_>) -> Result<i32> {
    session::check_value_flags(r.target, r.value)?;
    let target = session::target(global, r.target)?;
    let count = r.secrets.len();
    let mut given: Vec<Option<SecretValue>> = Vec::with_capacity(count);
    let prompt = session::value_source(r.value, 0, count)? == Source::Prompt;
    for (i, name) in r.secrets.iter().enumerate() {
        given.push(if prompt {
            None
        } else {
            Some(session::read_value(
                r.value,
                i,
                count,
                &target.secret_id(name),
            )?)
        });
    }
    let s = session::sign_in(target, r.target).await?;
    if let Some((timeout, allow_short)) = r.lifetime {
        session::check_credential_lifetime(&s.ctx, timeout, allow_short)?;
    }
    let p = rotation::plan(
        &s.clients,
        &s.target,
        r.secrets,
        r.services,
        secret_rollout_core::plan::Guards {
            allow_rotation: r.allow_rotation,
            allow_plaintext: r.allow_plaintext,
        },
    )
    .await?;
    let mut p = p;
    p.held = held(global, r.target, &s, &p).await?;
    let refusal = p.refusal();
    if refusal.is_none() {
        let reach = session::reach(global, r.target);
        rotation::check_values(&s.clients, &p, given, r.value.json_key.as_deref(), &reach).await?;
    }
    output::plan(global.output, &p, &s.clients, &s.caller, refusal.as_ref());
    match refusal {
        Some(refusal) => Err(refusal),
        None => Ok(exit::OK),
    }
}

/// Each planned secret's lock and unfinished rotation, read without taking, renewing or
/// removing any lock (the journal is synced with a team state's bucket first, as
/// `replace` syncs it once it holds the locks, so rotations started elsewhere count).
async fn held(
    global: &Global,
    t: &args::Target,
    s: &session::Session,
    p: &secret_rollout_core::plan::RotationPlan,
) -> Result<Vec<secret_rollout_core::rotation::held::Held>> {
    let backend = session::synced_backend(global, t, s).await?;
    let secrets: Vec<(String, String)> = p
        .secrets
        .iter()
        .map(|s| (s.info.name.clone(), s.info.arn.clone()))
        .collect();
    secret_rollout_core::rotation::held::held(
        &session::state_dir()?,
        &backend,
        &session::reach(global, t),
        &p.target.label(),
        &secrets,
    )
    .await
}
