//! What a rotation's records add up to: [`fold`] turns the lines of one journal into the
//! state `resume`, `rollback` and `history` work from.

use super::*;

/// A secret as a rotation left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSummary {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// The version that was current before.
    pub previous_version_id: Option<String>,
    /// The request token, i.e. the version id the write creates.
    pub request_token: Option<Uuid>,
    /// JSON key replaced.
    pub json_key: Option<String>,
    /// The version written, once the write succeeded.
    pub written_version_id: Option<String>,
    /// When it was written.
    pub written_at: Option<OffsetDateTime>,
    /// The version restored to AWSCURRENT, if a restore happened.
    pub restored_version_id: Option<String>,
    /// When it was restored.
    pub restored_at: Option<OffsetDateTime>,
    /// A parameter: the journaled intents to write it, per phase (the last one each), with
    /// the version each overwrites (see [`Record::Intent`]).
    pub intents: Vec<(Phase, String, OffsetDateTime)>,
}

/// A service as a rotation left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSummary {
    /// Cluster.
    pub cluster: String,
    /// Service.
    pub name: String,
    /// Whether it was in the plan (a restore can touch services the plan had).
    pub planned: bool,
    /// The deployment started by the rollout phase.
    pub rollout_deployment: Option<String>,
    /// The deployment started by the restore phase.
    pub restore_deployment: Option<String>,
}

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No `Finished` record: still running, or the process died.
    InProgress,
    /// Finished with this outcome.
    Finished(Outcome),
}

/// A rotation folded from its journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationSummary {
    /// The journal file.
    pub path: PathBuf,
    /// The start record.
    pub started: Started,
    /// Secrets, in the order of the start record.
    pub secrets: Vec<SecretSummary>,
    /// Services: planned ones first, then any other that was redeployed.
    pub services: Vec<ServiceSummary>,
    /// Phases that ended, in order.
    pub phases: Vec<(Phase, PhaseOutcome, OffsetDateTime)>,
    /// When each phase's deployments reached their milestones, where the journal says.
    pub times: Vec<(Phase, PhaseTimes)>,
    /// Status.
    pub status: Status,
    /// The `Finished` message.
    pub message: Option<String>,
    /// When it finished.
    pub finished_at: Option<OffsetDateTime>,
    /// The time of the last record.
    pub updated_at: OffsetDateTime,
}

impl RotationSummary {
    /// The rotation id.
    pub fn rotation_id(&self) -> Uuid {
        self.started.rotation_id
    }

    /// Whether `resume` should pick it up: not finished (the process died), or finished
    /// by a timeout or an interrupt.
    pub fn is_resumable(&self) -> bool {
        match self.status {
            Status::InProgress => true,
            Status::Finished(outcome) => outcome.is_resumable(),
        }
    }

    /// Whether it acts on this secret.
    pub fn touches(&self, secret_arn: &str) -> bool {
        self.secrets.iter().any(|s| s.arn == secret_arn)
    }

    /// The journaled intent of `phase` to write secret `i` (a parameter): the version it
    /// overwrites and when.
    pub fn intent(&self, i: usize, phase: Phase) -> Option<(&str, OffsetDateTime)> {
        self.secrets
            .get(i)?
            .intents
            .iter()
            .find(|(p, ..)| *p == phase)
            .map(|(_, v, at)| (v.as_str(), *at))
    }

    /// Whether the write of every secret is recorded.
    pub fn all_written(&self) -> bool {
        self.secrets.iter().all(|s| s.written_version_id.is_some())
    }
}

/// Folds a rotation's records. `None` when there is no start record (the process died
/// while writing it, before anything was changed).
pub fn fold(path: &Path, records: &[Record]) -> Option<RotationSummary> {
    let Some(Record::Started(started)) = records.first() else {
        return None;
    };
    let mut summary = RotationSummary {
        path: path.to_path_buf(),
        secrets: started
            .secrets
            .iter()
            .map(|s| SecretSummary {
                arn: s.arn.clone(),
                name: s.name.clone(),
                previous_version_id: s.previous_version_id.clone(),
                request_token: s.request_token,
                json_key: s.json_key.clone(),
                written_version_id: None,
                written_at: None,
                restored_version_id: None,
                restored_at: None,
                intents: Vec::new(),
            })
            .collect(),
        services: started
            .services
            .iter()
            .map(|s| ServiceSummary {
                cluster: s.cluster.clone(),
                name: s.name.clone(),
                planned: true,
                rollout_deployment: None,
                restore_deployment: None,
            })
            .collect(),
        phases: Vec::new(),
        times: Vec::new(),
        status: Status::InProgress,
        message: None,
        finished_at: None,
        updated_at: started.started_at,
        started: started.clone(),
    };
    for record in &records[1..] {
        summary.updated_at = summary.updated_at.max(record.at());
        match record {
            // A second start record would be a bug; the first one stands.
            Record::Started(_) => {}
            Record::Written {
                secret_arn,
                version_id,
                at,
                ..
            } => {
                if let Some(s) = summary.secrets.iter_mut().find(|s| s.arn == *secret_arn) {
                    s.written_version_id = Some(version_id.clone());
                    s.written_at = Some(*at);
                }
            }
            Record::Intent {
                phase,
                secret_arn,
                previous_version_id,
                at,
                ..
            } => {
                if let Some(s) = summary.secrets.iter_mut().find(|s| s.arn == *secret_arn) {
                    s.intents.retain(|(p, ..)| p != phase);
                    s.intents.push((*phase, previous_version_id.clone(), *at));
                }
            }
            Record::Restored {
                secret_arn,
                version_id,
                at,
                ..
            } => {
                if let Some(s) = summary.secrets.iter_mut().find(|s| s.arn == *secret_arn) {
                    s.restored_version_id = Some(version_id.clone());
                    s.restored_at = Some(*at);
                }
            }
            Record::Redeployed {
                phase,
                cluster,
                service,
                deployment_id,
                ..
            } => {
                let index = match summary
                    .services
                    .iter()
                    .position(|s| s.cluster == *cluster && s.name == *service)
                {
                    Some(i) => i,
                    None => {
                        summary.services.push(ServiceSummary {
                            cluster: cluster.clone(),
                            name: service.clone(),
                            planned: false,
                            rollout_deployment: None,
                            restore_deployment: None,
                        });
                        summary.services.len() - 1
                    }
                };
                let s = &mut summary.services[index];
                match phase {
                    Phase::Rollout => s.rollout_deployment = Some(deployment_id.clone()),
                    Phase::Restore => s.restore_deployment = Some(deployment_id.clone()),
                }
            }
            Record::PhaseFinished {
                phase,
                outcome,
                at,
                times,
            } => {
                summary.phases.push((*phase, *outcome, *at));
                if let Some(t) = times {
                    // A resumed phase finishes again: the last record counts.
                    summary.times.retain(|(p, _)| p != phase);
                    summary.times.push((*phase, t.clone()));
                }
            }
            Record::Finished {
                outcome,
                at,
                message,
            } => {
                // A resumed rotation may finish more than once (interrupted, then
                // verified): the last word counts.
                summary.status = Status::Finished(*outcome);
                summary.finished_at = Some(*at);
                summary.message = message.clone();
            }
        }
    }
    Some(summary)
}
