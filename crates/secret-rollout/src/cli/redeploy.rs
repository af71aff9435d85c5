//! `redeploy`: new deployments of services (by name or by the secret they read), followed
//! and proven, with nothing written.

use clap::Args;
use secret_rollout_core::error::Result;
use secret_rollout_core::progress::Reporter;
use secret_rollout_core::rotation::{self, Context, RedeployRequest};
use tokio::sync::Notify;
use uuid::Uuid;

use super::args::{self, Global, OnFailure, RolloutArgs};
use super::rotating::{self, Person};
use super::session;

/// `redeploy`.
#[derive(Debug, Args, Clone)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["services", "secret"])))]
pub struct RedeployArgs {
    /// Where.
    #[command(flatten)]
    pub target: args::Target,
    /// These services (comma-separated); with --secret, only these of its consumers.
    #[arg(long, value_delimiter = ',', value_name = "A,B", value_parser = super::parse::service_name)]
    pub services: Vec<String>,
    /// Every service that reads this secret; the secret's lock is taken for the run, as
    /// `replace` takes it (refused, exit 4, while another run holds it or has left a
    /// rotation of it unfinished).
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `redeploy`.
pub async fn run(global: &Global, a: &RedeployArgs, reporter: &dyn Reporter) -> Result<i32> {
    let target = session::target(global, &a.target)?;
    let mut settings = rotating::settings(
        &a.rollout,
        OnFailure::Keep,
        session::reach(global, &a.target),
    )?;
    let s = session::sign_in(target, &a.target).await?;
    // With a secret the run takes its lock, in the team state too (and its journal is
    // shared there); services by name lock nothing, as before.
    if a.secret.is_some() {
        settings.state = session::backend(global, &a.target, &s)?;
    }
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
        place: session::place(&s),
        plan_shown: false,
    };
    let rotation_id = Uuid::new_v4();
    let ctx = Context {
        clients: &s.clients,
        caller: &s.caller,
        settings: &settings,
        reporter,
        rotation_id,
    };
    let request = RedeployRequest {
        services: a.services.clone(),
        secret: a.secret.clone(),
    };
    let report = rotating::interruptible(
        &settings,
        rotation_id,
        &armed,
        rotation::redeploy(&ctx, &s.target, request, &person),
    )
    .await?;
    Ok(rotating::finish(global, &report))
}
