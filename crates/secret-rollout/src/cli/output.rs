//! What goes to stdout: the plan and the report, as text for people, JSON for machines, or
//! one JSON line (`--output ndjson`, after the progress lines).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use secret_rollout_core::clients::Clients;
use secret_rollout_core::consumers::Consumer;
use secret_rollout_core::error::Error;
use secret_rollout_core::history::epoch_rfc3339;
use secret_rollout_core::journal::{Outcome, RotationKind};
use secret_rollout_core::plan::RotationPlan;
use secret_rollout_core::rotation::{outcome_word, Caller, PhaseReport, Report};
use secret_rollout_core::verdict::Stage;
use serde_json::json;

use super::args::Output;
use super::ndjson;
use super::render::{hms, hms_range};
use super::timeline;
use super::width;

fn age(created: Option<f64>) -> String {
    let Some(c) = created else {
        return "unknown age".into();
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let secs = (now - c).max(0.0) as u64;
    match secs {
        s if s < 120 => format!("{s}s old"),
        s if s < 7200 => format!("{}m old", s / 60),
        s if s < 172_800 => format!("{}h old", s / 3600),
        s => format!("{}d old", s / 86_400),
    }
}

fn pin_text(r: &secret_rollout_core::consumers::SecretRead) -> String {
    r.pin
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "AWSCURRENT".into())
}

fn consumer_line(c: &Consumer) -> String {
    let s = &c.service;
    let breaker = match s.circuit_breaker {
        Some((true, true)) => "circuit breaker with rollback",
        Some((true, false)) => "circuit breaker",
        _ => "no circuit breaker",
    };
    format!(
        "{:<10} {:<24} {} running / {} desired, min {}% max {}%, {breaker}",
        s.name, s.cluster, s.running, s.desired, s.min_healthy_percent, s.max_percent
    )
}

/// The plan as text, each line wrapped to `width` ([`width`]).
pub fn plan_text(p: &RotationPlan, out: &mut dyn Write, width: Option<usize>) {
    let mut body = Vec::new();
    plan_body(p, &mut body);
    for l in String::from_utf8_lossy(&body).lines() {
        for l in width::wrap(l, width) {
            let _ = writeln!(out, "{l}");
        }
    }
}

/// The plan's lines, unwrapped.
fn plan_body(p: &RotationPlan, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "environment {} ({})",
        p.target.label(),
        p.target.region
    );
    for s in &p.secrets {
        let _ = writeln!(out, "secret {}", s.info.name);
        let _ = writeln!(out, "  arn             {}", s.info.arn);
        let _ = writeln!(
            out,
            "  current version {} ({})",
            s.previous_version(),
            age(s.current_created)
        );
    }
    let _ = writeln!(
        out,
        "redeploy ({}), all at once:",
        p.consumers.redeploy.len()
    );
    for c in &p.consumers.redeploy {
        let _ = writeln!(out, "  {}", consumer_line(c));
        if c.service.staged() {
            let _ = writeln!(
                out,
                "    strategy {}: at least {} of bake and traffic steps",
                c.service.strategy,
                secret_rollout_core::rollout::strategy::human_seconds(c.service.least_rollout_secs)
            );
        }
        for r in c.pinned_reads() {
            let _ = writeln!(
                out,
                "    note: container {} also reads {} pinned to {}: that reference keeps the old value",
                r.site.container, r.secret_name, pin_text(r)
            );
        }
    }
    for c in &p.consumers.pinned {
        let pins: Vec<String> = c
            .pinned_reads()
            .map(|r| format!("{} pinned to {}", r.secret_name, pin_text(r)))
            .collect();
        let _ = writeln!(
            out,
            "  pinned: {} reads {}: it will keep the old value, not redeployed",
            c.service.name,
            pins.join(", ")
        );
    }
    for c in &p.consumers.unsupported {
        let _ = writeln!(
            out,
            "  cannot redeploy: {} is deployed by {} (a forced new deployment does not roll it out)",
            c.service.name, c.service.controller
        );
    }
    for c in &p.consumers.idle {
        let _ = writeln!(
            out,
            "  skipped: {} has desired count 0 (its next task reads the new value)",
            c.service.name
        );
    }
    for c in &p.consumers.excluded {
        let _ = writeln!(
            out,
            "  excluded by --services: {} (keeps the old value until its next deployment)",
            c.service.name
        );
    }
    for c in &p.consumers.outside {
        let _ = writeln!(
            out,
            "  outside the environment's services list: {} (keeps the old value until its next deployment)",
            c.service.name
        );
    }
    for f in &p.consumers.one_off {
        let _ = writeln!(
            out,
            "  one-off family {}:{} picks up the new value at its next run",
            f.family, f.revision
        );
    }
    for (i, s) in p.secrets.iter().enumerate() {
        if p.consumers.unread(i) {
            let _ = writeln!(
                out,
                "  warning: no service or task family reads {}: the new value is written, nothing is redeployed",
                s.info.name
            );
        }
    }
    for line in p.held.iter().filter_map(|h| h.line()) {
        let _ = writeln!(out, "  warning: {line}");
    }
    for b in &p.busy {
        let _ = writeln!(
            out,
            "  warning: mid-deployment: {} (replace refuses unless --wait or --allow-concurrent-deploy)",
            secret_rollout_core::rotation::decide::busy_line(b)
        );
    }
    for c in &p.images.containers {
        if let Some(line) = c.line() {
            let _ = match c.verdict {
                secret_rollout_core::images::Verdict::Changed { .. } => writeln!(
                    out,
                    "  warning: new image: {line} (replace refuses unless --allow-image-change)"
                ),
                _ => writeln!(out, "  note: {line}"),
            };
        }
    }
    if p.consumers.no_readers() {
        let _ = writeln!(
            out,
            "then: write a new version of {} secret(s); nothing to redeploy or prove (the run ends \"written, no readers\")",
            p.secrets.len()
        );
    } else {
        let _ = writeln!(
            out,
            "then: write a new version of {} secret(s), redeploy {} service(s), follow each deployment, prove every running task is new; on failure restore the previous version",
            p.secrets.len(),
            p.redeploy.len()
        );
    }
}

/// The plan as JSON.
pub fn plan_json(p: &RotationPlan, clients: &Clients) -> serde_json::Value {
    let names = |cs: &[Consumer]| {
        cs.iter()
            .map(|c| json!({"cluster": c.service.cluster, "service": c.service.name}))
            .collect::<Vec<_>>()
    };
    json!({
        "environment": p.target.label(),
        "region": p.target.region,
        "secrets": p.secrets.iter().map(|s| json!({
            "name": s.info.name, "arn": s.info.arn, "current_version": s.info.current, "current_created": s.current_created.map(secret_rollout_core::history::epoch_rfc3339),
        })).collect::<Vec<_>>(),
        "redeploy": p.consumers.redeploy.iter().map(|c| json!({
            "cluster": c.service.cluster, "service": c.service.name, "running": c.service.running, "desired": c.service.desired,
            "min_healthy_percent": c.service.min_healthy_percent, "max_percent": c.service.max_percent,
            "deployment": p.redeploy.iter().find(|(r, _)| r.service == c.service.name && r.cluster == c.service.cluster).and_then(|(_, d)| d.clone()),
        })).collect::<Vec<_>>(),
        "pinned": names(&p.consumers.pinned),
        "unsupported": names(&p.consumers.unsupported),
        "idle": names(&p.consumers.idle),
        "excluded": names(&p.consumers.excluded),
        "outside": names(&p.consumers.outside),
        "unread": p.secrets.iter().enumerate().filter(|(i, _)| p.consumers.unread(*i)).map(|(_, s)| s.info.name.clone()).collect::<Vec<_>>(),
        "images": p.images.containers,
        "image_check_calls": p.images.calls,
        "busy": p.busy.iter().map(|b| json!({
            "cluster": b.cluster, "service": b.service, "deployment": b.deployment, "state": b.state,
            "since": epoch_rfc3339(b.since), "updated": (b.updated > 0.0).then(|| epoch_rfc3339(b.updated)),
        })).collect::<Vec<_>>(),
        "locks": p.held.iter().map(held_json).collect::<Vec<_>>(),
        "one_off": p.consumers.one_off.iter().map(|f| json!({"family": f.family, "revision": f.revision})).collect::<Vec<_>>(),
        "aws_calls": clients.calls.snapshot(),
    })
}

/// One secret's lock and unfinished rotation, as `plan --output json` gives them:
/// `replace_refuses` says whether `replace` would be refused now, `line` and `hint` what the
/// text says, `local` the local lock (`held`: true, false, or null when it cannot be told
/// without taking it), `team` the lock object in the bucket, `unfinished` the rotation.
fn held_json(h: &secret_rollout_core::rotation::held::Held) -> serde_json::Value {
    use secret_rollout_core::lock::Seen;
    let local = match &h.local {
        Seen::Free => json!({"held": false}),
        Seen::Held {
            pid,
            taken_secs_ago,
        } => json!({"held": true, "pid": pid, "taken_secs_ago": taken_secs_ago}),
        Seen::Unknown { pid } => json!({"held": null, "pid": pid}),
    };
    let team = h.team.as_ref().map(|f| {
        let holder = f.holder.as_ref();
        json!({
            "key": f.key,
            "rotation_id": holder.map(|x| x.rotation_id),
            "caller_arn": holder.map(|x| &x.caller_arn),
            "host": holder.map(|x| &x.host),
            "pid": holder.map(|x| x.pid),
            "started_at": holder.map(|x| secret_rollout_core::history::rfc3339(x.started_at)),
            "lease_ms": holder.map(|x| x.lease_ms),
            "last_renewed_secs_ago": f.age().map(|a| a.as_secs()),
            "expired": f.expired(),
        })
    });
    let unfinished = h.unfinished.as_ref().map(|o| {
        json!({
            "rotation_id": o.rotation_id(),
            "kind": o.started.kind,
            "started_at": secret_rollout_core::history::rfc3339(o.started.started_at),
        })
    });
    json!({
        "secret": h.name, "arn": h.arn, "replace_refuses": h.in_the_way(),
        "local": local, "team": team, "unfinished": unfinished,
        "line": h.line(), "hint": h.hint,
    })
}

/// Prints the plan to stdout, and who is signed in (`caller`: account and ARN). With
/// `--output json` and a `refusal` (why `replace` would stop), the plan document carries
/// the error's fields too, so stdout stays one document.
pub fn plan(
    output: Output,
    p: &RotationPlan,
    clients: &Clients,
    caller: &Caller,
    refusal: Option<&Error>,
) {
    let with_caller = || {
        let mut doc = plan_json(p, clients);
        if let Some(fields) = doc.as_object_mut() {
            fields.insert(
                "caller".into(),
                json!({"account": caller.account, "arn": caller.arn}),
            );
        }
        doc
    };
    match output {
        Output::Ndjson => ndjson::print_document("plan", &with_caller()),
        Output::Text => {
            let mut out = std::io::stdout().lock();
            let w = width::stdout();
            plan_text(p, &mut out, w);
            for l in width::wrap(
                &format!("signed in as {} (account {})", caller.arn, caller.account),
                w,
            ) {
                let _ = writeln!(out, "{l}");
            }
        }
        Output::Json => {
            let mut doc = with_caller();
            if let (Some(e), Some(fields)) = (refusal, doc.as_object_mut()) {
                if let serde_json::Value::Object(error) = error_json(e) {
                    fields.extend(error);
                }
            }
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            mark_document_written();
        }
    }
}

/// Whether the command's one `--output json` document is already on stdout.
static DOCUMENT_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Records that stdout holds the command's `--output json` document: an error after it
/// is in it (a refused plan), not a second document.
pub fn mark_document_written() {
    DOCUMENT_WRITTEN.store(true, Ordering::SeqCst);
}

/// The JSON of an error that ended a command: `outcome` (the kind: `bad_input`,
/// `credentials`, `refused`, ...), `exit_code`, `error` (the one line), `hint`, `details`.
/// Errors never hold a secret value.
pub fn error_json(e: &Error) -> serde_json::Value {
    json!({
        "outcome": e.kind.name(),
        "exit_code": e.exit_code(),
        "error": e.message,
        "hint": e.hint,
        "details": e.details,
    })
}

/// With `--output json` or `ndjson`, the error as a document on stdout (the line on
/// stderr is printed besides, by the caller); nothing for text.
pub fn print_error(output: Output, e: &Error) {
    match output {
        Output::Text => {}
        Output::Ndjson => ndjson::print_error(e),
        Output::Json => {
            if !DOCUMENT_WRITTEN.swap(true, Ordering::SeqCst) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&error_json(e)).unwrap_or_default()
                );
                let _ = out.flush();
            }
        }
    }
}

fn phase_text(out: &mut dyn Write, title: &str, p: &PhaseReport) {
    let _ = writeln!(out, "{title}:");
    for s in &p.services {
        let stage = match &s.stage {
            Stage::Completed => "complete".to_string(),
            Stage::Draining => "still in progress (old tasks draining)".to_string(),
            Stage::Starting => "still in progress".to_string(),
            Stage::Failed { reason } => format!("FAILED: {reason}"),
        };
        match &s.proof {
            Some(proof) if proof.nothing_to_prove => {
                let _ = writeln!(
                    out,
                    "  {:<10} nothing to prove: desired 0, no task runs ({})",
                    s.service,
                    s.deployment_id.as_deref().unwrap_or("-")
                );
            }
            Some(proof) => {
                let range = proof
                    .started
                    .map(|(a, b)| format!(", started {}", hms_range(a, b)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:<10} {}/{} tasks proven new ({}{range})",
                    s.service,
                    proof.fresh,
                    proof.total,
                    s.deployment_id.as_deref().unwrap_or("-")
                );
                for st in &proof.stale {
                    let _ = writeln!(out, "    stale task {}: {}", st.task, st.reason);
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {:<10} {stage} ({})",
                    s.service,
                    s.deployment_id.as_deref().unwrap_or("no deployment")
                );
            }
        }
        if let Some(v) = &s.staged {
            let _ = writeln!(out, "    {}", staged_line(v, &s.stage, s.times.traffic));
        }
    }
}

/// A staged deployment's line under its service: strategy, then the traffic moment and
/// "complete" after bake and clean-up, or where it stood. `ecs_traffic`: the moment on
/// ECS's clock (the timeline's T), shown when known, so that the line agrees with the
/// deployment's start printed above it (ECS's clock too); `traffic_moved_at` is the
/// tool's, which on a sandbox (the demo) runs apart from ECS's.
fn staged_line(
    v: &secret_rollout_core::rollout::StagedView,
    stage: &Stage,
    ecs_traffic: Option<f64>,
) -> String {
    let mut parts = vec![v.strategy.clone()];
    match v.traffic_moved_at {
        Some(at) => parts.push(format!(
            "all production traffic on the new revision at {}",
            hms(ecs_traffic.unwrap_or(at))
        )),
        None => {
            if !v.lifecycle_stage.is_empty() {
                parts.push(format!("lifecycle stage {}", v.lifecycle_stage));
            }
            if let Some(w) = v.production_traffic {
                parts.push(format!("production traffic {w}% on the new revision"));
            }
        }
    }
    if *stage == Stage::Completed {
        parts.push("complete after bake and clean-up".to_string());
    } else if v.traffic_moved_at.is_some() && !v.lifecycle_stage.is_empty() {
        parts.push(format!("last seen at {}", v.lifecycle_stage));
    }
    parts.join(", ")
}

/// The report as text, laid out to `width` ([`width`]): the outcome, the secrets, each
/// phase's services, each phase's timeline ([`timeline`]), then why, the commands to run
/// (broken with ` \` continuations, never cut) and the counts.
pub fn report_text(r: &Report, out: &mut dyn Write, width: Option<usize>) {
    let mut head = Vec::new();
    report_head(r, &mut head);
    for l in String::from_utf8_lossy(&head).lines() {
        for l in width::wrap(l, width) {
            let _ = writeln!(out, "{l}");
        }
    }
    for (name, p) in [("rollout", &r.rollout), ("restore", &r.restore)] {
        if let Some(p) = p {
            for l in timeline::render(&timeline::rows_of_phase(name, p), width) {
                let _ = writeln!(out, "{l}");
            }
        }
    }
    if let Some(m) = &r.message {
        for l in width::wrap(&format!("why: {m}"), width) {
            let _ = writeln!(out, "{l}");
        }
    }
    if !r.manual_restore.is_empty() {
        let _ = writeln!(out, "to restore by hand, run:");
        for c in &r.manual_restore {
            for l in width::command("  ", c, width) {
                let _ = writeln!(out, "{l}");
            }
        }
    }
    for c in &r.next_steps {
        for l in width::command("next: ", c, width) {
            let _ = writeln!(out, "{l}");
        }
    }
    let total: u64 = r.aws_calls.values().sum();
    let calls = format!(
        "{total} AWS calls in {:.1}s; journal id {}",
        r.elapsed_ms as f64 / 1000.0,
        r.rotation_id
    );
    for l in width::wrap(&calls, width) {
        let _ = writeln!(out, "{l}");
    }
}

/// The report's first part, unwrapped: outcome, secrets, phases.
fn report_head(r: &Report, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "rotation {} in {}: {}",
        r.rotation_id,
        r.environment,
        outcome_word(r.outcome)
    );
    for s in &r.secrets {
        let prev = s.previous_version.as_deref().unwrap_or("-");
        match (&s.new_version, s.restored) {
            (Some(new), false) if r.outcome == Outcome::Superseded => {
                let _ = writeln!(
                    out,
                    "  {}: {prev} -> {new} written, then someone else's version became AWSCURRENT",
                    s.name
                );
            }
            (Some(new), false) if r.kind == RotationKind::Rollback => {
                let _ = writeln!(
                    out,
                    "  {}: AWSCURRENT not moved back to {prev} (it was {new})",
                    s.name
                );
            }
            (Some(new), false) => {
                // A parameter has no AWSCURRENT: ECS reads its latest version.
                let now = if secret_rollout_core::store::is_parameter(&s.arn) {
                    "latest"
                } else {
                    "AWSCURRENT"
                };
                let _ = writeln!(out, "  {}: {prev} -> {new} ({now})", s.name);
            }
            // A rollback writes nothing: it moves AWSCURRENT off `new` (the version the
            // undone rotation wrote) back to `prev`.
            (Some(new), true) if r.kind == RotationKind::Rollback => {
                let _ = writeln!(
                    out,
                    "  {}: AWSCURRENT moved back from {new} to {prev}",
                    s.name
                );
            }
            (Some(new), true) => {
                let _ = writeln!(
                    out,
                    "  {}: {new} written, then AWSCURRENT restored to {prev}",
                    s.name
                );
            }
            (None, _) => {
                let _ = writeln!(out, "  {}: current version {prev}", s.name);
            }
        }
    }
    if r.outcome == Outcome::WrittenNoReaders {
        // Nothing was redeployed: no rollout section, one line that says why.
        let _ = writeln!(
            out,
            "no readers: no service or task family reads it, so nothing was redeployed and there is no task to prove"
        );
    }
    if let Some(p) = &r.rollout {
        phase_text(out, "rollout", p);
    }
    if let Some(p) = &r.restore {
        phase_text(out, "restore", p);
    }
    for c in &r.image_changed {
        if let Some(line) = c.line() {
            let _ = writeln!(out, "  also changed image: {line}");
        }
    }
    for c in &r.restore_image_changed {
        if let Some(line) = c.line() {
            let _ = writeln!(out, "  restore also changed image: {line}");
        }
    }
    for s in &r.nothing_to_prove {
        let _ = writeln!(
            out,
            "  {:<10} nothing to prove: desired 0, no task runs (not redeployed)",
            s.service
        );
    }
}

/// Prints the report to stdout (with `--output ndjson`: the last line, `"type": "report"`).
pub fn report(output: Output, r: &Report) {
    match output {
        Output::Ndjson => ndjson::print_document("report", r),
        Output::Text => report_text(r, &mut std::io::stdout().lock(), width::stdout()),
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
            mark_document_written();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secret_rollout_core::rollout::StagedView;

    #[test]
    fn a_staged_deployment_says_its_strategy_traffic_moment_and_completion() {
        let moved = StagedView {
            strategy: "LINEAR".into(),
            lifecycle_stage: "CLEAN_UP".into(),
            production_traffic: Some(100.0),
            traffic_moved_at: Some(1_796_078_228.7),
            traffic_moved_ecs: None,
        };
        let at = hms(1_796_078_228.7);
        assert_eq!(
            staged_line(&moved, &Stage::Completed, None),
            format!("LINEAR, all production traffic on the new revision at {at}, complete after bake and clean-up")
        );
        assert_eq!(
            staged_line(
                &StagedView {
                    lifecycle_stage: "BAKE_TIME".into(),
                    ..moved.clone()
                },
                &Stage::Draining,
                None
            ),
            format!("LINEAR, all production traffic on the new revision at {at}, last seen at BAKE_TIME")
        );
        // ECS's moment, when the follow saw it, wins over the tool's clock.
        let ecs = 1_796_070_000.0;
        assert_eq!(
            staged_line(&moved, &Stage::Completed, Some(ecs)),
            format!(
                "LINEAR, all production traffic on the new revision at {}, complete after bake and clean-up",
                hms(ecs)
            )
        );
        let midway = StagedView {
            strategy: "CANARY".into(),
            lifecycle_stage: "PRODUCTION_TRAFFIC_SHIFT".into(),
            production_traffic: Some(20.0),
            traffic_moved_at: None,
            traffic_moved_ecs: None,
        };
        assert_eq!(
            staged_line(
                &midway,
                &Stage::Failed {
                    reason: "alarm".into()
                },
                Some(ecs)
            ),
            "CANARY, lifecycle stage PRODUCTION_TRAFFIC_SHIFT, production traffic 20% on the new revision"
        );
    }
}
