//! `rollback`: the previous value of a rotation (or of a secret) restored, rolled out and
//! proven.

use clap::Args;
use secret_rollout_core::error::{Error, Result};
use secret_rollout_core::progress::Reporter;
use secret_rollout_core::rotation::{self, Context, RollbackOf, RollbackRequest};
use tokio::sync::Notify;
use uuid::Uuid;

use super::args::{self, Global, OnFailure, RolloutArgs};
use super::rotating::{self, Person};
use super::session;

/// `rollback`.
#[derive(Debug, Args, Clone)]
pub struct RollbackArgs {
    /// A rotation id (from `history`) or a secret name/ARN (its last rotation).
    #[arg(value_name = "ROTATION_ID|SECRET")]
    pub what: Option<String>,
    /// Where.
    #[command(flatten)]
    pub target: args::Target,
    /// Restore even though AWSCURRENT has moved on since that rotation.
    #[arg(long)]
    pub force: bool,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `rollback`.
pub async fn run(global: &Global, a: &RollbackArgs, reporter: &dyn Reporter) -> Result<i32> {
    let reach = session::reach(global, &a.target);
    let mut settings = rotating::settings(&a.rollout, OnFailure::Keep, reach.clone())?;
    let what = a.what.as_deref().ok_or_else(|| {
        Error::bad_input("name a rotation id or a secret to roll back").hint(format!(
            "see `{}` for rotation ids",
            reach.command("history")
        ))
    })?;
    // With --env, sign in first: a team state brings in rotations started elsewhere, so
    // `rollback ID --env NAME` finds them (as `resume` does).
    let early = match &a.target.env {
        Some(_) => {
            let s = session::sign_in(session::target(global, &a.target)?, &a.target).await?;
            settings.state = session::synced_backend(global, &a.target, &s).await?;
            Some(s)
        }
        None => None,
    };
    let of = rotation::rollback_of(&settings.state_dir, what, &reach)?;
    let s = match early {
        Some(s) => s,
        None => {
            let target = match &of {
                RollbackOf::Rotation(r) => rotating::target_from_journal(global, &a.target, r)?,
                RollbackOf::Secret(_) => session::target(global, &a.target)?,
            };
            let s = session::sign_in(target, &a.target).await?;
            settings.state = session::synced_backend(global, &a.target, &s).await?;
            s
        }
    };
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
    let request = RollbackRequest { of, force: a.force };
    let report = rotating::interruptible(
        &settings,
        rotation_id,
        &armed,
        rotation::rollback(&ctx, &s.target, request, &person),
    )
    .await?;
    Ok(rotating::finish(global, &report))
}
