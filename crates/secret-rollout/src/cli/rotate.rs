//! `replace`, `plan`, `redeploy`, `rollback`, `resume`: flags in, core calls, report out.

use std::io::{IsTerminal, Write};

use secret_rollout_core::config::Target;
use secret_rollout_core::error::{exit, Error, Kind, Result};
use secret_rollout_core::journal::{self, RotationSummary, Status};
use secret_rollout_core::plan::{self, RotationPlan};
use secret_rollout_core::progress::Reporter;
use secret_rollout_core::rollout::ServiceRef;
use secret_rollout_core::rotation::{self, Context, OnFailure, Report, Restore, Settings};
use secret_rollout_core::secret;
use secret_rollout_core::value::{self, SecretValue};
use uuid::Uuid;

use super::args::{self, Global, Output};
use super::output::{self, outcome_word};
use super::session::{self, Session};

fn settings(r: &args::RolloutArgs, on_failure: args::OnFailure) -> Result<Settings> {
    Ok(Settings {
        timeout: r.timeout,
        max_poll: r.max_poll,
        on_failure: match on_failure {
            args::OnFailure::Rollback => OnFailure::Rollback,
            args::OnFailure::Keep => OnFailure::Keep,
        },
        state_dir: session::state_dir()?,
    })
}

/// Asks "proceed?" on the terminal; without one, refuses unless `--yes`.
fn confirm(yes: bool, question: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        return Err(
            Error::refused("not confirmed: there is no terminal to ask on")
                .hint("review the plan (secret-rollout plan ...) and pass --yes to proceed"),
        );
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::bad_input(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::refused("not confirmed: nothing was changed")
            .hint("rerun and answer y, or pass --yes"))
    }
}

/// Runs a rotation future; Ctrl-C stops it, marks the journal, and says how to resume.
async fn interruptible(
    settings: &Settings,
    rotation_id: Uuid,
    fut: impl std::future::Future<Output = Result<Report>>,
) -> Result<Report> {
    tokio::select! {
        r = fut => r,
        _ = tokio::signal::ctrl_c() => {
            let _ = rotation::mark_interrupted(settings, rotation_id);
            Err(Error::new(Kind::Interrupted, format!("interrupted: rotation {rotation_id} stopped where it was"))
                .hint(format!("finish it with `secret-rollout resume {rotation_id}`, or undo it with `secret-rollout rollback {rotation_id}`")))
        }
    }
}

fn finish(global: &Global, report: &Report) -> i32 {
    output::report(global.output, report);
    report.exit_code()
}

fn only(flag: &[String]) -> Option<&[String]> {
    (!flag.is_empty()).then_some(flag)
}

/// `plan`, and `replace --dry-run`.
pub async fn plan_cmd(
    global: &Global,
    secrets: &[String],
    t: &args::Target,
    services: &[String],
) -> Result<i32> {
    let target = session::target(global, t)?;
    let ids: Vec<String> = secrets.iter().map(|s| target.secret_id(s)).collect();
    let s = session::sign_in(target.clone(), t).await?;
    let p = plan::plan(&s.clients, &target, &ids, only(services), true).await?;
    output::plan(global.output, &p, &s.clients);
    // The plan is shown whole, then the refusal says why `replace` would stop.
    match p.consumers.refusal() {
        Some(refusal) => Err(refusal),
        None => Ok(exit::OK),
    }
}

/// `replace`.
pub async fn replace(
    global: &Global,
    a: &args::ReplaceArgs,
    reporter: &dyn Reporter,
) -> Result<i32> {
    session::one_reader_of_stdin(&a.target, &a.value)?;
    if a.dry_run {
        return plan_cmd(global, &a.secrets, &a.target, &a.services).await;
    }
    let target = session::target(global, &a.target)?;
    let ids: Vec<String> = a.secrets.iter().map(|s| target.secret_id(s)).collect();
    // The values come first: bad input must stop us before any AWS call.
    let mut given = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        given.push(session::read_value(&a.value, i, ids.len(), id)?);
    }
    let settings = settings(&a.rollout, a.on_failure)?;
    let s = session::sign_in(target.clone(), &a.target).await?;
    session::check_credential_lifetime(
        &s.ctx,
        a.rollout.timeout,
        a.rollout.allow_short_credentials,
    )?;
    let p = plan::plan(
        &s.clients,
        &target,
        &ids,
        only(&a.services),
        a.force_with_rotation,
    )
    .await?;
    if let Some(refusal) = p.consumers.refusal() {
        return Err(refusal);
    }
    let values = final_values(&s, &p, given, a.value.json_key.as_deref()).await?;
    if global.output == Output::Text {
        output::plan_text(&p, &mut std::io::stderr());
    }
    confirm(
        a.rollout.yes,
        &format!(
            "write a new version and redeploy {} service(s)?",
            p.redeploy.len()
        ),
    )?;
    let rotation_id = Uuid::new_v4();
    let report = interruptible(
        &settings,
        rotation_id,
        rotation::replace(
            &Context {
                clients: &s.clients,
                caller: &s.caller,
                settings: &settings,
                reporter,
                rotation_id,
            },
            &p,
            values,
            a.value.json_key.as_deref(),
        ),
    )
    .await?;
    Ok(finish(global, &report))
}

/// Merges `--json-key` values and checks each new value against the current one.
async fn final_values(
    s: &Session,
    p: &RotationPlan,
    given: Vec<SecretValue>,
    json_key: Option<&str>,
) -> Result<Vec<SecretValue>> {
    let mut out = Vec::with_capacity(given.len());
    for (planned, new) in p.secrets.iter().zip(given) {
        let current =
            secret::value(&s.clients.sm, &planned.info.arn, planned.previous_version()).await?;
        let new = match json_key {
            Some(key) => value::merge_json_key(&current, key, &new)?,
            None => new,
        };
        value::validate(&new, Some(&current)).map_err(|e| Error {
            message: format!("{}: {}", planned.info.name, e.message),
            ..e
        })?;
        out.push(new);
    }
    Ok(out)
}

/// Finds services by name in the target's clusters.
async fn find_services(s: &Session, names: &[String]) -> Result<Vec<(ServiceRef, Option<String>)>> {
    let inv = secret_rollout_core::discovery::inventory(
        &s.clients.ecs,
        &s.target.clusters,
        Some(names),
        false,
    )
    .await?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match inv
            .services
            .iter()
            .find(|(_, svc)| svc.service_name() == Some(name.as_str()))
        {
            Some((cluster, svc)) => out.push((
                ServiceRef {
                    cluster: cluster.clone(),
                    service: name.clone(),
                },
                plan::primary_of(svc),
            )),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::bad_input(format!(
            "no service {} in cluster(s) {}",
            missing.join(", "),
            s.target.clusters.join(", ")
        ))
        .hint("check the names with aws ecs list-services --cluster CLUSTER"));
    }
    Ok(out)
}

/// `redeploy`.
pub async fn redeploy(
    global: &Global,
    a: &args::RedeployArgs,
    reporter: &dyn Reporter,
) -> Result<i32> {
    let target = session::target(global, &a.target)?;
    let settings = settings(&a.rollout, args::OnFailure::Keep)?;
    let s = session::sign_in(target.clone(), &a.target).await?;
    session::check_credential_lifetime(
        &s.ctx,
        a.rollout.timeout,
        a.rollout.allow_short_credentials,
    )?;
    let (services, info) = match &a.secret {
        Some(name) => {
            let info = secret::describe(&s.clients.sm, &target.secret_id(name)).await?;
            let only = if a.services.is_empty() {
                None
            } else {
                Some(a.services.as_slice())
            };
            let (consumers, redeploy) =
                plan::consumers_of(&s.clients, &target, std::slice::from_ref(&info), only).await?;
            if let Some(refusal) = consumers.refusal() {
                return Err(refusal);
            }
            (redeploy, Some(info))
        }
        None => (find_services(&s, &a.services).await?, None),
    };
    if services.is_empty() {
        return Err(
            Error::refused("nothing to redeploy: no running service reads that secret").hint(
                "check the name with secret-rollout plan SECRET, or name services with --services",
            ),
        );
    }
    let names: Vec<String> = services.iter().map(|(r, _)| r.service.clone()).collect();
    confirm(a.rollout.yes, &format!("redeploy {}?", names.join(", ")))?;
    let rotation_id = Uuid::new_v4();
    let refs = services.into_iter().map(|(r, _)| r).collect();
    let report = interruptible(
        &settings,
        rotation_id,
        rotation::redeploy(
            &Context {
                clients: &s.clients,
                caller: &s.caller,
                settings: &settings,
                reporter,
                rotation_id,
            },
            &target,
            refs,
            info.as_ref(),
        ),
    )
    .await?;
    Ok(finish(global, &report))
}

/// A target rebuilt from a journal, with sign-in flags from the command line.
fn target_from_journal(
    global: &Global,
    t: &args::Target,
    summary: &RotationSummary,
) -> Result<Target> {
    if t.env.is_some() || t.region.is_some() || !t.clusters.is_empty() {
        return session::target(global, t);
    }
    let config = session::load_config(global)?;
    let env = config
        .as_ref()
        .and_then(|c| c.environments.get(&summary.started.environment));
    Ok(Target {
        environment: env.map(|e| e.name.clone()),
        region: summary.started.region.clone(),
        profile: t
            .profile
            .clone()
            .or_else(|| env.and_then(|e| e.profile.clone())),
        account_id: env
            .and_then(|e| e.account_id.clone())
            .or_else(|| Some(summary.started.account.clone())),
        clusters: summary.started.clusters.clone(),
        services: None,
        secret_prefix: env.and_then(|e| e.secret_prefix.clone()),
    })
}

fn find_rotation(state_dir: &std::path::Path, id: &str) -> Result<RotationSummary> {
    let all = journal::list(state_dir)?;
    let matches: Vec<RotationSummary> = all
        .into_iter()
        .filter(|r| r.rotation_id().to_string().starts_with(id))
        .collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().expect("one match")),
        0 => Err(
            Error::bad_input(format!("no rotation {id} in {}", state_dir.display()))
                .hint("list rotations with `secret-rollout history`"),
        ),
        n => Err(Error::bad_input(format!("{n} rotations start with {id}"))
            .hint("give more of the rotation id")),
    }
}

/// `rollback`.
pub async fn rollback(
    global: &Global,
    a: &args::RollbackArgs,
    reporter: &dyn Reporter,
) -> Result<i32> {
    let settings = settings(&a.rollout, args::OnFailure::Keep)?;
    let what = a.what.clone().ok_or_else(|| {
        Error::bad_input("name a rotation id or a secret to roll back")
            .hint("see `secret-rollout history` for rotation ids")
    })?;
    let by_id = what.len() >= 8 && what.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let (target, rotation) = if by_id {
        let r = find_rotation(&settings.state_dir, &what)?;
        (target_from_journal(global, &a.target, &r)?, Some(r))
    } else {
        (session::target(global, &a.target)?, None)
    };
    let s = session::sign_in(target.clone(), &a.target).await?;
    session::check_credential_lifetime(
        &s.ctx,
        a.rollout.timeout,
        a.rollout.allow_short_credentials,
    )?;
    let (info, restore_to, from, rolls_back) = match &rotation {
        Some(r) => {
            let sec = r.secrets.first().ok_or_else(|| {
                Error::bad_input(format!("rotation {} changed no secret", r.rotation_id()))
                    .hint("it was a redeploy: roll back a secret by name instead (secret-rollout rollback SECRET)")
            })?;
            let (Some(prev), Some(new)) = (
                sec.previous_version_id.clone(),
                sec.written_version_id.clone(),
            ) else {
                return Err(Error::refused(format!(
                    "rotation {} wrote no new version: there is nothing to roll back",
                    r.rotation_id()
                ))
                .hint("see `secret-rollout history` for what it did"));
            };
            (
                secret::describe(&s.clients.sm, &sec.arn).await?,
                prev,
                new,
                Some(r.rotation_id()),
            )
        }
        None => {
            let info = secret::describe(&s.clients.sm, &target.secret_id(&what)).await?;
            let last = journal::list(&settings.state_dir)?
                .into_iter()
                .rev()
                .find(|r| {
                    r.touches(&info.arn)
                        && r.secrets
                            .iter()
                            .any(|x| x.arn == info.arn && x.written_version_id.is_some())
                });
            match last
                .as_ref()
                .and_then(|r| r.secrets.iter().find(|x| x.arn == info.arn).map(|x| (r, x)))
            {
                Some((r, x)) => {
                    let prev = x.previous_version_id.clone().unwrap_or_default();
                    let new = x.written_version_id.clone().unwrap_or_default();
                    (info, prev, new, Some(r.rotation_id()))
                }
                None => {
                    let (Some(prev), Some(cur)) = (info.previous.clone(), info.current.clone())
                    else {
                        return Err(Error::refused(format!(
                            "secret {} has no AWSPREVIOUS version to go back to",
                            info.name
                        ))
                        .hint("there is no earlier value to restore"));
                    };
                    (info, prev, cur, None)
                }
            }
        }
    };
    if info.current.as_deref() != Some(from.as_str()) && !a.force {
        return Err(Error::refused(format!(
            "AWSCURRENT of {} has moved on since that rotation (it is {}, not {})",
            info.name,
            info.current.as_deref().unwrap_or("none"),
            from
        ))
        .hint("pass --force to restore the earlier version anyway"));
    }
    let (consumers, redeploy) =
        plan::consumers_of(&s.clients, &target, std::slice::from_ref(&info), None).await?;
    if let Some(refusal) = consumers.refusal() {
        return Err(refusal);
    }
    confirm(
        a.rollout.yes,
        &format!(
            "move AWSCURRENT of {} back to {restore_to} and redeploy {} service(s)?",
            info.name,
            redeploy.len()
        ),
    )?;
    let rotation_id = Uuid::new_v4();
    let services = redeploy.into_iter().map(|(r, _)| r).collect();
    let report = interruptible(
        &settings,
        rotation_id,
        rotation::rollback(
            &Context {
                clients: &s.clients,
                caller: &s.caller,
                settings: &settings,
                reporter,
                rotation_id,
            },
            &target,
            Restore {
                secret: &info,
                to: &restore_to,
                from: &from,
                rolls_back,
            },
            services,
        ),
    )
    .await?;
    Ok(finish(global, &report))
}

/// `resume`.
pub async fn resume(global: &Global, a: &args::ResumeArgs, reporter: &dyn Reporter) -> Result<i32> {
    session::one_reader_of_stdin(&a.target, &a.value)?;
    let mut settings = settings(
        &a.rollout,
        a.on_failure.unwrap_or(args::OnFailure::Rollback),
    )?;
    let summary = match &a.rotation {
        Some(id) => find_rotation(&settings.state_dir, id)?,
        None => {
            let open: Vec<RotationSummary> = journal::list(&settings.state_dir)?
                .into_iter()
                .filter(|r| r.is_resumable())
                .collect();
            match open.len() {
                0 => {
                    return Err(
                        Error::bad_input("there is no unfinished rotation to resume")
                            .hint("see `secret-rollout history`"),
                    )
                }
                1 => open.into_iter().next().expect("one"),
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
    // Without --on-failure, do what the interrupted run was told to do.
    if a.on_failure.is_none() {
        if let Some(recorded) = summary.started.on_failure {
            settings.on_failure = recorded;
        }
    }
    let target = target_from_journal(global, &a.target, &summary)?;
    let s = session::sign_in(target, &a.target).await?;
    session::check_credential_lifetime(
        &s.ctx,
        a.rollout.timeout,
        a.rollout.allow_short_credentials,
    )?;
    let count = summary.secrets.len();
    let names: Vec<String> = summary.secrets.iter().map(|x| x.name.clone()).collect();
    let value_args = a.value.clone();
    let clients = s.clients.clone();
    let json_keys: Vec<Option<String>> =
        summary.secrets.iter().map(|x| x.json_key.clone()).collect();
    let arns: Vec<String> = summary.secrets.iter().map(|x| x.arn.clone()).collect();
    let prevs: Vec<Option<String>> = summary
        .secrets
        .iter()
        .map(|x| x.previous_version_id.clone())
        .collect();
    // The value was never stored: if the write had not happened, it is read again here,
    // and a JSON key merged again into the still-current value.
    let rotation_id = summary.rotation_id();
    let handle = tokio::runtime::Handle::current();
    let mut value_for = |name: &str| -> Result<SecretValue> {
        let i = names.iter().position(|n| n == name).unwrap_or(0);
        let given = session::read_value(&value_args, i, count, name)?;
        let Some(prev) = prevs[i].clone() else {
            return Ok(given);
        };
        // Called from inside the rotation future: block this worker thread briefly.
        let current = tokio::task::block_in_place(|| {
            handle.block_on(secret::value(&clients.sm, &arns[i], &prev))
        })?;
        let new = match &json_keys[i] {
            Some(key) => value::merge_json_key(&current, key, &given)?,
            None => given,
        };
        value::validate(&new, Some(&current))?;
        Ok(new)
    };
    let report = interruptible(
        &settings,
        rotation_id,
        rotation::resume(&s.clients, &summary, &settings, reporter, &mut value_for),
    )
    .await?;
    Ok(finish(global, &report))
}
