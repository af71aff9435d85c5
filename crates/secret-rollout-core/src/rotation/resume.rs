//! `resume`: find the rotation to finish, and finish it from its journal.

use std::path::Path;

use crate::clients::Clients;
use crate::error::{Error, Result};
use crate::journal::{self, Outcome, RotationKind, RotationSummary, Status};
use crate::progress::{Event, Reporter};
use crate::secret;
use crate::value::{self, SecretValue};

use super::decide;
use super::replace::{current_value, merged};
use super::report::outcome_word;
use super::run::{lock_all, Run};
use super::{Operator, Report, Settings};
use crate::journal::OnFailure;

/// The rotation whose id starts with `id`.
pub fn find_rotation(state_dir: &Path, id: &str) -> Result<RotationSummary> {
    let mut matches: Vec<RotationSummary> = journal::list(state_dir)?
        .into_iter()
        .filter(|r| r.rotation_id().to_string().starts_with(id))
        .collect();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(
            Error::bad_input(format!("no rotation {id} in {}", state_dir.display()))
                .hint("list rotations with `secret-rollout history`"),
        ),
        n => Err(Error::bad_input(format!("{n} rotations start with {id}"))
            .hint("give more of the rotation id")),
    }
}

/// The rotation `resume` finishes: the one `id` names, or the only unfinished one.
/// Refuses one that already finished for good.
pub fn find_resumable(state_dir: &Path, id: Option<&str>) -> Result<RotationSummary> {
    let summary = match id {
        Some(id) => find_rotation(state_dir, id)?,
        None => {
            let mut open: Vec<RotationSummary> = journal::list(state_dir)?
                .into_iter()
                .filter(|r| r.is_resumable())
                .collect();
            match open.len() {
                0 => {
                    return Err(
                        Error::bad_input("there is no unfinished rotation to resume")
                            .hint("see `secret-rollout history`; for a team state in S3, pass --env NAME to see rotations started on other machines"),
                    )
                }
                1 => open.remove(0),
                n => {
                    let ids: Vec<String> =
                        open.iter().map(|r| r.rotation_id().to_string()).collect();
                    return Err(Error::bad_input(format!(
                        "{n} unfinished rotations: {}",
                        ids.join(", ")
                    ))
                    .hint("name the one to resume: secret-rollout resume ID"));
                }
            }
        }
    };
    if let Status::Finished(outcome) = summary.status {
        if !outcome.is_resumable() {
            return Err(Error::refused(format!("rotation {} already finished ({})", summary.rotation_id(), outcome_word(outcome)))
                .hint("start a new one with secret-rollout replace, or undo it with secret-rollout rollback ID"));
        }
    }
    Ok(summary)
}

/// What `resume` is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct ResumeRequest<'a> {
    /// The rotation (from [`find_resumable`]).
    pub rotation: &'a RotationSummary,
    /// What to do on failure (`None`: what the interrupted run was told).
    pub on_failure: Option<OnFailure>,
}

/// `resume`: finishes an interrupted rotation from its journal. The operator is asked for
/// a value only when a secret's write had not happened yet.
pub async fn resume(
    clients: &Clients,
    settings: &Settings,
    reporter: &dyn Reporter,
    request: ResumeRequest<'_>,
    operator: &dyn Operator,
) -> Result<Report> {
    let summary = request.rotation;
    let settings = Settings {
        on_failure: decide::resume_on_failure(request.on_failure, summary.started.on_failure),
        ..settings.clone()
    };
    let arns: Vec<String> = summary.secrets.iter().map(|s| s.arn.clone()).collect();
    let locks = lock_all(
        &settings,
        &summary.started.environment,
        &arns,
        Some(summary.rotation_id()),
        summary.rotation_id(),
    )?;
    let mut run = Run::resume(clients, &settings, reporter, summary, locks)?;
    reporter.report(&Event::Note {
        text: format!("resuming rotation {}", summary.rotation_id()),
    });
    if decide::resume_restores(summary) {
        let on_success = if summary.started.kind == RotationKind::Rollback {
            Outcome::Verified
        } else {
            Outcome::FailedRestored
        };
        return run.restore_and_finish(on_success, None, None).await;
    }
    let mut values = Vec::with_capacity(run.secrets.len());
    for (i, s) in run.secrets.iter().enumerate() {
        let Some(token) = s.token.as_deref().filter(|_| !s.written) else {
            values.push(None);
            continue;
        };
        // Did the write happen before the process died? The token is the version id.
        let exists = secret::versions(&clients.sm, &s.arn)
            .await?
            .iter()
            .any(|v| v.id == token);
        values.push(if exists {
            None
        } else {
            Some(value_again(clients, summary, i, operator).await?)
        });
    }
    run.rotate(values).await
}

/// The value of the `i`-th secret, asked again (it is never stored), with its JSON key
/// merged again into the still-current value.
async fn value_again(
    clients: &Clients,
    summary: &RotationSummary,
    i: usize,
    operator: &dyn Operator,
) -> Result<SecretValue> {
    let s = &summary.secrets[i];
    let new = async {
        let given = operator.new_value(&s.name, i, summary.secrets.len())?;
        let current = current_value(clients, &s.arn, s.previous_version_id.as_deref()).await?;
        let new = merged(&s.name, current.as_ref(), s.json_key.as_deref(), given)?;
        value::validate(&new, current.as_ref())?;
        Ok::<_, Error>(new)
    };
    // Say why the value is needed again, and how to give it.
    new.await.map_err(|e| Error {
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
    })
}
