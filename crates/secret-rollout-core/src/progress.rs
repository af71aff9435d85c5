//! Progress as data. The core emits [`Event`]s; the CLI draws them (bars on a terminal,
//! timestamped lines otherwise, JSON lines with `--output ndjson`). The core never draws.
//!
//! Each variant is one kind of event, and its serde tag (`type`, snake_case) is the stable
//! name machines read: adding a variant adds a kind, renaming one breaks readers. Every
//! event reaches a [`Reporter`] with the moment it happened on the tool's own clock.

use serde::Serialize;
use time::OffsetDateTime;

pub use crate::journal::Phase;
use crate::verdict::{Proof, Stage};

/// Something worth telling the operator. Never carries a secret value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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
    #[serde(rename = "deployment_started")]
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
    /// Counts of one service's rollout, after a poll (sent when they change).
    #[serde(rename = "counts")]
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
    #[serde(rename = "ecs_event")]
    ServiceEvent {
        /// Service.
        service: String,
        /// When ECS says it happened (epoch seconds, AWS's clock; RFC 3339 in JSON).
        #[serde(rename = "ecs_at", serialize_with = "crate::history::ser_epoch")]
        at: f64,
        /// ECS's message.
        message: String,
    },
    /// A service's rollout went back to starting: a new task is missing again, or an old
    /// one serves again (after [`Event::TrafficOnNew`]; a rollout starts in this stage
    /// without an event).
    DeploymentStarting {
        /// Which phase.
        phase: Phase,
        /// Service.
        service: String,
    },
    /// The traffic moment: every old task has been told to stop, all traffic is on new
    /// tasks, old ones drain.
    TrafficOnNew {
        /// Which phase.
        phase: Phase,
        /// Service.
        service: String,
    },
    /// Our deployment is COMPLETED and the service's only one: old tasks are gone.
    DeploymentComplete {
        /// Which phase.
        phase: Phase,
        /// Service.
        service: String,
    },
    /// The service's rollout failed.
    DeploymentFailed {
        /// Which phase.
        phase: Phase,
        /// Service.
        service: String,
        /// Why, in words for the operator.
        reason: String,
    },
    /// The proof for one service: which running tasks are proven to hold `version_id`
    /// (it holds only when `proof.stale` is empty).
    #[serde(rename = "proof")]
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
    /// A watched secret changed during the phase: another version is AWSCURRENT, or its
    /// LastChangedDate moved (see [`crate::holding`]). Sent once per phase.
    SecretChanged {
        /// Which phase.
        phase: Phase,
        /// Secret name.
        secret: String,
        /// The version the tasks must hold.
        expected: String,
        /// The version AWSCURRENT is on now.
        current: Option<String>,
        /// Its LastChangedDate now (epoch seconds, AWS's clock).
        #[serde(serialize_with = "crate::history::ser_opt_epoch")]
        last_changed: Option<f64>,
    },
    /// Before writing, with `--wait`: a consumer is in the middle of a deployment the tool
    /// did not start, and the run waits for it to settle (sent when what it waits for
    /// changes).
    #[serde(rename = "waiting")]
    WaitingForDeployment {
        /// Cluster.
        cluster: String,
        /// Service.
        service: String,
        /// The deployment under way (`ecs-svc/...` or a service deployment ARN).
        deployment_id: String,
        /// What ECS says of it (`IN_PROGRESS`, `2 deployments`, ...).
        state: String,
        /// Since when, epoch seconds on AWS's clock.
        #[serde(rename = "ecs_since", serialize_with = "crate::history::ser_epoch")]
        since: f64,
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

impl Event {
    /// The event for a service's rollout reaching `stage`.
    pub fn stage(phase: Phase, service: &str, stage: &Stage) -> Event {
        let service = service.to_string();
        match stage {
            Stage::Starting => Event::DeploymentStarting { phase, service },
            Stage::Draining => Event::TrafficOnNew { phase, service },
            Stage::Completed => Event::DeploymentComplete { phase, service },
            Stage::Failed { reason } => Event::DeploymentFailed {
                phase,
                service,
                reason: reason.clone(),
            },
        }
    }
}

/// Where the core sends events.
pub trait Reporter: Send + Sync {
    /// One event, with the moment it happened (the tool's clock, UTC).
    fn report_at(&self, at: OffsetDateTime, event: &Event);

    /// One event, happening now.
    fn report(&self, event: &Event) {
        self.report_at(OffsetDateTime::now_utc(), event);
    }
}

/// Discards events.
pub struct Silent;
impl Reporter for Silent {
    fn report_at(&self, _: OffsetDateTime, _: &Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Keep(Mutex<Vec<(OffsetDateTime, Event)>>);
    impl Reporter for Keep {
        fn report_at(&self, at: OffsetDateTime, event: &Event) {
            self.0.lock().unwrap().push((at, event.clone()));
        }
    }

    #[test]
    fn report_stamps_the_event_with_the_tools_clock() {
        let keep = Keep(Mutex::new(Vec::new()));
        let before = OffsetDateTime::now_utc();
        keep.report(&Event::Note { text: "hi".into() });
        let after = OffsetDateTime::now_utc();
        let got = keep.0.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert!(before <= got[0].0 && got[0].0 <= after);
        assert_eq!(got[0].0.offset(), time::UtcOffset::UTC);
    }

    #[test]
    fn each_stage_is_its_own_kind() {
        let kind = |s: Stage| {
            serde_json::to_value(Event::stage(Phase::Restore, "api", &s)).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(kind(Stage::Starting), "deployment_starting");
        assert_eq!(kind(Stage::Draining), "traffic_on_new");
        assert_eq!(kind(Stage::Completed), "deployment_complete");
        let failed = serde_json::to_value(Event::stage(
            Phase::Restore,
            "api",
            &Stage::Failed {
                reason: "boom".into(),
            },
        ))
        .unwrap();
        assert_eq!(
            failed,
            serde_json::json!({"type": "deployment_failed", "phase": "restore", "service": "api", "reason": "boom"})
        );
    }

    #[test]
    fn type_names_are_stable() {
        let p = Phase::Rollout;
        let s = || "api".to_string();
        let cases = [
            (
                Event::SecretWritten {
                    secret: s(),
                    version_id: s(),
                    already: false,
                },
                "secret_written",
            ),
            (
                Event::SecretRestored {
                    secret: s(),
                    version_id: s(),
                },
                "secret_restored",
            ),
            (
                Event::Redeployed {
                    phase: p,
                    cluster: s(),
                    service: s(),
                    deployment_id: s(),
                },
                "deployment_started",
            ),
            (
                Event::Progress {
                    phase: p,
                    service: s(),
                    desired: 1,
                    running: 0,
                    pending: 1,
                    old: 1,
                    failed: 0,
                },
                "counts",
            ),
            (
                Event::ServiceEvent {
                    service: s(),
                    at: 1.0,
                    message: s(),
                },
                "ecs_event",
            ),
            (
                Event::Verified {
                    phase: p,
                    service: s(),
                    version_id: s(),
                    proof: Proof {
                        nothing_to_prove: false,
                        fresh: 1,
                        total: 1,
                        started: None,
                        stale: vec![],
                    },
                },
                "proof",
            ),
            (
                Event::VerifyError {
                    phase: p,
                    error: s(),
                },
                "verify_error",
            ),
            (Event::Warning { text: s() }, "warning"),
            (
                Event::SecretChanged {
                    phase: p,
                    secret: s(),
                    expected: s(),
                    current: None,
                    last_changed: None,
                },
                "secret_changed",
            ),
            (
                Event::Retrying {
                    what: s(),
                    error: s(),
                },
                "retrying",
            ),
            (Event::Note { text: s() }, "note"),
        ];
        for (event, name) in cases {
            let v = serde_json::to_value(&event).unwrap();
            assert_eq!(v["type"], name, "{event:?}");
            // `at` is the line's timestamp: no event may use the name for itself.
            assert!(v.get("at").is_none() && v.get("v").is_none(), "{v}");
        }
    }
}
