//! `status`: a table per environment of deployments, secrets read and stale tasks; JSON
//! with `--output json` (one line per refresh with `--output ndjson`); `--watch` refreshes
//! every 2 s until Ctrl-C.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use secret_rollout_core::error::{Reach, Result};
use secret_rollout_core::journal;
use secret_rollout_core::rollout::strategy;
use secret_rollout_core::rotation::decide::{stale_advice, StaleAdvice};
use secret_rollout_core::status::{self, Status};

use super::args::{Global, Output, Target};
use super::ndjson;
use super::render::{datetime, hms, use_color};
use super::session;
use super::width::{self, Col};

/// `status`.
#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// Secrets to check (default: every secret the services read).
    #[arg(value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// Where.
    #[command(flatten)]
    pub target: Target,
    /// Refresh in place every few seconds until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
}

const WATCH_EVERY: Duration = Duration::from_secs(2);

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// How far a service's secrets are indented beneath it.
const INDENT: &str = "  ";

fn push(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// A line of prose, wrapped to `width`.
fn push_wrapped(out: &mut String, line: &str, width: Option<usize>) {
    for l in width::wrap(line, width) {
        push(out, &l);
    }
}

fn deployments_cell(s: &status::ServiceStatus) -> String {
    let Some(p) = s.deployments.iter().find(|d| d.status == "PRIMARY") else {
        return "none".into();
    };
    let mut cell = format!("{} {} {}/{}", p.id, p.rollout_state, p.running, p.desired);
    let others = s.deployments.len().saturating_sub(1);
    if others > 0 {
        cell.push_str(&format!(" (+{others} older)"));
    }
    cell
}

/// The service's name in the table: marked when it is outside the environment's
/// `services` list (shown because it reads a checked secret).
fn service_cell(s: &status::ServiceStatus) -> String {
    if s.outside_services_list {
        format!("{} (outside)", s.name)
    } else {
        s.name.clone()
    }
}

/// What `status` suggests for its stale tasks, as commands ready to paste (`reach`: the
/// options it was given): a rollback where the current value is one a kept failure left,
/// else a redeploy.
pub fn advice(advice: &StaleAdvice, reach: &Reach) -> String {
    let mut parts = Vec::new();
    if !advice.redeploy.is_empty() {
        parts.push(format!(
            "redeploy them (`{}`)",
            reach.command(&format!(
                "redeploy --services {}",
                advice.redeploy.join(",")
            ))
        ));
    }
    for (id, secret, services) in &advice.rollback {
        parts.push(format!(
            "{secret} is still the value rotation {id} failed with and kept, so a redeploy would relaunch {} onto it: roll it back (`{}`)",
            services.join(", "),
            reach.command(&format!("rollback {id}"))
        ));
    }
    parts.join("; ")
}

/// How `status` lays its text out: the width ([`width`]) and the environment's secret
/// prefix, left out of the secrets' names when they start with it.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Columns to fit, if any.
    pub width: Option<usize>,
    /// `secret_prefix` of the environment.
    pub prefix: Option<String>,
}

impl Layout {
    /// A secret's name as the table shows it.
    fn name<'a>(&self, name: &'a str) -> &'a str {
        self.prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .and_then(|p| name.strip_prefix(p))
            .filter(|rest| !rest.is_empty())
            .unwrap_or(name)
    }
}

/// Per service and container: the image as written (an ECR image without its registry
/// host) and the digests its running tasks run, short (`--output json` has them whole), as
/// a table laid out to `width` (issue 18: a redeploy resolves a tag anew; `plan` compares
/// them with the tags).
fn images_lines(st: &Status, width: Option<usize>) -> Vec<String> {
    let clusters: std::collections::BTreeSet<&str> =
        st.services.iter().map(|s| s.cluster.as_str()).collect();
    let mut rows = Vec::new();
    for s in &st.services {
        let service = if clusters.len() > 1 {
            format!("{}/{}", s.cluster, s.name)
        } else {
            s.name.clone()
        };
        for i in &s.images {
            let image = match i.image.split_once('/') {
                Some((host, rest)) if host.contains(".dkr.ecr.") => rest,
                _ if i.image.is_empty() => "?",
                _ => &i.image,
            };
            let digest = match &i.digest {
                Some(d) => d.get(..19).unwrap_or(d).to_string(),
                None => "not pulled yet".to_string(),
            };
            rows.push(vec![
                service.clone(),
                i.container.clone(),
                image.to_string(),
                digest,
                i.tasks.to_string(),
            ]);
        }
    }
    if rows.is_empty() {
        return Vec::new();
    }
    let cols = [
        Col::whole("SERVICE"),
        Col::whole("CONTAINER"),
        Col::cut("IMAGE"),
        Col::whole("DIGEST"),
        Col::whole("TASKS"),
    ];
    let inner = width.map(|w| w.saturating_sub(INDENT.len()));
    width::table(&cols, &rows, inner, &|_, _| None)
        .into_iter()
        .map(|l| format!("{INDENT}{l}"))
        .collect()
}

/// A weight as ECS gave it: `100`, `12.5`.
fn percent(w: f64) -> String {
    format!("{}%", (w * 100.0).round() / 100.0)
}

/// What a blue/green, linear or canary deployment under way says (its service
/// deployment): stage, traffic, bake, and the old deployment's tasks that get no
/// production traffic. ECS gives no moment the bake began: the traffic moment this
/// machine saw is given as what it began after, never an end made up from it.
pub fn staged_line(s: &status::ServiceStatus) -> Option<String> {
    let d = s.staged_deployment.as_ref()?;
    let mut parts = vec![format!(
        "{} service deployment {}, stage {}",
        if d.strategy.is_empty() {
            "staged"
        } else {
            &d.strategy
        },
        d.status,
        if d.lifecycle_stage.is_empty() {
            "not given"
        } else {
            &d.lifecycle_stage
        }
    )];
    let mut traffic = Vec::new();
    if let Some(p) = d.production_traffic_weight {
        traffic.push(format!("production traffic {}", percent(p)));
    }
    if let Some(t) = d.test_traffic_weight {
        traffic.push(format!("test traffic {}", percent(t)));
    }
    if !traffic.is_empty() {
        let on = if d.deployment_id.is_empty() {
            "the new revision"
        } else {
            &d.deployment_id
        };
        parts.push(format!("{} on {on}", traffic.join(", ")));
    }
    let bake = d
        .bake_time_minutes
        .map(|m| strategy::human_seconds(u64::try_from(m.max(0)).unwrap_or(0) * 60));
    if d.baking {
        parts.push(match (bake, d.traffic_shifted_at) {
            (Some(b), Some(at)) => format!(
                "bake of {b}, began after the production traffic shift seen at {} (ECS does not give the moment the bake began)",
                datetime(at)
            ),
            (Some(b), None) => format!("bake of {b} (ECS does not give the moment it began)"),
            (None, _) => "baking (ECS gave no bake time)".to_string(),
        });
    } else if let Some(b) = bake.filter(|_| d.lifecycle_stage != "CLEAN_UP") {
        parts.push(format!("bake time {b}"));
    }
    if !d.baking_tasks.is_empty() {
        parts.push(format!(
            "{} task(s) of the old deployment get no production traffic and stop when the bake ends",
            d.baking_tasks.len()
        ));
    }
    Some(parts.join("; "))
}

/// The line above a service's secrets: name, cluster, counts, deployment.
fn service_line(s: &status::ServiceStatus) -> String {
    format!(
        "{}  {}  {}/{} running, {} pending  deployment {}",
        service_cell(s),
        s.cluster,
        s.running,
        s.desired,
        s.pending,
        deployments_cell(s)
    )
}

/// The status as text. `color`: ANSI colours for the stale counts. `next`: what to do
/// about stale tasks ([`advice`]). Grouped by service: a line per service, the secrets it
/// reads indented beneath in one table, laid out to `layout`'s width.
pub fn text(st: &Status, color: bool, next: &str, layout: &Layout) -> String {
    let width = layout.width;
    let cols = [
        Col::cut("SECRET"),
        Col::whole("VERSION"),
        Col::whole("TASKS"),
        Col::whole("STALE"),
    ];
    // Rows of the secrets table, and for each service the range of its rows.
    let mut rows = Vec::new();
    let mut groups = Vec::new();
    for s in &st.services {
        let first = rows.len();
        if s.secrets.is_empty() {
            rows.push(vec![
                "-".into(),
                String::new(),
                s.tasks.len().to_string(),
                "-".into(),
            ]);
        }
        for r in &s.secrets {
            let stale = if r.tasks == 0 && !r.pinned.is_empty() {
                "pinned".to_string()
            } else if s.nothing_to_prove {
                "nothing to prove".to_string()
            } else {
                r.stale_tasks.len().to_string()
            };
            rows.push(vec![
                layout.name(&r.secret_name).to_string(),
                r.current_version
                    .as_deref()
                    .map(short)
                    .unwrap_or("-")
                    .to_string(),
                r.tasks.to_string(),
                stale,
            ]);
        }
        groups.push((s, first..rows.len()));
    }
    let paint = |col: usize, raw: &str| -> Option<comfy_table::Color> {
        if !color || col != 3 {
            return None;
        }
        match raw {
            "0" => Some(comfy_table::Color::Green),
            "-" | "pinned" | "nothing to prove" => None,
            _ => Some(comfy_table::Color::Red),
        }
    };
    let inner = width.map(|w| w.saturating_sub(INDENT.len()));
    let lines = width::table(&cols, &rows, inner, &paint);
    let mut out = String::new();
    push_wrapped(
        &mut out,
        "SERVICE  CLUSTER  RUNNING/DESIRED  PRIMARY DEPLOYMENT",
        width,
    );
    push(&mut out, &format!("{INDENT}{}", lines[0]));
    for (s, range) in groups {
        for l in width::wrap(&service_line(s), width) {
            push(&mut out, &l);
        }
        for l in &lines[range.start + 1..range.end + 1] {
            push(&mut out, &format!("{INDENT}{l}"));
        }
    }
    if let Some(p) = layout.prefix.as_deref().filter(|p| {
        !p.is_empty()
            && st
                .services
                .iter()
                .flat_map(|s| &s.secrets)
                .any(|r| layout.name(&r.secret_name) != r.secret_name)
    }) {
        push_wrapped(
            &mut out,
            &format!("(secret names without the environment's prefix {p})"),
            width,
        );
    }

    let mut stale_lines = Vec::new();
    let mut baking_lines = Vec::new();
    let mut pinned_lines = Vec::new();
    let mut unproven_lines = Vec::new();
    for s in &st.services {
        for r in &s.secrets {
            for id in &r.stale_tasks {
                let t = s.tasks.iter().find(|t| &t.id == id);
                let since = st
                    .secrets
                    .iter()
                    .find(|x| x.arn == r.secret_arn)
                    .and_then(|x| x.since);
                stale_lines.push(format!(
                    "  {}/{} task {id} ({}, created {}) holds an older {} (current since {})",
                    s.cluster,
                    s.name,
                    t.map(|t| t.started_by.as_str()).unwrap_or("?"),
                    t.map(|t| datetime(t.created_at)).unwrap_or_default(),
                    r.secret_name,
                    since.map(datetime).unwrap_or_default()
                ));
            }
            if !r.baking_tasks.is_empty() {
                let old: std::collections::BTreeSet<&str> = r
                    .baking_tasks
                    .iter()
                    .filter_map(|id| s.tasks.iter().find(|t| &t.id == id))
                    .map(|t| t.started_by.as_str())
                    .collect();
                baking_lines.push(format!(
                    "  {}/{}: {} task(s) of {} hold an older {}: they get no production traffic and stop when the bake ends ({})",
                    s.cluster,
                    s.name,
                    r.baking_tasks.len(),
                    if old.is_empty() {
                        "the old deployment".to_string()
                    } else {
                        old.into_iter().collect::<Vec<_>>().join(", ")
                    },
                    r.secret_name,
                    r.baking_tasks.join(", ")
                ));
            }
            for id in &r.unproven_tasks {
                unproven_lines.push(format!(
                    "  {}/{} task {id} may hold the current {} or the version current before its last change: status cannot tell",
                    s.cluster, s.name, r.secret_name
                ));
            }
            for p in &r.pinned {
                pinned_lines.push(format!(
                    "  {}/{} container {} {} reads {} pinned to {}: it keeps that version",
                    s.cluster, s.name, p.container, p.place, r.secret_name, p.pin
                ));
            }
        }
    }
    if !stale_lines.is_empty() {
        out.push('\n');
        push_wrapped(&mut out, "Stale tasks:", width);
        for l in stale_lines {
            push_wrapped(&mut out, &l, width);
        }
    }
    if !baking_lines.is_empty() {
        out.push('\n');
        push_wrapped(
            &mut out,
            "Baking (an old deployment beside the new one, all production traffic on the new):",
            width,
        );
        for l in baking_lines {
            push_wrapped(&mut out, &l, width);
        }
    }
    if !unproven_lines.is_empty() {
        out.push('\n');
        push_wrapped(
            &mut out,
            "Cannot be told (the secret changed after its version was created):",
            width,
        );
        for l in unproven_lines {
            push_wrapped(&mut out, &l, width);
        }
    }
    if !pinned_lines.is_empty() {
        out.push('\n');
        push_wrapped(&mut out, "Pinned references:", width);
        for l in pinned_lines {
            push_wrapped(&mut out, &l, width);
        }
    }
    let images = images_lines(st, width);
    if !images.is_empty() {
        out.push('\n');
        push_wrapped(
            &mut out,
            "Running images (digests as ECS reports them; whole in --output json):",
            width,
        );
        for l in images {
            push(&mut out, &l);
        }
    }
    let outside: Vec<String> = st
        .services
        .iter()
        .filter(|s| s.outside_services_list)
        .map(|s| format!("  {}/{}", s.cluster, s.name))
        .collect();
    if !outside.is_empty() {
        out.push('\n');
        push_wrapped(&mut out, "Outside the environment's services list (they read a checked secret; a rotation of this environment does not redeploy them, so each keeps the old value until its next deployment):", width);
        for l in outside {
            push_wrapped(&mut out, &l, width);
        }
    }
    let deploying: Vec<String> = st
        .services
        .iter()
        .filter(|s| s.deploying())
        .map(|s| {
            let states: Vec<String> = s
                .deployments
                .iter()
                .map(|d| {
                    format!(
                        "{} {} {} {}/{} running{}",
                        d.id,
                        d.status,
                        d.rollout_state,
                        d.running,
                        d.desired,
                        if d.failed_tasks > 0 {
                            format!(", {} failed", d.failed_tasks)
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            let line = format!("  {}/{}: {}", s.cluster, s.name, states.join("; "));
            match staged_line(s) {
                Some(staged) => format!("{line}\n    {staged}"),
                None => line,
            }
        })
        .collect();
    if !deploying.is_empty() {
        out.push('\n');
        push_wrapped(&mut out, "Deploying now:", width);
        for l in deploying.iter().flat_map(|l| l.lines()) {
            push_wrapped(&mut out, l, width);
        }
    }
    // Tasks of the services worth a look: deploying, or holding stale tasks. Listing every
    // task of a large environment would bury the table.
    let task_rows: Vec<Vec<String>> = st
        .services
        .iter()
        .filter(|s| s.deploying() || !s.stale_tasks().is_empty())
        .flat_map(|s| {
            let stale = s.stale_tasks();
            let baking = s.baking_tasks();
            s.tasks.iter().map(move |t| {
                vec![
                    s.name.clone(),
                    t.id.clone(),
                    t.started_by.clone(),
                    t.last_status.clone(),
                    t.task_definition_arn
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    datetime(t.created_at),
                    if stale.contains(t.id.as_str()) {
                        "stale".to_string()
                    } else if baking.contains(t.id.as_str()) {
                        "older, baking".to_string()
                    } else {
                        "current".to_string()
                    },
                ]
            })
        })
        .collect();
    if !task_rows.is_empty() {
        out.push_str("\nTasks:\n");
        let cols = [
            Col::cut("SERVICE"),
            Col::cut("TASK"),
            Col::cut("DEPLOYMENT"),
            Col::whole("STATUS"),
            Col::cut("TASK DEFINITION"),
            Col::whole("CREATED"),
            Col::whole("VALUE"),
        ];
        let paint = |col: usize, raw: &str| match raw {
            "stale" if color && col == 6 => Some(comfy_table::Color::Red),
            "older, baking" if color && col == 6 => Some(comfy_table::Color::Yellow),
            _ => None,
        };
        for l in width::table(&cols, &task_rows, width, &paint) {
            push(&mut out, &l);
        }
    }
    for n in &st.notes {
        out.push('\n');
        push_wrapped(&mut out, &format!("note: {n}"), width);
    }
    let stale_services = st
        .services
        .iter()
        .filter(|s| !s.stale_tasks().is_empty())
        .count();
    let baking = if st.baking == 0 {
        String::new()
    } else {
        format!(
            " {} task(s) of an old deployment hold an older value but get no production traffic: they stop when the bake ends, and `status` then shows the service clean.",
            st.baking
        )
    };
    let summary = if st.stale == 0 && st.baking > 0 {
        format!(
            "\nNo stale task serving production: every running task that gets production traffic holds the current version of the {} secret(s) checked.{baking}",
            st.secrets.len()
        )
    } else if st.stale == 0 {
        format!(
            "\nNo stale tasks: every running task holds the current version of the {} secret(s) checked.",
            st.secrets.len()
        )
    } else {
        format!(
            "\n{} stale task(s) in {} service(s): they started before the current version; {next}.{baking}",
            st.stale, stale_services,
        )
    };
    let summary = width::wrap_text(&summary, width);
    out.push_str(&if color {
        let code = if st.stale == 0 { 32 } else { 31 };
        format!("\x1b[{code}m{summary}\x1b[0m")
    } else {
        summary
    });
    out.push('\n');
    out
}

/// How a refresh is shown.
struct View {
    /// stdout is a terminal.
    terminal: bool,
    /// ANSI colours.
    color: bool,
    /// The options that reach the environment (for the commands suggested).
    reach: Reach,
    /// Width and secret prefix.
    layout: Layout,
}

fn print(global: &Global, st: &Status, watch: bool, view: &View) {
    let (terminal, color, reach) = (view.terminal, view.color, &view.reach);
    let mut stdout = std::io::stdout().lock();
    match global.output {
        Output::Ndjson => ndjson::print_document("status", st),
        Output::Json => {
            // Watching gives one document per line, so a reader can take them one by one.
            let doc = if watch {
                serde_json::to_string(st)
            } else {
                serde_json::to_string_pretty(st)
            };
            let _ = writeln!(stdout, "{}", doc.unwrap_or_default());
        }
        Output::Text => {
            if watch && terminal {
                // Home and clear: the table is redrawn in place.
                let _ = write!(stdout, "\x1b[H\x1b[2J");
            }
            if watch {
                let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
                let _ = writeln!(
                    stdout,
                    "status at {} (every {}s, Ctrl-C stops)",
                    hms(now),
                    WATCH_EVERY.as_secs()
                );
            }
            // The journal tells a kept failure from an old value (a rollback, not a
            // redeploy, is then the next step).
            let rotations = session::state_dir()
                .ok()
                .and_then(|d| journal::list(&d).ok())
                .unwrap_or_default();
            let next = advice(&stale_advice(st, &rotations), reach);
            let _ = write!(stdout, "{}", text(st, color, &next, &view.layout));
        }
    }
    let _ = stdout.flush();
}

/// `status`.
pub async fn run(global: &Global, a: &StatusArgs) -> Result<i32> {
    let target = session::target(global, &a.target)?;
    let reach = session::reach(global, &a.target);
    let ids: Vec<String> = a.secrets.iter().map(|s| target.secret_id(s)).collect();
    let s = session::sign_in(target.clone(), &a.target).await?;
    // Restores recorded on other machines count too (a team state).
    session::synced_backend(global, &a.target, &s).await?;
    let state_dir = session::state_dir().ok();
    let terminal = std::io::stdout().is_terminal();
    let no_color = std::env::var("NO_COLOR").ok();
    let color = global.output == Output::Text && use_color(terminal, no_color.as_deref());
    let view = View {
        terminal,
        color,
        reach,
        layout: Layout {
            width: width::stdout(),
            prefix: target.secret_prefix.clone(),
        },
    };
    if !a.watch {
        let st = status::gather(&s.clients, &target, &ids, state_dir.as_deref()).await?;
        print(global, &st, false, &view);
        return Ok(st.exit_code());
    }
    // The handler is in place before the first refresh is shown, so a Ctrl-C at any
    // moment after that ends the watch cleanly rather than killing the process.
    let mut interrupt = Interrupt::new()?;
    loop {
        let st = status::gather(&s.clients, &target, &ids, state_dir.as_deref()).await?;
        print(global, &st, true, &view);
        // Ctrl-C ends the watch with the exit code of the last refresh.
        tokio::select! {
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            _ = interrupt.recv() => return Ok(st.exit_code()),
        }
    }
}

/// Ctrl-C (SIGINT), registered when made.
struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> Result<Self> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| {
                    secret_rollout_core::error::Error::local(format!(
                        "cannot watch for Ctrl-C: {e}"
                    ))
                })?;
            Ok(Self { signal })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.signal.recv().await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secret_rollout_core::status::{
        PinnedRef, SecretRead, SecretState, ServiceStatus, TaskState,
    };
    use secret_rollout_core::verdict::DeploymentObs;

    fn st(stale: Vec<String>) -> Status {
        Status {
            secrets: vec![SecretState {
                arn: "arn:s".into(),
                name: "production/x".into(),
                current: Some("6a1f0000-1111".into()),
                since: Some(100.0),
                created: None,
                moved_back_from: None,
                rotated_at: None,
                pending: None,
            }],
            services: vec![ServiceStatus {
                cluster: "c".into(),
                name: "api".into(),
                desired: 2,
                running: 2,
                pending: 0,
                deployments: vec![DeploymentObs {
                    id: "ecs-svc/1".into(),
                    status: "PRIMARY".into(),
                    rollout_state: "COMPLETED".into(),
                    reason: String::new(),
                    desired: 2,
                    running: 2,
                    pending: 0,
                    failed_tasks: 0,
                    created_at: 0.0,
                    ..Default::default()
                }],
                tasks: vec![TaskState {
                    id: "t1".into(),
                    started_by: "ecs-svc/1".into(),
                    last_status: "RUNNING".into(),
                    task_definition_arn: "td:1".into(),
                    created_at: 50.0,
                }],
                images: Vec::new(),
                nothing_to_prove: false,
                outside_services_list: false,
                staged_deployment: None,
                secrets: vec![SecretRead {
                    secret_arn: "arn:s".into(),
                    secret_name: "production/x".into(),
                    current_version: Some("6a1f0000-1111".into()),
                    tasks: 2,
                    stale_tasks: stale.clone(),
                    baking_tasks: Vec::new(),
                    unproven_tasks: Vec::new(),
                    pinned: vec![PinnedRef {
                        container: "app".into(),
                        place: "env OLD".into(),
                        pin: "stage AWSPREVIOUS".into(),
                    }],
                }],
            }],
            stale: stale.len(),
            baking: 0,
            notes: vec![],
        }
    }

    #[test]
    fn text_names_stale_tasks_and_pins_without_colour() {
        let out = text(
            &st(vec!["t1".into()]),
            false,
            "redeploy them (`secret-rollout redeploy --services api`)",
            &Layout::default(),
        );
        assert!(out.contains("SERVICE"), "{out}");
        assert!(out.contains("6a1f0000"), "{out}");
        assert!(
            out.contains("c/api task t1 (ecs-svc/1, created 1970-01-01 00:00:50 UTC)"),
            "{out}"
        );
        assert!(out.contains("pinned to stage AWSPREVIOUS"), "{out}");
        assert!(out.contains("1 stale task(s) in 1 service(s)"), "{out}");
        assert!(
            out.contains("(current since 1970-01-01 00:01:40 UTC)"),
            "{out}"
        );
        assert!(out.contains("Tasks:"), "{out}");
        assert!(out.contains("td:1"), "{out}");
        assert!(!out.contains('\x1b'), "{out}");
    }

    /// A blue/green service baking after `replace --until traffic`: the stage, the traffic,
    /// the bake and what it began after, the old deployment's tasks said to get no
    /// production traffic and to stop at the bake's end (not stale), exit-free summary.
    #[test]
    fn a_baking_service_shows_its_stage_traffic_bake_and_old_tasks() {
        let mut st = st(vec![]);
        let svc = &mut st.services[0];
        svc.deployments = vec![
            DeploymentObs {
                id: "ecs-svc/2".into(),
                status: "PRIMARY".into(),
                rollout_state: "IN_PROGRESS".into(),
                desired: 2,
                running: 2,
                ..Default::default()
            },
            DeploymentObs {
                id: "ecs-svc/1".into(),
                status: "ACTIVE".into(),
                rollout_state: "COMPLETED".into(),
                desired: 2,
                running: 2,
                ..Default::default()
            },
        ];
        svc.tasks[0].started_by = "ecs-svc/1".into();
        svc.secrets[0].baking_tasks = vec!["t1".into()];
        svc.staged_deployment = Some(secret_rollout_core::status::StagedStatus {
            strategy: "BLUE_GREEN".into(),
            service_deployment_arn: "arn:sd".into(),
            status: "IN_PROGRESS".into(),
            lifecycle_stage: "BAKE_TIME".into(),
            deployment_id: "ecs-svc/2".into(),
            production_traffic_weight: Some(100.0),
            test_traffic_weight: Some(100.0),
            bake_time_minutes: Some(1440),
            baking: true,
            traffic_shifted_at: Some(200.0),
            baking_tasks: vec!["t1".into()],
        });
        st.baking = 1;
        let out = text(&st, false, "", &Layout::default());
        assert!(
            out.contains("    BLUE_GREEN service deployment IN_PROGRESS, stage BAKE_TIME; production traffic 100%, test traffic 100% on ecs-svc/2; bake of 24h, began after the production traffic shift seen at 1970-01-01 00:03:20 UTC"),
            "{out}"
        );
        assert!(
            out.contains("1 task(s) of the old deployment get no production traffic and stop when the bake ends"),
            "{out}"
        );
        assert!(
            out.contains("c/api: 1 task(s) of ecs-svc/1 hold an older production/x: they get no production traffic and stop when the bake ends (t1)"),
            "{out}"
        );
        assert!(out.contains("older, baking"), "{out}");
        assert!(!out.contains("Stale tasks:"), "{out}");
        assert!(out.contains("No stale task serving production"), "{out}");
        // Without the traffic moment: the bake time alone, no moment made up.
        st.services[0]
            .staged_deployment
            .as_mut()
            .expect("staged")
            .traffic_shifted_at = None;
        let out = text(&st, false, "", &Layout::default());
        assert!(
            out.contains("bake of 24h (ECS does not give the moment it began)"),
            "{out}"
        );
        assert!(!out.contains("began after"), "{out}");
    }

    #[test]
    fn colour_only_when_asked() {
        let out = text(&st(vec![]), true, "", &Layout::default());
        assert!(out.contains("\x1b[32m"), "{out}");
        assert!(out.contains("No stale tasks"), "{out}");
    }

    /// Grouped by service, the prefix left out of names, every line within the width,
    /// the stale count coloured in its own column.
    #[test]
    fn grouped_by_service_within_the_width() {
        let out = text(
            &st(vec!["t1".into()]),
            true,
            "redeploy them (`secret-rollout redeploy --services api --cluster c`)",
            &Layout {
                width: Some(50),
                prefix: Some("production/".into()),
            },
        );
        let lines: Vec<&str> = out.lines().collect();
        for l in &lines {
            assert!(
                width::shown(l) <= 50,
                "{} columns: {l:?}\n{out}",
                width::shown(l)
            );
        }
        let service = lines
            .iter()
            .position(|l| l.starts_with("api  c  2/2 running"))
            .expect(&out);
        // The service line wraps (the deployment on the next line), then its secret.
        assert_eq!(lines[service + 1], "  ecs-svc/1 COMPLETED 2/2", "{out}");
        assert!(lines[service + 2].starts_with("  x "), "{out}");
        assert!(lines[service + 2].contains("6a1f0000"), "{out}");
        assert!(
            lines[service + 2].contains('\x1b'),
            "the stale count is coloured: {out}"
        );
        assert!(
            out.contains("(secret names without the environment's prefix\n  production/)"),
            "{out}"
        );
        // Without a width nothing is cut or wrapped.
        let full = text(&st(vec!["t1".into()]), false, "x", &Layout::default());
        assert!(full.contains("  production/x  6a1f0000"), "{full}");
        assert!(!full.contains('…'), "{full}");
    }
}
