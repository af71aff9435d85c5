//! The rotation's decisions, as pure functions of what the journal and AWS said: which
//! deployment a phase follows, how a phase and a restore end, what a rollback restores,
//! and the one-line why. The run code gathers the facts and acts; these decide.

use std::collections::BTreeSet;

use serde::Serialize;
use uuid::Uuid;

use crate::aws::model::{Controller, DeploymentObs, ServiceDeploymentObs, ServiceInfo};
use crate::error::{Error, Reach, Result};
use crate::journal::{OnFailure, Outcome, Phase, PhaseOutcome, RotationKind, RotationSummary};
use crate::rollout::ServiceRef;
use crate::secret::SecretInfo;
use crate::verdict::Stage;

use super::report::PhaseReport;

/// A service's PRIMARY deployment as ECS describes it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Primary {
    /// Deployment id.
    pub id: String,
    /// `createdAt`, epoch seconds on AWS's clock.
    pub created: f64,
    /// ECS says it is a circuit-breaker rollback in progress.
    pub rolling_back: bool,
}

/// What one phase knows about one service before it redeploys anything.
#[derive(Debug, Clone, Copy)]
pub struct ServiceFacts<'a> {
    /// The phase.
    pub phase: Phase,
    /// This run picks up an interrupted one (a deployment may have lost its journal line).
    pub resumed: bool,
    /// Our deployment of this phase, as the journal recorded it.
    pub journaled: Option<&'a str>,
    /// The service's PRIMARY now (`None`: not described, or it has none).
    pub primary: Option<&'a Primary>,
    /// Only a deployment created at or after this moment (AWS's clock) can be ours: see
    /// [`adopt_after`].
    pub after: f64,
    /// The service's PRIMARY before the rotation, from the start record (never ours).
    pub previous_deployment: Option<&'a str>,
    /// Our rollout deployment, as journaled (in the restore phase never ours either).
    pub rollout_deployment: Option<&'a str>,
}

/// What a phase does with one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Follow our journaled deployment.
    Follow(String),
    /// Journal and follow this deployment: ours, whose journal line a crash lost.
    Adopt(String),
    /// Force a new deployment. `previous_primary` lets UpdateService recognise its own lost
    /// answer (a PRIMARY other than this one is the deployment it started).
    Deploy {
        /// The PRIMARY now, if known.
        previous_primary: Option<String>,
    },
}

/// The moment after which a PRIMARY can only be ours: `since`, when the value this phase
/// delivers became current on AWS's clock (the write, or the stage move back). Only when
/// nothing was written (`since` is 0) the rotation's local start, `started_at`: it would
/// also take a deployment made between the start and the write for ours, and it is on
/// another clock. Without either, nothing is ever adopted.
pub fn adopt_after(since: f64, started_at: Option<f64>) -> f64 {
    if since > 0.0 {
        since
    } else {
        started_at.unwrap_or(f64::MAX)
    }
}

/// Follow, adopt, or deploy anew. A PRIMARY is adopted only on resume, only when created
/// at or after [`ServiceFacts::after`] (so it delivers this phase's value), and never when
/// it is a circuit-breaker rollback: ECS marks one as rolling back, and it reuses an older
/// id (the one before the rotation, or in the restore phase our rollout's) with a fresh
/// date, and takes over that deployment's old tasks.
pub fn service_step(f: &ServiceFacts<'_>) -> Step {
    if let Some(id) = f.journaled {
        return Step::Follow(id.to_string());
    }
    let deploy = Step::Deploy {
        previous_primary: f.primary.map(|p| p.id.clone()),
    };
    let Some(primary) = f.primary.filter(|_| f.resumed) else {
        return deploy;
    };
    let older = f.previous_deployment == Some(primary.id.as_str())
        || (f.phase == Phase::Restore && f.rollout_deployment == Some(primary.id.as_str()));
    if primary.created >= f.after && !older && !primary.rolling_back {
        Step::Adopt(primary.id.clone())
    } else {
        deploy
    }
}

/// What a phase saw, in the order it looks: following, then verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseFacts {
    /// The deadline passed while following.
    pub timed_out: bool,
    /// Services whose deployment could not be started.
    pub failed_launches: usize,
    /// Every followed deployment completed.
    pub all_completed: bool,
    /// Nothing failed and every deployment not completed waits at a `PAUSE` hook.
    pub paused: bool,
    /// The verification, when it ran.
    pub verification: Option<Verification>,
}

/// How verification went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// ECS listed the tasks; whether every service's proof holds.
    Proofs {
        /// Every proof holds.
        all_hold: bool,
    },
    /// The tasks could not be listed: nothing is proven.
    Error(String),
}

impl PhaseFacts {
    /// Verification is worth running: every deployment started and completed in time.
    pub fn ready_to_verify(&self) -> bool {
        !self.timed_out && self.failed_launches == 0 && self.all_completed
    }
}

/// How a phase ended. Verified only with proofs that all hold.
pub fn phase_outcome(f: &PhaseFacts) -> PhaseOutcome {
    if f.timed_out {
        return PhaseOutcome::Timeout;
    }
    if f.paused && f.failed_launches == 0 {
        return PhaseOutcome::Paused;
    }
    if !f.ready_to_verify() {
        return PhaseOutcome::DeployFailed;
    }
    match &f.verification {
        Some(Verification::Proofs { all_hold: true }) => PhaseOutcome::Verified,
        Some(Verification::Proofs { all_hold: false } | Verification::Error(_)) | None => {
            PhaseOutcome::VerifyFailed
        }
    }
}

/// The rotation's outcome when it stops after its rollout phase without a restore
/// (`redeploy`, or `--on-failure keep`; `None`: the rollout never ran).
pub fn kept_outcome(rollout: Option<PhaseOutcome>) -> Outcome {
    match rollout {
        Some(PhaseOutcome::Verified) => Outcome::Verified,
        Some(PhaseOutcome::VerifyFailed) => Outcome::VerifyFailed,
        Some(PhaseOutcome::Timeout) => Outcome::Timeout,
        Some(PhaseOutcome::Interrupted) => Outcome::Interrupted,
        Some(PhaseOutcome::Paused) => Outcome::Paused,
        Some(PhaseOutcome::Superseded) => Outcome::Superseded,
        Some(PhaseOutcome::DeployFailed) | None => Outcome::DeployFailed,
    }
}

/// A secret as [`next_steps`] sees it at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptSecret {
    /// Name.
    pub name: String,
    /// This run wrote a new version of it (a rollback writes none).
    pub written: bool,
    /// AWSCURRENT was moved back (or found back) on the previous version.
    pub restored: bool,
    /// The journal knows the version before, so `rollback ID` can restore it.
    pub has_previous: bool,
}

/// What to run next after a rotation ended with `outcome`, ready to paste (`reach`: the
/// options that reach the environment). A kept failure (`--on-failure keep`, or a
/// verification that failed) leaves a written value that broke something in place: its
/// undo is `rollback ID`. A timeout can be followed further or undone. A change someone
/// else made during the run is theirs to explain: `status` shows what the tasks hold, and
/// nothing suggested moves the label. Nothing for a success, a restore (done, or with its
/// own commands by hand), a superseded run, or a run that wrote nothing.
pub fn next_steps(
    kind: RotationKind,
    outcome: Outcome,
    rotation_id: Uuid,
    secrets: &[KeptSecret],
    changed_by_another: bool,
    reach: &Reach,
) -> Vec<String> {
    let kept = secrets
        .iter()
        .any(|s| s.written && !s.restored && s.has_previous);
    let rollback = || reach.command(&format!("rollback {rotation_id}"));
    match outcome {
        Outcome::DeployFailed | Outcome::VerifyFailed if changed_by_another => secrets
            .iter()
            .map(|s| reach.command(&format!("status {}", s.name)))
            .collect(),
        Outcome::DeployFailed | Outcome::VerifyFailed if kind == RotationKind::Replace && kept => {
            vec![rollback()]
        }
        Outcome::Timeout | Outcome::Interrupted | Outcome::Paused => {
            let mut steps = vec![reach.command(&format!("resume {rotation_id}"))];
            if kind == RotationKind::Replace && kept {
                steps.push(rollback());
            }
            steps
        }
        _ => Vec::new(),
    }
}

/// How a rotation ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The outcome.
    pub outcome: Outcome,
    /// Why, in one line.
    pub message: Option<String>,
    /// Commands to finish by hand.
    pub manual_restore: Vec<String>,
}

/// How a rotation ends after a restore phase: `on_success` when the restore is verified
/// (`FailedRestored` after a failed rollout, `Verified` for a rollback); `Superseded`, with
/// no command to run by hand, when someone else's version is current (the restore refused
/// to move it, or it became current during the restore) or changed the secret during the
/// restore; otherwise `RestoreFailed` with the commands to finish by hand. `why` is the
/// rollout's failure, if one led to the restore.
pub fn restore_ending(
    restore: &Result<PhaseReport>,
    on_success: Outcome,
    why: Option<String>,
    manual: Vec<String>,
) -> Ending {
    let join = |w: Option<String>, r: Option<String>| match (w, r) {
        (Some(w), Some(r)) => Some(format!("{w}; then {r}")),
        (w, r) => w.or(r),
    };
    match restore {
        Ok(p) if p.outcome == PhaseOutcome::Superseded => {
            return Ending {
                outcome: Outcome::Superseded,
                message: join(why, p.superseded_message()),
                manual_restore: Vec::new(),
            }
        }
        Ok(p) if p.outcome != PhaseOutcome::Verified && p.changed_by_another() => {
            return Ending {
                outcome: Outcome::VerifyFailed,
                message: join(why, p.unexplained_message()),
                manual_restore: Vec::new(),
            }
        }
        Err(e) if e.kind == crate::error::Kind::Superseded => {
            return Ending {
                outcome: Outcome::Superseded,
                message: join(why, Some(e.message.clone())),
                manual_restore: Vec::new(),
            }
        }
        _ => {}
    }
    let restore_failure = match restore {
        Ok(p) if p.outcome == PhaseOutcome::Verified => {
            return Ending {
                outcome: on_success,
                message: why,
                manual_restore: Vec::new(),
            }
        }
        Ok(p) => failure_message(p),
        Err(e) => Some(e.message.clone()),
    };
    let message = match (why, restore_failure) {
        (Some(w), Some(r)) => Some(format!("{w}; restore failed too: {r}")),
        (Some(w), None) => Some(format!("{w}; restore failed too")),
        (None, r) => r,
    };
    Ending {
        outcome: Outcome::RestoreFailed,
        message,
        manual_restore: manual,
    }
}

/// Why a phase did not verify, in one line: the services that failed explain the outcome
/// (the others may only have been left in progress because of them), then a verification
/// that could not finish, then the services still in progress.
pub fn failure_message(phase: &PhaseReport) -> Option<String> {
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
    if let Some(e) = &phase.verify_error {
        return Some(format!("verification could not finish: {e}"));
    }
    let open: Vec<&str> = phase
        .services
        .iter()
        .filter(|s| s.stage != Stage::Completed)
        .map(|s| s.service.as_str())
        .collect();
    (!open.is_empty()).then(|| format!("still in progress: {}", open.join(", ")))
}

/// What a rollback is asked to undo.
#[derive(Debug, Clone, Copy)]
pub enum RollbackSource<'a> {
    /// A rotation, by id.
    Rotation(&'a RotationSummary),
    /// A secret: its last rotation that wrote a version (`last`), or else its
    /// AWSPREVIOUS.
    Secret {
        /// What DescribeSecret says now.
        info: &'a SecretInfo,
        /// The latest rotation that wrote a version of it, if any.
        last: Option<&'a RotationSummary>,
    },
}

/// The version change a rollback makes: AWSCURRENT of `arn` from `from` back to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreChoice {
    /// The secret.
    pub arn: String,
    /// The version to make AWSCURRENT again.
    pub to: String,
    /// The version that should hold AWSCURRENT now (the one written).
    pub from: String,
    /// The rotation being undone, if known.
    pub rolls_back: Option<Uuid>,
}

/// The latest of `rotations` (oldest first) that wrote a version of `arn`.
pub fn last_write_of<'a>(
    rotations: &'a [RotationSummary],
    arn: &str,
) -> Option<&'a RotationSummary> {
    rotations.iter().rev().find(|r| {
        r.secrets
            .iter()
            .any(|x| x.arn == arn && x.written_version_id.is_some())
    })
}

/// What a rollback restores. A version id that is not known is an error, never a guess.
/// `reach`: the options the commands its refusals suggest carry.
pub fn rollback_restores(source: RollbackSource<'_>, reach: &Reach) -> Result<RestoreChoice> {
    let rotation = match source {
        RollbackSource::Rotation(r) => r,
        RollbackSource::Secret {
            info,
            last: Some(r),
        } if r.touches(&info.arn) => r,
        RollbackSource::Secret { info, .. } => {
            let (Some(to), Some(from)) = (info.previous.clone(), info.current.clone()) else {
                return Err(Error::refused(format!(
                    "secret {} has no AWSPREVIOUS version to go back to",
                    info.name
                ))
                .hint("there is no earlier value to restore"));
            };
            return Ok(RestoreChoice {
                arn: info.arn.clone(),
                to,
                from,
                rolls_back: None,
            });
        }
    };
    let id = rotation.rotation_id();
    let secret = match source {
        RollbackSource::Secret { info, .. } => rotation.secrets.iter().find(|x| x.arn == info.arn),
        RollbackSource::Rotation(_) => rotation.secrets.first(),
    };
    let Some(secret) = secret else {
        return Err(
            Error::bad_input(format!("rotation {id} changed no secret")).hint(format!(
                "it was a redeploy: roll back a secret by name instead ({})",
                reach.command("rollback SECRET")
            )),
        );
    };
    let Some(from) = secret.written_version_id.clone() else {
        return Err(Error::refused(format!(
            "rotation {id} wrote no new version: there is nothing to roll back"
        ))
        .hint(format!(
            "see `{}` for what it did",
            reach.command("history")
        )));
    };
    let Some(to) = secret.previous_version_id.clone() else {
        return Err(Error::refused(format!(
            "rotation {id} recorded no previous version of {}: there is no earlier value to restore",
            secret.name
        ))
        .hint("move AWSCURRENT by hand with aws secretsmanager update-secret-version-stage"));
    };
    Ok(RestoreChoice {
        arn: secret.arn.clone(),
        to,
        from,
        rolls_back: Some(id),
    })
}

/// The hint of a `rollback SECRET` that cannot run because a consumer is not deployed by
/// ECS (and, with no rotation in the journal, there is no smaller set to redeploy): the
/// exact command that moves AWSCURRENT back, then the deployments, `others` (the consumers
/// ECS deploys) with the one `redeploy` that can run.
pub fn rollback_by_hand_hint(
    info: &SecretInfo,
    choice: &RestoreChoice,
    others: &[String],
    reach: &Reach,
) -> String {
    let by_hand = format!(
        "move AWSCURRENT back by hand (aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSCURRENT --move-to-version-id {} --remove-from-version-id {}), deploy those services with their controller",
        info.name, choice.to, choice.from
    );
    if others.is_empty() {
        by_hand
    } else {
        format!(
            "{by_hand}, and the others with {}",
            reach.command(&format!(
                "redeploy --secret {} --services {}",
                info.name,
                others.join(",")
            ))
        )
    }
}

/// The hint of a refusal over an unfinished rotation: finish it with `resume ID`, or, for
/// one that wrote a version, roll it back with `rollback ID` (a rollback or a redeploy
/// wrote none: `rollback ID` of it has nothing to undo).
pub fn unfinished_hint(open: &RotationSummary, reach: &Reach) -> String {
    let id = open.rotation_id();
    let resume = reach.command(&format!("resume {id}"));
    let wrote = open.started.kind == RotationKind::Replace
        && open
            .secrets
            .iter()
            .any(|s| s.written_version_id.is_some() && s.previous_version_id.is_some());
    if wrote {
        format!(
            "finish it with `{resume}` (or roll it back with `{}`)",
            reach.command(&format!("rollback {id}"))
        )
    } else {
        format!("finish it with `{resume}`")
    }
}

/// What the running tasks of a rollback's services hold when its version is current
/// already (see [`current_held`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentHeld {
    /// Running tasks proven to hold the current version.
    pub holding: usize,
    /// Services with a task not proven on it (or not found reading the secret).
    pub open: Vec<ServiceRef>,
    /// Per open service, why.
    pub why: Vec<String>,
}

impl CurrentHeld {
    /// Every task of every service holds the current version.
    pub fn proven(&self) -> bool {
        self.open.is_empty()
    }
}

/// Whether every running task of `services` holds the current version of `arn`, by the
/// rule of `status` (`st`): a stale task (created before that version became current) or
/// one that cannot be told (created between its creation and the secret's last change)
/// leaves its service open, and so does a service `status` does not find reading the
/// secret: nothing is proven of it.
pub fn current_held(st: &crate::status::Status, arn: &str, services: &[ServiceRef]) -> CurrentHeld {
    let mut out = CurrentHeld::default();
    for r in services {
        let read = st
            .services
            .iter()
            .find(|s| s.cluster == r.cluster && s.name == r.service)
            .and_then(|s| s.secrets.iter().find(|x| x.secret_arn == arn));
        let Some(read) = read else {
            out.why
                .push(format!("{} is not found reading it", r.service));
            out.open.push(r.clone());
            continue;
        };
        // Baking tasks (an old deployment with no production traffic) still run and hold
        // an older value: "every running task holds it" is not true of them.
        let (stale, unknown) = (
            read.stale_tasks.len() + read.baking_tasks.len(),
            read.unproven_tasks.len(),
        );
        if stale + unknown == 0 {
            out.holding += read.tasks;
            continue;
        }
        out.why.push(format!(
            "{}: {stale} of {} task(s) started before it became current, {unknown} cannot be told",
            r.service, read.tasks
        ));
        out.open.push(r.clone());
    }
    out
}

/// What `status` suggests for its stale tasks (see [`stale_advice`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaleAdvice {
    /// Services to redeploy: their stale tasks would be relaunched onto a good value.
    pub redeploy: Vec<String>,
    /// Secrets whose current version was kept after a failed rotation: roll that back
    /// instead of relaunching its stale readers onto it. `(rotation, secret, services)`.
    pub rollback: Vec<(Uuid, String, Vec<String>)>,
}

/// What to suggest for the stale tasks in `st`, given the journal's `rotations` (oldest
/// first). A stale task of a secret whose latest rotation ended in a kept failure
/// (`--on-failure keep`, or not proven) with its version still AWSCURRENT holds the value
/// from before that rotation: a redeploy would relaunch it onto the value that failed, so
/// that rotation's rollback is the next step. Any other stale task: redeploy its service.
pub fn stale_advice(st: &crate::status::Status, rotations: &[RotationSummary]) -> StaleAdvice {
    let mut out = StaleAdvice::default();
    let kept_failure = |arn: &str, current: Option<&str>| -> Option<Uuid> {
        // A redeploy changes no value: the last rotation that wrote or moved one decides.
        let last = rotations
            .iter()
            .rev()
            .find(|r| r.touches(arn) && !r.started.kind.redeploys_only())?;
        let kept = matches!(
            last.status,
            crate::journal::Status::Finished(Outcome::DeployFailed | Outcome::VerifyFailed)
        );
        let s = last.secrets.iter().find(|s| s.arn == arn)?;
        (kept
            && last.started.kind == RotationKind::Replace
            && s.previous_version_id.is_some()
            && s.restored_version_id.is_none()
            && s.written_version_id.is_some()
            && s.written_version_id.as_deref() == current)
            .then(|| last.rotation_id())
    };
    for svc in &st.services {
        let mut redeploy = false;
        for read in svc.secrets.iter().filter(|r| !r.stale_tasks.is_empty()) {
            match kept_failure(&read.secret_arn, read.current_version.as_deref()) {
                Some(id) => match out.rollback.iter_mut().find(|(r, _, _)| *r == id) {
                    Some((_, _, services)) => services.push(svc.name.clone()),
                    None => {
                        out.rollback
                            .push((id, read.secret_name.clone(), vec![svc.name.clone()]))
                    }
                },
                None => redeploy = true,
            }
        }
        if redeploy {
            out.redeploy.push(svc.name.clone());
        }
    }
    out
}

/// Refuses to restore over a change made since the rotation, unless forced.
pub fn check_not_moved_on(info: &SecretInfo, from: &str, force: bool) -> Result<()> {
    if force || info.current.as_deref() == Some(from) {
        return Ok(());
    }
    Err(Error::refused(format!(
        "AWSCURRENT of {} has moved on since that rotation (it is {}, not {from})",
        info.name,
        info.current.as_deref().unwrap_or("none"),
    ))
    .hint("pass --force to restore the earlier version anyway"))
}

/// Whether resuming `summary` finishes a restore (rather than the rollout): a restore had
/// started, or it is a rollback, which is all restore.
pub fn resume_restores(summary: &RotationSummary) -> bool {
    summary.started.kind == RotationKind::Rollback
        || summary
            .secrets
            .iter()
            .any(|s| s.restored_version_id.is_some())
        // A parameter's restore journals its intent to write before anything else.
        || summary
            .secrets
            .iter()
            .any(|s| s.intents.iter().any(|(p, ..)| *p == crate::journal::Phase::Restore))
        || summary
            .services
            .iter()
            .any(|s| s.restore_deployment.is_some())
}

/// What a resumed rotation does on failure: what it is told now, else what the
/// interrupted run was told, else restore.
pub fn resume_on_failure(given: Option<OnFailure>, recorded: Option<OnFailure>) -> OnFailure {
    given.or(recorded).unwrap_or(OnFailure::Rollback)
}

/// The services a rollback of `rotation` redeploys: exactly those it planned or redeployed,
/// as its journal says. Consumers it left out (`--services`, or CODE_DEPLOY / EXTERNAL
/// ones it was told to skip) were never moved to the new value by it, so its undo leaves
/// them alone too, and a rotation that excluded them can be undone.
pub fn rollback_services(rotation: &RotationSummary) -> Vec<ServiceRef> {
    rotation
        .services
        .iter()
        .map(|s| ServiceRef {
            cluster: s.cluster.clone(),
            service: s.name.clone(),
        })
        .collect()
}

/// The refusal `redeploy` gives, before any call that changes anything, when a service it
/// is asked to redeploy is not deployed by ECS: a forced new deployment does not roll out
/// CODE_DEPLOY or EXTERNAL services. The hint names only commands that can run.
pub fn redeploy_refusal(services: &[ServiceInfo]) -> Option<Error> {
    let unsupported: Vec<&ServiceInfo> = services
        .iter()
        .filter(|s| s.controller != Controller::Ecs)
        .collect();
    let first = unsupported.first()?;
    let list = unsupported
        .iter()
        .map(|s| format!("{} ({})", s.name, s.controller))
        .collect::<Vec<_>>()
        .join(", ");
    let message = if unsupported.len() == 1 {
        format!(
            "service {} in cluster {} is deployed by {}, which a forced new deployment does not roll out",
            first.name, first.cluster, first.controller
        )
    } else {
        format!("{list} are not deployed by ECS, which a forced new deployment does not roll out")
    };
    let controller = if unsupported
        .iter()
        .all(|s| s.controller == Controller::CodeDeploy)
    {
        "CodeDeploy"
    } else {
        "their own controller"
    };
    let others: Vec<&str> = services
        .iter()
        .filter(|s| s.controller == Controller::Ecs)
        .map(|s| s.name.as_str())
        .collect();
    let hint = if others.is_empty() {
        format!("deploy {list} with {controller}: nothing was changed")
    } else {
        format!(
            "deploy {list} with {controller}; redeploy the others with --services {}",
            others.join(",")
        )
    };
    Some(Error::refused(message).hint(hint))
}

/// One consumer as ECS describes it just before a write: what [`busy_consumers`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// The service.
    pub service: ServiceRef,
    /// Blue/green, linear or canary (see [`ServiceInfo::staged`]).
    pub staged: bool,
    /// Its deployments, as DescribeServices listed them.
    pub deployments: Vec<DeploymentObs>,
    /// Its service deployments still under way (asked only of staged services).
    pub service_deployments: Vec<ServiceDeploymentObs>,
}

/// The deployments that are the tool's own, so never "someone else's": those the journal
/// of a resumed or undone rotation names, and on resume those created at or after `after`
/// (AWS's clock), which `service_step` would adopt as ours whose journal line was lost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ours {
    /// Deployment ids.
    pub ids: BTreeSet<String>,
    /// On resume: see [`adopt_after`].
    pub after: Option<f64>,
}

impl Ours {
    fn owns(&self, d: &DeploymentObs) -> bool {
        self.ids.contains(&d.id) || self.after.is_some_and(|a| d.created_at >= a)
    }
}

/// The deployments a rotation's journal names as its own (rollout and restore).
pub fn journaled_deployments(rotation: &RotationSummary) -> Ours {
    Ours {
        ids: rotation
            .services
            .iter()
            .flat_map(|s| [&s.rollout_deployment, &s.restore_deployment])
            .flatten()
            .cloned()
            .collect(),
        after: None,
    }
}

/// What a resumed rotation takes for its own: what its journal names, and any deployment
/// created at or after `written` (when its version became current, AWS's clock; else its
/// start on the tool's clock), which `service_step` would adopt as ours whose journal line
/// a crash lost ([`adopt_after`]).
pub fn resumed_deployments(rotation: &RotationSummary, written: Option<f64>) -> Ours {
    let started = rotation.started.started_at.unix_timestamp_nanos() as f64 / 1e9;
    Ours {
        after: Some(adopt_after(written.unwrap_or(0.0), Some(started))),
        ..journaled_deployments(rotation)
    }
}

/// What a rollback of `rotation` does not count as someone else's deployment: what its
/// journal names, and any deployment created at or after `written` (when the version it
/// undoes was created, AWS's clock): those launch tasks onto that version, ECS's
/// circuit-breaker rollbacks of a kept failure first (they relaunch onto the value that
/// failed, for ever), and replacing them is the undo. Without the date, only the journal's.
pub fn undone_deployments(rotation: &RotationSummary, written: Option<f64>) -> Ours {
    Ours {
        after: written,
        ..journaled_deployments(rotation)
    }
}

/// A consumer in the middle of a deployment the tool did not start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Busy {
    /// Cluster.
    pub cluster: String,
    /// Service.
    pub service: String,
    /// The deployment under way: `ecs-svc/...`, or a service deployment ARN.
    pub deployment: String,
    /// What ECS says of it (`IN_PROGRESS`, `2 deployments`, a service deployment status).
    pub state: String,
    /// Since when (its `createdAt` or `startedAt`), epoch seconds on AWS's clock.
    pub since: f64,
    /// Its `updatedAt`, epoch seconds (0: ECS gave none).
    pub updated: f64,
}

/// The consumers in the middle of a deployment that is not `ours`. A service is busy when
/// it lists more than one deployment (one replaces another), when its PRIMARY's
/// `rolloutState` is `IN_PROGRESS`, or, for blue/green, linear and canary services (whose
/// `rolloutState` is documented for rolling only), when a service deployment is under way.
/// A service whose PRIMARY is ours is not busy: the older deployments listed beside it are
/// the ones ours replaces.
pub fn busy_consumers(observed: &[Activity], ours: &Ours) -> Vec<Busy> {
    let mut out = Vec::new();
    for a in observed {
        let primary = a.deployments.iter().find(|d| d.is_primary());
        if primary.is_some_and(|p| ours.owns(p)) {
            continue;
        }
        let busy = |d: &DeploymentObs, state: String| Busy {
            cluster: a.service.cluster.clone(),
            service: a.service.service.clone(),
            deployment: d.id.clone(),
            state,
            since: d.created_at,
            updated: d.updated_at,
        };
        // The one to name: the PRIMARY (the target ECS moves to), else the newest.
        let newest = primary.or_else(|| {
            a.deployments
                .iter()
                .max_by(|x, y| x.created_at.total_cmp(&y.created_at))
        });
        if a.deployments.len() > 1 {
            if let Some(d) = newest {
                out.push(busy(d, format!("{} deployments", a.deployments.len())));
                continue;
            }
        }
        if let Some(p) = primary.filter(|p| p.rollout_state == "IN_PROGRESS") {
            out.push(busy(p, p.rollout_state.clone()));
            continue;
        }
        if a.staged {
            if let Some(sd) = a.service_deployments.iter().find(|d| d.under_way()) {
                out.push(Busy {
                    cluster: a.service.cluster.clone(),
                    service: a.service.service.clone(),
                    deployment: sd.arn.clone(),
                    state: sd.status.clone(),
                    since: sd.started_at,
                    updated: 0.0,
                });
            }
        }
    }
    out
}

/// An epoch second on AWS's clock, as RFC 3339 (UTC, whole seconds).
fn at(epoch: f64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(epoch.floor() as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "an unknown time".to_string())
}

/// One busy consumer in words: "api (cluster c): deployment ecs-svc/1 IN_PROGRESS since
/// T, updated T".
pub fn busy_line(b: &Busy) -> String {
    let updated = if b.updated > 0.0 {
        format!(", updated {}", at(b.updated))
    } else {
        String::new()
    };
    format!(
        "{} (cluster {}): deployment {} {} since {}{updated}",
        b.service,
        b.cluster,
        b.deployment,
        b.state,
        at(b.since)
    )
}

/// The refusal when consumers are mid-deployment (`None`: none is). `waited`: how long
/// `--wait` waited before giving up, if it did.
pub fn busy_refusal(busy: &[Busy], waited: Option<std::time::Duration>) -> Option<Error> {
    let first = busy.first()?;
    let what = if busy.len() == 1 {
        format!(
            "service {} is in the middle of a deployment secret-rollout did not start: {}",
            first.service,
            busy_line(first)
        )
    } else {
        format!(
            "{} consumers are in the middle of deployments secret-rollout did not start: {}",
            busy.len(),
            busy.iter().map(busy_line).collect::<Vec<_>>().join("; ")
        )
    };
    Some(match waited {
        None => Error::refused(what).hint(
            "wait for it to finish and rerun, or rerun with --wait (waits up to --timeout) or --allow-concurrent-deploy (go on anyway); nothing was written",
        ),
        Some(w) => Error::refused(format!("still deploying after waiting {}s: {what}", w.as_secs()))
            .hint("rerun with a longer --timeout, or with --allow-concurrent-deploy to go on anyway; nothing was written"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use time::OffsetDateTime;

    use super::*;
    use crate::journal::{
        PlannedService, SecretSummary, ServiceSummary, Started, StartedSecret, Status,
    };
    use crate::rotation::report::ServiceReport;
    use crate::verdict::{Proof, StaleTask};

    const WRITE: f64 = 1_000.0;

    type AdoptRow<'a> = (
        &'a str,
        Phase,
        bool,
        Option<&'a str>,
        Option<Primary>,
        Option<&'a str>,
        Option<&'a str>,
        Step,
    );

    type EndingRow<'a> = (
        Result<PhaseReport>,
        Outcome,
        Option<String>,
        Outcome,
        Option<&'a str>,
        bool,
    );

    fn primary(id: &str, created: f64, rolling_back: bool) -> Primary {
        Primary {
            id: id.into(),
            created,
            rolling_back,
        }
    }

    /// Every case the adoption fixes were about (0a40693, 32eaba0, 0708719, a085e47).
    #[test]
    fn adopt_on_resume() {
        use Phase::{Restore, Rollout};
        let deploy = |p: Option<&str>| Step::Deploy {
            previous_primary: p.map(str::to_string),
        };
        let adopt = |p: &str| Step::Adopt(p.into());
        // (why, phase, resumed, journaled, primary, previous, rollout, expected)
        let table: Vec<AdoptRow<'_>> = vec![
            (
                "a fresh run never adopts, even a deployment made after the write",
                Rollout,
                false,
                None,
                Some(primary("other", WRITE + 5.0, false)),
                Some("before"),
                None,
                deploy(Some("other")),
            ),
            (
                "a journaled deployment is followed, not deployed again",
                Rollout,
                true,
                Some("ours"),
                Some(primary("ours", WRITE + 1.0, false)),
                Some("before"),
                None,
                Step::Follow("ours".into()),
            ),
            (
                "journaled wins even when ECS shows another PRIMARY",
                Restore,
                true,
                Some("ours-restore"),
                Some(primary("newer", WRITE + 9.0, false)),
                Some("before"),
                Some("ours-rollout"),
                Step::Follow("ours-restore".into()),
            ),
            (
                "resume, ECS not described: nothing to adopt, nothing to recognise",
                Rollout,
                true,
                None,
                None,
                Some("before"),
                None,
                deploy(None),
            ),
            (
                "resume: a PRIMARY created after the write is ours, its journal line lost",
                Rollout,
                true,
                None,
                Some(primary("lost", WRITE + 2.0, false)),
                Some("before"),
                None,
                adopt("lost"),
            ),
            (
                "created exactly at the write still delivers it",
                Rollout,
                true,
                None,
                Some(primary("lost", WRITE, false)),
                Some("before"),
                None,
                adopt("lost"),
            ),
            (
                "32eaba0: a readers' deployment made before the write holds the old value",
                Rollout,
                true,
                None,
                Some(primary("recent", WRITE - 1.0, false)),
                Some("before"),
                None,
                deploy(Some("recent")),
            ),
            (
                "0708719: a restore deployment whose journal line was lost is adopted",
                Restore,
                true,
                None,
                Some(primary("lost-restore", WRITE + 3.0, false)),
                Some("before"),
                Some("ours-rollout"),
                adopt("lost-restore"),
            ),
            (
                "a085e47: the pre-rotation id with a fresh date is a circuit-breaker rollback",
                Rollout,
                true,
                None,
                Some(primary("before", WRITE + 4.0, false)),
                Some("before"),
                None,
                deploy(Some("before")),
            ),
            (
                "a085e47: in the restore, the pre-rotation id is never ours either",
                Restore,
                true,
                None,
                Some(primary("before", WRITE + 4.0, false)),
                Some("before"),
                Some("ours-rollout"),
                deploy(Some("before")),
            ),
            (
                "a085e47: in the restore, our rollout's id with a fresh date is a rollback",
                Restore,
                true,
                None,
                Some(primary("ours-rollout", WRITE + 4.0, false)),
                Some("before"),
                Some("ours-rollout"),
                deploy(Some("ours-rollout")),
            ),
            (
                "a085e47: ECS marks it rolling back: never ours",
                Rollout,
                true,
                None,
                Some(primary("fresh-id", WRITE + 4.0, true)),
                Some("before"),
                None,
                deploy(Some("fresh-id")),
            ),
            (
                "no previous deployment recorded (older journal): the date decides",
                Rollout,
                true,
                None,
                Some(primary("lost", WRITE + 2.0, false)),
                None,
                None,
                adopt("lost"),
            ),
        ];
        for (why, phase, resumed, journaled, primary, previous, rollout, expected) in &table {
            let facts = ServiceFacts {
                phase: *phase,
                resumed: *resumed,
                journaled: *journaled,
                primary: primary.as_ref(),
                after: WRITE,
                previous_deployment: *previous,
                rollout_deployment: *rollout,
            };
            assert_eq!(&service_step(&facts), expected, "{why}");
        }
    }

    /// 0a40693 and 32eaba0: AWS's date of the write decides; the local start only when
    /// nothing was written, and nothing is adopted without either.
    #[test]
    fn adopt_after_prefers_aws_dates() {
        let table = [
            // (since, started_at, after)
            (WRITE, Some(WRITE - 100.0), WRITE),
            (WRITE, Some(WRITE + 100.0), WRITE),
            (WRITE, None, WRITE),
            (0.0, Some(500.0), 500.0),
            (0.0, None, f64::MAX),
        ];
        for (since, started, after) in table {
            assert_eq!(adopt_after(since, started), after, "{since} {started:?}");
        }
        // With the fallback, a deployment from before the local start is not adopted.
        let p = primary("x", 499.0, false);
        let facts = ServiceFacts {
            phase: Phase::Rollout,
            resumed: true,
            journaled: None,
            primary: Some(&p),
            after: adopt_after(0.0, Some(500.0)),
            previous_deployment: None,
            rollout_deployment: None,
        };
        assert!(matches!(service_step(&facts), Step::Deploy { .. }));
    }

    #[test]
    fn phase_outcomes() {
        use PhaseOutcome::*;
        let proofs = |all_hold| Some(Verification::Proofs { all_hold });
        let err = Some(Verification::Error("ListTasks: throttled".into()));
        // (timed_out, failed_launches, all_completed, paused, verification, outcome)
        let table = [
            (true, 0, false, false, None, Timeout),
            (true, 1, false, false, None, Timeout),
            (false, 1, true, false, None, DeployFailed),
            (false, 1, true, false, proofs(true), DeployFailed),
            (false, 0, false, false, None, DeployFailed),
            (false, 0, true, false, proofs(true), Verified),
            (false, 0, true, false, proofs(false), VerifyFailed),
            (false, 0, true, false, err, VerifyFailed),
            // Never verified without proofs.
            (false, 0, true, false, None, VerifyFailed),
            // Waiting at a PAUSE hook: nothing failed, resumable.
            (false, 0, false, true, None, Paused),
            // A service that could not be deployed is a failure, pause or not.
            (false, 1, false, true, None, DeployFailed),
        ];
        for (timed_out, failed_launches, all_completed, paused, verification, outcome) in table {
            let facts = PhaseFacts {
                timed_out,
                failed_launches,
                all_completed,
                paused,
                verification: verification.clone(),
            };
            assert_eq!(phase_outcome(&facts), outcome, "{facts:?}");
            assert_eq!(
                facts.ready_to_verify(),
                !timed_out && failed_launches == 0 && all_completed
            );
        }
    }

    #[test]
    fn kept_outcomes() {
        use PhaseOutcome as P;
        let table = [
            (Some(P::Verified), Outcome::Verified),
            (Some(P::VerifyFailed), Outcome::VerifyFailed),
            (Some(P::DeployFailed), Outcome::DeployFailed),
            (Some(P::Timeout), Outcome::Timeout),
            (Some(P::Interrupted), Outcome::Interrupted),
            (Some(P::Paused), Outcome::Paused),
            (None, Outcome::DeployFailed),
        ];
        for (phase, outcome) in table {
            assert_eq!(kept_outcome(phase), outcome, "{phase:?}");
        }
    }

    fn service(name: &str, stage: Stage, stale: usize) -> ServiceReport {
        ServiceReport {
            cluster: "c".into(),
            service: name.into(),
            deployment_id: Some(format!("ecs-svc/{name}")),
            stage,
            proof: (stale > 0).then(|| Proof {
                nothing_to_prove: false,
                fresh: 1,
                total: 1 + stale,
                started: None,
                stale: (0..stale)
                    .map(|i| StaleTask {
                        task: format!("t{i}"),
                        reason: "old".into(),
                    })
                    .collect(),
            }),
            times: Default::default(),
            staged: None,
        }
    }

    fn phase(services: Vec<ServiceReport>, outcome: PhaseOutcome) -> PhaseReport {
        PhaseReport {
            services,
            outcome,
            verify_error: None,
            secrets: Vec::new(),
        }
    }

    fn failed(reason: &str) -> Stage {
        Stage::Failed {
            reason: reason.into(),
        }
    }

    #[test]
    fn failure_messages() {
        let verify_error = PhaseReport {
            verify_error: Some("ListTasks: throttled".into()),
            ..phase(
                vec![service("api", Stage::Completed, 0)],
                PhaseOutcome::VerifyFailed,
            )
        };
        let table = [
            (
                phase(
                    vec![service("api", Stage::Completed, 0)],
                    PhaseOutcome::Verified,
                ),
                None,
            ),
            (
                phase(
                    vec![
                        service("front", Stage::Draining, 0),
                        service("api", failed("circuit breaker"), 0),
                    ],
                    PhaseOutcome::DeployFailed,
                ),
                Some("api: circuit breaker"),
            ),
            (
                phase(
                    vec![
                        service("api", failed("a"), 0),
                        service("admin", Stage::Completed, 2),
                    ],
                    PhaseOutcome::DeployFailed,
                ),
                Some("api: a; admin: 2 task(s) not proven new"),
            ),
            (
                verify_error,
                Some("verification could not finish: ListTasks: throttled"),
            ),
            (
                phase(
                    vec![
                        service("front", Stage::Draining, 0),
                        service("api", Stage::Starting, 0),
                        service("admin", Stage::Completed, 0),
                    ],
                    PhaseOutcome::Timeout,
                ),
                Some("still in progress: front, api"),
            ),
            (
                // A proof with no stale task is no failure.
                phase(
                    vec![
                        ServiceReport {
                            proof: service("admin", Stage::Completed, 1)
                                .proof
                                .map(|p| Proof { stale: vec![], ..p }),
                            ..service("admin", Stage::Completed, 0)
                        },
                        service("front", Stage::Draining, 0),
                    ],
                    PhaseOutcome::Timeout,
                ),
                Some("still in progress: front"),
            ),
        ];
        for (p, want) in table {
            assert_eq!(failure_message(&p).as_deref(), want, "{p:?}");
        }
    }

    #[test]
    fn restore_endings() {
        let manual = vec!["aws secretsmanager update-secret-version-stage ...".to_string()];
        let verified = Ok(phase(
            vec![service("api", Stage::Completed, 0)],
            PhaseOutcome::Verified,
        ));
        let failed_phase = Ok(phase(
            vec![service("api", failed("tasks failed to start"), 0)],
            PhaseOutcome::DeployFailed,
        ));
        let quiet_failure = Ok(phase(
            vec![service("api", Stage::Completed, 0)],
            PhaseOutcome::VerifyFailed,
        ));
        let error = Err(Error::refused("AWSCURRENT of x is now v3"));
        let other = Err(Error::new(
            crate::error::Kind::Superseded,
            "AWSCURRENT of x is now v3, neither",
        ));
        let superseded = Ok(phase(
            vec![service("api", Stage::Completed, 0)],
            PhaseOutcome::Superseded,
        ));
        let why = || Some("api: bad value".to_string());
        // Someone else changed the secret during the restore: a restore that did not
        // verify says so (and moves nothing); one that verified all the same is a success.
        let changed = |outcome| {
            Ok(PhaseReport {
                secrets: vec![crate::rotation::report::SecretHolding {
                    secret: "x".into(),
                    arn: "arn:x".into(),
                    version: "v1".into(),
                    holding: crate::holding::Holding::NotProven {
                        since: None,
                        why: "changed during the restore".into(),
                    },
                    other_created: None,
                    changed: true,
                    tasks: Default::default(),
                }],
                ..phase(vec![service("api", Stage::Completed, 0)], outcome)
            })
        };
        // (restore, on_success, why, outcome, message, manual commands)
        let table: Vec<EndingRow<'_>> = vec![
            (
                verified.clone(),
                Outcome::FailedRestored,
                why(),
                Outcome::FailedRestored,
                Some("api: bad value"),
                false,
            ),
            (
                verified,
                Outcome::Verified,
                None,
                Outcome::Verified,
                None,
                false,
            ),
            (
                failed_phase.clone(),
                Outcome::FailedRestored,
                why(),
                Outcome::RestoreFailed,
                Some("api: bad value; restore failed too: api: tasks failed to start"),
                true,
            ),
            (
                failed_phase,
                Outcome::Verified,
                None,
                Outcome::RestoreFailed,
                Some("api: tasks failed to start"),
                true,
            ),
            (
                quiet_failure.clone(),
                Outcome::FailedRestored,
                why(),
                Outcome::RestoreFailed,
                Some("api: bad value; restore failed too"),
                true,
            ),
            (
                quiet_failure,
                Outcome::Verified,
                None,
                Outcome::RestoreFailed,
                None,
                true,
            ),
            (
                error.clone(),
                Outcome::FailedRestored,
                why(),
                Outcome::RestoreFailed,
                Some("api: bad value; restore failed too: AWSCURRENT of x is now v3"),
                true,
            ),
            (
                error,
                Outcome::Verified,
                None,
                Outcome::RestoreFailed,
                Some("AWSCURRENT of x is now v3"),
                true,
            ),
            // Someone else's version: superseded, and no command that would move it.
            (
                other.clone(),
                Outcome::FailedRestored,
                why(),
                Outcome::Superseded,
                Some("api: bad value; then AWSCURRENT of x is now v3, neither"),
                false,
            ),
            (
                other,
                Outcome::Verified,
                None,
                Outcome::Superseded,
                Some("AWSCURRENT of x is now v3, neither"),
                false,
            ),
            (
                superseded,
                Outcome::FailedRestored,
                why(),
                Outcome::Superseded,
                Some("api: bad value"),
                false,
            ),
            (
                changed(PhaseOutcome::VerifyFailed),
                Outcome::FailedRestored,
                why(),
                Outcome::VerifyFailed,
                Some("api: bad value; then x: not proven: changed during the restore"),
                false,
            ),
            (
                changed(PhaseOutcome::Verified),
                Outcome::FailedRestored,
                why(),
                Outcome::FailedRestored,
                Some("api: bad value"),
                false,
            ),
        ];
        for (restore, on_success, why, outcome, message, needs_manual) in table {
            let e = restore_ending(&restore, on_success, why, manual.clone());
            assert_eq!(e.outcome, outcome, "{restore:?}");
            assert_eq!(e.message.as_deref(), message, "{restore:?}");
            assert_eq!(e.manual_restore.is_empty(), !needs_manual, "{restore:?}");
        }
    }

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:1:secret:s-AbCdEf";

    fn info(current: Option<&str>, previous: Option<&str>) -> SecretInfo {
        SecretInfo {
            arn: ARN.into(),
            name: "s".into(),
            current: current.map(str::to_string),
            previous: previous.map(str::to_string),
            stages: BTreeMap::new(),
            rotation_enabled: false,
            deleted_date: None,
            owning_service: None,
            last_changed: None,
            last_rotated: None,
        }
    }

    fn rotation(
        n: u128,
        kind: RotationKind,
        secret: Option<(&str, Option<&str>, Option<&str>)>,
    ) -> RotationSummary {
        let at = OffsetDateTime::UNIX_EPOCH;
        let secrets: Vec<SecretSummary> = secret
            .into_iter()
            .map(|(arn, previous, written)| SecretSummary {
                arn: arn.into(),
                name: "s".into(),
                previous_version_id: previous.map(str::to_string),
                request_token: None,
                json_key: None,
                written_version_id: written.map(str::to_string),
                written_at: None,
                restored_version_id: None,
                restored_at: None,
                intents: Vec::new(),
            })
            .collect();
        RotationSummary {
            path: PathBuf::new(),
            started: Started {
                rotation_id: Uuid::from_u128(n),
                kind,
                environment: "e".into(),
                region: "eu-west-1".into(),
                clusters: vec!["c".into()],
                caller_arn: "arn".into(),
                account: "1".into(),
                rolls_back: None,
                secrets: secrets
                    .iter()
                    .map(|s| StartedSecret {
                        arn: s.arn.clone(),
                        name: s.name.clone(),
                        previous_version_id: s.previous_version_id.clone(),
                        request_token: None,
                        json_key: None,
                    })
                    .collect(),
                services: vec![PlannedService {
                    cluster: "c".into(),
                    name: "api".into(),
                    previous_deployment: None,
                }],
                started_at: at,
                tool_version: String::new(),
                on_failure: None,
            },
            secrets,
            services: vec![ServiceSummary {
                cluster: "c".into(),
                name: "api".into(),
                planned: true,
                rollout_deployment: None,
                restore_deployment: None,
            }],
            phases: Vec::new(),
            times: Vec::new(),
            status: Status::Finished(Outcome::Verified),
            message: None,
            finished_at: None,
            updated_at: at,
        }
    }

    fn reach() -> Reach {
        Reach::new(["--env", "production"].map(String::from).to_vec())
    }

    /// Issue 21 item 3: what a run prints as its next step, by outcome, each command
    /// carrying the options that reach the environment.
    #[test]
    fn next_steps_by_outcome() {
        let id = Uuid::from_u128(7);
        let kept = |written, restored, has_previous| KeptSecret {
            name: "production/x".into(),
            written,
            restored,
            has_previous,
        };
        let rollback = format!("secret-rollout rollback {id} --env production");
        let resume = format!("secret-rollout resume {id} --env production");
        let status = "secret-rollout status production/x --env production".to_string();
        use Outcome as O;
        use RotationKind as K;
        // (case, kind, outcome, secret, changed by another, steps)
        type Case = (&'static str, K, O, KeptSecret, bool, Vec<String>);
        let table: Vec<Case> = vec![
            (
                "kept deploy failure",
                K::Replace,
                O::DeployFailed,
                kept(true, false, true),
                false,
                vec![rollback.clone()],
            ),
            (
                "kept, not proven",
                K::Replace,
                O::VerifyFailed,
                kept(true, false, true),
                false,
                vec![rollback.clone()],
            ),
            (
                "changed by someone else: look, move nothing",
                K::Replace,
                O::VerifyFailed,
                kept(true, false, true),
                true,
                vec![status],
            ),
            (
                "nothing to go back to",
                K::Replace,
                O::DeployFailed,
                kept(true, false, false),
                false,
                vec![],
            ),
            (
                "failed before writing",
                K::Replace,
                O::DeployFailed,
                kept(false, false, true),
                false,
                vec![],
            ),
            (
                "a redeploy wrote nothing",
                K::Redeploy,
                O::DeployFailed,
                kept(false, false, false),
                false,
                vec![],
            ),
            (
                "a rollback's redeploy failed",
                K::Rollback,
                O::DeployFailed,
                kept(false, true, true),
                false,
                vec![],
            ),
            (
                "timed out after the write",
                K::Replace,
                O::Timeout,
                kept(true, false, true),
                false,
                vec![resume.clone(), rollback.clone()],
            ),
            (
                "a rollback timed out",
                K::Rollback,
                O::Timeout,
                kept(false, true, true),
                false,
                vec![resume.clone()],
            ),
            (
                "timed out before the write: nothing to roll back",
                K::Replace,
                O::Timeout,
                kept(false, false, true),
                false,
                vec![resume.clone()],
            ),
            (
                "only a replace is undone by rollback",
                K::Rollback,
                O::Interrupted,
                kept(true, false, true),
                false,
                vec![resume.clone()],
            ),
            (
                "verified",
                K::Replace,
                O::Verified,
                kept(true, false, true),
                false,
                vec![],
            ),
            (
                "restored",
                K::Replace,
                O::FailedRestored,
                kept(true, true, true),
                false,
                vec![],
            ),
            (
                "restore failed: its own commands",
                K::Replace,
                O::RestoreFailed,
                kept(true, false, true),
                false,
                vec![],
            ),
            (
                "superseded: nothing moves it",
                K::Replace,
                O::Superseded,
                kept(true, false, true),
                false,
                vec![],
            ),
        ];
        for (case, kind, outcome, secret, changed, want) in table {
            assert_eq!(
                next_steps(kind, outcome, id, &[secret], changed, &reach()),
                want,
                "{case}"
            );
        }
    }

    /// A refusal over an unfinished rotation suggests its rollback only when it wrote a
    /// version there is something to roll back from.
    #[test]
    fn the_unfinished_hint_names_rollback_only_when_there_is_something_to_undo() {
        let wrote = rotation(
            1,
            RotationKind::Replace,
            Some((ARN, Some("v1"), Some("v2"))),
        );
        let id = Uuid::from_u128(1);
        assert_eq!(
            unfinished_hint(&wrote, &reach()),
            format!("finish it with `secret-rollout resume {id} --env production` (or roll it back with `secret-rollout rollback {id} --env production`)")
        );
        let only = |r: &RotationSummary| {
            format!(
                "finish it with `secret-rollout resume {} --env production`",
                r.rotation_id()
            )
        };
        for r in [
            rotation(2, RotationKind::Replace, Some((ARN, Some("v1"), None))),
            rotation(3, RotationKind::Rollback, Some((ARN, Some("v1"), None))),
            rotation(4, RotationKind::Redeploy, None),
        ] {
            assert_eq!(unfinished_hint(&r, &reach()), only(&r));
        }
    }

    fn read(stale: usize, unproven: usize, tasks: usize) -> crate::status::SecretRead {
        crate::status::SecretRead {
            secret_arn: ARN.into(),
            secret_name: "production/x".into(),
            current_version: Some("v2".into()),
            tasks,
            stale_tasks: (0..stale).map(|i| format!("s{i}")).collect(),
            baking_tasks: Vec::new(),
            unproven_tasks: (0..unproven).map(|i| format!("u{i}")).collect(),
            pinned: Vec::new(),
        }
    }

    fn status_of(
        services: Vec<(&str, Option<crate::status::SecretRead>)>,
    ) -> crate::status::Status {
        let stale = services
            .iter()
            .filter_map(|(_, r)| r.as_ref().map(|r| r.stale_tasks.len()))
            .sum();
        crate::status::Status {
            secrets: Vec::new(),
            services: services
                .into_iter()
                .map(|(name, r)| crate::status::ServiceStatus {
                    cluster: "c".into(),
                    name: name.into(),
                    desired: 2,
                    running: 2,
                    pending: 0,
                    deployments: Vec::new(),
                    tasks: Vec::new(),
                    images: Vec::new(),
                    secrets: r.into_iter().collect(),
                    nothing_to_prove: false,
                    outside_services_list: false,
                    staged_deployment: None,
                })
                .collect(),
            stale,
            baking: 0,
            notes: Vec::new(),
        }
    }

    /// Issue 21 item 4: a rollback whose version is current is proven only when every task
    /// of every service it would redeploy holds it.
    #[test]
    fn current_held_needs_every_task_of_every_service() {
        let svc = |n: &str| ServiceRef {
            cluster: "c".into(),
            service: n.into(),
        };
        let all = [svc("front"), svc("api")];
        let st = status_of(vec![
            ("front", Some(read(0, 0, 3))),
            ("api", Some(read(0, 0, 2))),
        ]);
        let held = current_held(&st, ARN, &all);
        assert!(held.proven());
        assert_eq!(held.holding, 5);
        let st = status_of(vec![
            ("front", Some(read(1, 1, 3))),
            ("api", Some(read(0, 0, 2))),
        ]);
        let held = current_held(&st, ARN, &all);
        assert!(!held.proven());
        assert_eq!(held.open, [svc("front")]);
        assert_eq!(
            held.why,
            ["front: 1 of 3 task(s) started before it became current, 1 cannot be told"]
        );
        // One stale task and none that cannot be told: open all the same.
        let st = status_of(vec![
            ("front", Some(read(0, 0, 3))),
            ("api", Some(read(1, 0, 2))),
        ]);
        let held = current_held(&st, ARN, &all);
        assert_eq!(held.open, [svc("api")]);
        assert_eq!(held.holding, 3);
        // A service not found reading it: nothing is proven of it.
        let st = status_of(vec![("front", Some(read(0, 0, 3))), ("api", None)]);
        let held = current_held(&st, ARN, &all);
        assert_eq!(held.open, [svc("api")]);
        assert_eq!(held.why, ["api is not found reading it"]);
        assert!(current_held(&st, ARN, &[]).proven());
        // Tasks of an old deployment baking with no production traffic hold an older
        // value: not proven either.
        let baking = crate::status::SecretRead {
            baking_tasks: vec!["b1".into()],
            ..read(0, 0, 3)
        };
        let st = status_of(vec![("front", Some(baking)), ("api", Some(read(0, 0, 2)))]);
        let held = current_held(&st, ARN, &all);
        assert_eq!(held.open, [svc("front")]);
        assert_eq!(held.holding, 2);
    }

    /// Issue 21 item 3: `status` suggests the rollback of a kept failure whose version is
    /// still current, and a redeploy for anything else stale.
    #[test]
    fn stale_advice_rolls_back_a_kept_failure_and_redeploys_the_rest() {
        let finished = |mut r: RotationSummary, o: Outcome| {
            r.status = Status::Finished(o);
            r
        };
        let kept = finished(
            rotation(
                1,
                RotationKind::Replace,
                Some((ARN, Some("v1"), Some("v2"))),
            ),
            Outcome::DeployFailed,
        );
        let st = status_of(vec![
            ("front", Some(read(2, 0, 2))),
            ("api", Some(read(1, 0, 2))),
            ("pdf", Some(read(0, 0, 1))),
        ]);
        let advice = stale_advice(&st, std::slice::from_ref(&kept));
        assert_eq!(advice.redeploy, Vec::<String>::new());
        assert_eq!(
            advice.rollback,
            [(
                Uuid::from_u128(1),
                "production/x".to_string(),
                vec!["front".to_string(), "api".to_string()]
            )]
        );
        // Not a kept failure (verified, restored), or its version is no longer current,
        // or a later rotation: redeploy.
        let verified = finished(
            rotation(
                2,
                RotationKind::Replace,
                Some((ARN, Some("v1"), Some("v2"))),
            ),
            Outcome::Verified,
        );
        let elsewhere = finished(
            rotation(
                3,
                RotationKind::Replace,
                Some((ARN, Some("v0"), Some("v9"))),
            ),
            Outcome::DeployFailed,
        );
        // A redeploy since (onto the kept value) changes nothing of that.
        let redeploy = finished(
            rotation(4, RotationKind::Redeploy, Some((ARN, None, None))),
            Outcome::DeployFailed,
        );
        assert_eq!(
            stale_advice(&st, &[kept.clone(), redeploy]).rollback.len(),
            1
        );
        // A rollback since: the value is the earlier one again.
        let rolled_back = finished(
            rotation(5, RotationKind::Rollback, Some((ARN, Some("v1"), None))),
            Outcome::Verified,
        );
        for rotations in [
            vec![],
            vec![verified],
            vec![elsewhere],
            vec![kept.clone(), rolled_back],
        ] {
            let advice = stale_advice(&st, &rotations);
            assert_eq!(advice.redeploy, ["front", "api"], "{rotations:?}");
            assert!(advice.rollback.is_empty());
        }
    }

    #[test]
    fn what_a_rollback_restores() {
        let replace = rotation(
            1,
            RotationKind::Replace,
            Some((ARN, Some("v1"), Some("v2"))),
        );
        let redeploy = rotation(2, RotationKind::Redeploy, None);
        let unwritten = rotation(3, RotationKind::Replace, Some((ARN, Some("v1"), None)));
        let no_previous = rotation(4, RotationKind::Replace, Some((ARN, None, Some("v2"))));
        let now = info(Some("v2"), Some("v1"));
        let lone = info(Some("v9"), None);
        let elsewhere = rotation(
            5,
            RotationKind::Replace,
            Some(("other", Some("a"), Some("b"))),
        );
        let choice = |to: &str, from: &str, by: Option<u128>| RestoreChoice {
            arn: ARN.into(),
            to: to.into(),
            from: from.into(),
            rolls_back: by.map(Uuid::from_u128),
        };
        // (case, source, Ok(choice) or Err(message part))
        let table: Vec<(
            &str,
            RollbackSource<'_>,
            std::result::Result<RestoreChoice, &str>,
        )> = vec![
            (
                "a rotation that wrote",
                RollbackSource::Rotation(&replace),
                Ok(choice("v1", "v2", Some(1))),
            ),
            (
                "a redeploy",
                RollbackSource::Rotation(&redeploy),
                Err("changed no secret"),
            ),
            (
                "a rotation that never wrote",
                RollbackSource::Rotation(&unwritten),
                Err("wrote no new version"),
            ),
            (
                "a rotation without a previous version",
                RollbackSource::Rotation(&no_previous),
                Err("recorded no previous version"),
            ),
            (
                "a secret's last rotation",
                RollbackSource::Secret {
                    info: &now,
                    last: Some(&replace),
                },
                Ok(choice("v1", "v2", Some(1))),
            ),
            (
                "a secret without rotations: AWSPREVIOUS",
                RollbackSource::Secret {
                    info: &now,
                    last: None,
                },
                Ok(choice("v1", "v2", None)),
            ),
            (
                "a secret whose last rotation wrote another secret: AWSPREVIOUS",
                RollbackSource::Secret {
                    info: &now,
                    last: Some(&elsewhere),
                },
                Ok(choice("v1", "v2", None)),
            ),
            (
                "a secret without AWSPREVIOUS",
                RollbackSource::Secret {
                    info: &lone,
                    last: None,
                },
                Err("no AWSPREVIOUS"),
            ),
            (
                "a secret's last rotation lost its previous version",
                RollbackSource::Secret {
                    info: &now,
                    last: Some(&no_previous),
                },
                Err("recorded no previous version"),
            ),
        ];
        for (case, source, want) in table {
            match (rollback_restores(source, &Reach::default()), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{case}"),
                (Err(e), Err(part)) => assert!(e.message.contains(part), "{case}: {}", e.message),
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// The by-hand hint names the exact label move, and the one redeploy that can run
    /// when ECS deploys some of the consumers.
    #[test]
    fn the_rollback_by_hand_hint_moves_the_label_and_redeploys_the_others() {
        let now = info(Some("v2"), Some("v1"));
        let choice = RestoreChoice {
            arn: ARN.into(),
            to: "v1".into(),
            from: "v2".into(),
            rolls_back: None,
        };
        let move_back = "aws secretsmanager update-secret-version-stage --secret-id s --version-stage AWSCURRENT --move-to-version-id v1 --remove-from-version-id v2";
        let alone = rollback_by_hand_hint(&now, &choice, &[], &reach());
        assert!(alone.contains(move_back), "{alone}");
        assert!(!alone.contains("redeploy"), "{alone}");
        let others = ["front".to_string(), "api".to_string()];
        let with = rollback_by_hand_hint(&now, &choice, &others, &reach());
        assert!(with.contains(move_back), "{with}");
        assert!(
            with.ends_with(
                "and the others with secret-rollout redeploy --secret s --services front,api --env production"
            ),
            "{with}"
        );
    }

    #[test]
    fn the_last_write_of_a_secret() {
        let old = rotation(
            1,
            RotationKind::Replace,
            Some((ARN, Some("v1"), Some("v2"))),
        );
        let newer = rotation(
            2,
            RotationKind::Replace,
            Some((ARN, Some("v2"), Some("v3"))),
        );
        let unwritten = rotation(3, RotationKind::Replace, Some((ARN, Some("v3"), None)));
        let other = rotation(
            4,
            RotationKind::Replace,
            Some(("other", Some("a"), Some("b"))),
        );
        let all = [old, newer, unwritten, other];
        let found = last_write_of(&all, ARN).map(RotationSummary::rotation_id);
        assert_eq!(found, Some(Uuid::from_u128(2)));
        assert!(last_write_of(&all[2..], ARN).is_none());
    }

    #[test]
    fn moved_on_is_refused_unless_forced() {
        let table = [
            (Some("v2"), false, true),
            (Some("v3"), false, false),
            (Some("v3"), true, true),
            (None, false, false),
            (None, true, true),
        ];
        for (current, force, ok) in table {
            let r = check_not_moved_on(&info(current, Some("v1")), "v2", force);
            assert_eq!(r.is_ok(), ok, "{current:?} force={force}");
        }
    }

    #[test]
    fn resume_finishes_the_restore_once_one_started() {
        let written = rotation(
            1,
            RotationKind::Replace,
            Some((ARN, Some("v1"), Some("v2"))),
        );
        assert!(!resume_restores(&written));
        let mut restored = written.clone();
        restored.secrets[0].restored_version_id = Some("v1".into());
        assert!(resume_restores(&restored));
        let mut redeploying = written.clone();
        redeploying.services[0].restore_deployment = Some("ecs-svc/2".into());
        assert!(resume_restores(&redeploying));
        let rollback = rotation(2, RotationKind::Rollback, Some((ARN, Some("v1"), None)));
        assert!(resume_restores(&rollback));
    }

    #[test]
    fn resume_on_failure_choice() {
        use OnFailure::{Keep, Rollback};
        let table = [
            (None, None, Rollback),
            (None, Some(Keep), Keep),
            (Some(Rollback), Some(Keep), Rollback),
            (Some(Keep), None, Keep),
        ];
        for (given, recorded, want) in table {
            assert_eq!(resume_on_failure(given, recorded), want);
        }
    }

    fn svc(name: &str, controller: Controller) -> ServiceInfo {
        ServiceInfo {
            cluster: "c".into(),
            name: name.into(),
            controller,
            desired: 1,
            ..ServiceInfo::default()
        }
    }

    #[test]
    fn redeploy_refuses_what_ecs_does_not_deploy() {
        use Controller::{CodeDeploy, Ecs, External};
        // (services asked for, refused?, words in the message, the hint)
        type Row<'a> = (&'a [(&'a str, Controller)], bool, &'a str, &'a str);
        let table: &[Row] = &[
            (&[("api", Ecs), ("worker", Ecs)], false, "", ""),
            (
                &[("svc-cd", CodeDeploy)],
                true,
                "service svc-cd in cluster c is deployed by CODE_DEPLOY",
                "deploy svc-cd (CODE_DEPLOY) with CodeDeploy: nothing was changed",
            ),
            (
                &[("api", Ecs), ("svc-cd", CodeDeploy), ("worker", Ecs)],
                true,
                "svc-cd in cluster c",
                "deploy svc-cd (CODE_DEPLOY) with CodeDeploy; redeploy the others with --services api,worker",
            ),
            (
                &[("svc-cd", CodeDeploy), ("svc-ext", External), ("api", Ecs)],
                true,
                "svc-cd (CODE_DEPLOY), svc-ext (EXTERNAL) are not deployed by ECS",
                "deploy svc-cd (CODE_DEPLOY), svc-ext (EXTERNAL) with their own controller; redeploy the others with --services api",
            ),
        ];
        for (services, refused, message, hint) in table {
            let infos: Vec<ServiceInfo> = services.iter().map(|(n, c)| svc(n, *c)).collect();
            match redeploy_refusal(&infos) {
                None => assert!(!refused, "{services:?}"),
                Some(e) => {
                    assert!(refused, "{services:?}");
                    assert_eq!(
                        e.kind.exit_code(),
                        crate::error::exit::REFUSED,
                        "{services:?}"
                    );
                    assert!(e.message.contains(message), "{}", e.message);
                    assert_eq!(e.hint.as_deref(), Some(*hint));
                }
            }
        }
    }

    /// What a rotation counts as its own: the journal's deployments (rollout and
    /// restore); on resume also those from the write on (else from its start, on the
    /// tool's clock); on rollback those from the undone version's creation on.
    #[test]
    fn the_deployments_a_rotation_takes_for_its_own() {
        let mut r = rotation(
            1,
            RotationKind::Replace,
            Some((ARN, Some("v1"), Some("v2"))),
        );
        r.started.started_at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(100);
        r.services[0].rollout_deployment = Some("ecs-svc/1".into());
        r.services[0].restore_deployment = Some("ecs-svc/3".into());
        let ids: BTreeSet<String> = ["ecs-svc/1", "ecs-svc/3"].map(String::from).into();
        let journaled = Ours {
            ids: ids.clone(),
            after: None,
        };
        assert_eq!(journaled_deployments(&r), journaled);
        let with_after = |after| Ours {
            ids: ids.clone(),
            after: Some(after),
        };
        assert_eq!(resumed_deployments(&r, Some(50.0)), with_after(50.0));
        assert_eq!(resumed_deployments(&r, None), with_after(100.0));
        assert_eq!(undone_deployments(&r, Some(70.0)), with_after(70.0));
        assert_eq!(undone_deployments(&r, None), journaled);
    }

    #[test]
    fn a_rollback_redeploys_what_the_rotation_redeployed() {
        let mut r = rotation(
            1,
            RotationKind::Replace,
            Some((ARN, Some("v1"), Some("v2"))),
        );
        // Planned and redeployed; redeployed only in a phase (a resume adopted it).
        r.services[0].rollout_deployment = Some("ecs-svc/1".into());
        r.services.push(ServiceSummary {
            cluster: "c2".into(),
            name: "worker".into(),
            planned: false,
            rollout_deployment: Some("ecs-svc/2".into()),
            restore_deployment: None,
        });
        let got = rollback_services(&r);
        let want = vec![
            ServiceRef {
                cluster: "c".into(),
                service: "api".into(),
            },
            ServiceRef {
                cluster: "c2".into(),
                service: "worker".into(),
            },
        ];
        assert_eq!(got, want);
        // A rotation that redeployed nothing redeploys nothing on the way back.
        r.services.clear();
        assert!(rollback_services(&r).is_empty());
    }

    fn dep(id: &str, status: &str, state: &str, created: f64) -> DeploymentObs {
        DeploymentObs {
            id: id.into(),
            status: status.into(),
            rollout_state: state.into(),
            created_at: created,
            updated_at: created + 5.0,
            ..DeploymentObs::default()
        }
    }

    fn sd(status: &str) -> ServiceDeploymentObs {
        ServiceDeploymentObs {
            arn: "arn:aws:ecs:eu-west-1:1:service-deployment/c/api/sd1".into(),
            status: status.into(),
            started_at: 900.0,
        }
    }

    #[test]
    fn busy_consumers_are_those_mid_deployment_that_is_not_ours() {
        let steady = || vec![dep("ecs-svc/1", "PRIMARY", "COMPLETED", 100.0)];
        let replacing = || {
            vec![
                dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 900.0),
                dep("ecs-svc/1", "ACTIVE", "COMPLETED", 100.0),
            ]
        };
        let ids = |ids: &[&str]| Ours {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            after: None,
        };
        let none = Ours::default();
        // (case, staged, deployments, service deployments, ours, busy: (deployment, state, since))
        type Row = (
            &'static str,
            bool,
            Vec<DeploymentObs>,
            Vec<ServiceDeploymentObs>,
            Ours,
            Option<(&'static str, &'static str, f64)>,
        );
        let rows: Vec<Row> = vec![
            (
                "one completed PRIMARY",
                false,
                steady(),
                vec![],
                none.clone(),
                None,
            ),
            (
                "no deployments at all",
                false,
                vec![],
                vec![],
                none.clone(),
                None,
            ),
            (
                "a PRIMARY in progress alone (first rollout, or its old tasks gone)",
                false,
                vec![dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 900.0)],
                vec![],
                none.clone(),
                Some(("ecs-svc/2", "IN_PROGRESS", 900.0)),
            ),
            (
                "two deployments: someone is replacing the old one",
                false,
                replacing(),
                vec![],
                none.clone(),
                Some(("ecs-svc/2", "2 deployments", 900.0)),
            ),
            (
                "two deployments, the new one already COMPLETED, old tasks draining",
                false,
                vec![
                    dep("ecs-svc/2", "PRIMARY", "COMPLETED", 900.0),
                    dep("ecs-svc/1", "ACTIVE", "COMPLETED", 100.0),
                ],
                vec![],
                none.clone(),
                Some(("ecs-svc/2", "2 deployments", 900.0)),
            ),
            (
                "a circuit-breaker rollback of someone's failed deployment",
                false,
                vec![
                    dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 950.0),
                    dep("ecs-svc/2", "ACTIVE", "FAILED", 900.0),
                ],
                vec![],
                none.clone(),
                Some(("ecs-svc/1", "2 deployments", 950.0)),
            ),
            (
                "our own deployment (the journal names it) replacing the old one",
                false,
                replacing(),
                vec![],
                ids(&["ecs-svc/2"]),
                None,
            ),
            (
                "ours is the old one; someone else's PRIMARY replaces it",
                false,
                replacing(),
                vec![],
                ids(&["ecs-svc/1"]),
                Some(("ecs-svc/2", "2 deployments", 900.0)),
            ),
            (
                "resume: a PRIMARY created after our write is ours (adopted)",
                false,
                replacing(),
                vec![],
                Ours {
                    ids: BTreeSet::new(),
                    after: Some(800.0),
                },
                None,
            ),
            (
                "resume: a PRIMARY created before our write is not ours",
                false,
                replacing(),
                vec![],
                Ours {
                    ids: BTreeSet::new(),
                    after: Some(950.0),
                },
                Some(("ecs-svc/2", "2 deployments", 900.0)),
            ),
            (
                "blue/green baking: PRIMARY completed, a service deployment in progress",
                true,
                steady(),
                vec![sd("IN_PROGRESS")],
                none.clone(),
                Some((
                    "arn:aws:ecs:eu-west-1:1:service-deployment/c/api/sd1",
                    "IN_PROGRESS",
                    900.0,
                )),
            ),
            (
                "canary being rolled back",
                true,
                steady(),
                vec![sd("ROLLBACK_IN_PROGRESS")],
                none.clone(),
                Some((
                    "arn:aws:ecs:eu-west-1:1:service-deployment/c/api/sd1",
                    "ROLLBACK_IN_PROGRESS",
                    900.0,
                )),
            ),
            (
                "linear: its last service deployment finished",
                true,
                steady(),
                vec![sd("SUCCESSFUL"), sd("STOPPED")],
                none.clone(),
                None,
            ),
            (
                "a rolling service's service deployments are not asked",
                false,
                steady(),
                vec![sd("IN_PROGRESS")],
                none.clone(),
                None,
            ),
            (
                "blue/green under way, but ours (resume)",
                true,
                vec![dep("ecs-svc/3", "PRIMARY", "IN_PROGRESS", 990.0)],
                vec![sd("IN_PROGRESS")],
                ids(&["ecs-svc/3"]),
                None,
            ),
        ];
        for (case, staged, deployments, service_deployments, ours, want) in rows {
            let a = Activity {
                service: ServiceRef {
                    cluster: "c".into(),
                    service: "api".into(),
                },
                staged,
                deployments,
                service_deployments,
            };
            let got = busy_consumers(std::slice::from_ref(&a), &ours);
            match want {
                None => assert!(got.is_empty(), "{case}: {got:?}"),
                Some((deployment, state, since)) => {
                    assert_eq!(got.len(), 1, "{case}: {got:?}");
                    let b = &got[0];
                    assert_eq!(
                        (b.cluster.as_str(), b.service.as_str()),
                        ("c", "api"),
                        "{case}"
                    );
                    assert_eq!(b.deployment, deployment, "{case}");
                    assert_eq!(b.state, state, "{case}");
                    assert_eq!(b.since, since, "{case}");
                }
            }
        }
    }

    #[test]
    fn the_busy_refusal_names_service_deployment_and_since_when() {
        assert!(busy_refusal(&[], None).is_none());
        let b = Busy {
            cluster: "production".into(),
            service: "api".into(),
            deployment: "ecs-svc/2".into(),
            state: "IN_PROGRESS".into(),
            // 2026-11-30T12:00:00Z and twenty seconds later.
            since: 1_796_040_000.0,
            updated: 1_796_040_020.5,
        };
        let e = busy_refusal(std::slice::from_ref(&b), None).unwrap();
        assert_eq!(e.kind, crate::error::Kind::Refused);
        assert_eq!(
            e.message,
            "service api is in the middle of a deployment secret-rollout did not start: api (cluster production): deployment ecs-svc/2 IN_PROGRESS since 2026-11-30T12:00:00Z, updated 2026-11-30T12:00:20Z"
        );
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("--wait") && hint.contains("--allow-concurrent-deploy"),
            "{hint}"
        );
        let two = [
            b.clone(),
            Busy {
                service: "front".into(),
                updated: 0.0,
                ..b
            },
        ];
        let e = busy_refusal(&two, Some(std::time::Duration::from_secs(600))).unwrap();
        assert!(
            e.message
                .starts_with("still deploying after waiting 600s: 2 consumers"),
            "{}",
            e.message
        );
        // An unknown update time (0) is left out, not shown as 1970.
        assert!(e.message.ends_with("; front (cluster production): deployment ecs-svc/2 IN_PROGRESS since 2026-11-30T12:00:00Z"), "{}", e.message);
        assert!(!e.message.contains('\n'));
        assert!(e.hint.unwrap().contains("--timeout"));
    }
}
