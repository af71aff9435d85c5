//! `rollback`: put the previous version of a rotation (or of a secret) back, redeploy its
//! consumers and prove it.

use std::path::Path;

use crate::config::Target;
use crate::error::{Error, Reach, Result};
use crate::journal::{self, RotationKind, RotationSummary};
use crate::plan;
use crate::rollout::ServiceRef;
use crate::secret::SecretInfo;

use super::decide::{self, RestoreChoice, RollbackSource};
use super::replace;
use super::report::SecretReport;
use super::resume::find_rotation;
use super::run::{close_rolled_back, lock_all, start_record, Run, SecretState};
use super::{confirmed, Context, Operator, Report};
use crate::status;

use crate::journal::Outcome;

/// What a rollback undoes.
#[derive(Debug, Clone)]
pub enum RollbackOf {
    /// A rotation from the journal.
    Rotation(Box<RotationSummary>),
    /// A secret by name or ARN: its last rotation, or else its AWSPREVIOUS.
    Secret(String),
}

/// Reads `what` as a rotation id (eight or more hex digits and dashes: a prefix of one in
/// the journal) or else as a secret.
pub fn rollback_of(state_dir: &Path, what: &str, reach: &Reach) -> Result<RollbackOf> {
    let by_id = what.len() >= 8 && what.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if by_id {
        Ok(RollbackOf::Rotation(Box::new(find_rotation(
            state_dir, what, reach,
        )?)))
    } else {
        Ok(RollbackOf::Secret(what.to_string()))
    }
}

/// What `rollback` is asked to do.
#[derive(Debug, Clone)]
pub struct RollbackRequest {
    /// What to undo.
    pub of: RollbackOf,
    /// Restore even though AWSCURRENT has moved on since that rotation.
    pub force: bool,
}

/// `rollback`: chooses the version to restore, refuses over a later change unless forced,
/// asks, then moves AWSCURRENT back, redeploys the secret's consumers and verifies.
pub async fn rollback(
    ctx: &Context<'_>,
    target: &Target,
    request: RollbackRequest,
    operator: &dyn Operator,
) -> Result<Report> {
    let rotations;
    let (choice, info, undone) = match &request.of {
        RollbackOf::Rotation(r) => {
            let choice =
                decide::rollback_restores(RollbackSource::Rotation(r), &ctx.settings.reach)?;
            let info = crate::store::describe(ctx.clients, &choice.arn).await?;
            (choice, info, Some(&**r))
        }
        RollbackOf::Secret(name) => {
            let info = crate::store::describe(ctx.clients, &target.secret_id(name)).await?;
            rotations = journal::list(&ctx.settings.state_dir)?;
            let last = decide::last_write_of(&rotations, &info.arn);
            let choice = decide::rollback_restores(
                RollbackSource::Secret { info: &info, last },
                &ctx.settings.reach,
            )?;
            let undone = last.filter(|r| Some(r.rotation_id()) == choice.rolls_back);
            (choice, info, undone)
        }
    };
    // Undoing a rotation redeploys what it redeployed, as its journal says: the consumers
    // it left out never got its value. Without a rotation, every consumer of the secret.
    if let (Some(r), true) = (undone, info.current.as_deref() == Some(choice.to.as_str())) {
        // Done already (by an earlier rollback, or by hand): nothing to move, nothing to
        // redeploy unless a task is not proven on it, which is said with its command.
        let services = decide::rollback_services(r);
        return already_current(ctx, target, &info, &choice, &services).await;
    }
    decide::check_not_moved_on(&info, &choice.from, request.force)?;
    let redeploy: Vec<ServiceRef> = match undone {
        Some(r) => decide::rollback_services(r),
        None => {
            let (consumers, redeploy) =
                plan::consumers_of(ctx.clients, target, std::slice::from_ref(&info), None).await?;
            if let Some(refusal) = consumers.refusal() {
                // `rollback` has no --services: name what can run, as it can be typed.
                let others: Vec<String> = redeploy.iter().map(|(r, _)| r.service.clone()).collect();
                return Err(Error {
                    hint: Some(decide::rollback_by_hand_hint(
                        &info,
                        &choice,
                        &others,
                        &ctx.settings.reach,
                    )),
                    ..refusal
                });
            }
            redeploy.into_iter().map(|(r, _)| r).collect()
        }
    };
    // The undone rotation's own deployments (one killed mid-rollout, say), and those
    // launched onto its version since (a kept failure's circuit-breaker rollbacks), are
    // not someone else's.
    let ours = match undone {
        Some(r) => {
            let written =
                crate::store::created(ctx.clients, &info.arn, &info.name, &choice.from).await?;
            decide::undone_deployments(r, written)
        }
        None => Default::default(),
    };
    replace::settle_first(
        ctx.clients,
        ctx.settings,
        ctx.reporter,
        &redeploy,
        &ours,
        None,
    )
    .await?;
    let images = crate::images::guard(
        ctx.clients,
        &redeploy,
        ctx.settings.allow_image_change,
        ctx.reporter,
    )
    .await?;
    confirmed(
        operator,
        &format!(
            "{} and redeploy {} service(s){}?",
            if crate::store::is_parameter(&info.arn) {
                format!(
                    "write the value of version {} of {} again as a new version",
                    choice.to, info.name
                )
            } else {
                format!("move AWSCURRENT of {} back to {}", info.name, choice.to)
            },
            redeploy.len(),
            // The services by name: a yes is given knowing what restarts.
            if redeploy.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = redeploy.iter().map(|r| r.service.as_str()).collect();
                format!(" ({})", names.join(", "))
            }
        ),
        None,
    )?;
    let mut report = restore_version(ctx, target, &info, &choice, redeploy, request.force).await?;
    report.image_changed = images.changed_list();
    Ok(report)
}

/// A rollback that finds the version it would restore already AWSCURRENT: writes nothing
/// to AWS and deploys nothing. It checks, by the rule `status` uses (a task created after
/// the secret last changed holds the current version), that every running task of the
/// services the undone rotation redeployed holds it: then it is verified (exit 0);
/// otherwise it says which are not proven and that `redeploy` is what proves them (exit 6).
/// Its journal records exactly that: no version written or moved, no service redeployed.
async fn already_current(
    ctx: &Context<'_>,
    target: &Target,
    info: &SecretInfo,
    choice: &RestoreChoice,
    services: &[ServiceRef],
) -> Result<Report> {
    let began = std::time::Instant::now();
    let locks = lock_all(
        ctx.settings,
        &target.label(),
        std::slice::from_ref(&info.arn),
        choice.rolls_back,
        ctx.rotation_id,
    )?;
    let st = status::gather(
        ctx.clients,
        target,
        std::slice::from_ref(&info.arn),
        Some(&ctx.settings.state_dir),
    )
    .await?;
    let verdict = decide::current_held(&st, &info.arn, services);
    let short = |v: &str| v.get(..8).unwrap_or(v).to_string();
    let names: Vec<&str> = services.iter().map(|s| s.service.as_str()).collect();
    let head = format!(
        "AWSCURRENT of {} is already {}, the version {} restores: nothing was moved or redeployed",
        info.name,
        short(&choice.to),
        choice
            .rolls_back
            .map(|id| format!("rollback of rotation {id}"))
            .unwrap_or_else(|| "this rollback".into())
    );
    let (outcome, message, next_steps) = if verdict.proven() {
        let message = if services.is_empty() {
            format!("{head}; the rotation redeployed no service")
        } else {
            format!(
                "{head}; every running task of {} holds it ({} task(s))",
                names.join(", "),
                verdict.holding
            )
        };
        (Outcome::Verified, message, Vec::new())
    } else {
        let open: Vec<&str> = verdict.open.iter().map(|s| s.service.as_str()).collect();
        let message = format!(
            "{head}; but not every running task is proven to hold it: {}",
            verdict.why.join("; ")
        );
        let redeploy = ctx.settings.reach.command(&format!(
            "redeploy --secret {} --services {}",
            info.name,
            open.join(",")
        ));
        (Outcome::VerifyFailed, message, vec![redeploy])
    };
    let secrets = vec![journal::StartedSecret {
        arn: info.arn.clone(),
        name: info.name.clone(),
        previous_version_id: Some(choice.to.clone()),
        request_token: None,
        json_key: None,
    }];
    let started = journal::Started {
        rolls_back: choice.rolls_back,
        ..start_record(ctx, RotationKind::Rollback, target, secrets, &[])
    };
    let mut record = journal::Journal::create(&ctx.settings.state_dir, &started)?;
    record.mirror_to(&ctx.settings.state, &ctx.settings.state_dir, &locks)?;
    if outcome == Outcome::Verified {
        // What it undoes is done: an undone rotation left open (timed out, interrupted)
        // is over, or it would block the next `replace` of the secret.
        close_rolled_back(ctx.settings, &locks, choice.rolls_back, ctx.rotation_id)?;
    }
    record.append(&journal::Record::Finished {
        outcome,
        at: time::OffsetDateTime::now_utc(),
        message: Some(message.clone()),
    })?;
    Ok(Report {
        rotation_id: ctx.rotation_id,
        kind: RotationKind::Rollback,
        environment: target.label(),
        outcome,
        message: Some(message),
        secrets: vec![SecretReport {
            name: info.name.clone(),
            arn: info.arn.clone(),
            previous_version: Some(choice.to.clone()),
            new_version: None,
            restored: false,
        }],
        rollout: None,
        restore: None,
        nothing_to_prove: Vec::new(),
        image_changed: Vec::new(),
        restore_image_changed: Vec::new(),
        manual_restore: Vec::new(),
        next_steps,
        aws_calls: ctx.clients.calls.snapshot(),
        elapsed_ms: began.elapsed().as_millis(),
    })
}

/// Moves AWSCURRENT of `info` as `choice` says, redeploys `services` and verifies.
async fn restore_version(
    ctx: &Context<'_>,
    target: &Target,
    info: &SecretInfo,
    choice: &RestoreChoice,
    services: Vec<ServiceRef>,
    force: bool,
) -> Result<Report> {
    if choice.arn != info.arn {
        return Err(Error::local(format!(
            "the restore names {} but the secret described is {}",
            choice.arn, info.arn
        ))
        .hint("this is a bug in secret-rollout: please report it with the command you ran"));
    }
    let locks = lock_all(
        ctx.settings,
        &target.label(),
        std::slice::from_ref(&info.arn),
        choice.rolls_back,
        ctx.rotation_id,
    )?;
    let secrets = vec![journal::StartedSecret {
        arn: info.arn.clone(),
        name: info.name.clone(),
        previous_version_id: Some(choice.to.clone()),
        request_token: None,
        json_key: None,
    }];
    let started = journal::Started {
        rolls_back: choice.rolls_back,
        ..start_record(ctx, RotationKind::Rollback, target, secrets, &services)
    };
    let state = SecretState {
        arn: info.arn.clone(),
        name: info.name.clone(),
        previous: Some(choice.to.clone()),
        token: Some(choice.from.clone()),
        written: true,
        restored: false,
    };
    let mut run = Run::start(ctx, started, vec![state], services, locks)?;
    run.force_restore = force;
    run.restore_and_finish(Outcome::Verified, None, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_names_a_rotation_or_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        for secret in [
            "production/api_rds_password",
            "short",
            "deadbeef/x",
            "notahexname",
        ] {
            match rollback_of(dir.path(), secret, &Reach::default()).unwrap() {
                RollbackOf::Secret(s) => assert_eq!(s, secret),
                other => panic!("{secret}: {other:?}"),
            }
        }
        // Eight or more hex digits and dashes name a rotation, which must be in the journal.
        for id in ["0123abcd", "0123abcd-0000-0000-0000-000000000000"] {
            let err = rollback_of(dir.path(), id, &Reach::default()).unwrap_err();
            assert!(err.message.contains("no rotation"), "{id}: {}", err.message);
        }
    }
}
