//! What a rotating command reports when it ends: per secret, per phase and per service,
//! never a value. Rendered by the CLI as text or JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use crate::error::exit;
use crate::holding::Holding;
use crate::journal::{Outcome, PhaseOutcome, RotationKind};
use crate::rollout::{Milestones, ServiceRef};
use crate::verdict::{Proof, Stage};

/// One secret in the report (never a value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretReport {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// The version that was AWSCURRENT before.
    pub previous_version: Option<String>,
    /// The version written (or, for a rollback, the version moved away from).
    pub new_version: Option<String>,
    /// AWSCURRENT was moved back to `previous_version`.
    pub restored: bool,
}

/// One service in a phase of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReport {
    /// Cluster.
    pub cluster: String,
    /// Service.
    pub service: String,
    /// Our deployment.
    pub deployment_id: Option<String>,
    /// Where it ended.
    pub stage: Stage,
    /// The proof, when the phase got to verification.
    pub proof: Option<Proof>,
    /// When the deployment started, had all traffic on new tasks and completed, on ECS's
    /// clock, as far as the tool saw (the timeline; not in JSON).
    #[serde(skip)]
    pub times: Milestones,
    /// A blue/green, linear or canary deployment: strategy, lifecycle stage, production
    /// traffic and the traffic moment (absent for a rolling one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged: Option<crate::rollout::StagedView>,
}

/// How many running tasks hold what, by the holding rule ([`crate::holding`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TaskCounts {
    /// Hold the version the phase delivers.
    pub ours: usize,
    /// Hold the version that superseded it.
    pub other: usize,
    /// Launched before that version was (provably) current.
    pub before: usize,
    /// Cannot be told.
    pub unknown: usize,
}

/// One secret a phase delivers, judged by the holding rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretHolding {
    /// Name.
    pub secret: String,
    /// ARN.
    pub arn: String,
    /// The version the tasks must hold.
    pub version: String,
    /// The rule's answer.
    pub holding: Holding,
    /// The superseding version's CreatedDate (AWS's clock), when superseded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::history::ser_opt_epoch"
    )]
    pub other_created: Option<f64>,
    /// Someone else changed the secret during the phase (the looks moved).
    pub changed: bool,
    /// What the running tasks of the phase's services hold.
    pub tasks: TaskCounts,
}

/// One phase (rollout or restore) in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    /// Per service.
    pub services: Vec<ServiceReport>,
    /// How it ended.
    pub outcome: PhaseOutcome,
    /// Why verification could not finish (ECS could not be asked for the tasks), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    /// The secrets the phase delivers, as the watch judged them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretHolding>,
}

impl PhaseReport {
    /// Someone else changed a delivered secret during the phase: nothing may be restored
    /// over that change.
    pub fn changed_by_another(&self) -> bool {
        self.secrets.iter().any(|s| s.changed)
    }

    /// One line naming every superseding version and what the tasks hold, if any.
    pub fn superseded_message(&self) -> Option<String> {
        let parts: Vec<String> = self
            .secrets
            .iter()
            .filter_map(|s| {
                let Holding::Superseded { by, .. } = &s.holding else {
                    return None;
                };
                let created = s
                    .other_created
                    .map(|c| format!(" (created {})", when(c)))
                    .unwrap_or_default();
                let t = s.tasks;
                Some(format!(
                    "AWSCURRENT of {} is now {by}{created}, not {}: someone else changed it during the run and nothing was restored over it; running tasks: {} hold {}, {} hold {by}, {} launched before, {} cannot be told",
                    s.secret, s.version, t.ours, s.version, t.other, t.before, t.unknown
                ))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// One line for a change that cannot be explained, if any.
    pub fn unexplained_message(&self) -> Option<String> {
        let parts: Vec<String> = self
            .secrets
            .iter()
            .filter(|s| s.changed)
            .filter_map(|s| match &s.holding {
                Holding::NotProven { why, .. } => Some(format!("{}: not proven: {why}", s.secret)),
                _ => None,
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// An AWS-clock moment as RFC 3339 (UTC, seconds).
pub fn when(epoch: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch.floor() as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{epoch:.0}"))
}

/// The result of a command that rolls something out, for people and machines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The rotation id (journal file name).
    pub rotation_id: Uuid,
    /// What kind of rotation.
    pub kind: RotationKind,
    /// Environment label.
    pub environment: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it did not succeed, in one line.
    pub message: Option<String>,
    /// The secrets.
    pub secrets: Vec<SecretReport>,
    /// The rollout phase.
    pub rollout: Option<PhaseReport>,
    /// The restore phase, if one ran.
    pub restore: Option<PhaseReport>,
    /// Consumers left out because they are scaled to 0 with no task running or starting:
    /// there is nothing to prove about them (the next task launched reads the current
    /// value). Services that were redeployed say so in their proof instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nothing_to_prove: Vec<ServiceRef>,
    /// Containers whose redeploy (and restore) also shipped a new image: their tag moved
    /// since the last deployment and `--allow-image-change` let the run go on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_changed: Vec<crate::images::ContainerCheck>,
    /// Containers to which the restore after a failed rollout shipped another image than
    /// some of their tasks ran (their tag moved, before or during the rollout): checked
    /// again before the restore, never refused (see [`crate::images::RESTORING`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore_image_changed: Vec<crate::images::ContainerCheck>,
    /// Commands to restore by hand, when our restore failed.
    pub manual_restore: Vec<String>,
    /// What to run next, ready to paste (they carry the options that reach the
    /// environment): `rollback ID` after a failure whose new value was kept, `resume ID`
    /// after a timeout, `redeploy` when a rollback found its version current but not
    /// every task proven on it. Empty when there is nothing to do.
    #[serde(default)]
    pub next_steps: Vec<String>,
    /// AWS calls made, by operation.
    pub aws_calls: BTreeMap<String, u64>,
    /// Milliseconds from start to end.
    pub elapsed_ms: u128,
}

impl Report {
    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        outcome_exit_code(self.outcome)
    }
}

/// Exit code of an outcome.
pub fn outcome_exit_code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Verified | Outcome::WrittenNoReaders => exit::OK,
        Outcome::FailedRestored => exit::FAILED_RESTORED,
        Outcome::RestoreFailed => exit::RESTORE_FAILED,
        Outcome::DeployFailed => exit::DEPLOY_FAILED,
        Outcome::VerifyFailed => exit::VERIFY_FAILED,
        Outcome::Timeout => exit::TIMEOUT,
        Outcome::Paused => exit::PAUSED,
        Outcome::Interrupted => exit::INTERRUPTED,
        Outcome::Aborted => exit::REFUSED,
        Outcome::Superseded => exit::SUPERSEDED,
    }
}

/// One phrase for an outcome (reports, refusals).
pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Verified => "verified",
        Outcome::WrittenNoReaders => "written, no readers",
        Outcome::FailedRestored => "failed, previous version restored",
        Outcome::RestoreFailed => "failed, and the restore failed too",
        Outcome::DeployFailed => "deployment failed",
        Outcome::VerifyFailed => "verification failed",
        Outcome::Timeout => "timed out",
        Outcome::Paused => "paused at a lifecycle hook",
        Outcome::Interrupted => "interrupted",
        Outcome::Aborted => "aborted before any write",
        Outcome::Superseded => {
            "superseded: another version became current, nothing restored over it"
        }
    }
}
