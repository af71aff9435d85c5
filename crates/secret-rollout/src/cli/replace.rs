//! `replace`: a new value written, rolled out to every consumer and proven.

use clap::Args;
use secret_rollout_core::error::Result;
use secret_rollout_core::progress::Reporter;
use secret_rollout_core::rotation::{self, Context, ReplaceRequest};
use tokio::sync::Notify;
use uuid::Uuid;

use super::args::{self, Global, OnFailure, RolloutArgs, ValueArgs};
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
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `replace`.
pub async fn run(global: &Global, a: &ReplaceArgs, reporter: &dyn Reporter) -> Result<i32> {
    session::check_value_flags(&a.target, &a.value)?;
    if a.dry_run {
        return super::plan::show(global, &a.secrets, &a.target, &a.services).await;
    }
    let target = session::target(global, &a.target)?;
    // The values come first: bad input must stop us before any AWS call.
    let mut values = Vec::with_capacity(a.secrets.len());
    for (i, name) in a.secrets.iter().enumerate() {
        let label = target.secret_id(name);
        values.push(session::read_value(&a.value, i, a.secrets.len(), &label)?);
    }
    let mut settings = rotating::settings(&a.rollout, a.on_failure)?;
    let s = session::sign_in(target, &a.target).await?;
    settings.state = session::backend(global, &a.target, &s)?;
    session::check_credential_lifetime(
        &s.ctx,
        a.rollout.timeout,
        a.rollout.allow_short_credentials,
    )?;
    let armed = Notify::new();
    let person = Person {
        yes: a.rollout.yes,
        output: global.output,
        values: None,
        armed: &armed,
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
