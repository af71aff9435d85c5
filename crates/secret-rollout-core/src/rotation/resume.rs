//! `resume`: find the rotation to finish, and finish it from its journal.

use std::path::Path;

use crate::clients::Clients;
use crate::error::{Error, Reach, Result};
use crate::journal::{self, Outcome, RotationKind, RotationSummary, Status};
use crate::progress::{Event, Reporter};
use crate::rollout::ServiceRef;
use crate::secret;
use crate::value::{self, SecretValue};

use super::decide;
use super::replace::{current_value, merged, settle_first};
use super::report::outcome_word;
use super::run::{lock_all, Run};
use super::{Operator, Report, Settings};
use crate::journal::OnFailure;

/// The rotation whose id starts with `id`. `reach`: the options the command was given,
/// carried by the commands its refusals suggest.
pub fn find_rotation(state_dir: &Path, id: &str, reach: &Reach) -> Result<RotationSummary> {
    let mut matches: Vec<RotationSummary> = journal::list(state_dir)?
        .into_iter()
        .filter(|r| r.rotation_id().to_string().starts_with(id))
        .collect();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(
            Error::bad_input(format!("no rotation {id} in {}", state_dir.display())).hint(format!(
                "list rotations with `{}`",
                reach.command("history")
            )),
        ),
        n => Err(Error::bad_input(format!("{n} rotations start with {id}"))
            .hint("give more of the rotation id")),
    }
}

/// The rotation `resume` finishes: the one `id` names, or the only unfinished one.
/// Refuses one that already finished for good.
pub fn find_resumable(
    state_dir: &Path,
    id: Option<&str>,
    reach: &Reach,
) -> Result<RotationSummary> {
    let summary = match id {
        Some(id) => find_rotation(state_dir, id, reach)?,
        None => {
            let mut open: Vec<RotationSummary> = journal::list(state_dir)?
                .into_iter()
                .filter(|r| r.is_resumable())
                .collect();
            match open.len() {
                0 => {
                    return Err(
                        Error::bad_input("there is no unfinished rotation to resume")
                            .hint(format!("see `{}`; for a team state in S3, pass --env NAME to see rotations started on other machines", reach.command("history"))),
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
                    .hint(format!("name the one to resume: `{}`", reach.command("resume ID"))));
                }
            }
        }
    };
    if let Status::Finished(outcome) = summary.status {
        if !outcome.is_resumable() {
            return Err(Error::refused(format!(
                "rotation {} already finished ({})",
                summary.rotation_id(),
                outcome_word(outcome)
            ))
            .hint(format!(
                "start a new one with `{}`, or undo it with `{}`",
                reach.command("replace SECRET"),
                reach.command(&format!("rollback {}", summary.rotation_id()))
            )));
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
    /// `--written VERSION`: the operator names the version a Parameter Store write the
    /// history cannot place made (see [`operator_named`]).
    pub written: Option<u64>,
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
    // Checked before anything is written or redeployed: a wrong --written is bad input.
    let named = match request.written {
        Some(v) => Some(operator_named(clients, &settings, summary, v).await?),
        None => None,
    };
    // Someone else's deployment on one of its services: the same guard as before a first
    // write; the rotation's own deployments (journaled, or adoptable) are not someone else's.
    let services: Vec<ServiceRef> = summary
        .services
        .iter()
        .map(|s| ServiceRef {
            cluster: s.cluster.clone(),
            service: s.name.clone(),
        })
        .collect();
    let mut written = None;
    for s in &summary.secrets {
        let Some(id) = s.written_version_id.as_deref() else {
            continue;
        };
        let created = crate::store::created(clients, &s.arn, &s.name, id).await?;
        written = match (written, created) {
            (Some(a), Some(b)) => Some(f64::min(a, b)),
            (a, b) => a.or(b),
        };
    }
    settle_first(
        clients,
        &settings,
        reporter,
        &services,
        &decide::resumed_deployments(summary, written),
        None,
    )
    .await?;
    // A restore goes on whatever the tags point to (refusing it would be worse); going
    // forward refuses a moved tag unless --allow-image-change. Either report names them.
    let restores = decide::resume_restores(summary);
    let images = if restores {
        let checks = crate::images::check_services(clients, &services).await?;
        checks.warn(reporter, crate::images::RESTORING);
        checks
    } else {
        crate::images::guard(clients, &services, settings.allow_image_change, reporter).await?
    };
    let mut run = Run::resume(clients, &settings, reporter, summary, locks)?;
    reporter.report(&Event::Note {
        text: format!("resuming rotation {}", summary.rotation_id()),
    });
    if restores {
        let on_success = if summary.started.kind == RotationKind::Rollback {
            Outcome::Verified
        } else {
            Outcome::FailedRestored
        };
        let mut report = run.restore_and_finish(on_success, None, None).await?;
        report.image_changed = images.changed_list();
        return Ok(report);
    }
    if let Some((i, v)) = named {
        run.operator_written(i, v)?;
    }
    let mut values = Vec::with_capacity(run.secrets.len());
    for (i, s) in run.secrets.iter().enumerate() {
        if crate::store::is_parameter(&s.arn) {
            // A parameter: its journaled intent and history say whether the write happened
            // (the run finds it again); the value is asked for only when it surely did not.
            let needed = summary.started.kind == RotationKind::Replace
                && !s.written
                && !parameter_written(clients, summary, i).await?;
            values.push(if needed {
                Some(value_again(clients, &settings, summary, i, operator).await?)
            } else {
                None
            });
            continue;
        }
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
            Some(value_again(clients, &settings, summary, i, operator).await?)
        });
    }
    let mut report = run.rotate(values).await?;
    report.image_changed = images.changed_list();
    Ok(report)
}

/// `resume --written VERSION`: which parameter's write `version` closes. Only a rotation
/// stuck where `resume` stops with exit 6 takes it: a replace still in its rollout, with a
/// Parameter Store write journaled as an intent that the history cannot place (two candidate
/// versions, a delete and re-create, a history no longer reaching back). `version` must be
/// in the history and newer than the version the intent overwrote: anything else could not
/// be this rotation's write. Whether it holds the value wanted is the operator's judgment
/// (the stop's hint says to read the history first). Reads only; every refusal is bad input
/// (exit 2) before any write or redeploy.
async fn operator_named(
    clients: &Clients,
    settings: &Settings,
    summary: &RotationSummary,
    version: u64,
) -> Result<(usize, u64)> {
    let id = summary.rotation_id();
    let refuse = |why: String| {
        Error::bad_input(format!(
            "rotation {id} {why}: --written only names the version of a Parameter Store write whose history cannot tell which one it made"
        ))
        .hint(format!(
            "resume it without --written: `{}`",
            settings.reach.command(&format!("resume {id}"))
        ))
    };
    if let Some(s) = summary
        .secrets
        .iter()
        .find(|s| !crate::store::is_parameter(&s.arn))
    {
        return Err(refuse(format!(
            "rotates Secrets Manager secret {}, whose write carries a request token",
            s.name
        )));
    }
    if summary.started.kind != RotationKind::Replace || decide::resume_restores(summary) {
        return Err(refuse("is not in its rollout's write".into()));
    }
    for (i, s) in summary.secrets.iter().enumerate() {
        if s.written_version_id.is_some() {
            continue;
        }
        let Some((previous, at)) = summary.intent(i, journal::Phase::Rollout) else {
            continue;
        };
        let previous: u64 = previous.parse().unwrap_or(0);
        let info = crate::store::describe_parameter(clients, &s.name).await?;
        let intent = crate::parameter::Intent {
            previous,
            caller: &summary.started.caller_arn,
            at: journal::moment_epoch(at),
        };
        if !matches!(
            crate::parameter::resolve_written(&intent, &info.history, super::param::SKEW_SECS),
            crate::parameter::Written::Ambiguous(_)
        ) {
            continue;
        }
        let bare = crate::store::parameter_name(&s.name);
        let look = format!(
            "pick the version this rotation wrote from `aws ssm get-parameter-history --name {bare}`"
        );
        if !info.history.iter().any(|h| h.version == version) {
            return Err(Error::bad_input(format!(
                "parameter {bare} has no version {version} in its history: --written must name one of its versions"
            ))
            .hint(look));
        }
        if version <= previous {
            return Err(Error::bad_input(format!(
                "version {version} of parameter {bare} is not newer than {previous}, the version rotation {id} overwrote: it cannot be the rotation's write"
            ))
            .hint(look));
        }
        return Ok((i, version));
    }
    Err(refuse(
        "is not stuck on a parameter write the history cannot place".into(),
    ))
}

/// Whether parameter `i`'s rollout write happened (or cannot be placed: the run then stops
/// and says so), by its journaled intent and the history: no value is needed then.
async fn parameter_written(clients: &Clients, summary: &RotationSummary, i: usize) -> Result<bool> {
    let s = &summary.secrets[i];
    let Some((previous, at)) = summary.intent(i, journal::Phase::Rollout) else {
        return Ok(false);
    };
    let info = crate::store::describe_parameter(clients, &s.name).await?;
    let intent = crate::parameter::Intent {
        previous: previous.parse().unwrap_or(0),
        caller: &summary.started.caller_arn,
        at: journal::moment_epoch(at),
    };
    Ok(!matches!(
        crate::parameter::resolve_written(&intent, &info.history, super::param::SKEW_SECS),
        crate::parameter::Written::NotWritten { others: 0 }
    ))
}

/// The value of the `i`-th secret, asked again (it is never stored), with its JSON key
/// merged again into the still-current value.
async fn value_again(
    clients: &Clients,
    settings: &Settings,
    summary: &RotationSummary,
    i: usize,
    operator: &dyn Operator,
) -> Result<SecretValue> {
    let s = &summary.secrets[i];
    let new = async {
        let given = operator.new_value(&s.name, i, summary.secrets.len())?;
        let current = if crate::store::is_parameter(&s.arn) && s.json_key.is_none() {
            None
        } else {
            current_value(clients, &s.arn, &s.name, s.previous_version_id.as_deref()).await?
        };
        let current = current.as_ref().map(|value| value::Current {
            value,
            secret: &s.name,
            reach: &settings.reach,
        });
        let new = merged(&s.name, current, s.json_key.as_deref(), given)?;
        value::validate(&new, current)?;
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
            "rerun `{}` with --value-stdin, --value-file or --generate",
            settings
                .reach
                .command(&format!("resume {}", summary.rotation_id()))
        )),
        ..e
    })
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::journal::{Journal, Record, Started};

    /// Writes a replace rotation with `id` to `dir`, finished with `outcome` (or open).
    fn rotation(dir: &Path, id: &str, outcome: Option<Outcome>) -> Uuid {
        let id = Uuid::parse_str(id).unwrap();
        let started = Started {
            rotation_id: id,
            kind: RotationKind::Replace,
            environment: "production".into(),
            region: "eu-west-1".into(),
            clusters: vec!["c".into()],
            caller_arn: "arn:aws:iam::123456789012:user/op".into(),
            account: "123456789012".into(),
            rolls_back: None,
            secrets: Vec::new(),
            services: Vec::new(),
            started_at: OffsetDateTime::now_utc(),
            tool_version: String::new(),
            on_failure: None,
        };
        let mut j = Journal::create(dir, &started).unwrap();
        if let Some(outcome) = outcome {
            j.append(&Record::Finished {
                outcome,
                at: OffsetDateTime::now_utc(),
                message: None,
            })
            .unwrap();
        }
        id
    }

    /// Each refusal of `resume` and `rollback ID` names a next command, and that command
    /// is one the CLI has, with arguments it takes (`ID`: a rotation id or a prefix).
    #[test]
    fn the_hints_of_finding_a_rotation_name_commands_that_exist() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let reach = Reach::new(["--env", "production"].map(String::from).to_vec());
        let reach = &reach;
        // Nothing at all: `history` (which lists nothing, and exits 0).
        let e = find_resumable(d, None, reach).unwrap_err();
        assert_eq!(e.message, "there is no unfinished rotation to resume");
        assert_eq!(
            e.hint.as_deref(),
            Some("see `secret-rollout history --env production`; for a team state in S3, pass --env NAME to see rotations started on other machines")
        );
        let e = find_rotation(d, "0123abcd", reach).unwrap_err();
        assert!(
            e.message.starts_with("no rotation 0123abcd in "),
            "{}",
            e.message
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("list rotations with `secret-rollout history --env production`")
        );

        // Two open ones: name one, by the id `history` shows (a prefix is enough).
        let a = rotation(d, "0123abcd-0000-4000-8000-000000000001", None);
        let b = rotation(
            d,
            "0123abcd-0000-4000-8000-000000000002",
            Some(Outcome::Timeout),
        );
        let e = find_resumable(d, None, reach).unwrap_err();
        assert!(e.message.contains(&a.to_string()) && e.message.contains(&b.to_string()));
        assert_eq!(
            e.hint.as_deref(),
            Some("name the one to resume: `secret-rollout resume ID --env production`")
        );
        assert_eq!(
            find_resumable(d, Some(&a.to_string()), reach)
                .unwrap()
                .rotation_id(),
            a
        );
        // A prefix both share: give more of it; the full id then works.
        let e = find_rotation(d, "0123abcd", reach).unwrap_err();
        assert_eq!(e.message, "2 rotations start with 0123abcd");
        assert_eq!(e.hint.as_deref(), Some("give more of the rotation id"));
        assert_eq!(
            find_rotation(d, "0123abcd-0000-4000-8000-000000000002", reach)
                .unwrap()
                .rotation_id(),
            b
        );

        // Finished for good: start anew, or undo it by its id (which rollback_of reads as a
        // rotation, not a secret).
        let v = rotation(
            d,
            "feedbeef-0000-4000-8000-000000000003",
            Some(Outcome::Verified),
        );
        let e = find_resumable(d, Some("feedbeef"), reach).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Refused);
        let hint = e.hint.unwrap();
        assert_eq!(
            hint,
            format!("start a new one with `secret-rollout replace SECRET --env production`, or undo it with `secret-rollout rollback {v} --env production`")
        );
        match crate::rotation::rollback_of(d, "feedbeef", reach).unwrap() {
            crate::rotation::RollbackOf::Rotation(r) => assert_eq!(r.rotation_id(), v),
            other => panic!("rollback ID reads a rotation: {other:?}"),
        }
    }
}
