//! The journal: a record of every rotation, readable whatever moment the process dies.
//!
//! One JSON-lines file per rotation, `STATE_DIR/rotations/<rotation_id>.jsonl`. Each record
//! is appended as one line and `fsync`ed before the step it announces is taken (the file
//! and, when it is created, its directory), so after a crash or `kill -9` the file says at
//! least everything that happened up to the last completed step. A crash in the middle of
//! an append leaves a torn last line: readers ignore it and [`Journal::open`] cuts it off
//! before appending again.
//!
//! The state directory is `$SECRET_ROLLOUT_STATE_DIR` when set (tests), else
//! `dirs::state_dir()` (or `dirs::data_local_dir()`, e.g. on macOS) + `/secret-rollout`.
//! Directories are 0700 and files 0600; wider permissions found are narrowed.
//!
//! Records hold names, ARNs, version ids, request tokens, deployment ids and timestamps.
//! **Never a secret value**: no record type has a field that could carry one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};

/// The environment variable that moves the state directory (tests).
pub const STATE_DIR_ENV: &str = "SECRET_ROLLOUT_STATE_DIR";
/// This tool's version, recorded in [`Started`].
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What kind of rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationKind {
    /// `replace`: a new value written and rolled out.
    Replace,
    /// `rollback`: AWSCURRENT moved back and rolled out.
    Rollback,
    /// `redeploy`: no write, services redeployed.
    Redeploy,
    /// `sync`: no write, the consumers that may hold a value older than the current one
    /// (changed outside secret-rollout) redeployed and proven to hold it.
    Sync,
}

impl RotationKind {
    /// Its name, as in the journal (`replace`, `rollback`, `redeploy`, `sync`).
    pub fn name(self) -> &'static str {
        match self {
            RotationKind::Replace => "replace",
            RotationKind::Rollback => "rollback",
            RotationKind::Redeploy => "redeploy",
            RotationKind::Sync => "sync",
        }
    }

    /// Whether the rotation writes or moves nothing: it only redeploys.
    pub fn redeploys_only(self) -> bool {
        matches!(self, RotationKind::Redeploy | RotationKind::Sync)
    }
}

/// The phases that redeploy services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Rolling out the new value.
    Rollout,
    /// Rolling the previous value back out after a failure.
    Restore,
}

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseOutcome {
    /// Every deployment completed and every task was verified.
    Verified,
    /// A deployment failed.
    DeployFailed,
    /// Deployments completed but a task was not proven fresh.
    VerifyFailed,
    /// `--timeout` elapsed.
    Timeout,
    /// Interrupted.
    Interrupted,
    /// Another version became AWSCURRENT during the phase (see [`crate::holding`]).
    Superseded,
    /// A deployment waits at a `PAUSE` lifecycle hook, nothing failed.
    Paused,
}

/// How a rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written, rolled out, every task proven on the new version.
    Verified,
    /// Written and confirmed AWSCURRENT, but no service or task family reads any of the
    /// secrets: nothing was redeployed and there was nothing to prove (exit 0).
    WrittenNoReaders,
    /// Failed; the previous version was restored and verified.
    FailedRestored,
    /// Failed, and restoring failed too.
    RestoreFailed,
    /// A deployment failed; the new value was kept (`--on-failure keep`).
    DeployFailed,
    /// Not every task was proven fresh; the new value was kept.
    VerifyFailed,
    /// `--timeout` elapsed: resumable.
    Timeout,
    /// Ctrl-C: resumable.
    Interrupted,
    /// Stopped before any write (a guard refused, the user said no).
    Aborted,
    /// Another version became AWSCURRENT during the run: nothing was restored over it.
    /// Not resumable: the rotation's version is no longer the one to deliver.
    Superseded,
    /// A deployment waits at a `PAUSE` lifecycle hook for someone to continue it; nothing
    /// failed: resumable.
    Paused,
}

impl Outcome {
    /// Whether `resume` can pick the rotation up again.
    pub fn is_resumable(self) -> bool {
        matches!(
            self,
            Outcome::Timeout | Outcome::Interrupted | Outcome::Paused
        )
    }
}

/// A secret a rotation acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedSecret {
    /// Full ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// The version that held AWSCURRENT before (the one to restore).
    pub previous_version_id: Option<String>,
    /// The ClientRequestToken of the write, which becomes the new version id. `None` for
    /// rotations that write nothing (`redeploy`, `rollback`).
    pub request_token: Option<Uuid>,
    /// The JSON key replaced, if any.
    #[serde(default)]
    pub json_key: Option<String>,
}

/// A service a rotation plans to redeploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedService {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// Its PRIMARY deployment before the rotation: a circuit-breaker rollback reuses this
    /// id, so `resume` must never take it for a deployment of ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_deployment: Option<String>,
}

/// The first record of every rotation, written before anything is changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// The rotation's id (also the file name).
    pub rotation_id: Uuid,
    /// What kind.
    pub kind: RotationKind,
    /// Environment name (or `REGION/CLUSTERS` without one).
    pub environment: String,
    /// Region.
    pub region: String,
    /// Clusters.
    pub clusters: Vec<String>,
    /// Who did it (STS caller ARN).
    pub caller_arn: String,
    /// Account id.
    pub account: String,
    /// For `rollback`: the rotation being rolled back.
    #[serde(default)]
    pub rolls_back: Option<Uuid>,
    /// The secrets.
    pub secrets: Vec<StartedSecret>,
    /// The services planned for redeployment.
    pub services: Vec<PlannedService>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// secret-rollout's version.
    #[serde(default)]
    pub tool_version: String,
    /// What the run was told to do on failure, so `resume` does the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

/// What to do when a rollout fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Restore the previous versions, redeploy and verify.
    Rollback,
    /// Leave the new versions in place.
    Keep,
}

/// When a phase's deployments reached their milestones, on AWS's clock, for the timeline
/// of `history ROTATION_ID` (see [`crate::rollout::Milestones`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// When the version the phase delivers became current (Secrets Manager's clock): the
    /// write, or the move back.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Per service.
    #[serde(default)]
    pub services: Vec<ServiceTimes>,
}

/// One service's milestones in [`PhaseTimes`] (ECS's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTimes {
    /// Cluster.
    pub cluster: String,
    /// Service.
    pub service: String,
    /// The deployment was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started: Option<OffsetDateTime>,
    /// All traffic on new tasks.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub traffic: Option<OffsetDateTime>,
    /// Completed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed: Option<OffsetDateTime>,
}

/// Epoch seconds (AWS's clock) as a moment, to the millisecond.
pub fn epoch_moment(epoch: f64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos((epoch * 1000.0).round() as i128 * 1_000_000).ok()
}

/// A moment as epoch seconds.
pub fn moment_epoch(t: OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The rotation started.
    Started(Started),
    /// PutSecretValue succeeded.
    Written {
        /// Secret ARN.
        secret_arn: String,
        /// The new version id.
        version_id: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// A parameter whose history could not place the rotation's write: the operator
        /// named `version_id` as that write (`resume ID --written VERSION`), after looking
        /// at the history; the tool did not find it. Absent (false) for a write the tool
        /// made or found itself, so the journal says which versions a person vouched for.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        operator_named: bool,
    },
    /// About to write a parameter (`PutParameter`, which takes no request token): the
    /// version it overwrites, who writes, and when, so that after a crash the write is
    /// found again in `GetParameterHistory` ([`crate::parameter::resolve_written`]) and
    /// never made twice. Journaled before the write, in the phase that writes (the rollout
    /// writes the new value, the restore the previous one again).
    Intent {
        /// Which phase writes.
        phase: Phase,
        /// Parameter ARN.
        secret_arn: String,
        /// The latest version when the intent was recorded (the one the write overwrites).
        previous_version_id: String,
        /// Who writes (AWS records it as `LastModifiedUser`).
        caller_arn: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// UpdateService --force-new-deployment succeeded.
    Redeployed {
        /// Which phase.
        phase: Phase,
        /// Cluster.
        cluster: String,
        /// Service.
        service: String,
        /// The new deployment's id (`ecs-svc/...`).
        deployment_id: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A phase ended.
    PhaseFinished {
        /// Which phase.
        phase: Phase,
        /// How.
        outcome: PhaseOutcome,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// When its deployments reached their milestones (absent from older journals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        times: Option<PhaseTimes>,
    },
    /// AWSCURRENT moved back to the previous version (a parameter: the previous value
    /// written again as a new version).
    Restored {
        /// Secret ARN.
        secret_arn: String,
        /// The version now AWSCURRENT (a parameter: the new version carrying the value).
        version_id: String,
        /// A parameter: the version whose value was written again as `version_id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value_of: Option<String>,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The rotation ended.
    Finished {
        /// How.
        outcome: Outcome,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// A one-line explanation (an error headline; never a value).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

impl Record {
    /// When the record was made.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Record::Started(s) => s.started_at,
            Record::Written { at, .. }
            | Record::Intent { at, .. }
            | Record::Redeployed { at, .. }
            | Record::PhaseFinished { at, .. }
            | Record::Restored { at, .. }
            | Record::Finished { at, .. } => *at,
        }
    }
}

mod store;
mod summary;

pub use store::*;
pub use summary::*;

#[cfg(test)]
mod tests {
    use super::store::rotations_dir;
    use super::*;
    use time::macros::datetime;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbCdEf";

    fn started(id: Uuid, at: OffsetDateTime) -> Started {
        Started {
            rotation_id: id,
            kind: RotationKind::Replace,
            environment: "production".into(),
            region: "eu-west-1".into(),
            clusters: vec!["production-online-lpa".into()],
            caller_arn: "arn:aws:sts::123456789012:assumed-role/operator/alice".into(),
            account: "123456789012".into(),
            rolls_back: None,
            secrets: vec![StartedSecret {
                arn: ARN.into(),
                name: "production/x".into(),
                previous_version_id: Some("v-old".into()),
                request_token: Some(Uuid::from_u128(7)),
                json_key: Some("password".into()),
            }],
            services: ["front", "api"]
                .iter()
                .map(|n| PlannedService {
                    cluster: "production-online-lpa".into(),
                    name: n.to_string(),
                    previous_deployment: None,
                })
                .collect(),
            started_at: at,
            tool_version: TOOL_VERSION.into(),
            on_failure: None,
        }
    }

    fn every_record(id: Uuid) -> Vec<Record> {
        let at = datetime!(2026-11-25 12:00:00 UTC);
        vec![
            Record::Started(started(id, at)),
            Record::Written {
                secret_arn: ARN.into(),
                version_id: Uuid::from_u128(7).to_string(),
                at: datetime!(2026-11-25 12:00:01 UTC),
                operator_named: false,
            },
            Record::Redeployed {
                phase: Phase::Rollout,
                cluster: "production-online-lpa".into(),
                service: "front".into(),
                deployment_id: "ecs-svc/111".into(),
                at: datetime!(2026-11-25 12:00:02 UTC),
            },
            Record::Redeployed {
                phase: Phase::Rollout,
                cluster: "production-online-lpa".into(),
                service: "api".into(),
                deployment_id: "ecs-svc/222".into(),
                at: datetime!(2026-11-25 12:00:02 UTC),
            },
            Record::PhaseFinished {
                phase: Phase::Rollout,
                outcome: PhaseOutcome::DeployFailed,
                at: datetime!(2026-11-25 12:03:00 UTC),
                times: Some(PhaseTimes {
                    since: Some(datetime!(2026-11-25 12:00:01.5 UTC)),
                    services: vec![ServiceTimes {
                        cluster: "production-online-lpa".into(),
                        service: "front".into(),
                        started: Some(datetime!(2026-11-25 12:00:02 UTC)),
                        traffic: None,
                        completed: None,
                    }],
                }),
            },
            Record::Restored {
                secret_arn: ARN.into(),
                version_id: "v-old".into(),
                value_of: None,
                at: datetime!(2026-11-25 12:03:01 UTC),
            },
            Record::Redeployed {
                phase: Phase::Restore,
                cluster: "production-online-lpa".into(),
                service: "front".into(),
                deployment_id: "ecs-svc/333".into(),
                at: datetime!(2026-11-25 12:03:02 UTC),
            },
            Record::Redeployed {
                phase: Phase::Restore,
                cluster: "other".into(),
                service: "worker".into(),
                deployment_id: "ecs-svc/444".into(),
                at: datetime!(2026-11-25 12:03:02 UTC),
            },
            Record::PhaseFinished {
                phase: Phase::Restore,
                outcome: PhaseOutcome::Verified,
                at: datetime!(2026-11-25 12:05:00 UTC),
                times: None,
            },
            Record::Finished {
                outcome: Outcome::FailedRestored,
                at: datetime!(2026-11-25 12:05:01 UTC),
                message: Some("deployment ecs-svc/111 of front failed".into()),
            },
        ]
    }

    fn write_all(dir: &Path, records: &[Record]) -> Journal {
        let Record::Started(s) = &records[0] else {
            panic!("first record must be Started")
        };
        let mut j = Journal::create(dir, s).unwrap();
        for r in &records[1..] {
            j.append(r).unwrap();
        }
        j
    }

    /// A parameter's intent and its restore (both versions) round-trip and fold into the
    /// summary `resume` reads.
    #[test]
    fn a_parameter_intent_and_restore_round_trip_and_fold() {
        let id = Uuid::from_u128(9);
        let at = datetime!(2026-11-25 12:00:00 UTC);
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/p/db";
        let mut s = started(id, at);
        s.secrets[0].arn = arn.into();
        s.secrets[0].request_token = None;
        let records = vec![
            Record::Started(s),
            Record::Intent {
                phase: Phase::Rollout,
                secret_arn: arn.into(),
                previous_version_id: "4".into(),
                caller_arn: "arn:aws:iam::123456789012:user/op".into(),
                at: datetime!(2026-11-25 12:00:01 UTC),
            },
            Record::Written {
                secret_arn: arn.into(),
                version_id: "5".into(),
                at: datetime!(2026-11-25 12:00:02 UTC),
                operator_named: false,
            },
            Record::Intent {
                phase: Phase::Restore,
                secret_arn: arn.into(),
                previous_version_id: "5".into(),
                caller_arn: "arn:aws:iam::123456789012:user/op".into(),
                at: datetime!(2026-11-25 12:01:00 UTC),
            },
            Record::Restored {
                secret_arn: arn.into(),
                version_id: "6".into(),
                value_of: Some("4".into()),
                at: datetime!(2026-11-25 12:01:01 UTC),
            },
        ];
        for r in &records {
            let line = serde_json::to_string(r).unwrap();
            assert_eq!(&serde_json::from_str::<Record>(&line).unwrap(), r);
        }
        let dir = tempfile::tempdir().unwrap();
        let j = write_all(dir.path(), &records);
        let sum = j.summary().unwrap();
        assert_eq!(
            sum.intent(0, Phase::Rollout),
            Some(("4", datetime!(2026-11-25 12:00:01 UTC)))
        );
        assert_eq!(
            sum.intent(0, Phase::Restore),
            Some(("5", datetime!(2026-11-25 12:01:00 UTC)))
        );
        assert_eq!(sum.secrets[0].written_version_id.as_deref(), Some("5"));
        assert_eq!(sum.secrets[0].restored_version_id.as_deref(), Some("6"));
    }

    #[test]
    fn records_round_trip_and_carry_no_value() {
        const KNOWN_VALUE: &str = "hunter2-the-new-value";
        for record in every_record(Uuid::new_v4()) {
            let line = serde_json::to_string(&record).unwrap();
            assert!(!line.contains(KNOWN_VALUE));
            assert!(!line.contains('\n'));
            let back: Record = serde_json::from_str(&line).unwrap();
            assert_eq!(back, record);
        }
        let line = serde_json::to_string(&every_record(Uuid::nil())[1]).unwrap();
        assert!(line.starts_with(r#"{"type":"written","#), "{line}");
        assert!(line.contains(r#""at":"2026-11-25T12:00:01Z""#), "{line}");
    }

    /// A write the operator named (`resume --written`) says so in the journal; one the tool
    /// made or found carries no field, so older journals read as they were written.
    #[test]
    fn an_operator_named_write_says_so_and_older_lines_read_unchanged() {
        let at = datetime!(2026-11-25 12:00:01 UTC);
        let named = Record::Written {
            secret_arn: "arn:aws:ssm:eu-west-1:123456789012:parameter/p/db".into(),
            version_id: "4".into(),
            at,
            operator_named: true,
        };
        let line = serde_json::to_string(&named).unwrap();
        assert!(line.contains(r#""operator_named":true"#), "{line}");
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), named);
        let found = Record::Written {
            secret_arn: "arn:aws:ssm:eu-west-1:123456789012:parameter/p/db".into(),
            version_id: "4".into(),
            at,
            operator_named: false,
        };
        let line = serde_json::to_string(&found).unwrap();
        assert!(!line.contains("operator_named"), "{line}");
        let old = r#"{"type":"written","secret_arn":"arn:aws:ssm:eu-west-1:123456789012:parameter/p/db","version_id":"4","at":"2026-11-25T12:00:01Z"}"#;
        assert_eq!(serde_json::from_str::<Record>(old).unwrap(), found);
    }

    #[test]
    fn fold_gives_the_whole_story() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        let j = write_all(dir.path(), &every_record(id));
        let s = j.summary().unwrap();
        assert_eq!(s.rotation_id(), id);
        assert_eq!(s.status, Status::Finished(Outcome::FailedRestored));
        assert!(!s.is_resumable());
        assert_eq!(
            s.message.as_deref(),
            Some("deployment ecs-svc/111 of front failed")
        );
        assert_eq!(
            s.secrets[0].written_version_id.as_deref(),
            Some(Uuid::from_u128(7).to_string().as_str())
        );
        assert_eq!(s.secrets[0].restored_version_id.as_deref(), Some("v-old"));
        assert!(s.all_written());
        let deployments: Vec<_> = s
            .services
            .iter()
            .map(|x| {
                (
                    x.name.as_str(),
                    x.planned,
                    x.rollout_deployment.as_deref(),
                    x.restore_deployment.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            deployments,
            [
                ("front", true, Some("ecs-svc/111"), Some("ecs-svc/333")),
                ("api", true, Some("ecs-svc/222"), None),
                ("worker", false, None, Some("ecs-svc/444")),
            ]
        );
        assert_eq!(s.phases.len(), 2);
        assert_eq!(s.phases[1].1, PhaseOutcome::Verified);
        assert_eq!(s.updated_at, datetime!(2026-11-25 12:05:01 UTC));
        assert_eq!(s.finished_at, Some(datetime!(2026-11-25 12:05:01 UTC)));
    }

    #[test]
    fn a_kinds_name_is_its_journal_name() {
        for kind in [
            RotationKind::Replace,
            RotationKind::Rollback,
            RotationKind::Redeploy,
            RotationKind::Sync,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
    }

    #[test]
    fn unfinished_rotations_are_found_by_environment_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        // Died after the write.
        let died = Uuid::new_v4();
        write_all(dir.path(), &every_record(died)[..3]);
        // Finished and verified, later: not resumable.
        let mut done = every_record(Uuid::new_v4());
        if let Record::Started(s) = &mut done[0] {
            s.started_at = datetime!(2026-11-25 13:00:00 UTC);
        }
        done.truncate(2);
        done.push(Record::Finished {
            outcome: Outcome::Verified,
            at: datetime!(2026-11-25 13:01:00 UTC),
            message: None,
        });
        write_all(dir.path(), &done);

        let found = unfinished(dir.path(), "production", ARN).unwrap().unwrap();
        assert_eq!(found.rotation_id(), died);
        assert_eq!(found.status, Status::InProgress);
        assert_eq!(
            found.services[0].rollout_deployment.as_deref(),
            Some("ecs-svc/111")
        );
        assert_eq!(found.services[1].rollout_deployment, None);
        assert!(unfinished(dir.path(), "development", ARN)
            .unwrap()
            .is_none());
        assert!(unfinished(dir.path(), "production", "arn:other")
            .unwrap()
            .is_none());

        // Interrupted is resumable too, and the newest one wins.
        let mut interrupted = every_record(Uuid::new_v4());
        if let Record::Started(s) = &mut interrupted[0] {
            s.started_at = datetime!(2026-11-25 14:00:00 UTC);
        }
        interrupted.truncate(1);
        interrupted.push(Record::Finished {
            outcome: Outcome::Interrupted,
            at: datetime!(2026-11-25 14:00:05 UTC),
            message: None,
        });
        write_all(dir.path(), &interrupted);
        let found = unfinished(dir.path(), "production", ARN).unwrap().unwrap();
        assert_eq!(found.status, Status::Finished(Outcome::Interrupted));

        let all = list(dir.path()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].rotation_id(), died, "oldest first");
    }

    #[test]
    fn torn_last_line_is_ignored_then_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        let records = every_record(id);
        let j = write_all(dir.path(), &records[..3]);
        let path = j.path().to_path_buf();
        drop(j);
        // A crash half-way through appending the fourth record.
        let line = serde_json::to_string(&records[3]).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&line.as_bytes()[..line.len() / 2]).unwrap();
        drop(f);

        assert_eq!(read_records(&path).unwrap().len(), 3);
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed[0].services[1].rollout_deployment, None);

        // Resuming appends after cutting the torn part off: the file stays readable.
        let mut j = Journal::open(dir.path(), id).unwrap();
        j.append(&records[3]).unwrap();
        let again = read_records(&path).unwrap();
        assert_eq!(again, records[..4]);
    }

    #[test]
    fn damage_before_the_last_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        let j = write_all(dir.path(), &every_record(id)[..2]);
        let path = j.path().to_path_buf();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{{garbage\n{text}")).unwrap();
        let e = read_records(&path).unwrap_err();
        assert!(e.message.contains("line 1"), "{}", e.message);
        assert!(e.hint.is_some());
    }

    #[test]
    fn a_file_without_its_start_record_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        ensure_private_dir(&rotations_dir(dir.path())).unwrap();
        std::fs::write(journal_path(dir.path(), Uuid::new_v4()), b"{\"type\":\"sta").unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
        assert!(list(&dir.path().join("nothing-here")).unwrap().is_empty());
    }

    #[test]
    fn open_of_an_unknown_rotation_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let e = Journal::open(dir.path(), Uuid::nil()).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::BadInput);
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_private_and_fixed() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let id = Uuid::new_v4();
        let j = write_all(&state, &every_record(id)[..1]);
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&rotations_dir(&state)), 0o700);
        assert_eq!(mode(j.path()), 0o600);

        std::fs::set_permissions(j.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let j = Journal::open(&state, id).unwrap();
        assert_eq!(mode(j.path()), 0o600);
    }

    #[test]
    fn create_refuses_to_overwrite_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let records = every_record(Uuid::new_v4());
        write_all(dir.path(), &records[..1]);
        let Record::Started(s) = &records[0] else {
            unreachable!()
        };
        assert!(Journal::create(dir.path(), s).is_err());
    }
}
