//! Progress as data. The core emits [`Event`]s; the CLI draws them (bars on a terminal,
//! timestamped lines otherwise, JSON lines on request). The core never draws.

use serde::Serialize;

pub use crate::journal::Phase;
use crate::rollout::verdict::{Proof, Stage};

/// Something worth telling the operator. Never carries a secret value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new secret version was written (or found already written, on resume).
    SecretWritten {
        /// Secret name.
        secret: String,
        /// New version id.
        version_id: String,
        /// True when the write had already happened (resume).
        already: bool,
    },
    /// AWSCURRENT was moved back to the previous version.
    SecretRestored {
        /// Secret name.
        secret: String,
        /// The version now AWSCURRENT.
        version_id: String,
    },
    /// A forced deployment was started (or adopted, on resume).
    Redeployed {
        /// Which phase.
        phase: Phase,
        /// Cluster.
        cluster: String,
        /// Service.
        service: String,
        /// The new deployment's id.
        deployment_id: String,
    },
    /// Counts of one service's rollout, after a poll.
    Progress {
        /// Which phase.
        phase: Phase,
        /// Service.
        service: String,
        /// Our deployment's desired count.
        desired: i32,
        /// Our deployment's running tasks.
        running: i32,
        /// Our deployment's pending tasks.
        pending: i32,
        /// Running + pending tasks of older deployments.
        old: i32,
        /// Failed launches of our deployment.
        failed: i32,
    },
    /// A new ECS service event (as ECS worded it).
    ServiceEvent {
        /// Service.
        service: String,
        /// Epoch seconds.
        at: f64,
        /// ECS's message.
        message: String,
    },
    /// A service's rollout moved to a new stage (draining = all traffic on the new value).
    Stage {
        /// Which phase.
        phase: Phase,
        /// Service.
        service: String,
        /// The new stage.
        stage: Stage,
    },
    /// The proof for one service.
    Verified {
        /// Which phase.
        phase: Phase,
        /// Service.
        service: String,
        /// The version every fresh task holds.
        version_id: String,
        /// The proof.
        proof: Proof,
    },
    /// Verification could not finish (ECS could not list or describe the tasks): nothing
    /// of this phase is proven.
    VerifyError {
        /// Which phase.
        phase: Phase,
        /// The error.
        error: String,
    },
    /// Something the operator should know that does not stop the run (e.g. a risk taken).
    Warning {
        /// The text.
        text: String,
    },
    /// A transient AWS error the follow loop rode out.
    Retrying {
        /// What failed.
        what: String,
        /// The error.
        error: String,
    },
    /// Free text (a phase starting, a note).
    Note {
        /// The text.
        text: String,
    },
}

/// Where the core sends events.
pub trait Reporter: Send + Sync {
    /// One event.
    fn report(&self, event: &Event);
}

/// Discards events.
pub struct Silent;
impl Reporter for Silent {
    fn report(&self, _: &Event) {}
}
