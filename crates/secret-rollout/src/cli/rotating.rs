//! What the five rotating commands (`replace`, `plan`, `redeploy`, `rollback`, `resume`)
//! share on the command line: their settings, the person behind the terminal (the core's
//! [`Operator`]), Ctrl-C, and the report at the end.

use std::io::{IsTerminal, Write};

use secret_rollout_core::config::Target;
use secret_rollout_core::error::{Error, Kind, Result};
use secret_rollout_core::journal::RotationSummary;
use secret_rollout_core::plan::RotationPlan;
use secret_rollout_core::rotation::{
    self, ConcurrentDeploy, OnFailure, Operator, Report, Settings,
};
use secret_rollout_core::value::SecretValue;
use tokio::sync::Notify;
use uuid::Uuid;

use super::args::{self, Global, Output, ValueArgs};
use super::output;
use super::session;

/// The core's choice of what to do on failure.
pub fn on_failure(o: args::OnFailure) -> OnFailure {
    match o {
        args::OnFailure::Rollback => OnFailure::Rollback,
        args::OnFailure::Keep => OnFailure::Keep,
    }
}

/// How a rotation runs, from the rollout flags.
pub fn settings(
    r: &args::RolloutArgs,
    failure: args::OnFailure,
    reach: secret_rollout_core::error::Reach,
) -> Result<Settings> {
    Ok(Settings {
        timeout: r.timeout,
        max_poll: r.max_poll,
        on_failure: on_failure(failure),
        state_dir: session::state_dir()?,
        consistency_margin: r.consistency_margin,
        concurrent: concurrent(r),
        state: Default::default(),
        max_task_failures: r.max_task_failures,
        approve_hooks: r.approve_hooks,
        until_traffic: r.until == args::Until::Traffic,
        reach,
        allow_image_change: r.allow_image_change,
    })
}

/// What to do about a consumer mid-deployment, from `--wait` and `--allow-concurrent-deploy`.
pub fn concurrent(r: &args::RolloutArgs) -> ConcurrentDeploy {
    match (r.wait, r.allow_concurrent_deploy) {
        (_, true) => ConcurrentDeploy::Allow,
        (true, false) => ConcurrentDeploy::Wait,
        (false, false) => ConcurrentDeploy::Refuse,
    }
}

/// The person at the terminal: answers with `--yes` or a prompt, gives a value from the
/// value flags, and arms Ctrl-C handling once the run may change something.
pub struct Person<'a> {
    /// `--yes`.
    pub yes: bool,
    /// Where the plan is shown before the question (text only).
    pub output: Output,
    /// The value flags, for a command that can be asked for a value.
    pub values: Option<&'a ValueArgs>,
    /// Notified when the person says yes: from then on Ctrl-C marks the journal.
    pub armed: &'a Notify,
    /// Where the command acts and who is signed in ([`session::place`]): every question
    /// names it, so a yes is never given to the wrong account.
    pub place: String,
    /// The plan is on the screen already (shown before a value prompt): not again.
    pub plan_shown: bool,
}

impl Operator for Person<'_> {
    fn new_value(&self, secret: &str, index: usize, count: usize) -> Result<SecretValue> {
        match self.values {
            Some(v) => session::read_value(v, index, count, secret),
            None => Err(Error::bad_input(format!(
                "this command takes no value, yet the value of {secret} was asked for"
            ))),
        }
    }

    fn confirm(&self, question: &str, plan: Option<&RotationPlan>) -> Result<bool> {
        if let (Some(p), Output::Text, false) = (plan, self.output, self.plan_shown) {
            output::plan_text(p, &mut std::io::stderr(), super::width::stderr());
        }
        let yes = ask(self.yes, &question_in(question, &self.place))?;
        if yes {
            self.armed.notify_one();
        }
        Ok(yes)
    }
}

/// `question` (ending in `?`) naming where: "redeploy api in environment production
/// (account 123456789012, region eu-west-1) as arn:...?".
fn question_in(question: &str, place: &str) -> String {
    if place.is_empty() {
        return question.to_string();
    }
    let q = question.trim_end().trim_end_matches('?');
    format!("{q} in {place}?")
}

/// Asks "proceed?" on the terminal; without one, refuses unless `--yes`.
pub fn ask(yes: bool, question: &str) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        return Err(
            Error::refused("not confirmed: there is no terminal to ask on")
                // Not `secret-rollout plan ...`: only `replace` has one; every command
                // that asks shows what it would do before the question.
                .hint("nothing was changed: review what it would do (printed above), then run the same command with --yes"),
        );
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::bad_input(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Runs a rotation future. Once `armed` (the person said yes, or a resume started), Ctrl-C
/// stops it, marks the journal, and says how to resume; before that, Ctrl-C ends the
/// process as usual, even at a prompt.
pub async fn interruptible<T>(
    settings: &Settings,
    rotation_id: Uuid,
    armed: &Notify,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let stop = async {
        armed.notified().await;
        tokio::signal::ctrl_c().await
    };
    tokio::select! {
        biased;
        r = fut => r,
        _ = stop => {
            let _ = rotation::mark_interrupted(settings, rotation_id);
            // What the journal says it did decides the hint: `resume`, and `rollback` only
            // for a replace that wrote (a redeploy or a rollback wrote nothing to undo).
            match rotation::find_rotation(&settings.state_dir, &rotation_id.to_string(), &settings.reach) {
                Ok(summary) => Err(Error::new(Kind::Interrupted, format!("interrupted: rotation {rotation_id} stopped where it was"))
                    .hint(rotation::decide::unfinished_hint(&summary, &settings.reach))),
                Err(_) => Err(Error::new(Kind::Interrupted, format!("interrupted before rotation {rotation_id} was recorded: nothing was changed"))),
            }
        }
    }
}

/// Prints the report and returns its exit code.
pub fn finish(global: &Global, report: &Report) -> i32 {
    output::report(global.output, report);
    report.exit_code()
}

/// A target rebuilt from a journal, with sign-in flags from the command line.
pub fn target_from_journal(
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
        parameter_prefix: env.and_then(|e| e.parameter_prefix.clone()),
    })
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn person<'a>(yes: bool, values: Option<&'a ValueArgs>, armed: &'a Notify) -> Person<'a> {
        Person {
            yes,
            output: Output::Json,
            values,
            armed,
            place: String::new(),
            plan_shown: false,
        }
    }

    /// Item 10 of issue 21: the question names the environment, account, region and
    /// caller.
    #[test]
    fn questions_say_where() {
        assert_eq!(
            question_in(
                "write a new version and redeploy 1 service(s)?",
                "environment production (account 123456789012, region eu-west-1) as arn:aws:iam::123456789012:user/a"
            ),
            "write a new version and redeploy 1 service(s) in environment production (account 123456789012, region eu-west-1) as arn:aws:iam::123456789012:user/a?"
        );
        assert_eq!(question_in("redeploy api?", ""), "redeploy api?");
    }

    #[test]
    fn yes_confirms_and_arms_ctrl_c() {
        let armed = Notify::new();
        assert!(armed.notified().now_or_never().is_none());
        let p = person(true, None, &armed);
        assert!(p.confirm("redeploy api?", None).unwrap());
        assert!(armed.notified().now_or_never().is_some());
    }

    #[test]
    fn a_value_comes_from_the_value_flags_only() {
        let armed = Notify::new();
        let err = person(true, None, &armed)
            .new_value("production/x", 0, 1)
            .unwrap_err();
        assert!(err.message.contains("takes no value"), "{}", err.message);
        let generate = ValueArgs {
            generate: true,
            length: Some(12),
            charset: Some(args::Charset::Hex),
            ..ValueArgs::default()
        };
        let value = person(true, Some(&generate), &armed)
            .new_value("production/x", 0, 1)
            .unwrap();
        assert_eq!(value.len(), 12);
        assert!(value.expose().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn on_failure_flags_map_to_the_core() {
        assert_eq!(on_failure(args::OnFailure::Rollback), OnFailure::Rollback);
        assert_eq!(on_failure(args::OnFailure::Keep), OnFailure::Keep);
    }
}
