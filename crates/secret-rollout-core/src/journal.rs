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
}

/// How a rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written, rolled out, every task proven on the new version.
    Verified,
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
}

impl Outcome {
    /// Whether `resume` can pick the rotation up again.
    pub fn is_resumable(self) -> bool {
        matches!(self, Outcome::Timeout | Outcome::Interrupted)
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
    },
    /// AWSCURRENT moved back to the previous version.
    Restored {
        /// Secret ARN.
        secret_arn: String,
        /// The version now AWSCURRENT.
        version_id: String,
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
            | Record::Redeployed { at, .. }
            | Record::PhaseFinished { at, .. }
            | Record::Restored { at, .. }
            | Record::Finished { at, .. } => *at,
        }
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::refused(format!("cannot {what} {}: {}", path.display(), e.kind()))
        .hint(format!("check the permissions of the state directory, or point {STATE_DIR_ENV} at a writable directory"))
}

/// The state directory (created 0700 if missing; permissions narrowed if wider).
pub fn state_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os(STATE_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .ok_or_else(|| {
                Error::refused("cannot find a state directory for the journal")
                    .hint(format!("set {STATE_DIR_ENV} to a private directory"))
            })?
            .join("secret-rollout"),
    };
    ensure_private_dir(&dir)?;
    Ok(dir)
}

/// Creates `dir` (and parents) if needed and makes it 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| io_error("create the directory", dir, e))?;
    restrict(dir, 0o700)
}

/// Narrows `path`'s permissions to `mode` when they are anything else.
fn restrict(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| io_error("inspect", path, e))?;
        if meta.permissions().mode() & 0o777 != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io_error("restrict the permissions of", path, e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn rotations_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("rotations")
}

/// The journal file of a rotation.
pub fn journal_path(state_dir: &Path, rotation_id: Uuid) -> PathBuf {
    rotations_dir(state_dir).join(format!("{rotation_id}.jsonl"))
}

/// An open journal, appending to one rotation's file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    rotation_id: Uuid,
}

impl Journal {
    /// Creates the rotation's file with its `Started` record, durably.
    pub fn create(state_dir: &Path, started: &Started) -> Result<Journal> {
        let dir = rotations_dir(state_dir);
        ensure_private_dir(state_dir)?;
        ensure_private_dir(&dir)?;
        let path = journal_path(state_dir, started.rotation_id);
        let mut options = OpenOptions::new();
        options.append(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(|e| io_error("create the journal", &path, e))?;
        restrict(&path, 0o600)?;
        let mut journal = Journal {
            path,
            file,
            rotation_id: started.rotation_id,
        };
        journal.append(&Record::Started(started.clone()))?;
        // The new directory entry must survive a crash too, or the file could vanish.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("sync the directory", &dir, e))?;
        Ok(journal)
    }

    /// Opens an existing rotation's journal for appending, cutting off a torn last line.
    pub fn open(state_dir: &Path, rotation_id: Uuid) -> Result<Journal> {
        let path = journal_path(state_dir, rotation_id);
        if !path.is_file() {
            return Err(
                Error::bad_input(format!("no rotation {rotation_id} in the journal"))
                    .hint("list rotations with `secret-rollout history`"),
            );
        }
        restrict(&path, 0o600)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error("open the journal", &path, e))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)
            .map_err(|e| io_error("read the journal", &path, e))?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            // A torn append: drop the partial line so the next record starts on its own.
            let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)
                .and_then(|_| file.seek(SeekFrom::End(0)).map(|_| ()))
                .and_then(|_| file.sync_all())
                .map_err(|e| io_error("repair the journal", &path, e))?;
        }
        Ok(Journal {
            path,
            file,
            rotation_id,
        })
    }

    /// Appends one record as one line and syncs it to disk.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| {
            Error::refused(format!("cannot encode a journal record: {e}"))
                .hint("this is a bug in secret-rollout: please report it")
        })?;
        line.push(b'\n');
        // One write on an O_APPEND file: a crash leaves at worst a torn last line.
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| io_error("write the journal", &self.path, e))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rotation id.
    pub fn rotation_id(&self) -> Uuid {
        self.rotation_id
    }

    /// Everything recorded so far, folded.
    pub fn summary(&self) -> Result<RotationSummary> {
        read_summary(&self.path)?.ok_or_else(|| {
            Error::refused(format!(
                "the journal {} has no start record",
                self.path.display()
            ))
            .hint("it was damaged: move it aside and run the command again")
        })
    }
}

/// Reads a journal file's records. A last line that does not parse (a torn append) is
/// ignored; a bad line before it is an error naming the file and line.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read(path).map_err(|e| io_error("read the journal", path, e))?;
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => records.push(r),
            // `split` yields a final element after the last `\n`: the torn line, if any, is
            // that one (or the last non-empty one).
            Err(_)
                if lines[i + 1..]
                    .iter()
                    .all(|l| l.iter().all(u8::is_ascii_whitespace)) => {}
            Err(e) => {
                return Err(Error::refused(format!(
                    "the journal {} is damaged at line {}: {e}",
                    path.display(),
                    i + 1
                ))
                .hint("move the file aside (it is one past rotation) and run the command again"))
            }
        }
    }
    Ok(records)
}

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
            } => {
                if let Some(s) = summary.secrets.iter_mut().find(|s| s.arn == *secret_arn) {
                    s.written_version_id = Some(version_id.clone());
                    s.written_at = Some(*at);
                }
            }
            Record::Restored {
                secret_arn,
                version_id,
                at,
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
            Record::PhaseFinished { phase, outcome, at } => {
                summary.phases.push((*phase, *outcome, *at));
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

fn read_summary(path: &Path) -> Result<Option<RotationSummary>> {
    Ok(fold(path, &read_records(path)?))
}

/// Every rotation in the state directory, oldest first.
pub fn list(state_dir: &Path) -> Result<Vec<RotationSummary>> {
    let dir = rotations_dir(state_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("read the directory", &dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| io_error("read the directory", &dir, e))?
            .path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            if let Some(summary) = read_summary(&path)? {
                out.push(summary);
            }
        }
    }
    out.sort_by(|a, b| {
        (a.started.started_at, a.rotation_id()).cmp(&(b.started.started_at, b.rotation_id()))
    });
    Ok(out)
}

/// The most recent resumable rotation of `secret_arn` in `environment`, if any: `replace`
/// points to `resume` instead of starting a second one.
pub fn unfinished(
    state_dir: &Path,
    environment: &str,
    secret_arn: &str,
) -> Result<Option<RotationSummary>> {
    Ok(list(state_dir)?.into_iter().rev().find(|r| {
        r.started.environment == environment && r.touches(secret_arn) && r.is_resumable()
    }))
}

#[cfg(test)]
mod tests {
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
            },
            Record::Restored {
                secret_arn: ARN.into(),
                version_id: "v-old".into(),
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
