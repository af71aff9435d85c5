//! The rotating use cases: `replace`, `plan`, `redeploy`, `rollback`, `resume` and `sync`.
//!
//! Each takes plain inputs, a [`Context`] (clients, caller, settings, where progress goes)
//! and an [`Operator`] for what needs a person (a confirmation, a value given again), and
//! returns a [`Report`]. The journaled run is in `run`, its decisions, pure and tested, in
//! [`decide`], and the one ECS read that uses the SDK's types in `observe`.

pub mod decide;
pub mod held;
mod observe;
mod param;
mod phase;
mod replace;
mod report;
mod resume;
mod rollback;
mod run;
mod sync;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::clients::Clients;
use crate::error::{Error, Result};
use crate::journal::{Journal, Outcome, Record};
use crate::plan::RotationPlan;
use crate::progress::Reporter;
use crate::value::SecretValue;

pub use crate::journal::OnFailure;
pub use replace::{
    check_values, plan, redeploy, replace, replace_planned, RedeployRequest, ReplaceRequest,
};
pub use report::{
    outcome_exit_code, outcome_word, PhaseReport, Report, SecretHolding, SecretReport,
    ServiceReport, TaskCounts,
};
pub use resume::{find_resumable, find_rotation, resume, ResumeRequest};
pub use rollback::{rollback, rollback_of, RollbackOf, RollbackRequest};
pub use sync::{
    changed, name_filters, sync, sync_plan, Seen, SyncPlan, SyncRequest, SyncSecret, SyncService,
};

/// How a rotation runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// For the rollout phase (the restore phase gets as long again).
    pub timeout: Duration,
    /// Longest pause between polls.
    pub max_poll: Duration,
    /// On failure.
    pub on_failure: OnFailure,
    /// Where the journal and locks live.
    pub state_dir: PathBuf,
    /// Secrets Manager is eventually consistent: the read of a secret that proves what
    /// the tasks hold counts only when made this long after the tasks were listed (see
    /// [`crate::holding`]). [`DEFAULT_CONSISTENCY_MARGIN`] unless set.
    pub consistency_margin: Duration,
    /// What to do when a consumer is in the middle of a deployment the tool did not start.
    pub concurrent: ConcurrentDeploy,
    /// Whether they are shared with a team in S3 too (see [`crate::state`]).
    pub state: crate::state::Backend,
    /// `--max-task-failures`: failed tasks of a new deployment after which the rollout
    /// counts as failed (default: the circuit breaker's threshold, for the services the
    /// breaker does not cover; see [`crate::rollout::strategy::detector_threshold`]).
    pub max_task_failures: Option<u32>,
    /// `--approve-hooks`: answer `PAUSE` lifecycle hooks once every green task is proven
    /// to hold the value (ROLLBACK when not), instead of stopping with exit 12.
    pub approve_hooks: bool,
    /// `--until traffic`: end the rollout (verified) once every task receiving production
    /// traffic is proven to hold the value, while a blue/green, linear or canary bake goes
    /// on; the `--timeout` refusal for long bakes does not apply.
    pub until_traffic: bool,
    /// The options that reach the environment, carried by every command the run suggests.
    pub reach: crate::error::Reach,
    /// `--allow-image-change`: go on although a redeploy also ships an image pushed under
    /// its tag since the last deployment (see [`crate::images`]); else refuse (exit 4).
    pub allow_image_change: bool,
}

/// What a rotation does, before it writes, about a consumer in the middle of a deployment
/// it did not start (someone deploying, or a rotation of another secret it shares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConcurrentDeploy {
    /// Refuse (exit 4), naming the service and since when: the default.
    #[default]
    Refuse,
    /// Wait for it to settle (`--wait`), up to the timeout, then go on.
    Wait,
    /// Go on anyway, with a warning (`--allow-concurrent-deploy`).
    Allow,
}

/// The default consistency margin: AWS says changes to a secret reach every reader
/// "within seconds"; five of them is cheap next to a rollout's minutes.
pub const DEFAULT_CONSISTENCY_MARGIN: Duration = Duration::from_secs(5);

/// Who is acting (STS GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// Account id.
    pub account: String,
    /// Caller ARN.
    pub arn: String,
}

/// Who runs a rotation, with which clients and settings, and where its progress goes.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The AWS clients.
    pub clients: &'a Clients,
    /// Who is acting (recorded in the journal).
    pub caller: &'a Caller,
    /// How it runs.
    pub settings: &'a Settings,
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
    /// The id of the rotation to start (chosen by the caller, so Ctrl-C can name it).
    pub rotation_id: Uuid,
}

/// What a use case needs from a person.
///
/// Synchronous on purpose: an operator only talks to the person (a prompt, stdin, a file,
/// a generator) and never calls AWS, so it needs no runtime. The use cases ask it at
/// points where nothing else of theirs is in flight (before they start changing things, or
/// between two steps of a resume), do every AWS read around it themselves (the current
/// value a `--json-key` merges into, for one), and never re-enter the runtime.
pub trait Operator: Send + Sync {
    /// The new value of `secret` (the `index`-th of `count` secrets), asked for when a
    /// resumed rotation finds its write never happened: values are never stored.
    fn new_value(&self, secret: &str, index: usize, count: usize) -> Result<SecretValue>;

    /// Asks before anything is changed; `plan`, when there is one, is what will happen.
    /// `Ok(false)`: the person said no.
    fn confirm(&self, question: &str, plan: Option<&RotationPlan>) -> Result<bool>;
}

/// An operator with no one behind it: confirms everything (like `--yes`) and has no value
/// to give. For embedding and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unattended;

impl Operator for Unattended {
    fn new_value(&self, secret: &str, _: usize, _: usize) -> Result<SecretValue> {
        Err(Error::bad_input(format!(
            "no one to ask for the new value of {secret}"
        )))
    }

    fn confirm(&self, _: &str, _: Option<&RotationPlan>) -> Result<bool> {
        Ok(true)
    }
}

/// Asks `operator`; a no is a refusal that changed nothing.
fn confirmed(operator: &dyn Operator, question: &str, plan: Option<&RotationPlan>) -> Result<()> {
    if operator.confirm(question, plan)? {
        Ok(())
    } else {
        Err(Error::refused("not confirmed: nothing was changed")
            .hint("rerun and answer y, or pass --yes"))
    }
}

/// Records that a rotation was interrupted (Ctrl-C), so `resume` picks it up.
pub fn mark_interrupted(settings: &Settings, rotation_id: Uuid) -> Result<()> {
    let mut journal = Journal::open(&settings.state_dir, rotation_id)?;
    journal.mirror_to(&settings.state, &settings.state_dir, &[])?;
    journal.append(&Record::Finished {
        outcome: Outcome::Interrupted,
        at: run::now(),
        message: Some("interrupted (Ctrl-C)".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct No;
    impl Operator for No {
        fn new_value(&self, secret: &str, _: usize, _: usize) -> Result<SecretValue> {
            Err(Error::bad_input(secret.to_string()))
        }
        fn confirm(&self, _: &str, _: Option<&RotationPlan>) -> Result<bool> {
            Ok(false)
        }
    }

    /// A "no" changes nothing and says how to say yes (`--yes` is a flag of every
    /// rotating command: see `RolloutArgs`).
    #[test]
    fn a_no_is_a_refusal_that_says_how_to_say_yes() {
        let e = confirmed(&No, "redeploy api?", None).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Refused);
        assert_eq!(e.message, "not confirmed: nothing was changed");
        assert_eq!(e.hint.as_deref(), Some("rerun and answer y, or pass --yes"));
        assert!(confirmed(&Unattended, "redeploy api?", None).is_ok());
    }
}
