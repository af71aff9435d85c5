//! Section 7: within AWS's rate limits: 1,000 services in 20 clusters, the sandbox throttling as
//! AWS does (`--limits aws`: token buckets per action group on the wall clock), `plan`
//! twice and `replace` end to end, with the client's own rate limiter (the default,
//! `--aws-rate 0.5`) and without it (`--aws-rate off`), side by side in the same run.
//!
//! Each arm has its own sandbox (its own buckets) and state directory; the two arms run at
//! the same time, so they share the machine's conditions. Ground truth from each sandbox:
//! its call log (calls per action, the throttled ones), every deployment's completion
//! time on ECS's clock, every running task's secret version.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sandbox::throttle::LimitsSpec;
use sandbox::{Sandbox, Scenario};
use serde_json::Value;

use crate::{clean_command, secret_rollout_bin, start, Opts};

const CLUSTERS: usize = 20;
const SECRET: &str = "generated/shared";
/// The tool's default `--max-poll`: completion is noticed within it once the limits
/// allow a poll of what is still in flight.
const MAX_POLL: Duration = Duration::from_secs(2);

/// One arm: the client-side limiter at its default, or off.
struct Arm {
    name: &'static str,
    /// `--aws-rate` (none: the default).
    aws_rate: Option<&'static str>,
}

/// What one command cost, from the sandbox's call log.
#[derive(Default)]
struct Step {
    wall: Duration,
    /// The command's exit code.
    exit: Option<i32>,
    /// Why it failed, when it did (only ever without the limiter: with it the benchmark
    /// stops instead).
    failure: Option<String>,
    /// Per operation: (answered, refused with ThrottlingException).
    calls: BTreeMap<String, (usize, usize)>,
    /// Other errors per operation (should be none).
    errors: BTreeMap<String, usize>,
}

impl Step {
    fn total(&self) -> (usize, usize) {
        self.calls
            .values()
            .fold((0, 0), |(a, t), (x, y)| (a + x, t + y))
    }
    fn of(&self, op: &str) -> (usize, usize) {
        self.calls.get(op).copied().unwrap_or((0, 0))
    }
}

/// The follow's polls after the last UpdateService, from DescribeServices in the call log.
struct Rounds {
    /// DescribeServices calls.
    calls: usize,
    /// The longest real time between two of them.
    longest_gap: Duration,
    /// Calls in the last two seconds before the last deployment was noticed.
    calls_at_end: usize,
}

struct ArmResult {
    name: &'static str,
    plan1: Step,
    plan2: Step,
    replace: Step,
    outcome: String,
    services: usize,
    /// What the replace did when it did not end verified (then the figures below are 0).
    failure: Option<String>,
    /// Real time from the replace's start to the last deployment's completion (ECS's
    /// clock, converted) and to the tool noticing it (its `deployment_complete` line).
    last_completed: Duration,
    last_noticed: Duration,
    /// Per service: noticed - completed, seconds.
    notice_delays: Vec<f64>,
    /// When the last UpdateService was answered, from the replace's start.
    last_update: Duration,
    rounds: Rounds,
}

pub async fn limits(o: &Opts) -> Result<()> {
    let services = o.services.unwrap_or(1000);
    let tasks = o.tasks.unwrap_or(2);
    let speed = o.speed.unwrap_or(10.0);
    let bin = secret_rollout_bin()?;
    println!(
        "limits: {services} services x {tasks} tasks in {CLUSTERS} clusters, sandbox --limits aws, speed {speed}; \
         plan, plan again, replace; with the client's limiter (default) and without (--aws-rate off), side by side"
    );
    let arms = [
        Arm {
            name: "limiter (default, --aws-rate 0.5)",
            aws_rate: None,
        },
        Arm {
            name: "no limiter (--aws-rate off)",
            aws_rate: Some("off"),
        },
    ];
    let t = Instant::now();
    let (a, b) = tokio::join!(
        run_arm(&arms[0], &bin, services, tasks, speed),
        run_arm(&arms[1], &bin, services, tasks, speed)
    );
    let results = [a?, b?];
    println!("  both arms done in {:.1} s", t.elapsed().as_secs_f64());
    report(&results);
    Ok(())
}

async fn run_arm(
    arm: &Arm,
    bin: &Path,
    services: usize,
    tasks: usize,
    speed: f64,
) -> Result<ArmResult> {
    let mut scenario = Scenario::generated(services, tasks, CLUSTERS);
    scenario.limits = Some(LimitsSpec::aws());
    let sb = start(scenario, speed).await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("state"))?;
    let clusters: Vec<String> = (0..CLUSTERS).map(|c| format!("cluster-{c}")).collect();
    let base = |sub: &[&str]| {
        let mut args: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
        for c in &clusters {
            args.extend(["--cluster".to_string(), c.clone()]);
        }
        if let Some(r) = arm.aws_rate {
            args.extend(["--aws-rate".to_string(), r.to_string()]);
        }
        args
    };

    // plan, twice: the second reads task definitions from the state directory's cache.
    let mut plans = Vec::new();
    for _ in 0..2 {
        let args = base(&["plan", SECRET, "--output", "json"]);
        let (mut step, lines) = step_timed(&sb, bin, dir.path(), args).await?;
        let text: String = lines.into_iter().map(|(_, l)| l).collect();
        let v: Value = serde_json::from_str(&text).context("plan JSON")?;
        if step.exit != Some(0) && arm.aws_rate.is_some() {
            // Without the limiter a failed plan is a result: record it, go on.
            step.failure = Some(format!(
                "exit {:?}: {}",
                step.exit,
                v["error"].as_str().unwrap_or("?")
            ));
            plans.push(step);
            continue;
        }
        let n = v["redeploy"].as_array().map_or(0, Vec::len);
        if step.exit != Some(0) || n != services {
            bail!(
                "{}: plan exited {:?}, lists {n} services to redeploy, not {services}: {text}",
                arm.name,
                step.exit
            );
        }
        plans.push(step);
    }
    let plan2 = plans.pop().expect("two plans");
    let plan1 = plans.pop().expect("two plans");

    // replace, end to end, its progress read line by line as it comes.
    let (i0, v0, vspeed) = {
        let world = sb.world();
        let w = world.lock().expect("sandbox lock");
        (Instant::now(), w.clock.now(), w.clock.speed())
    };
    let real = |virt: f64| -> Duration {
        // ECS's clock to the bench's: the speed is constant through the run.
        Duration::from_secs_f64(((virt - v0) / vspeed).max(0.0))
    };
    let args = base(&[
        "replace",
        SECRET,
        "--generate",
        "--yes",
        "--output",
        "ndjson",
    ]);
    let started = Instant::now();
    let offset = started.saturating_duration_since(i0);
    let (replace, lines) = step_timed(&sb, bin, dir.path(), args).await?;
    let mut failure = None;
    let mut deployments: BTreeMap<String, String> = BTreeMap::new();
    let mut noticed: BTreeMap<String, Duration> = BTreeMap::new();
    let mut outcome = String::from("(no report)");
    for (at, line) in &lines {
        let v: Value = serde_json::from_str(line).with_context(|| format!("ndjson: {line}"))?;
        match v["type"].as_str() {
            Some("deployment_started") if v["phase"] == "rollout" => {
                deployments.insert(
                    v["service"].as_str().unwrap_or_default().to_string(),
                    v["deployment_id"].as_str().unwrap_or_default().to_string(),
                );
            }
            Some("deployment_complete") if v["phase"] == "rollout" => {
                noticed
                    .entry(v["service"].as_str().unwrap_or_default().to_string())
                    .or_insert(*at + offset);
            }
            Some("report") => outcome = v["outcome"].as_str().unwrap_or("?").to_string(),
            Some("error") => {
                failure = Some(format!(
                    "exit {}: {}",
                    v["exit_code"],
                    v["message"].as_str().unwrap_or("?")
                ))
            }
            _ => {}
        }
    }
    if outcome != "verified" || replace.exit != Some(0) {
        // Without the limiter this is a result, not a broken benchmark: say what happened.
        let failure = failure.unwrap_or_else(|| {
            format!(
                "exit {:?}, outcome {outcome}, {} of {services} deployments started",
                replace.exit,
                deployments.len()
            )
        });
        if arm.aws_rate.is_none() {
            bail!("{}: replace did not end verified: {failure}", arm.name);
        }
        return Ok(ArmResult {
            name: arm.name,
            plan1,
            plan2,
            replace,
            outcome,
            services,
            failure: Some(failure),
            last_completed: Duration::ZERO,
            last_noticed: Duration::ZERO,
            notice_delays: Vec::new(),
            last_update: Duration::ZERO,
            rounds: rounds(&[], Duration::ZERO),
        });
    }
    if deployments.len() != services || noticed.len() != services {
        bail!(
            "{}: {} deployments started, {} noticed complete, of {services}",
            arm.name,
            deployments.len(),
            noticed.len()
        );
    }

    // Ground truth: each deployment the tool started is COMPLETED, when; every running
    // task of every service holds the new current version.
    let state = sb.snapshot();
    let mut completed: BTreeMap<&str, Duration> = BTreeMap::new();
    for svc in state["ecs"]["services"].as_array().into_iter().flatten() {
        let name = svc["name"].as_str().unwrap_or_default();
        let Some(id) = deployments.get(name) else {
            continue;
        };
        let d = svc["deployments"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["id"] == id.as_str()))
            .ok_or_else(|| anyhow!("{}: {name}: deployment {id} is gone", arm.name))?;
        if d["rolloutState"] != "COMPLETED" {
            bail!(
                "{}: {name}: deployment {id} is {}",
                arm.name,
                d["rolloutState"]
            );
        }
        let at = d["updatedAt"]
            .as_f64()
            .ok_or_else(|| anyhow!("{name}: no updatedAt"))?;
        completed.insert(name, real(at));
    }
    check_all_current(&state, services, arm.name)?;
    let mut notice_delays = Vec::new();
    for (name, done) in &completed {
        let seen = noticed[*name];
        notice_delays.push(seen.as_secs_f64() - done.as_secs_f64());
    }
    notice_delays.sort_by(f64::total_cmp);
    let last_completed = completed.values().max().copied().unwrap_or_default();
    let last_noticed = noticed.values().max().copied().unwrap_or_default();

    // The follow's polls and the last UpdateService, from the call log (ECS's clock).
    let (updates, describes) = {
        let world = sb.world();
        let w = world.lock().expect("sandbox lock");
        let times = |op: &str| -> Vec<Duration> {
            w.calls
                .iter()
                .filter(|c| c.operation == op && c.error.is_none())
                .map(|c| real(c.at))
                .collect()
        };
        (times("UpdateService"), times("DescribeServices"))
    };
    let last_update = updates.iter().max().copied().unwrap_or_default();
    let follow: Vec<Duration> = describes
        .into_iter()
        .filter(|t| *t >= last_update)
        .collect();
    let rounds = rounds(&follow, last_noticed);
    Ok(ArmResult {
        name: arm.name,
        plan1,
        plan2,
        replace,
        outcome,
        services,
        failure: None,
        last_completed: last_completed.saturating_sub(offset),
        last_noticed: last_noticed.saturating_sub(offset),
        notice_delays,
        last_update: last_update.saturating_sub(offset),
        rounds,
    })
}

/// The follow's DescribeServices calls (times), up to `end` (the last deployment noticed).
fn rounds(times: &[Duration], end: Duration) -> Rounds {
    let mut t: Vec<Duration> = times.iter().copied().filter(|x| *x <= end).collect();
    t.sort();
    let longest_gap = t
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .unwrap_or_default();
    Rounds {
        calls: t.len(),
        longest_gap,
        calls_at_end: t
            .iter()
            .filter(|x| end.saturating_sub(**x) <= Duration::from_secs(2))
            .count(),
    }
}

/// Every running task of every generated service resolved the secret's AWSCURRENT version.
fn check_all_current(state: &Value, services: usize, who: &str) -> Result<()> {
    let current = state["secrets"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == SECRET))
        .and_then(|s| s["versions"].as_array())
        .and_then(|v| {
            v.iter().find(|v| {
                v["stages"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == "AWSCURRENT"))
            })
        })
        .and_then(|v| v["id"].as_str())
        .ok_or_else(|| anyhow!("no AWSCURRENT version of {SECRET}"))?;
    let mut proven: BTreeSet<&str> = BTreeSet::new();
    for t in state["ecs"]["tasks"].as_array().into_iter().flatten() {
        if t["desiredStatus"] != "RUNNING" {
            continue;
        }
        let group = t["group"].as_str().unwrap_or_default();
        let fresh = t["secrets"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["name"] == SECRET && s["version_id"] == current)
        });
        if !fresh {
            bail!("{who}: a running task of {group} does not hold the new version");
        }
        proven.insert(group);
    }
    if proven.len() != services {
        bail!(
            "{who}: {} of {services} services have running tasks on the new version",
            proven.len()
        );
    }
    Ok(())
}

/// Runs the tool once; every stdout line with when it arrived (from the start); its calls
/// from the sandbox's log (emptied first).
async fn step_timed(
    sb: &Sandbox,
    bin: &Path,
    dir: &Path,
    args: Vec<String>,
) -> Result<(Step, Vec<(Duration, String)>)> {
    sb.world().lock().expect("sandbox lock").clear_calls();
    let mut cmd = clean_command(bin, &sb.endpoint(), dir);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let bin: PathBuf = bin.to_path_buf();
    let (wall, lines, status, stderr) = tokio::task::spawn_blocking(move || -> Result<_> {
        let t = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr_pipe = child.stderr.take().expect("piped");
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr_pipe, &mut s);
            s
        });
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            lines.push((t.elapsed(), line?));
        }
        let status = child.wait()?;
        let wall = t.elapsed();
        Ok((wall, lines, status, err.join().unwrap_or_default()))
    })
    .await??;
    if !status.success() {
        eprintln!(
            "  ({} exited {:?}: {})",
            args.first().map_or("", String::as_str),
            status.code(),
            stderr.lines().next().unwrap_or("")
        );
    }
    let mut s = Step {
        wall,
        exit: status.code(),
        ..Step::default()
    };
    let world = sb.world();
    let w = world.lock().expect("sandbox lock");
    for c in &w.calls {
        let e = s.calls.entry(c.operation.clone()).or_default();
        match c.error.as_deref() {
            None => e.0 += 1,
            Some("ThrottlingException") => e.1 += 1,
            Some(_) => {
                e.0 += 1;
                *s.errors.entry(c.operation.clone()).or_default() += 1;
            }
        }
    }
    Ok((s, lines))
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn report(r: &[ArmResult; 2]) {
    let [a, b] = r;
    for x in r {
        match &x.failure {
            None => println!(
                "  {}: replace outcome {}, {} services",
                x.name, x.outcome, x.services
            ),
            Some(f) => println!(
                "  {}: replace FAILED ({f}), {} services",
                x.name, x.services
            ),
        }
    }
    println!();
    println!("  | what | {} | {} |", a.name, b.name);
    println!("  | --- | --- | --- |");
    let both = |label: &str, f: &dyn Fn(&ArmResult) -> String| {
        println!("  | {label} | {} | {} |", f(a), f(b));
    };
    both("plan: wall time", &|x| secs(x.plan1.wall));
    both("plan: calls (throttled)", &|x| {
        let (ok, t) = x.plan1.total();
        format!("{} ({t})", ok + t)
    });
    both("plan: DescribeTaskDefinition", &|x| {
        let (ok, t) = x.plan1.of("DescribeTaskDefinition");
        format!("{} ({t} throttled)", ok + t)
    });
    both("second plan: wall time", &|x| secs(x.plan2.wall));
    both("second plan: DescribeTaskDefinition", &|x| {
        let (ok, t) = x.plan2.of("DescribeTaskDefinition");
        format!("{}", ok + t)
    });
    both("second plan: throttled", &|x| {
        format!("{}", x.plan2.total().1)
    });
    both("replace: wall time", &|x| secs(x.replace.wall));
    both("replace: calls (throttled)", &|x| {
        let (ok, t) = x.replace.total();
        format!("{} ({t})", ok + t)
    });
    both("replace: last UpdateService answered at", &|x| {
        secs(x.last_update)
    });
    both("replace: last deployment completed at (ECS)", &|x| {
        secs(x.last_completed)
    });
    both("replace: tool noticed it at", &|x| secs(x.last_noticed));
    both("delay, last completion to noticed", &|x| {
        format!(
            "{:.2} s",
            x.last_noticed.as_secs_f64() - x.last_completed.as_secs_f64()
        )
    });
    both("delay per service: median / max", &|x| {
        let d = &x.notice_delays;
        let med = d.get(d.len().saturating_sub(1) / 2).copied().unwrap_or(0.0);
        let max = d.last().copied().unwrap_or(0.0);
        format!("{med:.1} s / {max:.1} s")
    });
    both(
        "follow after the last UpdateService: DescribeServices",
        &|x| format!("{}", x.rounds.calls),
    );
    both(
        "  of them in the last 2 s before the last was noticed",
        &|x| format!("{}", x.rounds.calls_at_end),
    );
    both("  longest gap between two", &|x| {
        format!("{:.2} s", x.rounds.longest_gap.as_secs_f64())
    });
    println!();
    let ops: BTreeSet<&String> = a
        .replace
        .calls
        .keys()
        .chain(b.replace.calls.keys())
        .collect();
    println!("  replace, calls per action (throttled in brackets):");
    println!("  | action | {} | {} |", a.name, b.name);
    println!("  | --- | --- | --- |");
    for op in ops {
        let cell = |x: &ArmResult| {
            let (ok, t) = x.replace.of(op);
            format!("{} ({t})", ok + t)
        };
        println!("  | {op} | {} | {} |", cell(a), cell(b));
    }
    for x in r {
        for (what, s) in [("plan", &x.plan1), ("second plan", &x.plan2)] {
            if let Some(f) = &s.failure {
                println!("  {}: {what} FAILED ({f})", x.name);
            }
        }
        for s in [&x.plan1, &x.plan2, &x.replace] {
            if !s.errors.is_empty() {
                println!("  {}: other errors: {:?}", x.name, s.errors);
            }
        }
    }
    println!();
    let goal = |ok: bool| if ok { "met" } else { "MISSED" };
    let (_, t1) = a.plan1.total();
    let (_, t2) = a.plan2.total();
    let (_, t3) = a.replace.total();
    println!(
        "  goal 0 throttled with the limiter: {} ({} throttled)",
        goal(t1 + t2 + t3 == 0),
        t1 + t2 + t3
    );
    // The cache holds what a finished plan read: judged on the limiter's arm, whose
    // first plan always finishes (the benchmark stops otherwise).
    let (d_ok, d_t) = a.plan2.of("DescribeTaskDefinition");
    let (e_ok, e_t) = b.plan2.of("DescribeTaskDefinition");
    println!(
        "  goal 0 DescribeTaskDefinition in the second plan (limiter): {} ({}; without the limiter {}{})",
        goal(d_ok + d_t == 0),
        d_ok + d_t,
        e_ok + e_t,
        if b.plan1.failure.is_some() {
            ", its first plan having failed before the cache was written"
        } else {
            ""
        }
    );
    let delay = a.last_noticed.as_secs_f64() - a.last_completed.as_secs_f64();
    println!(
        "  goal last completion noticed within one poll ({} s, the tool's max poll) with the limiter: {} ({delay:.2} s)",
        MAX_POLL.as_secs(),
        goal(delay <= MAX_POLL.as_secs_f64())
    );
    println!(
        "  ratio of replace wall times, no limiter / limiter: {:.2}x",
        b.replace.wall.as_secs_f64() / a.replace.wall.as_secs_f64().max(1e-9)
    );
}
