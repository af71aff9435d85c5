//! `history`: past rotations from the journal and, with a secret, its versions in Secrets
//! Manager. Never a value: nothing here reads one.

use std::io::Write;

use clap::Args;
use secret_rollout_core::error::{exit, Error, Result};
use secret_rollout_core::history::{self, History};
use secret_rollout_core::journal;

use super::args::{Global, Output, Target};
use super::ndjson;
use super::session;
use super::timeline;
use super::width::{self, Col};

/// `history`.
#[derive(Debug, Args, Clone)]
pub struct HistoryArgs {
    /// Only this secret; with it, its versions are read from Secrets Manager too. A
    /// rotation id (a UUID) shows that rotation and the timeline of its deployments.
    #[arg(value_name = "SECRET|ROTATION_ID")]
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

/// The history as text, laid out to `w` columns ([`width`]).
pub fn text(h: &History, w: Option<usize>) -> String {
    let mut out = String::new();
    for l in prose(h).lines() {
        for l in width::wrap(l, w) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    if let Some(s) = &h.secret {
        out.push_str(&versions(s, w));
    }
    out
}

/// The rotations (and the title of the versions), one line each, unwrapped.
fn prose(h: &History) -> String {
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
            "\nVersions of {} in {} (oldest first):\n",
            s.name,
            if secret_rollout_core::store::is_parameter(&s.arn) {
                "Parameter Store"
            } else {
                "Secrets Manager"
            }
        ));
    }
    out
}

/// The versions of a secret as a table.
fn versions(s: &history::SecretVersions, w: Option<usize>) -> String {
    let mut out = String::new();
    {
        let rows: Vec<Vec<String>> = s
            .versions
            .iter()
            .map(|v| {
                vec![
                    v.id.clone(),
                    if v.stages.is_empty() && secret_rollout_core::store::is_parameter(&s.arn) {
                        "-".into()
                    } else if v.stages.is_empty() {
                        "(deprecated)".into()
                    } else {
                        v.stages.join(",")
                    },
                    date(v.created),
                ]
            })
            .collect();
        let cols = [
            Col::whole("VERSION"),
            Col::cut("STAGES"),
            Col::whole("CREATED"),
        ];
        for l in width::table(&cols, &rows, w, &|_, _| None) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// The rotation id `arg` names, if it is one (a hyphenated UUID).
fn rotation_id(arg: &str) -> Option<uuid::Uuid> {
    (arg.len() == 36)
        .then(|| uuid::Uuid::parse_str(arg).ok())
        .flatten()
}

/// `history ROTATION_ID`: the rotation as `history` lists it, then the timeline of each of
/// its phases from the journal (rotations recorded before timelines were kept have none).
fn show_rotation(
    global: &Global,
    rotations: &[journal::RotationSummary],
    id: uuid::Uuid,
    a: &HistoryArgs,
) -> Result<i32> {
    let Some(r) = rotations.iter().find(|r| r.rotation_id() == id) else {
        return Err(
            Error::bad_input(format!("no rotation {id} in the journal of this machine")).hint(
                format!(
                    "list the rotations with `{}`",
                    session::reach(global, &a.target).command("history")
                ),
            ),
        );
    };
    let h = History {
        rotations: history::entries(std::slice::from_ref(r), None, None),
        secret: None,
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
            let w = width::stdout();
            let _ = write!(stdout, "{}", text(&h, w));
            let mut drawn = false;
            for (phase, times) in &r.times {
                let name = match phase {
                    journal::Phase::Rollout => "rollout",
                    journal::Phase::Restore => "restore",
                };
                for l in timeline::render(&timeline::rows_of_journal(name, times), w) {
                    let _ = writeln!(stdout, "{l}");
                    drawn = true;
                }
            }
            if !drawn {
                let _ = writeln!(
                    stdout,
                    "no timeline: the journal holds no deployment times for this rotation"
                );
            }
        }
    }
    Ok(exit::OK)
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
    // A rotation id (a UUID): that rotation and its timeline; anything else is a secret.
    if let Some(id) = a.secret.as_deref().and_then(rotation_id) {
        return show_rotation(global, &rotations, id, a);
    }
    let (secret_arn, versions) = match &a.secret {
        Some(name) => {
            // Only Secrets Manager is read here, so no cluster is needed.
            let target = session::account_target(global, &a.target)?;
            let id = target.secret_id(name);
            let s = match signed {
                Some(s) => s,
                None => session::sign_in(target, &a.target).await?,
            };
            let info = secret_rollout_core::store::describe(&s.clients, &id).await?;
            let versions =
                secret_rollout_core::store::versions(&s.clients, &info.arn, &info.name).await?;
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
            let _ = write!(stdout, "{}", text(&h, width::stdout()));
        }
    }
    Ok(exit::OK)
}
