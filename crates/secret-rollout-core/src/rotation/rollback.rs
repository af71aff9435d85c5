//! `rollback`: put the previous version of a rotation (or of a secret) back, redeploy its
//! consumers and prove it.

use std::path::Path;

use crate::config::Target;
use crate::error::{Error, Result};
use crate::journal::{self, RotationKind, RotationSummary};
use crate::plan;
use crate::rollout::ServiceRef;
use crate::secret::{self, SecretInfo};

use super::decide::{self, RestoreChoice, RollbackSource};
use super::replace;
use super::resume::find_rotation;
use super::run::{lock_all, start_record, Run, SecretState};
use super::{confirmed, Context, Operator, Report};

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
pub fn rollback_of(state_dir: &Path, what: &str) -> Result<RollbackOf> {
    let by_id = what.len() >= 8 && what.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if by_id {
        Ok(RollbackOf::Rotation(Box::new(find_rotation(
            state_dir, what,
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
    let sm = &ctx.clients.sm;
    let rotations;
    let (choice, info, undone) = match &request.of {
        RollbackOf::Rotation(r) => {
            let choice = decide::rollback_restores(RollbackSource::Rotation(r))?;
            let info = secret::describe(sm, &choice.arn).await?;
            (choice, info, Some(&**r))
        }
        RollbackOf::Secret(name) => {
            let info = secret::describe(sm, &target.secret_id(name)).await?;
            rotations = journal::list(&ctx.settings.state_dir)?;
            let last = decide::last_write_of(&rotations, &info.arn);
            let choice = decide::rollback_restores(RollbackSource::Secret { info: &info, last })?;
            let undone = last.filter(|r| Some(r.rotation_id()) == choice.rolls_back);
            (choice, info, undone)
        }
    };
    decide::check_not_moved_on(&info, &choice.from, request.force)?;
    // Undoing a rotation redeploys what it redeployed, as its journal says: the consumers
    // it left out never got its value. Without a rotation, every consumer of the secret.
    let redeploy: Vec<ServiceRef> = match undone {
        Some(r) => decide::rollback_services(r),
        None => {
            let (consumers, redeploy) =
                plan::consumers_of(ctx.clients, target, std::slice::from_ref(&info), None).await?;
            if let Some(refusal) = consumers.refusal() {
                // `rollback` has no --services: name what can run, as it can be typed.
                let others: Vec<String> = redeploy.iter().map(|(r, _)| r.service.clone()).collect();
                return Err(Error {
                    hint: Some(decide::rollback_by_hand_hint(&info, &choice, &others)),
                    ..refusal
                });
            }
            redeploy.into_iter().map(|(r, _)| r).collect()
        }
    };
    // The undone rotation's own deployments (one killed mid-rollout, say) are not
    // someone else's.
    let ours = undone
        .map(decide::journaled_deployments)
        .unwrap_or_default();
    replace::settle_first(
        ctx.clients,
        ctx.settings,
        ctx.reporter,
        &redeploy,
        &ours,
        None,
    )
    .await?;
    confirmed(
        operator,
        &format!(
            "move AWSCURRENT of {} back to {} and redeploy {} service(s){}?",
            info.name,
            choice.to,
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
    restore_version(ctx, target, &info, &choice, redeploy, request.force).await
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
            match rollback_of(dir.path(), secret).unwrap() {
                RollbackOf::Secret(s) => assert_eq!(s, secret),
                other => panic!("{secret}: {other:?}"),
            }
        }
        // Eight or more hex digits and dashes name a rotation, which must be in the journal.
        for id in ["0123abcd", "0123abcd-0000-0000-0000-000000000000"] {
            let err = rollback_of(dir.path(), id).unwrap_err();
            assert!(err.message.contains("no rotation"), "{id}: {}", err.message);
        }
    }
}
