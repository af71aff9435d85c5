//! `replace`: a new value written, rolled out to every consumer and proven.

use clap::Args;
use secret_rollout_core::error::Result;
use secret_rollout_core::progress::Reporter;
use secret_rollout_core::rotation::{self, Context, ReplaceRequest};
use tokio::sync::Notify;
use uuid::Uuid;

use std::io::IsTerminal;

use secret_rollout_core::value::Source;

use super::args::{self, Global, OnFailure, RolloutArgs, ValueArgs};
use super::output;
use super::rotating::{self, Person};
use super::session;

/// `replace`.
#[derive(Debug, Args, Clone)]
pub struct ReplaceArgs {
    /// Secret names (the environment's prefix is added) or ARNs.
    #[arg(required = true, value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// Where.
    #[command(flatten)]
    pub target: args::Target,
    /// The new value.
    #[command(flatten)]
    pub value: ValueArgs,
    /// Only these consumers (comma-separated service names).
    #[arg(long, value_delimiter = ',', value_name = "A,B", value_parser = super::parse::service_name)]
    pub services: Vec<String>,
    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// What to do when the rollout fails.
    #[arg(long, value_enum, default_value_t = OnFailure::Rollback)]
    pub on_failure: OnFailure,
    /// Write even though the secret has rotation enabled.
    #[arg(long)]
    pub force_with_rotation: bool,
    /// Write a `String` Parameter Store parameter although its value is stored unencrypted
    /// (refused otherwise).
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `replace`.
pub async fn run(global: &Global, a: &ReplaceArgs, reporter: &dyn Reporter) -> Result<i32> {
    if a.dry_run {
        // Every check of the real run before its first write, nothing written.
        rotating::settings(&a.rollout, a.on_failure, session::reach(global, &a.target))?;
        return super::plan::show(
            global,
            &super::plan::Request {
                secrets: &a.secrets,
                target: &a.target,
                value: &a.value,
                services: &a.services,
                allow_rotation: a.force_with_rotation,
                allow_plaintext: a.allow_plaintext,
                lifetime: Some((a.rollout.timeout, a.rollout.allow_short_credentials)),
            },
        )
        .await;
    }
    session::check_value_flags(&a.target, &a.value)?;
    let target = session::target(global, &a.target)?;
    let count = a.secrets.len();
    // A value typed at the prompt comes after the sign-in (whose MFA code must not be
    // typed into it) and after the plan (what it will change); every other source is read
    // first, so that bad input stops us before any AWS call.
    let typed = session::value_source(&a.value, 0, count)? == Source::Prompt
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    let mut values = Vec::with_capacity(count);
    if !typed {
        for (i, name) in a.secrets.iter().enumerate() {
            let label = target.secret_id(name);
            values.push(session::read_value(&a.value, i, count, &label)?);
        }
    }
    let mut settings =
        rotating::settings(&a.rollout, a.on_failure, session::reach(global, &a.target))?;
    let s = session::sign_in(target, &a.target).await?;
    settings.state = session::backend(global, &a.target, &s)?;
    session::check_credential_lifetime(
        &s.ctx,
        a.rollout.timeout,
        a.rollout.allow_short_credentials,
    )?;
    let mut plan_shown = false;
    if typed {
        let p = rotation::plan(
            &s.clients,
            &s.target,
            &a.secrets,
            &a.services,
            secret_rollout_core::plan::Guards {
                allow_rotation: a.force_with_rotation,
                allow_plaintext: a.allow_plaintext,
            },
        )
        .await?;
        if global.output == args::Output::Text {
            output::plan_text(&p, &mut std::io::stderr(), super::width::stderr());
            plan_shown = true;
        }
        if let Some(refusal) = p.refusal() {
            return Err(refusal);
        }
        // A --json-key that cannot work is refused before the value is typed.
        let none = a.secrets.iter().map(|_| None).collect();
        rotation::check_values(
            &s.clients,
            &p,
            none,
            a.value.json_key.as_deref(),
            &settings.reach,
        )
        .await?;
        for (i, name) in a.secrets.iter().enumerate() {
            let label = s.target.secret_id(name);
            values.push(session::read_value(&a.value, i, count, &label)?);
        }
    }
    let armed = Notify::new();
    let person = Person {
        yes: a.rollout.yes,
        output: global.output,
        values: None,
        armed: &armed,
        place: session::place(&s),
        plan_shown,
    };
    let rotation_id = Uuid::new_v4();
    let ctx = Context {
        clients: &s.clients,
        caller: &s.caller,
        settings: &settings,
        reporter,
        rotation_id,
    };
    let request = ReplaceRequest {
        secrets: a.secrets.clone(),
        values,
        json_key: a.value.json_key.clone(),
        only_services: a.services.clone(),
        allow_rotation: a.force_with_rotation,
        allow_plaintext: a.allow_plaintext,
    };
    let report = rotating::interruptible(
        &settings,
        rotation_id,
        &armed,
        rotation::replace(&ctx, &s.target, request, &person),
    )
    .await?;
    Ok(rotating::finish(global, &report))
}
