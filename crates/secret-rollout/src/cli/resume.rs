//! `resume`: an interrupted rotation finished from its journal.

use clap::Args;
use secret_rollout_core::error::Result;
use secret_rollout_core::progress::Reporter;
use secret_rollout_core::rotation::{self, ResumeRequest};
use tokio::sync::Notify;

use super::args::{self, Global, OnFailure, RolloutArgs, ValueArgs};
use super::rotating::{self, Person};
use super::session;

/// `resume`.
#[derive(Debug, Args, Clone)]
pub struct ResumeArgs {
    /// The rotation to finish (default: the only unfinished one).
    #[arg(value_name = "ROTATION_ID")]
    pub rotation: Option<String>,
    /// Where (credentials; region and clusters come from the journal).
    #[command(flatten)]
    pub target: args::Target,
    /// The value, if the write had not happened yet.
    #[command(flatten)]
    pub value: ValueArgs,
    /// Parameter Store only: the version of the parameter this rotation's write made, when
    /// resume stopped (exit 6) because the history cannot tell. Read the history first
    /// (`aws ssm get-parameter-history --name NAME`); nothing is written, and the rotation
    /// goes on from that version: redeploy, follow, prove (journaled as named by you).
    #[arg(long, value_name = "VERSION")]
    pub written: Option<u64>,
    /// What to do when the rollout fails (default: what the interrupted run was told).
    #[arg(long, value_enum)]
    pub on_failure: Option<OnFailure>,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `resume`.
pub async fn run(global: &Global, a: &ResumeArgs, reporter: &dyn Reporter) -> Result<i32> {
    session::check_value_flags(&a.target, &a.value)?;
    let mut settings = rotating::settings(
        &a.rollout,
        a.on_failure.unwrap_or(OnFailure::Rollback),
        session::reach(global, &a.target),
    )?;
    // With --env, sign in first: a team state brings in rotations started elsewhere.
    let early = match &a.target.env {
        Some(_) => {
            let s = session::sign_in(session::target(global, &a.target)?, &a.target).await?;
            settings.state = session::synced_backend(global, &a.target, &s).await?;
            Some(s)
        }
        None => None,
    };
    let summary =
        rotation::find_resumable(&settings.state_dir, a.rotation.as_deref(), &settings.reach)?;
    let s = match early {
        Some(s) => s,
        None => {
            let target = rotating::target_from_journal(global, &a.target, &summary)?;
            let s = session::sign_in(target, &a.target).await?;
            settings.state = session::backend(global, &a.target, &s)?;
            s
        }
    };
    session::check_credential_lifetime(
        &s.ctx,
        a.rollout.timeout,
        a.rollout.allow_short_credentials,
    )?;
    // Nothing to confirm: the rotation was confirmed when it started. Ctrl-C marks the
    // journal from the start.
    let armed = Notify::new();
    armed.notify_one();
    let person = Person {
        yes: a.rollout.yes,
        output: global.output,
        values: Some(&a.value),
        armed: &armed,
        place: session::place(&s),
        plan_shown: false,
    };
    let request = ResumeRequest {
        rotation: &summary,
        on_failure: a.on_failure.map(rotating::on_failure),
        written: a.written,
    };
    let report = rotating::interruptible(
        &settings,
        summary.rotation_id(),
        &armed,
        rotation::resume(&s.clients, &settings, reporter, request, &person),
    )
    .await?;
    Ok(rotating::finish(global, &report))
}
