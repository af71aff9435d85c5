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
