//! The journaled run: write the new versions, redeploy, follow, verify; on failure restore
//! the previous versions, redeploy, follow, verify.
//!
//! Every step is recorded before the next one starts, so `resume` can rebuild the state
//! from the journal and from AWS itself (the request token is the version id; a
//! deployment created after the write delivers the new value) and finish the job without a
//! second version or a second deployment of a service in one phase. The decisions are in
//! [`super::decide`]; this file gathers their facts and acts on them.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

use crate::clients::Clients;
use crate::error::{Error, Kind, Result};
use crate::journal::{self, Journal, Outcome, Phase, PhaseOutcome, Record, RotationKind};
use crate::lock::Lock;
use crate::progress::{Event, Reporter};
use crate::rollout::restore::{HeldBefore, ReadBefore};
use crate::rollout::{PauseAt, ServiceRef, Tracked};
use crate::secret;
use crate::value::SecretValue;

use super::decide;
use super::report::{PhaseReport, Report, SecretReport};
use super::{Context, OnFailure, Settings};

pub(super) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(super) fn short(v: &str) -> &str {
    v.get(..8).unwrap_or(v)
}

/// A secret as the rotation tracks it.
#[derive(Debug, Clone)]
pub(super) struct SecretState {
    pub arn: String,
    pub name: String,
    pub previous: Option<String>,
    /// The request token = the new version id (None: this rotation writes nothing).
    pub token: Option<String>,
    pub written: bool,
    pub restored: bool,
}

/// Everything a rotation needs to go on, rebuilt from the journal on resume.
pub(super) struct Run<'a> {
    pub(super) clients: &'a Clients,
    pub(super) settings: &'a Settings,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) journal: Journal,
    pub(super) kind: RotationKind,
    pub(super) environment: String,
    pub(super) secrets: Vec<SecretState>,
    pub(super) services: Vec<ServiceRef>,
    /// Deployments already started, per phase.
    pub(super) deployed: BTreeMap<(Phase, ServiceRef), String>,
    /// After a crash, a deployment may have started without its journal line.
    pub(super) resumed: bool,
    pub(super) started: std::time::Instant,
    /// When the rotation started, epoch seconds on the local clock.
    pub(super) started_at: f64,
    /// For a rollback: the rotation it undoes.
    pub(super) rolls_back: Option<Uuid>,
    /// Each service's PRIMARY deployment before the rotation (never ours).
    pub(super) previous_deployments: BTreeMap<ServiceRef, String>,
    /// A person typed `rollback --force`: the restore may move AWSCURRENT off a version
    /// this run did not write. Never set otherwise (nor on resume).
    pub(super) force_restore: bool,
    /// No service or task family reads any of the secrets (set by `replace` from its
    /// plan): the run ends [`Outcome::WrittenNoReaders`] once written, with no rollout.
    /// Not known on resume (the journal does not record it).
    pub(super) no_readers: bool,
    /// The deployments the last phase left waiting at a `PAUSE` hook.
    pub(super) paused: Vec<(Tracked, PauseAt)>,
    /// Containers whose restore after a failure ships another image than some of their
    /// tasks run (a tag moved: issue 18), checked before the restore redeploys them.
    pub(super) restore_images: Vec<crate::images::ContainerCheck>,
    /// Who writes (the journal's caller): Parameter Store records it on every version.
    pub(super) caller_arn: String,
    /// Parameters: the journaled intents to write, by phase and ARN: the version each
    /// overwrites and when (epoch seconds, the tool's clock).
    pub(super) intents: BTreeMap<(Phase, String), (String, f64)>,
    /// Parameters: what an overwrite sends again, as last described (for the commands of
    /// a restore by hand).
    pub(super) specs: BTreeMap<String, crate::parameter::WriteSpec>,
    /// The latest `createdAt`/`startedAt` of the tasks the plan listed (its image check),
    /// set by `replace`: with a read of the secrets after it, before the write, it proves
    /// which tasks hold the previous version (see [`crate::rollout::restore`]).
    pub(super) listed_until: Option<f64>,
    /// What that read proves; `None` when it was not made (a resumed run, a rollback).
    pub(super) held_before: Option<HeldBefore>,
    pub(super) _locks: Vec<Lock>,
}

/// Takes the per-secret locks (for `rotation_id`) and refuses when a secret has an
/// unfinished rotation other than `resuming`. With a team state, the journal is synced
/// with the bucket once the locks are held, so rotations started elsewhere count.
pub(super) fn lock_all(
    settings: &Settings,
    environment: &str,
    arns: &[String],
    resuming: Option<Uuid>,
    rotation_id: Uuid,
) -> Result<Vec<Lock>> {
    let mut locks = Vec::new();
    for arn in arns {
        locks.push(Lock::acquire_in(
            &settings.state_dir,
            &settings.state,
            environment,
            arn,
            rotation_id,
        )?);
    }
    crate::state::sync_blocking(&settings.state_dir, &settings.state)?;
    for arn in arns {
        if let Some(open) = journal::unfinished(&settings.state_dir, environment, arn)? {
            if Some(open.rotation_id()) != resuming {
                return Err(Error::refused(format!(
                    "secret {arn} has an unfinished rotation {} started {}",
                    open.rotation_id(),
                    open.started.started_at
                ))
                .hint(decide::unfinished_hint(&open, &settings.reach)));
            }
        }
    }
    Ok(locks)
}

/// Closes `rolls_back` (the rotation rollback `by` undid), when it is still open.
pub(super) fn close_rolled_back(
    settings: &Settings,
    locks: &[Lock],
    rolls_back: Option<Uuid>,
    by: Uuid,
) -> Result<()> {
    let Some(id) = rolls_back else {
        return Ok(());
    };
    let mut undone = Journal::open(&settings.state_dir, id)?;
    undone.mirror_to(&settings.state, &settings.state_dir, locks)?;
    if undone.summary()?.is_resumable() {
        undone.append(&Record::Finished {
            outcome: Outcome::FailedRestored,
            at: now(),
            message: Some(format!("rolled back by rotation {by}")),
        })?;
    }
    Ok(())
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

fn epoch_secs(t: OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// The first journal record of a rotation started by `ctx` on `target`.
pub(super) fn start_record(
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

impl<'a> Run<'a> {
    /// Writes the start record (before anything is changed) and sets up the run.
    pub fn start(
        ctx: &Context<'a>,
        started: journal::Started,
        secrets: Vec<SecretState>,
        services: Vec<ServiceRef>,
        locks: Vec<Lock>,
    ) -> Result<Run<'a>> {
        let mut journal = Journal::create(&ctx.settings.state_dir, &started)?;
        journal.mirror_to(&ctx.settings.state, &ctx.settings.state_dir, &locks)?;
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
            started_at: epoch_secs(started.started_at),
            rolls_back: started.rolls_back,
            previous_deployments,
            force_restore: false,
            no_readers: false,
            paused: Vec::new(),
            restore_images: Vec::new(),
            caller_arn: ctx.caller.arn.clone(),
            intents: BTreeMap::new(),
            specs: BTreeMap::new(),
            listed_until: None,
            held_before: None,
            _locks: locks,
        })
    }

    /// Rebuilds an interrupted run from its journal.
    pub fn resume(
        clients: &'a Clients,
        settings: &'a Settings,
        reporter: &'a dyn Reporter,
        summary: &journal::RotationSummary,
        locks: Vec<Lock>,
    ) -> Result<Run<'a>> {
        let started = &summary.started;
        let mut journal = Journal::open(&settings.state_dir, summary.rotation_id())?;
        journal.mirror_to(&settings.state, &settings.state_dir, &locks)?;
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
        Ok(Run {
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
            started_at: epoch_secs(started.started_at),
            rolls_back: started.rolls_back,
            previous_deployments: previous_deployments(started),
            force_restore: false,
            // A replace plans no service only when nobody reads its secrets (one whose
            // readers would all be left out is refused before it starts): resumed, it ends
            // "written, no readers" too, not in an empty rollout that fails and restores.
            no_readers: started.kind == RotationKind::Replace && summary.services.is_empty(),
            paused: Vec::new(),
            restore_images: Vec::new(),
            caller_arn: started.caller_arn.clone(),
            intents: summary
                .secrets
                .iter()
                .flat_map(|s| {
                    s.intents.iter().map(|(phase, previous, at)| {
                        ((*phase, s.arn.clone()), (previous.clone(), epoch_secs(*at)))
                    })
                })
                .collect(),
            specs: BTreeMap::new(),
            listed_until: None,
            held_before: None,
            _locks: locks,
        })
    }
}

impl Run<'_> {
    pub(super) fn record(&mut self, record: Record) -> Result<()> {
        self.journal.append(&record)
    }

    /// Before every write to Secrets Manager or ECS: are the locks still ours? (Only a
    /// team state's lease can be lost: exit 13, nothing more written or journaled.)
    pub(super) fn hold(&self) -> Result<()> {
        self._locks.iter().try_for_each(Lock::check)
    }

    /// Write (what is not written yet), roll out, verify, restore on failure.
    pub async fn rotate(&mut self, mut values: Vec<Option<SecretValue>>) -> Result<Report> {
        let deadline = Instant::now() + self.settings.timeout;
        if self.kind == RotationKind::Replace
            && self.settings.on_failure == OnFailure::Rollback
            && !self.secrets.iter().any(|s| s.written)
        {
            self.held_before = self.read_before_write().await;
        }
        for i in 0..self.secrets.len() {
            if let Err(e) = self
                .write(i, values.get_mut(i).and_then(Option::take))
                .await
            {
                // A lost lease, or a parameter write the history cannot place: stop with
                // the rotation open (nothing more is written; `resume` asks again).
                if matches!(e.kind, Kind::LeaseLost | Kind::VerifyFailed) {
                    return Err(e);
                }
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
        // Nobody reads the secrets: nothing to redeploy, no task to prove. The write moved
        // AWSCURRENT; following an empty rollout would only fail to list tasks.
        if self.no_readers && self.services.is_empty() {
            return self.finish(Outcome::WrittenNoReaders, None, None, None, Vec::new());
        }
        let mut labels = Vec::new();
        let mut watched = Vec::new();
        for (i, s) in self.secrets.iter().enumerate() {
            // A sync writes nothing: its tasks must hold the version current when it began.
            let token = match (&s.token, self.kind) {
                (Some(token), _) => token,
                (None, RotationKind::Sync) => match &s.previous {
                    Some(current) => current,
                    None => continue,
                },
                (None, _) => continue,
            };
            let created = crate::store::created(self.clients, &s.arn, &s.name, token).await?;
            watched.push((i, token.clone(), created));
            labels.push(short(token).to_string());
        }
        let label = labels.join("+");
        let watch = self.watch(watched);
        let phase = self
            .phase(Phase::Rollout, Some(watch), &label, deadline)
            .await?;
        match phase.outcome {
            PhaseOutcome::Verified => {
                let message = self.bake_goes_on(&phase);
                self.finish(Outcome::Verified, message, Some(phase), None, Vec::new())
            }
            // Someone else's version is current: never restore over it.
            PhaseOutcome::Superseded => {
                let message = phase.superseded_message();
                self.finish(Outcome::Superseded, message, Some(phase), None, Vec::new())
            }
            // Someone else changed the secret and ours is current again: what tasks hold
            // cannot be proven, and a restore would move a label the tool cannot explain.
            _ if phase.changed_by_another() => {
                let message = phase.unexplained_message();
                self.finish(
                    Outcome::VerifyFailed,
                    message,
                    Some(phase),
                    None,
                    Vec::new(),
                )
            }
            PhaseOutcome::Paused => {
                let message = self.paused_message("the new value is written");
                self.finish(
                    Outcome::Paused,
                    Some(message),
                    Some(phase),
                    None,
                    Vec::new(),
                )
            }
            PhaseOutcome::Timeout => {
                let id = self.journal.rotation_id();
                let message = format!(
                    "timed out after {:?}: the new value is written; run `{}` to keep following, or `{}`",
                    self.settings.timeout,
                    self.settings.reach.command(&format!("resume {id}")),
                    self.settings.reach.command(&format!("rollback {id}")),
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
                let message = decide::failure_message(&phase);
                self.after_failure(Some(phase), message).await
            }
        }
    }

    /// Reads every secret to write (`DescribeSecret`) after the plan listed the tasks and
    /// before the write: what it shows lets a restore leave alone the services whose tasks
    /// all resolved the previous version then (see [`crate::rollout::restore`]). Any
    /// failure: `None`, and a restore redeploys every service, as it always did.
    async fn read_before_write(&self) -> Option<HeldBefore> {
        let listed_until = self.listed_until?;
        let mut infos = Vec::new();
        for s in self.secrets.iter().filter(|s| s.token.is_some()) {
            let info = secret::describe(&self.clients.sm, &s.arn).await.ok()?;
            infos.push((s.previous.clone()?, info));
        }
        let reads: Vec<ReadBefore<'_>> = infos
            .iter()
            .map(|(previous, info)| ReadBefore {
                previous,
                current: info.current.as_deref(),
                last_changed: info.last_changed,
            })
            .collect();
        HeldBefore::from_reads(&reads, Some(listed_until))
    }

    /// The rollout failed: keep the new value, or restore the previous one.
    async fn after_failure(
        &mut self,
        rollout: Option<PhaseReport>,
        message: Option<String>,
    ) -> Result<Report> {
        if self.settings.on_failure == OnFailure::Keep {
            let outcome = decide::kept_outcome(rollout.as_ref().map(|p| p.outcome));
            return self.finish(outcome, message, rollout, None, Vec::new());
        }
        self.reporter.report(&Event::Note {
            text: "rollout failed: restoring the previous version".to_string(),
        });
        self.check_images_before_restore().await;
        self.restore_and_finish(Outcome::FailedRestored, message, rollout)
            .await
    }

    /// Before a restore after a failure redeploys: whether that also ships an image pushed
    /// under a tag since the rollout began (issue 18). Never refused: each moved tag is a
    /// warning and the report names it (`restore_image_changed`); a check that cannot be
    /// made is a note.
    async fn check_images_before_restore(&mut self) {
        if self.services.is_empty() {
            return;
        }
        match crate::images::check_services(self.clients, &self.services).await {
            Ok(checks) => {
                checks.warn(self.reporter, crate::images::RESTORING);
                self.restore_images = checks.changed_list();
            }
            Err(e) => self.reporter.report(&Event::Note {
                text: format!(
                    "cannot check whether the restore also ships a new image: {}",
                    e.message
                ),
            }),
        }
    }

    /// Restores, then finishes with `on_success` or, if the restore fails, with the
    /// commands to finish by hand. `why` is the rollout's failure, if any.
    pub async fn restore_and_finish(
        &mut self,
        on_success: Outcome,
        why: Option<String>,
        rollout: Option<PhaseReport>,
    ) -> Result<Report> {
        let restore = self.restore().await;
        if let Err(e) = &restore {
            if e.kind == Kind::LeaseLost || self.parameter_left_open(e) {
                return Err(e.clone());
            }
        }
        // The restore's own deployment waits at a PAUSE hook: nothing failed yet; once it
        // is continued, `resume` finishes the restore.
        if let Ok(p) = &restore {
            if p.outcome == PhaseOutcome::Paused {
                let what = match why.as_deref() {
                    Some(w) => format!("restoring the previous version ({w})"),
                    None => "restoring the previous version".to_string(),
                };
                let message = self.paused_message(&what);
                return self.finish(
                    Outcome::Paused,
                    Some(message),
                    rollout,
                    restore.ok(),
                    Vec::new(),
                );
            }
        }
        let ending = decide::restore_ending(&restore, on_success, why, self.manual_commands());
        self.finish(
            ending.outcome,
            ending.message,
            rollout,
            restore.ok(),
            ending.manual_restore,
        )
    }

    /// `--until traffic` ended the follow of staged deployments at their traffic moment:
    /// every task receiving production traffic is proven, the bake goes on. `None` when
    /// every deployment completed.
    fn bake_goes_on(&self, phase: &PhaseReport) -> Option<String> {
        let baking: Vec<String> = phase
            .services
            .iter()
            .filter(|s| s.stage != crate::verdict::Stage::Completed)
            .filter_map(|s| {
                let v = s.staged.as_ref().filter(|v| v.traffic_moved_at.is_some())?;
                Some(if v.lifecycle_stage.is_empty() {
                    s.service.clone()
                } else {
                    format!("{} ({})", s.service, v.lifecycle_stage)
                })
            })
            .collect();
        if baking.is_empty() {
            return None;
        }
        let names: Vec<&str> = self.secrets.iter().map(|s| s.name.as_str()).collect();
        Some(format!(
            "every task receiving production traffic holds the new value; the bake goes on for {}: run `{}` to see its end",
            baking.join(", "),
            self.settings
                .reach
                .command(&format!("status {}", names.join(" ")))
        ))
    }

    /// Why the run stopped at a PAUSE hook (`doing`: what was under way), with the exact
    /// command to continue each waiting deployment and the `resume` to run then.
    fn paused_message(&self, doing: &str) -> String {
        let id = self.journal.rotation_id();
        let waiting: Vec<String> = self
            .paused
            .iter()
            .map(|(t, p)| {
                format!(
                    "{} waits at PAUSE hook {} ({}): continue it with `{}`",
                    t.service,
                    p.hook_id,
                    if p.stage.is_empty() {
                        "stage unknown"
                    } else {
                        &p.stage
                    },
                    p.command("CONTINUE")
                )
            })
            .collect();
        format!(
            "{}; then run `{}` to follow it to the end (nothing failed; {doing})",
            waiting.join("; "),
            self.settings.reach.command(&format!("resume {id}")),
        )
    }

    /// The commands to finish a failed restore by hand. The stage move names our version
    /// in `--remove-from-version-id`, which AWS requires to be the one carrying AWSCURRENT:
    /// it cannot move the label off a version someone else made current. (A restore that
    /// finds someone else's version current ends superseded, with no commands at all.)
    fn manual_commands(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.secrets {
            if let (Some(prev), Some(new)) = (&s.previous, &s.token) {
                if !s.restored && crate::store::is_parameter(&s.arn) {
                    out.extend(crate::parameter::manual_restore_commands(
                        crate::store::parameter_name(&s.name),
                        prev,
                        self.specs.get(&s.arn),
                    ));
                } else if !s.restored {
                    out.extend(secret::manual_restore_commands(&s.arn, prev, new, &[]));
                }
            }
        }
        for s in &self.services {
            out.push(format!(
                "aws ecs update-service --cluster {} --service {} --force-new-deployment",
                s.cluster, s.service
            ));
        }
        out
    }

    /// Writes secret `i` unless it is written; checks AWSCURRENT has not moved since the plan.
    async fn write(&mut self, i: usize, value: Option<SecretValue>) -> Result<()> {
        let s = self.secrets[i].clone();
        if crate::store::is_parameter(&s.arn) {
            return self.write_parameter(i, value).await;
        }
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
                operator_named: false,
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
            .hint(format!(
                "check who changed it (`{}`), then plan again (`{}`)",
                self.settings.reach.command(&format!("history {}", s.name)),
                self.settings.reach.command(&format!("plan {}", s.name)),
            )));
        }
        let Some(value) = value else {
            return Err(Error::bad_input(format!(
                "the new value of {} was never written and is needed again",
                s.name
            ))
            .hint("give it with --value-stdin, --value-file or --generate"));
        };
        self.hold()?;
        let version = secret::put(
            &self.clients.sm,
            &s.arn,
            &token,
            &value,
            (self.journal.rotation_id(), &self.settings.reach),
        )
        .await?;
        self.record(Record::Written {
            secret_arn: s.arn.clone(),
            version_id: version.clone(),
            at: now(),
            operator_named: false,
        })?;
        self.secrets[i].written = true;
        self.reporter.report(&Event::SecretWritten {
            secret: s.name.clone(),
            version_id: version,
            already: false,
        });
        Ok(())
    }

    /// Once a rollback has put the previous version back, the rotation it undid is over:
    /// left open (it timed out, was interrupted or killed), it would block every later
    /// `replace` of the secret and `resume` would roll its new value out again.
    fn close_rolled_back(&self) -> Result<()> {
        close_rolled_back(
            self.settings,
            &self._locks,
            self.rolls_back,
            self.journal.rotation_id(),
        )
    }

    /// Records how the rotation ended and builds the report.
    pub fn finish(
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
        let id = self.journal.rotation_id();
        let kept: Vec<decide::KeptSecret> = self
            .secrets
            .iter()
            .map(|s| decide::KeptSecret {
                name: s.name.clone(),
                written: s.written && self.kind != RotationKind::Rollback,
                restored: s.restored,
                has_previous: s.previous.is_some(),
            })
            .collect();
        let changed = rollout
            .as_ref()
            .is_some_and(PhaseReport::changed_by_another);
        let next_steps =
            decide::next_steps(self.kind, outcome, id, &kept, changed, &self.settings.reach);
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
            nothing_to_prove: Vec::new(),
            image_changed: Vec::new(),
            restore_image_changed: self.restore_images.clone(),
            manual_restore,
            next_steps,
            aws_calls: self.clients.calls.snapshot(),
            elapsed_ms: self.started.elapsed().as_millis(),
        })
    }
}
