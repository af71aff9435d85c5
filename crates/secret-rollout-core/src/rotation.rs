//! A rotation from start to finish, over the journal: write the new versions, redeploy,
//! follow, verify; on failure restore the previous versions, redeploy, follow, verify.
//!
//! Every step is recorded before the next one starts, so `resume` can rebuild the state
//! from the journal and from AWS itself (the request token is the version id; a
//! deployment created after the write delivers the new value) and finish the job without a
//! second version or a second deployment of a service in one phase.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

use crate::clients::Clients;
use crate::error::{exit, Error, Result};
use crate::journal::{
    self, Journal, Outcome, Phase, PhaseOutcome, Record, RotationKind, RotationSummary,
};
use crate::lock::Lock;
use crate::plan::RotationPlan;
use crate::progress::{Event, Reporter};
use crate::rollout::verdict::{Proof, Stage};
use crate::rollout::{self, FollowOptions, ServiceRef, Tracked};
use crate::secret;
use crate::value::SecretValue;

pub use crate::journal::OnFailure;

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
}

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

/// The version change a rollback makes: AWSCURRENT from `from` back to `to`.
#[derive(Debug, Clone, Copy)]
pub struct Restore<'a> {
    /// The secret.
    pub secret: &'a secret::SecretInfo,
    /// The version to make AWSCURRENT again.
    pub to: &'a str,
    /// The version that holds AWSCURRENT now (or held it, with `--force`).
    pub from: &'a str,
    /// The rotation being undone, if known.
    pub rolls_back: Option<Uuid>,
}

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

/// A secret as the rotation tracks it.
#[derive(Debug, Clone)]
struct SecretState {
    arn: String,
    name: String,
    previous: Option<String>,
    /// The request token = the new version id (None: this rotation writes nothing).
    token: Option<String>,
    written: bool,
    restored: bool,
}

/// Everything a rotation needs to go on, rebuilt from the journal on resume.
struct Run<'a> {
    clients: &'a Clients,
    settings: &'a Settings,
    reporter: &'a dyn Reporter,
    journal: Journal,
    kind: RotationKind,
    environment: String,
    secrets: Vec<SecretState>,
    services: Vec<ServiceRef>,
    /// Deployments already started, per phase.
    deployed: BTreeMap<(Phase, ServiceRef), String>,
    /// After a crash, a deployment may have started without its journal line.
    resumed: bool,
    started: std::time::Instant,
    /// For a rollback: the rotation it undoes.
    rolls_back: Option<Uuid>,
    /// Each service's PRIMARY deployment before the rotation (never ours).
    previous_deployments: BTreeMap<ServiceRef, String>,
    _locks: Vec<Lock>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn short(v: &str) -> &str {
    v.get(..8).unwrap_or(v)
}

/// Takes the per-secret locks and refuses when a secret has an unfinished rotation.
fn lock_all(
    settings: &Settings,
    environment: &str,
    arns: &[String],
    resuming: Option<Uuid>,
) -> Result<Vec<Lock>> {
    let mut locks = Vec::new();
    for arn in arns {
        locks.push(Lock::acquire(&settings.state_dir, environment, arn)?);
        if let Some(open) = journal::unfinished(&settings.state_dir, environment, arn)? {
            if Some(open.rotation_id()) != resuming {
                return Err(Error::refused(format!(
                    "secret {arn} has an unfinished rotation {} started {}",
                    open.rotation_id(),
                    open.started.started_at
                ))
                .hint(format!("finish it with `secret-rollout resume {}` (or roll it back with `secret-rollout rollback {}`)", open.rotation_id(), open.rotation_id())));
            }
        }
    }
    Ok(locks)
}

/// Replaces the planned secrets with `values` (one per planned secret, final: JSON keys
/// already merged), redeploys, follows, verifies, and restores on failure.
pub async fn replace(
    ctx: &Context<'_>,
    plan: &RotationPlan,
    values: Vec<SecretValue>,
    json_key: Option<&str>,
) -> Result<Report> {
    let Context { settings, .. } = *ctx;
    let arns: Vec<String> = plan.secrets.iter().map(|s| s.info.arn.clone()).collect();
    let locks = lock_all(settings, &plan.target.label(), &arns, None)?;
    let secrets = plan
        .secrets
        .iter()
        .map(|s| journal::StartedSecret {
            arn: s.info.arn.clone(),
            name: s.info.name.clone(),
            previous_version_id: s.info.current.clone(),
            request_token: Some(Uuid::new_v4()),
            json_key: json_key.map(str::to_string),
        })
        .collect();
    let services: Vec<ServiceRef> = plan.redeploy.iter().map(|(s, _)| s.clone()).collect();
    let mut started = journal::Started {
        on_failure: Some(settings.on_failure),
        ..start_record(ctx, RotationKind::Replace, &plan.target, secrets, &services)
    };
    for (planned, (_, previous)) in started.services.iter_mut().zip(&plan.redeploy) {
        planned.previous_deployment = previous.clone();
    }
    let states = started
        .secrets
        .iter()
        .map(|s| SecretState {
            arn: s.arn.clone(),
            name: s.name.clone(),
            previous: s.previous_version_id.clone(),
            token: s.request_token.map(|t| t.to_string()),
            written: false,
            restored: false,
        })
        .collect();
    let mut run = Run::start(ctx, started, states, services, locks)?;
    let values: Vec<Option<SecretValue>> = values.into_iter().map(Some).collect();
    run.rotate(values).await
}

/// Forces new deployments of `services`, follows and verifies them (no write). `since`
/// and `version` name the value the new tasks must hold (e.g. the current version of
/// `--secret`); without them the proof is "started by the new deployment".
pub async fn redeploy(
    ctx: &Context<'_>,
    target: &crate::config::Target,
    services: Vec<ServiceRef>,
    secret: Option<&secret::SecretInfo>,
) -> Result<Report> {
    let Context {
        clients, settings, ..
    } = *ctx;
    let secrets = secret
        .map(|s| journal::StartedSecret {
            arn: s.arn.clone(),
            name: s.name.clone(),
            previous_version_id: s.current.clone(),
            request_token: None,
            json_key: None,
        })
        .into_iter()
        .collect();
    let started = start_record(ctx, RotationKind::Redeploy, target, secrets, &services);
    let mut run = Run::start(ctx, started, Vec::new(), services, Vec::new())?;
    let (since, version) = match secret {
        Some(s) => {
            let current = s.current.clone().unwrap_or_default();
            let created = secret::versions(&clients.sm, &s.arn)
                .await?
                .into_iter()
                .find(|v| v.id == current)
                .and_then(|v| v.created);
            (created.unwrap_or(0.0), current)
        }
        None => (0.0, "current".to_string()),
    };
    let deadline = Instant::now() + settings.timeout;
    let phase = run.phase(Phase::Rollout, since, &version, deadline).await?;
    let outcome = match phase.outcome {
        PhaseOutcome::Verified => Outcome::Verified,
        PhaseOutcome::DeployFailed => Outcome::DeployFailed,
        PhaseOutcome::VerifyFailed => Outcome::VerifyFailed,
        PhaseOutcome::Timeout => Outcome::Timeout,
        PhaseOutcome::Interrupted => Outcome::Interrupted,
    };
    let message = failure_message(&phase);
    run.finish(outcome, message, Some(phase), None, Vec::new())
}

/// Restores the previous version of a finished rotation (`rollback`), or of a secret
/// (AWSPREVIOUS back to AWSCURRENT), redeploys `services` and verifies.
pub async fn rollback(
    ctx: &Context<'_>,
    target: &crate::config::Target,
    restore: Restore<'_>,
    services: Vec<ServiceRef>,
) -> Result<Report> {
    let Context { settings, .. } = *ctx;
    let Restore {
        secret: info,
        to: restore_to,
        from: move_from,
        rolls_back,
    } = restore;
    let locks = lock_all(
        settings,
        &target.label(),
        std::slice::from_ref(&info.arn),
        rolls_back,
    )?;
    let secrets = vec![journal::StartedSecret {
        arn: info.arn.clone(),
        name: info.name.clone(),
        previous_version_id: Some(restore_to.to_string()),
        request_token: None,
        json_key: None,
    }];
    let started = journal::Started {
        rolls_back,
        ..start_record(ctx, RotationKind::Rollback, target, secrets, &services)
    };
    let state = SecretState {
        arn: info.arn.clone(),
        name: info.name.clone(),
        previous: Some(restore_to.to_string()),
        token: Some(move_from.to_string()),
        written: true,
        restored: false,
    };
    let mut run = Run::start(ctx, started, vec![state], services, locks)?;
    let restore = run.restore().await;
    let (outcome, message, manual) = match &restore {
        Ok(p) if p.outcome == PhaseOutcome::Verified => (Outcome::Verified, None, Vec::new()),
        Ok(p) => (
            Outcome::RestoreFailed,
            failure_message(p),
            run.manual_commands(),
        ),
        Err(e) => (
            Outcome::RestoreFailed,
            Some(e.message.clone()),
            run.manual_commands(),
        ),
    };
    run.finish(outcome, message, None, restore.ok(), manual)
}

/// Each planned service's PRIMARY deployment before the rotation, from the start record.
fn previous_deployments(started: &journal::Started) -> BTreeMap<ServiceRef, String> {
    started
        .services
        .iter()
        .filter_map(|s| {
            let id = s.previous_deployment.clone()?;
            Some((
                ServiceRef {
                    cluster: s.cluster.clone(),
                    service: s.name.clone(),
                },
                id,
            ))
        })
        .collect()
}

/// The first journal record of a rotation started by `ctx` on `target`.
fn start_record(
    ctx: &Context<'_>,
    kind: RotationKind,
    target: &crate::config::Target,
    secrets: Vec<journal::StartedSecret>,
    services: &[ServiceRef],
) -> journal::Started {
    journal::Started {
        rotation_id: ctx.rotation_id,
        kind,
        environment: target.label(),
        region: target.region.clone(),
        clusters: target.clusters.clone(),
        caller_arn: ctx.caller.arn.clone(),
        account: ctx.caller.account.clone(),
        rolls_back: None,
        secrets,
        services: services
            .iter()
            .map(|s| journal::PlannedService {
                cluster: s.cluster.clone(),
                name: s.service.clone(),
                previous_deployment: None,
            })
            .collect(),
        started_at: now(),
        tool_version: journal::TOOL_VERSION.to_string(),
        on_failure: None,
    }
}

/// Finishes an interrupted rotation from its journal. `value_for` is asked for a value
/// only when a secret's write had not happened yet.
pub async fn resume(
    clients: &Clients,
    summary: &RotationSummary,
    settings: &Settings,
    reporter: &dyn Reporter,
    value_for: &mut (dyn FnMut(&str) -> Result<SecretValue> + Send),
) -> Result<Report> {
    let started = &summary.started;
    let arns: Vec<String> = summary.secrets.iter().map(|s| s.arn.clone()).collect();
    let locks = lock_all(
        settings,
        &started.environment,
        &arns,
        Some(summary.rotation_id()),
    )?;
    let journal = Journal::open(&settings.state_dir, summary.rotation_id())?;
    let mut deployed = BTreeMap::new();
    for s in &summary.services {
        let key = ServiceRef {
            cluster: s.cluster.clone(),
            service: s.name.clone(),
        };
        if let Some(d) = &s.rollout_deployment {
            deployed.insert((Phase::Rollout, key.clone()), d.clone());
        }
        if let Some(d) = &s.restore_deployment {
            deployed.insert((Phase::Restore, key), d.clone());
        }
    }
    let mut run = Run {
        clients,
        settings,
        reporter,
        journal,
        kind: started.kind,
        environment: started.environment.clone(),
        secrets: summary
            .secrets
            .iter()
            .map(|s| SecretState {
                arn: s.arn.clone(),
                name: s.name.clone(),
                previous: s.previous_version_id.clone(),
                token: s
                    .request_token
                    .map(|t| t.to_string())
                    .or_else(|| s.written_version_id.clone()),
                written: s.written_version_id.is_some(),
                restored: s.restored_version_id.is_some(),
            })
            .collect(),
        services: summary
            .services
            .iter()
            .map(|s| ServiceRef {
                cluster: s.cluster.clone(),
                service: s.name.clone(),
            })
            .collect(),
        deployed,
        resumed: true,
        started: std::time::Instant::now(),
        rolls_back: started.rolls_back,
        previous_deployments: previous_deployments(started),
        _locks: locks,
    };
    reporter.report(&Event::Note {
        text: format!("resuming rotation {}", summary.rotation_id()),
    });
    let restoring = summary
        .secrets
        .iter()
        .any(|s| s.restored_version_id.is_some())
        || summary
            .services
            .iter()
            .any(|s| s.restore_deployment.is_some())
        || started.kind == RotationKind::Rollback;
    if restoring {
        let restore = run.restore().await;
        let outcome_if_ok = if started.kind == RotationKind::Rollback {
            Outcome::Verified
        } else {
            Outcome::FailedRestored
        };
        let (outcome, message, manual) = match &restore {
            Ok(p) if p.outcome == PhaseOutcome::Verified => (outcome_if_ok, None, Vec::new()),
            Ok(p) => (
                Outcome::RestoreFailed,
                failure_message(p),
                run.manual_commands(),
            ),
            Err(e) => (
                Outcome::RestoreFailed,
                Some(e.message.clone()),
                run.manual_commands(),
            ),
        };
        return run.finish(outcome, message, None, restore.ok(), manual);
    }
    let mut values = Vec::with_capacity(run.secrets.len());
    for s in &run.secrets {
        if s.written || s.token.is_none() {
            values.push(None);
            continue;
        }
        // Did the write happen before the process died? The token is the version id.
        let token = s.token.clone().unwrap_or_default();
        let exists = secret::versions(&clients.sm, &s.arn)
            .await?
            .iter()
            .any(|v| v.id == token);
        values.push(if exists {
            None
        } else {
            // The value is never stored, so the operator must give it again; say why.
            Some(value_for(&s.name).map_err(|e| Error {
                message: format!(
                    "rotation {} stopped before writing {}, so it needs the new value again: {}",
                    summary.rotation_id(),
                    s.name,
                    e.message
                ),
                hint: Some(format!(
                    "rerun `secret-rollout resume {}` with --value-stdin, --value-file or --generate",
                    summary.rotation_id()
                )),
                ..e
            })?)
        });
    }
    run.rotate(values).await
}

fn failure_message(phase: &PhaseReport) -> Option<String> {
    // The services that failed explain the outcome; the others may only have been left
    // in progress because of them.
    let failed: Vec<String> = phase
        .services
        .iter()
        .filter_map(|s| match (&s.stage, &s.proof) {
            (Stage::Failed { reason }, _) => Some(format!("{}: {reason}", s.service)),
            (_, Some(p)) if !p.stale.is_empty() => Some(format!(
                "{}: {} task(s) not proven new",
                s.service,
                p.stale.len()
            )),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Some(failed.join("; "));
    }
    let open: Vec<&str> = phase
        .services
        .iter()
        .filter(|s| s.stage != Stage::Completed)
        .map(|s| s.service.as_str())
        .collect();
    (!open.is_empty()).then(|| format!("still in progress: {}", open.join(", ")))
}

impl<'a> Run<'a> {
    /// Writes the start record (before anything is changed) and sets up the run.
    fn start(
        ctx: &Context<'a>,
        started: journal::Started,
        secrets: Vec<SecretState>,
        services: Vec<ServiceRef>,
        locks: Vec<Lock>,
    ) -> Result<Run<'a>> {
        let journal = Journal::create(&ctx.settings.state_dir, &started)?;
        let previous_deployments = previous_deployments(&started);
        Ok(Run {
            clients: ctx.clients,
            settings: ctx.settings,
            reporter: ctx.reporter,
            journal,
            kind: started.kind,
            environment: started.environment,
            secrets,
            services,
            deployed: BTreeMap::new(),
            resumed: false,
            started: std::time::Instant::now(),
            rolls_back: started.rolls_back,
            previous_deployments,
            _locks: locks,
        })
    }
}

impl Run<'_> {
    fn record(&mut self, record: Record) -> Result<()> {
        self.journal.append(&record)
    }

    /// Write (what is not written yet), roll out, verify, restore on failure.
    async fn rotate(&mut self, mut values: Vec<Option<SecretValue>>) -> Result<Report> {
        let deadline = Instant::now() + self.settings.timeout;
        for i in 0..self.secrets.len() {
            if let Err(e) = self
                .write(i, values.get_mut(i).and_then(Option::take))
                .await
            {
                let written_any = self.secrets.iter().any(|s| s.written);
                if !written_any {
                    self.record(Record::Finished {
                        outcome: Outcome::Aborted,
                        at: now(),
                        message: Some(e.message.clone()),
                    })?;
                    return Err(e);
                }
                // Some secrets are written and this one failed: treat as a failed rollout.
                self.reporter.report(&Event::Note {
                    text: format!("write failed: {}", e.message),
                });
                return self.after_failure(None, Some(e.message)).await;
            }
        }
        let mut since = 0.0f64;
        let mut labels = Vec::new();
        for s in &self.secrets {
            let Some(token) = &s.token else { continue };
            let created = secret::versions(&self.clients.sm, &s.arn)
                .await?
                .into_iter()
                .find(|v| &v.id == token)
                .and_then(|v| v.created);
            since = since.max(created.unwrap_or(0.0));
            labels.push(short(token).to_string());
        }
        let label = labels.join("+");
        let phase = self.phase(Phase::Rollout, since, &label, deadline).await?;
        match phase.outcome {
            PhaseOutcome::Verified => {
                self.finish(Outcome::Verified, None, Some(phase), None, Vec::new())
            }
            PhaseOutcome::Timeout => {
                let message = format!(
                    "timed out after {:?}: the new value is written; run `secret-rollout resume {}` to keep following, or `secret-rollout rollback {}`",
                    self.settings.timeout,
                    self.journal.rotation_id(),
                    self.journal.rotation_id()
                );
                self.finish(
                    Outcome::Timeout,
                    Some(message),
                    Some(phase),
                    None,
                    Vec::new(),
                )
            }
            _ => {
                let message = failure_message(&phase);
                self.after_failure(Some(phase), message).await
            }
        }
    }

    async fn after_failure(
        &mut self,
        rollout: Option<PhaseReport>,
        message: Option<String>,
    ) -> Result<Report> {
        if self.settings.on_failure == OnFailure::Keep {
            let outcome = match rollout.as_ref().map(|p| p.outcome) {
                Some(PhaseOutcome::VerifyFailed) => Outcome::VerifyFailed,
                _ => Outcome::DeployFailed,
            };
            return self.finish(outcome, message, rollout, None, Vec::new());
        }
        self.reporter.report(&Event::Note {
            text: "rollout failed: restoring the previous version".to_string(),
        });
        let restore = self.restore().await;
        let (outcome, manual, restore_msg) = match &restore {
            Ok(p) if p.outcome == PhaseOutcome::Verified => {
                (Outcome::FailedRestored, Vec::new(), None)
            }
            Ok(p) => (
                Outcome::RestoreFailed,
                self.manual_commands(),
                failure_message(p),
            ),
            Err(e) => (
                Outcome::RestoreFailed,
                self.manual_commands(),
                Some(e.message.clone()),
            ),
        };
        let message = match restore_msg {
            Some(r) => Some(format!(
                "{}; restore failed too: {r}",
                message.unwrap_or_default()
            )),
            None => message,
        };
        self.finish(outcome, message, rollout, restore.ok(), manual)
    }

    fn manual_commands(&self) -> Vec<String> {
        let services: Vec<(String, String)> = self
            .services
            .iter()
            .map(|s| (s.cluster.clone(), s.service.clone()))
            .collect();
        let mut out = Vec::new();
        for s in &self.secrets {
            if let (Some(prev), Some(new)) = (&s.previous, &s.token) {
                if !s.restored {
                    out.extend(secret::manual_restore_commands(&s.arn, prev, new, &[]));
                }
            }
        }
        for (cluster, service) in services {
            out.push(format!("aws ecs update-service --cluster {cluster} --service {service} --force-new-deployment"));
        }
        out
    }

    /// Writes secret `i` unless it is written; checks AWSCURRENT has not moved since the plan.
    async fn write(&mut self, i: usize, value: Option<SecretValue>) -> Result<()> {
        let s = self.secrets[i].clone();
        let Some(token) = s.token.clone() else {
            return Ok(());
        };
        if s.written {
            return Ok(());
        }
        let versions = secret::versions(&self.clients.sm, &s.arn).await?;
        if versions.iter().any(|v| v.id == token) {
            // The write happened before an interruption: never write it twice.
            self.record(Record::Written {
                secret_arn: s.arn.clone(),
                version_id: token.clone(),
                at: now(),
            })?;
            self.secrets[i].written = true;
            self.reporter.report(&Event::SecretWritten {
                secret: s.name.clone(),
                version_id: token,
                already: true,
            });
            return Ok(());
        }
        let current = versions
            .iter()
            .find(|v| v.stages.iter().any(|x| x == "AWSCURRENT"))
            .map(|v| v.id.clone());
        if current != s.previous {
            return Err(Error::refused(format!(
                "AWSCURRENT of {} moved from {} to {} since the plan: someone else changed the secret",
                s.name,
                s.previous.as_deref().unwrap_or("none"),
                current.as_deref().unwrap_or("none")
            ))
            .hint("check who changed it (secret-rollout history), then plan again"));
        }
        let Some(value) = value else {
            return Err(Error::bad_input(format!(
                "the new value of {} was never written and is needed again",
                s.name
            ))
            .hint("give it with --value-stdin, --value-file or --generate"));
        };
        let version = secret::put(&self.clients.sm, &s.arn, &token, &value).await?;
        self.record(Record::Written {
            secret_arn: s.arn.clone(),
            version_id: version.clone(),
            at: now(),
        })?;
        self.secrets[i].written = true;
        self.reporter.report(&Event::SecretWritten {
            secret: s.name.clone(),
            version_id: version,
            already: false,
        });
        Ok(())
    }

    /// Redeploys every service once in `phase`, follows, verifies against `since`.
    async fn phase(
        &mut self,
        phase: Phase,
        since: f64,
        version: &str,
        deadline: Instant,
    ) -> Result<PhaseReport> {
        let mut tracked: Vec<Tracked> = Vec::new();
        let mut to_deploy: Vec<(ServiceRef, Option<String>)> = Vec::new();
        // Where each service stands now: a deployment of ours may already run (resume), and
        // UpdateService needs the current PRIMARY to recognise its own lost answer.
        let current = self.describe_all().await;
        // A deployment created after the value this phase delivers became current (`since`:
        // the write, or the stage move back, on AWS's own clock) can only launch tasks that
        // read it: ours, whose journal line a crash lost. The rotation's start on the local
        // clock is only the fallback when nothing was written: it would also adopt a
        // deployment made between the start and the write (whose tasks hold the old value),
        // and it is on another clock than AWS's.
        let after = if since > 0.0 {
            since
        } else {
            self.journal_started_at_secs()
        };
        for svc in self.services.clone() {
            if let Some(id) = self.deployed.get(&(phase, svc.clone())) {
                tracked.push(Tracked {
                    cluster: svc.cluster.clone(),
                    service: svc.service.clone(),
                    deployment_id: id.clone(),
                });
                continue;
            }
            let primary = current.get(&svc).cloned();
            if self.resumed {
                if let Some((id, created, rolling_back)) = &primary {
                    // Delivers this phase's value: ours, whose journal line was lost. Never
                    // a circuit-breaker rollback: it reuses an older id (the one before the
                    // rotation, or our rollout's) with a fresh date, and takes over that
                    // deployment's old tasks.
                    let older = self.previous_deployments.get(&svc) == Some(id)
                        || (phase == Phase::Restore
                            && self.deployed.get(&(Phase::Rollout, svc.clone())) == Some(id));
                    if *created >= after && !older && !rolling_back {
                        self.record(Record::Redeployed {
                            phase,
                            cluster: svc.cluster.clone(),
                            service: svc.service.clone(),
                            deployment_id: id.clone(),
                            at: now(),
                        })?;
                        self.deployed.insert((phase, svc.clone()), id.clone());
                        tracked.push(Tracked {
                            cluster: svc.cluster.clone(),
                            service: svc.service.clone(),
                            deployment_id: id.clone(),
                        });
                        continue;
                    }
                }
            }
            to_deploy.push((svc, primary.map(|(id, _, _)| id)));
        }
        // Journal each deployment the moment it is accepted: a crash right after still
        // leaves the record that stops `resume` from deploying the service again.
        let mut journal_error = None;
        let (started, failed) = {
            let journal = &mut self.journal;
            let deployed = &mut self.deployed;
            rollout::redeploy_all(
                &self.clients.ecs,
                &to_deploy,
                phase,
                self.reporter,
                &mut |t: &Tracked| {
                    let record = Record::Redeployed {
                        phase,
                        cluster: t.cluster.clone(),
                        service: t.service.clone(),
                        deployment_id: t.deployment_id.clone(),
                        at: now(),
                    };
                    if let Err(e) = journal.append(&record) {
                        journal_error.get_or_insert(e);
                    }
                    deployed.insert(
                        (
                            phase,
                            ServiceRef {
                                cluster: t.cluster.clone(),
                                service: t.service.clone(),
                            },
                        ),
                        t.deployment_id.clone(),
                    );
                },
            )
            .await
        };
        if let Some(e) = journal_error {
            return Err(e);
        }
        tracked.extend(started);
        let options = FollowOptions {
            first_poll: Duration::from_millis(100).min(self.settings.max_poll),
            max_poll: self.settings.max_poll,
            deadline,
            stop_on_failure: phase == Phase::Rollout
                && self.settings.on_failure == OnFailure::Rollback,
        };
        let followed =
            rollout::follow(&self.clients.ecs, &tracked, phase, &options, self.reporter).await;
        let mut services: Vec<ServiceReport> = followed
            .stages
            .iter()
            .map(|(t, stage)| ServiceReport {
                cluster: t.cluster.clone(),
                service: t.service.clone(),
                deployment_id: Some(t.deployment_id.clone()),
                stage: stage.clone(),
                proof: None,
            })
            .collect();
        for (svc, e) in &failed {
            self.reporter.report(&Event::DeploymentFailed {
                phase,
                service: svc.service.clone(),
                reason: e.message.clone(),
            });
            services.push(ServiceReport {
                cluster: svc.cluster.clone(),
                service: svc.service.clone(),
                deployment_id: None,
                stage: Stage::Failed {
                    reason: e.message.clone(),
                },
                proof: None,
            });
        }
        let outcome = if followed.timed_out {
            PhaseOutcome::Timeout
        } else if !failed.is_empty() || !followed.all_completed() {
            PhaseOutcome::DeployFailed
        } else {
            match rollout::verify(
                &self.clients.ecs,
                &tracked,
                since,
                version,
                phase,
                self.reporter,
            )
            .await
            {
                Ok(proofs) => {
                    let mut all = true;
                    for (t, proof) in proofs {
                        all &= proof.holds(1);
                        if let Some(r) = services
                            .iter_mut()
                            .find(|r| r.service == t.service && r.cluster == t.cluster)
                        {
                            r.proof = Some(proof);
                        }
                    }
                    if all {
                        PhaseOutcome::Verified
                    } else {
                        PhaseOutcome::VerifyFailed
                    }
                }
                Err(e) => {
                    self.reporter.report(&Event::Retrying {
                        what: "verification".into(),
                        error: e.message,
                    });
                    PhaseOutcome::VerifyFailed
                }
            }
        };
        self.record(Record::PhaseFinished {
            phase,
            outcome,
            at: now(),
        })?;
        Ok(PhaseReport { services, outcome })
    }

    /// Once a rollback has put the previous version back, the rotation it undid is over:
    /// left open (it timed out, was interrupted or killed), it would block every later
    /// `replace` of the secret and `resume` would roll its new value out again.
    fn close_rolled_back(&self) -> Result<()> {
        let Some(id) = self.rolls_back else {
            return Ok(());
        };
        let mut undone = Journal::open(&self.settings.state_dir, id)?;
        if undone.summary()?.is_resumable() {
            undone.append(&Record::Finished {
                outcome: Outcome::FailedRestored,
                at: now(),
                message: Some(format!(
                    "rolled back by rotation {}",
                    self.journal.rotation_id()
                )),
            })?;
        }
        Ok(())
    }

    fn journal_started_at_secs(&self) -> f64 {
        self.journal
            .summary()
            .map(|s| s.started.started_at.unix_timestamp_nanos() as f64 / 1e9)
            .unwrap_or(f64::MAX)
    }

    /// PRIMARY deployment id, creation time, and whether it is a circuit-breaker rollback,
    /// of every service, batched per cluster.
    async fn describe_all(&self) -> BTreeMap<ServiceRef, (String, f64, bool)> {
        let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &self.services {
            by_cluster
                .entry(s.cluster.clone())
                .or_default()
                .push(s.service.clone());
        }
        let mut out = BTreeMap::new();
        for (cluster, names) in by_cluster {
            if let Ok(services) =
                rollout::ecs::describe_services(&self.clients.ecs, &cluster, &names).await
            {
                for s in services {
                    let primary = s
                        .deployments()
                        .iter()
                        .find(|d| d.status() == Some("PRIMARY"));
                    if let (Some(name), Some(p)) = (s.service_name(), primary) {
                        out.insert(
                            ServiceRef {
                                cluster: cluster.clone(),
                                service: name.to_string(),
                            },
                            (
                                p.id().unwrap_or_default().to_string(),
                                p.created_at().map(|t| t.as_secs_f64()).unwrap_or(0.0),
                                // ECS's wording for a circuit-breaker rollback in progress.
                                p.rollout_state_reason()
                                    .is_some_and(|r| r.contains("rolling back")),
                            ),
                        );
                    }
                }
            }
        }
        out
    }

    /// Moves AWSCURRENT back on every written secret, redeploys and verifies.
    async fn restore(&mut self) -> Result<PhaseReport> {
        let mut since = 0.0f64;
        let mut labels = Vec::new();
        for i in 0..self.secrets.len() {
            let s = self.secrets[i].clone();
            let (Some(prev), Some(new)) = (s.previous.clone(), s.token.clone()) else {
                continue;
            };
            let info = secret::describe(&self.clients.sm, &s.arn).await?;
            if info.current.as_deref() == Some(prev.as_str()) {
                // Already restored (resume, or the write never happened).
            } else if info.current.as_deref() == Some(new.as_str())
                || self.kind == RotationKind::Rollback
            {
                let from = info.current.clone().unwrap_or(new.clone());
                secret::move_current(&self.clients.sm, &s.arn, &prev, &from).await?;
                self.record(Record::Restored {
                    secret_arn: s.arn.clone(),
                    version_id: prev.clone(),
                    at: now(),
                })?;
                self.reporter.report(&Event::SecretRestored {
                    secret: s.name.clone(),
                    version_id: prev.clone(),
                });
            } else {
                return Err(Error::refused(format!(
                    "AWSCURRENT of {} is now {}, neither the new version {} nor the previous {}: not restoring over someone else's change",
                    s.name,
                    info.current.as_deref().unwrap_or("none"),
                    short(&new),
                    short(&prev)
                ))
                .hint("decide which version should be current, then run `secret-rollout redeploy --secret NAME`"));
            }
            self.secrets[i].restored = true;
            let after = secret::describe(&self.clients.sm, &s.arn).await?;
            since = since.max(after.last_changed.unwrap_or(0.0));
            labels.push(short(&prev).to_string());
        }
        let deadline = Instant::now() + self.settings.timeout;
        let label = labels.join("+");
        self.phase(Phase::Restore, since, &label, deadline).await
    }

    fn finish(
        &mut self,
        outcome: Outcome,
        message: Option<String>,
        rollout: Option<PhaseReport>,
        restore: Option<PhaseReport>,
        manual_restore: Vec<String>,
    ) -> Result<Report> {
        if self.kind == RotationKind::Rollback && self.secrets.iter().all(|s| s.restored) {
            self.close_rolled_back()?;
        }
        self.record(Record::Finished {
            outcome,
            at: now(),
            message: message.clone(),
        })?;
        Ok(Report {
            rotation_id: self.journal.rotation_id(),
            kind: self.kind,
            environment: self.environment.clone(),
            outcome,
            message,
            secrets: self
                .secrets
                .iter()
                .map(|s| SecretReport {
                    name: s.name.clone(),
                    arn: s.arn.clone(),
                    previous_version: s.previous.clone(),
                    new_version: s.token.clone().filter(|_| s.written),
                    restored: s.restored,
                })
                .collect(),
            rollout,
            restore,
            manual_restore,
            aws_calls: self.clients.calls.snapshot(),
            elapsed_ms: self.started.elapsed().as_millis(),
        })
    }
}

/// Records that a rotation was interrupted (Ctrl-C), so `resume` picks it up.
pub fn mark_interrupted(settings: &Settings, rotation_id: Uuid) -> Result<()> {
    let mut journal = Journal::open(&settings.state_dir, rotation_id)?;
    journal.append(&Record::Finished {
        outcome: Outcome::Interrupted,
        at: now(),
        message: Some("interrupted (Ctrl-C)".into()),
    })
}
