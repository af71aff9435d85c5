//! What a rotating command reports when it ends: per secret, per phase and per service,
//! never a value. Rendered by the CLI as text or JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use crate::error::exit;
use crate::journal::{Outcome, PhaseOutcome, RotationKind};
use crate::rollout::ServiceRef;
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
    /// Commands to restore by hand, when our restore failed.
    pub manual_restore: Vec<String>,
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
        Outcome::Verified => exit::OK,
        Outcome::FailedRestored => exit::FAILED_RESTORED,
        Outcome::RestoreFailed => exit::RESTORE_FAILED,
        Outcome::DeployFailed => exit::DEPLOY_FAILED,
        Outcome::VerifyFailed => exit::VERIFY_FAILED,
        Outcome::Timeout => exit::TIMEOUT,
        Outcome::Interrupted => exit::INTERRUPTED,
        Outcome::Aborted => exit::REFUSED,
    }
}

/// One phrase for an outcome (reports, refusals).
pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Verified => "verified",
        Outcome::FailedRestored => "failed, previous version restored",
        Outcome::RestoreFailed => "failed, and the restore failed too",
        Outcome::DeployFailed => "deployment failed",
        Outcome::VerifyFailed => "verification failed",
        Outcome::Timeout => "timed out",
        Outcome::Interrupted => "interrupted",
        Outcome::Aborted => "aborted before any write",
    }
}
