//! `sync`: roll out values that changed outside secret-rollout (a rotation function, the
//! console, Terraform): redeploy exactly the consumers whose tasks may hold an older value
//! than the current one, follow, prove. Nothing is written.

use std::io::Write;

use clap::Args;
use secret_rollout_core::error::Result;
use secret_rollout_core::progress::Reporter;
use secret_rollout_core::rotation::{self, Context, SyncPlan, SyncRequest};
use tokio::sync::Notify;
use uuid::Uuid;

use super::args::{self, Global, OnFailure, Output, RolloutArgs};
use super::ndjson;
use super::output;
use super::rotating::{self, Person};
use super::session;

/// `sync`.
#[derive(Debug, Args, Clone)]
pub struct SyncArgs {
    /// Secrets to sync (default: every secret the environment's services read).
    #[arg(value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// Where.
    #[command(flatten)]
    pub target: args::Target,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Run until stopped (SIGTERM or Ctrl-C): notice changes with ListSecrets, confirm
    /// with DescribeSecret, wait out rotations under way, and sync each change. Never
    /// asks anything (no confirmation, no MFA code): credentials come from the SDK chain.
    #[arg(long)]
    pub watch: bool,
    /// How often --watch looks (e.g. 60s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "60s", requires = "watch", value_parser = super::parse::interval)]
    pub interval: std::time::Duration,
}

/// The preview: what would be redeployed and why, what is left out and why.
pub fn plan_text(p: &SyncPlan, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "sync in {}: {} secret(s) checked",
        p.environment,
        p.secrets.len()
    );
    for s in &p.secrets {
        let current = s.current.as_deref().map_or("none", short);
        let what = match (&s.rotating_to, s.stale_services.is_empty()) {
            (Some(v), _) => format!("rotation under way to {}: waits", short(v)),
            (None, true) => "every reader holds it".to_string(),
            (None, false) => format!("stale readers: {}", s.stale_services.join(", ")),
        };
        let _ = writeln!(out, "  {} (current {current}): {what}", s.name);
    }
    if !p.redeploy.is_empty() {
        let _ = writeln!(out, "redeploy:");
        for s in &p.redeploy {
            let _ = writeln!(
                out,
                "  {}/{}: {} stale task(s), {} that cannot be told ({})",
                s.cluster,
                s.service,
                s.stale_tasks,
                s.unproven_tasks,
                s.secrets.join(", ")
            );
        }
    }
    for s in &p.left_out {
        let _ = writeln!(
            out,
            "  not redeployed: {}/{} is outside the environment's services list ({} stale task(s) of {})",
            s.cluster,
            s.service,
            s.stale_tasks + s.unproven_tasks,
            s.secrets.join(", ")
        );
    }
    for n in &p.notes {
        let _ = writeln!(out, "note: {n}");
    }
}

fn short(v: &str) -> &str {
    v.get(..8).unwrap_or(v)
}

/// Prints "nothing to do" in the chosen output.
pub fn print_nothing_to_do(output: Output, p: &SyncPlan) {
    let doc = serde_json::json!({
        "outcome": "nothing_to_do",
        "exit_code": 0,
        "sync": p,
    });
    match output {
        Output::Ndjson => ndjson::print_document("report", &doc),
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            output::mark_document_written();
        }
        Output::Text => {
            println!("Nothing to sync: every running task of the services redeployed by this environment holds the current version of each secret checked.");
        }
    }
}

/// `sync`.
pub async fn run(global: &Global, a: &SyncArgs, reporter: &dyn Reporter) -> Result<i32> {
    if a.watch {
        return watch(global, a, reporter).await;
    }
    let target = session::target(global, &a.target)?;
    let mut settings = rotating::settings(
        &a.rollout,
        OnFailure::Keep,
        session::reach(global, &a.target),
    )?;
    let s = session::sign_in(target, &a.target).await?;
    session::check_credential_lifetime(
        &s.ctx,
        a.rollout.timeout,
        a.rollout.allow_short_credentials,
    )?;
    settings.state = session::synced_backend(global, &a.target, &s).await?;
    let request = SyncRequest {
        secrets: a.secrets.clone(),
    };
    let plan = rotation::sync_plan(
        &s.clients,
        &s.target,
        &request,
        Some(settings.state_dir.as_path()),
    )
    .await?;
    if plan.nothing_to_do() {
        if global.output == Output::Text {
            plan_text(&plan, &mut std::io::stderr());
        }
        print_nothing_to_do(global.output, &plan);
        return Ok(0);
    }
    if global.output == Output::Text {
        plan_text(&plan, &mut std::io::stderr());
    }
    let armed = Notify::new();
    let person = Person {
        yes: a.rollout.yes,
        output: global.output,
        values: None,
        armed: &armed,
        place: session::place(&s),
        plan_shown: true,
    };
    let rotation_id = Uuid::new_v4();
    let ctx = Context {
        clients: &s.clients,
        caller: &s.caller,
        settings: &settings,
        reporter,
        rotation_id,
    };
    let run = async {
        let (plan, report) = rotation::sync(&ctx, &s.target, &request, Some(plan), &person).await?;
        match report {
            Some(r) => Ok(Some(r)),
            None => {
                // A wait for someone else's deployment found nothing left to do.
                print_nothing_to_do(global.output, &plan);
                Ok(None)
            }
        }
    };
    let report = rotating::interruptible(&settings, rotation_id, &armed, run).await?;
    Ok(match report {
        Some(r) => rotating::finish(global, &r),
        None => 0,
    })
}

/// One line of the watcher: a JSON document with `--output ndjson`, else a timestamped
/// line on stdout.
fn say(output: Output, kind: &str, doc: serde_json::Value, line: String) {
    match output {
        Output::Ndjson => ndjson::print_document(kind, &doc),
        _ => {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{now} {kind}: {line}");
            let _ = out.flush();
        }
    }
}

/// SIGTERM and SIGINT, registered before the first look.
struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Stop {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let err = |e: std::io::Error| {
            secret_rollout_core::error::Error::local(format!("cannot watch for SIGTERM: {e}"))
        };
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(err)?,
            int: signal(SignalKind::interrupt()).map_err(err)?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// `sync --watch`: the loop.
async fn watch(global: &Global, a: &SyncArgs, reporter: &dyn Reporter) -> Result<i32> {
    use secret_rollout_core::rotation::Seen;
    use secret_rollout_core::secret;
    use std::collections::{BTreeMap, BTreeSet};

    let target = session::target(global, &a.target)?;
    let mut settings = rotating::settings(
        &a.rollout,
        OnFailure::Keep,
        session::reach(global, &a.target),
    )?;
    let mut stop = Stop::new()?;
    let s = session::sign_in_as(target, &a.target, true).await?;
    settings.state = session::backend(global, &a.target, &s)?;
    let output = global.output;
    // What is watched: the secrets named, or those the environment's services read now.
    let first = rotation::sync_plan(
        &s.clients,
        &s.target,
        &SyncRequest {
            secrets: a.secrets.clone(),
        },
        Some(settings.state_dir.as_path()),
    )
    .await?;
    let names: BTreeMap<String, String> = first
        .secrets
        .iter()
        .map(|x| (x.arn.clone(), x.name.clone()))
        .collect();
    let watched: BTreeSet<String> = names.keys().cloned().collect();
    let filters = rotation::name_filters(&names.values().cloned().collect::<Vec<_>>());
    say(
        output,
        "watching",
        serde_json::json!({
            "environment": first.environment,
            "secrets": names.values().collect::<Vec<_>>(),
            "interval_ms": a.interval.as_millis() as u64,
        }),
        format!(
            "{} secret(s) in {}, every {}",
            names.len(),
            first.environment,
            humantime::format_duration(a.interval)
        ),
    );
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut first_look = true;
    let mut syncs = 0u64;
    loop {
        let before = s.clients.calls.snapshot();
        let listed = secret::list(&s.clients.sm, &filters).await;
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                say(
                    output,
                    "error",
                    serde_json::json!({"error": e.message}),
                    e.message.clone(),
                );
                Vec::new()
            }
        };
        let (mut changed, rotating) = rotation::changed(&seen, &watched, &listed);
        // The first look: what is listed is the baseline, and one sync of every watched
        // secret catches up on what changed before the watcher started.
        let mut catch_up = Vec::new();
        if first_look {
            for l in listed.iter().filter(|l| changed.contains(&l.arn)) {
                let now = Seen {
                    last_changed: l.last_changed,
                    current: l.current.clone(),
                };
                catch_up.push((l.arn.clone(), l.name.clone(), now));
            }
            changed.clear();
        }
        for arn in &rotating {
            let name = names.get(arn).cloned().unwrap_or_default();
            say(
                output,
                "waiting",
                serde_json::json!({"secret": name, "why": "rotation under way (AWSPENDING on another version)"}),
                format!("{name}: rotation under way, waiting for AWSCURRENT to move"),
            );
        }
        // ListSecrets is eventually consistent: confirm each change with DescribeSecret.
        let mut confirmed = catch_up;
        for arn in &changed {
            match secret::describe(&s.clients.sm, arn).await {
                Ok(info) if info.pending_other().is_some() => {
                    say(
                        output,
                        "waiting",
                        serde_json::json!({"secret": info.name, "why": "rotation under way (AWSPENDING on another version)"}),
                        format!(
                            "{}: rotation under way, waiting for AWSCURRENT to move",
                            info.name
                        ),
                    );
                }
                Ok(info) => {
                    say(
                        output,
                        "change",
                        serde_json::json!({"secret": info.name, "current": info.current, "last_changed": info.last_changed}),
                        format!(
                            "{} changed (current {})",
                            info.name,
                            info.current.as_deref().map_or("none", short)
                        ),
                    );
                    confirmed.push((
                        arn.clone(),
                        info.name.clone(),
                        Seen {
                            last_changed: info.last_changed,
                            current: info.current.clone(),
                        },
                    ));
                }
                Err(e) => say(
                    output,
                    "error",
                    serde_json::json!({"error": e.message}),
                    e.message.clone(),
                ),
            }
        }
        if !confirmed.is_empty() {
            let request = SyncRequest {
                secrets: confirmed.iter().map(|(arn, _, _)| arn.clone()).collect(),
            };
            let armed = Notify::new();
            let person = Person {
                yes: true,
                output,
                values: None,
                armed: &armed,
                place: String::new(),
                plan_shown: true,
            };
            let rotation_id = Uuid::new_v4();
            let ctx = Context {
                clients: &s.clients,
                caller: &s.caller,
                settings: &settings,
                reporter,
                rotation_id,
            };
            let outcome = tokio::select! {
                r = rotation::sync(&ctx, &s.target, &request, None, &person) => Some(r),
                _ = stop.recv() => None,
            };
            match outcome {
                None => {
                    // Stopped mid-sync: the journal says so, and `resume` goes on.
                    let _ = rotation::mark_interrupted(&settings, rotation_id);
                    let next = settings.reach.command(&format!("resume {rotation_id}"));
                    say(
                        output,
                        "stopped",
                        serde_json::json!({"rotation_id": rotation_id, "next_steps": [next]}),
                        format!("stopped during sync {rotation_id}: run `{next}` to finish it"),
                    );
                    return Ok(secret_rollout_core::error::Kind::Interrupted.exit_code());
                }
                Some(Ok((_, Some(report)))) => {
                    syncs += 1;
                    say(
                        output,
                        "report",
                        serde_json::to_value(&report).unwrap_or_default(),
                        format!(
                            "sync {} of {}: {} (exit {})",
                            report.rotation_id,
                            confirmed
                                .iter()
                                .map(|(_, n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            rotation::outcome_word(report.outcome),
                            report.exit_code()
                        ),
                    );
                    for (arn, _, now) in confirmed {
                        seen.insert(arn, now);
                    }
                }
                Some(Ok((_, None))) => {
                    for (arn, _, now) in confirmed {
                        seen.insert(arn, now);
                    }
                }
                // A moved image tag (issue 18): no prompt in a watcher; logged, and these
                // changes are skipped (marked seen) until the next change or a sync by
                // hand with --allow-image-change.
                Some(Err(e)) if secret_rollout_core::images::is_refusal(&e) => {
                    let secrets: Vec<&str> = confirmed.iter().map(|(_, n, _)| n.as_str()).collect();
                    let next = settings
                        .reach
                        .command(&format!("sync {} --allow-image-change", secrets.join(" ")));
                    say(
                        output,
                        "skipped",
                        serde_json::json!({"secrets": secrets, "why": e.message, "next_steps": [next]}),
                        format!(
                            "{} not synced: {}; run `{next}` to ship it with the secret",
                            secrets.join(", "),
                            e.message
                        ),
                    );
                    for (arn, _, now) in confirmed {
                        seen.insert(arn, now);
                    }
                }
                // Not marked seen: the next look tries again.
                Some(Err(e)) => say(
                    output,
                    "error",
                    serde_json::json!({"error": e.message, "hint": e.hint}),
                    e.message.clone(),
                ),
            }
        }
        first_look = false;
        let after = s.clients.calls.snapshot();
        let calls: BTreeMap<&String, u64> = after
            .iter()
            .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        say(
            output,
            "health",
            serde_json::json!({
                "watched": watched.len(),
                "changed": changed.len(),
                "rotating": rotating.len(),
                "syncs": syncs,
                "calls": calls,
            }),
            format!(
                "{} watched, {} changed, {} rotating, {syncs} sync(s) so far; calls {:?}",
                watched.len(),
                changed.len(),
                rotating.len(),
                calls
            ),
        );
        tokio::select! {
            _ = tokio::time::sleep(a.interval) => {}
            _ = stop.recv() => {
                say(output, "stopped", serde_json::json!({}), "stopped".to_string());
                return Ok(0);
            }
        }
    }
}
