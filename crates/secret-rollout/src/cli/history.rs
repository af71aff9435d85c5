//! `history`: past rotations from the journal and, with a secret, its versions in Secrets
//! Manager. Never a value: nothing here reads one.

use std::io::Write;

use clap::Args;
use secret_rollout_core::error::{exit, Result};
use secret_rollout_core::history::{self, History};
use secret_rollout_core::journal;
use secret_rollout_core::secret;

use super::args::{Global, Output, Target};
use super::ndjson;
use super::session;

/// `history`.
#[derive(Debug, Args, Clone)]
pub struct HistoryArgs {
    /// Only this secret; with it, its versions are read from Secrets Manager too.
    #[arg(value_name = "SECRET")]
    pub secret: Option<String>,
    /// Where.
    #[command(flatten)]
    pub target: Target,
}

fn date(epoch: Option<f64>) -> String {
    epoch
        .map(super::render::datetime)
        .unwrap_or_else(|| "unknown".into())
}

/// The history as text.
pub fn text(h: &History) -> String {
    let mut out = String::new();
    if h.rotations.is_empty() {
        out.push_str("No rotations recorded on this machine.\n");
    }
    for r in &h.rotations {
        out.push_str(&format!(
            "{}  {:<8}  {:<15}  {}\n",
            super::render::datetime_rfc3339(&r.started_at),
            r.kind,
            r.outcome,
            r.id
        ));
        out.push_str(&format!(
            "  by {} in {} ({}, account {})\n",
            r.caller_arn, r.environment, r.region, r.account
        ));
        if let Some(rb) = &r.rolls_back {
            out.push_str(&format!("  rolls back {rb}\n"));
        }
        for s in &r.secrets {
            let key = s
                .json_key
                .as_deref()
                .map(|k| format!(" (key {k})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  secret {}{key}: {} -> {}",
                s.name,
                s.previous_version_id.as_deref().unwrap_or("none"),
                s.new_version_id.as_deref().unwrap_or("not written")
            ));
            if let Some(v) = &s.restored_version_id {
                out.push_str(&format!(", restored to {v}"));
            }
            out.push('\n');
        }
        for s in &r.services {
            let mut deps = Vec::new();
            if let Some(d) = &s.rollout_deployment {
                deps.push(format!("rollout {d}"));
            }
            if let Some(d) = &s.restore_deployment {
                deps.push(format!("restore {d}"));
            }
            if deps.is_empty() {
                deps.push("not redeployed".into());
            }
            out.push_str(&format!(
                "  service {}/{}: {}\n",
                s.cluster,
                s.name,
                deps.join(", ")
            ));
        }
        if let Some(m) = &r.message {
            out.push_str(&format!("  message: {m}\n"));
        }
        if let Some(f) = &r.finished_at {
            out.push_str(&format!(
                "  finished {}\n",
                super::render::datetime_rfc3339(f)
            ));
        }
    }
    if let Some(s) = &h.secret {
        out.push_str(&format!(
            "\nVersions of {} in Secrets Manager (oldest first):\n",
            s.name
        ));
        let rows: Vec<Vec<String>> = s
            .versions
            .iter()
            .map(|v| {
                vec![
                    v.id.clone(),
                    if v.stages.is_empty() {
                        "(deprecated)".into()
                    } else {
                        v.stages.join(",")
                    },
                    date(v.created),
                ]
            })
            .collect();
        out.push_str(&super::status::table(
            &["VERSION", "STAGES", "CREATED"],
            &rows,
            &|_, _, c| c,
        ));
    }
    out
}

/// `history`.
pub async fn run(global: &Global, a: &HistoryArgs) -> Result<i32> {
    let state_dir = session::state_dir()?;
    // An environment with a team state: sign in to read it (rotations of other machines).
    let mut signed = None;
    if let Some(env) = &a.target.env {
        let config = session::load_config(global)?;
        if config
            .as_ref()
            .and_then(|c| c.environments.get(env))
            .is_some_and(|e| e.state.is_some())
        {
            let target = session::account_target(global, &a.target)?;
            let s = session::sign_in(target, &a.target).await?;
            session::synced_backend(global, &a.target, &s).await?;
            signed = Some(s);
        }
    }
    let rotations = journal::list(&state_dir)?;
    let (secret_arn, versions) = match &a.secret {
        Some(name) => {
            // Only Secrets Manager is read here, so no cluster is needed.
            let target = session::account_target(global, &a.target)?;
            let id = target.secret_id(name);
            let s = match signed {
                Some(s) => s,
                None => session::sign_in(target, &a.target).await?,
            };
            let info = secret::describe(&s.clients.sm, &id).await?;
            let versions = secret::versions(&s.clients.sm, &info.arn).await?;
            (
                Some(info.arn.clone()),
                Some(history::SecretVersions {
                    name: info.name,
                    arn: info.arn,
                    versions: history::sort_versions(versions),
                }),
            )
        }
        None => (None, None),
    };
    let h = History {
        rotations: history::entries(&rotations, secret_arn.as_deref(), a.target.env.as_deref()),
        secret: versions,
    };
    let mut stdout = std::io::stdout().lock();
    match global.output {
        Output::Ndjson => ndjson::print_document("history", &h),
        Output::Json => {
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&h).unwrap_or_default()
            );
        }
        Output::Text => {
            let _ = write!(stdout, "{}", text(&h));
        }
    }
    Ok(exit::OK)
}
