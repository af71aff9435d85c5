//! On-demand benchmarks for the sandbox and secret-rollout (not run in CI; see
//! BENCHMARKS.md for the figures and how to read them).
//!
//! ```text
//! cargo build --release -p secret-rollout -p bench
//! target/release/bench <load|describe|runbook|discovery|watch|limits|all> [--runs N] [--samples N] [--speed X]
//! target/release/bench limits [--services N] [--tasks N] [--speed X]
//! ```
//!
//! Every benchmark measures against an alternative in the same run and prints the ratio,
//! because absolute times on a shared 2-core machine drift from run to run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sandbox::ecs::Timing;
use sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};

/// The sample environment's cluster and the secret the runbook benchmark replaces.
const CLUSTER: &str = "production-online-lpa";
const SHARED: &str = "production/opg_lpa_common_account_cleanup_notification_recipients";
const SAMPLE_SERVICES: [&str; 4] = ["front", "api", "pdf", "admin"];

/// Command-line options.
struct Opts {
    runs: usize,
    samples: usize,
    /// Sandbox clock speed for `runbook` and `limits` (virtual seconds per real second;
    /// default 1 for `runbook`, 10 for `limits`).
    speed: Option<f64>,
    /// `limits`: services of the generated world (default 1,000).
    services: Option<usize>,
    /// `limits`: tasks per service (default 2).
    tasks: Option<usize>,
}

mod limits;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = Opts {
        runs: 5,
        samples: 2000,
        speed: None,
        services: None,
        tasks: None,
    };
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => opts.runs = parse_next(&mut it, "--runs")?,
            "--samples" => opts.samples = parse_next(&mut it, "--samples")?,
            "--speed" => {
                opts.speed = Some(
                    it.next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| anyhow!("--speed needs a number"))?,
                )
            }
            "--services" => opts.services = Some(parse_next(&mut it, "--services")?),
            "--tasks" => opts.tasks = Some(parse_next(&mut it, "--tasks")?),
            "-h" | "--help" => {
                println!(
                    "usage: bench <load|describe|runbook|discovery|watch|limits|all> [--runs N] [--samples N] [--speed X] [--services N] [--tasks N]"
                );
                return Ok(());
            }
            other => names.push(other.to_string()),
        }
    }
    if names.is_empty() || names.iter().any(|n| n == "all") {
        names = [
            "load",
            "describe",
            "runbook",
            "discovery",
            "watch",
            "limits",
        ]
        .map(String::from)
        .to_vec();
    }
    for name in &names {
        match name.as_str() {
            "load" => load(&opts).await?,
            "describe" => describe(&opts).await?,
            "runbook" => runbook(&opts).await?,
            "discovery" => discovery(&opts).await?,
            "watch" => watch(&opts).await?,
            "limits" => limits::limits(&opts).await?,
            other => bail!(
                "unknown benchmark {other:?} (load, describe, runbook, discovery, watch, limits, all)"
            ),
        }
        println!();
    }
    Ok(())
}

fn parse_next<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<usize> {
    it.next()
        .ok_or_else(|| anyhow!("{flag} needs a number"))?
        .parse()
        .with_context(|| format!("{flag} needs a number"))
}

// ---------------------------------------------------------------------------------------
// Statistics and output

/// Median and p99 of a set of durations.
struct Stats {
    n: usize,
    median: Duration,
    p99: Duration,
    min: Duration,
}

fn stats(samples: &[Duration]) -> Stats {
    let mut v = samples.to_vec();
    v.sort();
    let n = v.len();
    // Nearest-rank percentiles: p99 is the smallest sample with 99% at or below it.
    let rank = |p: f64| v[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    Stats {
        n,
        median: rank(0.5),
        p99: rank(0.99),
        min: v[0],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn row(label: &str, s: &Stats) {
    println!(
        "  {label:<52} n={:<5} median {:>12}  p99 {:>12}  min {:>12}",
        s.n,
        ms(s.median),
        ms(s.p99),
        ms(s.min)
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------------------
// Shared helpers

/// SDK configuration for a loopback endpoint with dummy keys (neither the sandbox nor moto
/// checks signatures), independent of the machine's AWS environment.
async fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDBENCH",
            "bench",
            None,
            None,
            "bench",
        ))
        .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

async fn start(scenario: Scenario, speed: f64) -> Result<Sandbox> {
    Sandbox::start(SandboxOptions {
        port: 0,
        scenario,
        speed: Some(speed),
        seed: Some(7),
    })
    .await
    .map_err(|e| anyhow!("sandbox: {e}"))
}

/// How many tasks of the world ECS reports RUNNING.
fn running_tasks(sb: &Sandbox) -> usize {
    sb.snapshot()["ecs"]["tasks"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["lastStatus"] == "RUNNING").count())
        .unwrap_or(0)
}

/// How many calls of `operation` the sandbox has answered so far.
fn calls_of(sb: &Sandbox, operation: &str) -> usize {
    let world = sb.world();
    let w = world.lock().expect("sandbox lock");
    w.calls.iter().filter(|c| c.operation == operation).count()
}

/// Zero durations for every task phase: deployments finish as soon as ECS acts.
fn instant() -> Timing {
    Timing {
        provisioning: 0.0,
        pending: 0.0,
        health_check: 0.0,
        draining: 0.0,
        stopping: 0.0,
    }
}

/// The release `secret-rollout` next to this binary (both in target/release), or the one
/// `SECRET_ROLLOUT_BENCH_BIN` names (call counts do not depend on the build profile).
fn secret_rollout_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("SECRET_ROLLOUT_BENCH_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let me = std::env::current_exe()?;
    let bin = me
        .parent()
        .map(|d| d.join("secret-rollout"))
        .ok_or_else(|| anyhow!("no directory for {}", me.display()))?;
    if !bin.exists() {
        bail!(
            "{} is missing: run `cargo build --release -p secret-rollout` first",
            bin.display()
        );
    }
    Ok(bin)
}

/// A command with the machine's AWS and secret-rollout settings removed and aimed at
/// `endpoint`, with config and state in `dir`, as the integration tests run the binary.
fn clean_command(program: &Path, endpoint: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("AWS_") || k.starts_with("SECRET_ROLLOUT_") || k == "RUST_LOG" {
            cmd.env_remove(&k);
        }
    }
    cmd.current_dir(dir)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", dir.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("aws-credentials"))
        .env("AWS_PAGER", "")
        .env("SECRET_ROLLOUT_STATE_DIR", dir.join("state"))
        .env("SECRET_ROLLOUT_CACHE_DIR", dir.join("cache"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("NO_COLOR", "1");
    cmd
}

/// Runs a command to completion; fails with its output when it exits non-zero.
fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(bytes)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{:?} exited {:?}\n{}\n{}",
            cmd.get_program(),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

// ---------------------------------------------------------------------------------------
// 1. load

/// Building the generated 1,000-service / 10,000-task world in process (what
/// `Sandbox::start` does) against building the same world over HTTP with the same AWS
/// requests, from an empty sandbox, then running the same hour of simulation.
async fn load(o: &Opts) -> Result<()> {
    const SERVICES: usize = 1000;
    const TASKS: usize = 10;
    const CLUSTERS: usize = 20;
    println!(
        "load: generated scenario, {SERVICES} services x {TASKS} tasks over {CLUSTERS} clusters ({} runs)",
        o.runs
    );
    let scenario = Scenario::generated(SERVICES, TASKS, CLUSTERS);
    let mut gen = Vec::new();
    let mut build = Vec::new();
    let mut started = Vec::new();
    let mut http = Vec::new();
    let mut http_calls = 0;
    for _ in 0..o.runs {
        let t = Instant::now();
        let s = Scenario::generated(SERVICES, TASKS, CLUSTERS);
        gen.push(t.elapsed());
        drop(s);

        let t = Instant::now();
        let world = sandbox::scenario::build_world(&scenario, Some(1.0), Some(7))
            .map_err(|e| anyhow!("build_world: {e}"))?;
        build.push(t.elapsed());
        drop(world);

        let t = Instant::now();
        let sb = start(scenario.clone(), 1.0).await?;
        started.push(t.elapsed());
        let running = running_tasks(&sb);
        if running != SERVICES * TASKS {
            bail!(
                "Sandbox::start: {running} tasks running, expected {}",
                SERVICES * TASKS
            );
        }
        drop(sb);

        let (d, calls) = load_over_http(&scenario).await?;
        http.push(d);
        http_calls = calls;
    }
    let (g, b, s, h) = (stats(&gen), stats(&build), stats(&started), stats(&http));
    row("Scenario::generated (input only)", &g);
    row("build_world (in process)", &b);
    row("Sandbox::start (build_world + listen)", &s);
    row(
        &format!("same world over HTTP ({http_calls} AWS calls, 8 in flight)"),
        &h,
    );
    println!(
        "  ratio: over HTTP / Sandbox::start = {:.1}x; target Sandbox::start < 2 s: {}",
        ratio(h.median, s.median),
        if s.median < Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}

/// Builds `scenario` into an empty sandbox through the AWS JSON protocol: CreateSecret,
/// CreateCluster, RegisterTaskDefinition and CreateService with the very request bodies
/// build_world uses, then runs the simulation for the hour build_world runs. Returns the
/// time from the empty sandbox to 10,000 running tasks, and the number of AWS calls.
async fn load_over_http(scenario: &Scenario) -> Result<(Duration, usize)> {
    let empty = Scenario::from_toml("").map_err(|e| anyhow!("empty scenario: {e}"))?;
    let sb = start(empty, 1.0).await?;
    let url = sb.endpoint();
    let client = reqwest::Client::new();
    let t = Instant::now();
    // Secrets first: the generated task definitions quote the shared secret's full ARN,
    // whose random suffix only exists once CreateSecret has answered.
    let mut arns = Vec::new();
    for s in &scenario.secrets {
        let out = post(
            &client,
            &url,
            "secretsmanager.CreateSecret",
            &json!({"Name": s.name, "SecretString": s.value}),
        )
        .await?;
        arns.push((s.arn_suffix.clone(), s.name.clone(), out["ARN"].clone()));
    }
    let mut requests = Vec::new();
    for c in &scenario.clusters {
        requests.push(("CreateCluster", Value::Object(c.clone())));
    }
    let calls_before_ecs = scenario.secrets.len();
    post_all(&client, &url, requests).await?;
    let mut tds = Vec::new();
    for td in &scenario.task_definitions {
        let mut text = serde_json::to_string(td)?;
        for (suffix, name, arn) in &arns {
            if let (Some(suffix), Some(arn)) = (suffix, arn.as_str()) {
                let pinned = format!(
                    "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
                    scenario.region, scenario.account
                );
                text = text.replace(&pinned, arn);
            }
        }
        tds.push(("RegisterTaskDefinition", serde_json::from_str(&text)?));
    }
    post_all(&client, &url, tds).await?;
    let services = scenario
        .services
        .iter()
        .map(|s| ("CreateService", Value::Object(s.request.clone())))
        .collect();
    post_all(&client, &url, services).await?;
    // The same hour build_world simulates, through the control API's own operation.
    sb.world()
        .lock()
        .expect("sandbox lock")
        .advance_clock(3600.0)
        .map_err(|e| anyhow!("advance: {e}"))?;
    let elapsed = t.elapsed();
    let running = running_tasks(&sb);
    let expected: usize = scenario.services.len() * 10;
    if running != expected {
        bail!("over HTTP: {running} tasks running, expected {expected}");
    }
    let calls = calls_before_ecs
        + scenario.clusters.len()
        + scenario.task_definitions.len()
        + scenario.services.len();
    Ok((elapsed, calls))
}

async fn post(client: &reqwest::Client, url: &str, target: &str, body: &Value) -> Result<Value> {
    let resp = client
        .post(url)
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
        .body(serde_json::to_vec(body)?)
        .send()
        .await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if !status.is_success() {
        bail!("{target}: {status} {v}");
    }
    Ok(v)
}

/// ECS requests, 8 in flight: what a concurrent client (Terraform's default parallelism
/// is 10) would do; this is the strongest HTTP alternative, so the ratio is conservative.
async fn post_all(
    client: &reqwest::Client,
    url: &str,
    requests: Vec<(&'static str, Value)>,
) -> Result<()> {
    let mut set = tokio::task::JoinSet::new();
    let mut pending = requests.into_iter();
    let mut spawn_next = |set: &mut tokio::task::JoinSet<Result<Value>>| {
        if let Some((op, body)) = pending.next() {
            let (client, url) = (client.clone(), url.to_string());
            set.spawn(async move {
                let target = format!("AmazonEC2ContainerServiceV20141113.{op}");
                post(&client, &url, &target, &body).await
            });
        }
    };
    for _ in 0..8 {
        spawn_next(&mut set);
    }
    while let Some(done) = set.join_next().await {
        done??;
        spawn_next(&mut set);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. describe

/// DescribeServices of 10 services through the SDK on loopback, in a 1,000-service
/// sandbox, against a 1-service DescribeServices of the same sandbox and against moto
/// server's DescribeServices of 10 services, interleaved in one loop.
async fn describe(o: &Opts) -> Result<()> {
    println!(
        "describe: DescribeServices through the SDK on loopback ({} samples each, interleaved)",
        o.samples
    );
    // speed 1: the clock runs as on a real account, so every call also advances the
    // simulation (nothing is due once the initial deployments have settled).
    let sb = start(Scenario::generated(1000, 10, 20), 1.0).await?;
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&sb.endpoint()).await);
    // cluster-0 holds svc-0, svc-20, svc-40, ...
    let ten: Vec<String> = (0..10).map(|i| format!("svc-{}", i * 20)).collect();
    let one = vec![ten[0].clone()];

    let moto = match Moto::start() {
        Ok(m) => Some(m),
        Err(e) => {
            println!("  moto server unavailable ({e}); skipping that comparison");
            None
        }
    };
    let moto_ecs = match &moto {
        Some(m) => {
            let c = aws_sdk_ecs::Client::new(&sdk_config(&m.endpoint).await);
            populate_moto(&c, &ten).await?;
            Some(c)
        }
        None => None,
    };

    let check = |n: usize, what: &str, got: usize| -> Result<()> {
        if got != n {
            bail!("{what}: {got} services described, expected {n}");
        }
        Ok(())
    };
    let (mut d10, mut d1, mut dm) = (Vec::new(), Vec::new(), Vec::new());
    let warmup = 50;
    for i in 0..(o.samples + warmup) {
        let t = Instant::now();
        let out = ecs
            .describe_services()
            .cluster("cluster-0")
            .set_services(Some(ten.clone()))
            .send()
            .await?;
        let e10 = t.elapsed();
        check(10, "sandbox", out.services().len())?;

        let t = Instant::now();
        let out = ecs
            .describe_services()
            .cluster("cluster-0")
            .set_services(Some(one.clone()))
            .send()
            .await?;
        let e1 = t.elapsed();
        check(1, "sandbox", out.services().len())?;

        let em = match &moto_ecs {
            Some(m) => {
                let t = Instant::now();
                let out = m
                    .describe_services()
                    .cluster("bench")
                    .set_services(Some(ten.clone()))
                    .send()
                    .await?;
                let e = t.elapsed();
                check(10, "moto", out.services().len())?;
                Some(e)
            }
            None => None,
        };
        if i >= warmup {
            d10.push(e10);
            d1.push(e1);
            dm.extend(em);
        }
    }
    let (s10, s1) = (stats(&d10), stats(&d1));
    row("sandbox, 10 services (1,000-service world)", &s10);
    row("sandbox, 1 service", &s1);
    println!(
        "  ratio 10 / 1 service: {:.2}x (median); target 10-service median < 5 ms: {}",
        ratio(s10.median, s1.median),
        if s10.median < Duration::from_millis(5) {
            "met"
        } else {
            "MISSED"
        }
    );
    if !dm.is_empty() {
        let sm = stats(&dm);
        row("moto server, the same 10 services", &sm);
        println!(
            "  ratio moto / sandbox, 10 services: {:.1}x (median), {:.1}x (p99)",
            ratio(sm.median, s10.median),
            ratio(sm.p99, s10.p99)
        );
    }
    Ok(())
}

/// A moto server child process, stopped (by its own pid) on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Result<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("python3 -m moto.server")?;
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = moto.child.try_wait()? {
                bail!("moto server exited {status} (pip install 'moto[server]')");
            }
            if Instant::now() > deadline {
                bail!("moto server did not listen within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The same 10 services in moto: one cluster, one task definition each, 10 tasks each.
async fn populate_moto(ecs: &aws_sdk_ecs::Client, names: &[String]) -> Result<()> {
    use aws_sdk_ecs::types::{ContainerDefinition, Secret};
    ecs.create_cluster().cluster_name("bench").send().await?;
    for name in names {
        ecs.register_task_definition()
            .family(name)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("example/app:1")
                    .memory(512)
                    .essential(true)
                    .secrets(
                        Secret::builder()
                            .name("SHARED")
                            .value_from("/aws/reference/secretsmanager/generated/shared")
                            .build()?,
                    )
                    .build(),
            )
            .send()
            .await?;
        ecs.create_service()
            .cluster("bench")
            .service_name(name)
            .task_definition(name)
            .desired_count(10)
            .send()
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. runbook

/// The runbook's aws CLI commands (replacing_secrets.md) for one secret and four services
/// against `secret-rollout replace`, alternately, on one sandbox with instant rollouts.
async fn runbook(o: &Opts) -> Result<()> {
    let bin = secret_rollout_bin()?;
    let aws =
        which("aws").ok_or_else(|| anyhow!("the aws CLI is not on PATH (pip install awscli)"))?;
    let mut version = Command::new(&aws);
    version.arg("--version");
    let aws_version = run(version, None)
        .map(|o| String::from_utf8_lossy(&o).trim().to_string())
        .unwrap_or_default();
    println!(
        "runbook: one secret read by four services, zero task timings, sandbox speed {} ({} runs each, alternating)",
        o.speed.unwrap_or(1.0), o.runs
    );
    println!("  aws CLI: {aws_version}");
    // The runbook redeploys front, api, pdf and admin; in the sample pdf does not read the
    // shared secret, so it reads it here too and both sides do the same job: four services.
    let mut scenario = Scenario::sample();
    for td in &mut scenario.task_definitions {
        if td.get("family").and_then(Value::as_str) == Some("production-pdf") {
            let containers = td
                .get_mut("containerDefinitions")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| anyhow!("production-pdf has no containers"))?;
            let secrets = containers[0]
                .as_object_mut()
                .ok_or_else(|| anyhow!("production-pdf container"))?
                .entry("secrets")
                .or_insert_with(|| json!([]));
            secrets
                .as_array_mut()
                .ok_or_else(|| anyhow!("production-pdf secrets"))?
                .push(json!({
                    "name": "OPG_LPA_COMMON_ACCOUNT_CLEANUP_NOTIFICATION_RECIPIENTS",
                    "valueFrom": format!("/aws/reference/secretsmanager/{SHARED}"),
                }));
        }
    }
    scenario.timing = Some(instant());
    for s in &mut scenario.services {
        s.timing = None;
    }
    // Zero timings still leave ECS a millisecond of virtual time per task phase (so a
    // failing service cannot spin); --speed 1000 makes that microseconds of real time.
    let sb = start(scenario, o.speed.unwrap_or(1.0)).await?;
    let endpoint = sb.endpoint();
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("state"))?;

    let (mut rb, mut sr, mut sr_default) = (Vec::new(), Vec::new(), Vec::new());
    let mut rb_calls = 0;
    let mut sr_calls = Value::Null;
    for i in 0..o.runs {
        // Runbook.
        let value = format!("runbook-value-{i}");
        let t = Instant::now();
        rb_calls = runbook_once(&aws, &endpoint, dir.path(), &value)?;
        rb.push(t.elapsed());
        verify_all_on_current(&sb, "runbook")?;

        // secret-rollout, 50 ms poll ceiling.
        let value = format!("rollout-value-{i}");
        let t = Instant::now();
        let mut cmd = clean_command(&bin, &endpoint, dir.path());
        cmd.args([
            "replace",
            SHARED,
            "--cluster",
            CLUSTER,
            "--value-stdin",
            "--yes",
            "--max-poll",
            "50ms",
            "--output",
            "json",
        ]);
        let out = run(cmd, Some(value.as_bytes()))?;
        sr.push(t.elapsed());
        let report: Value = serde_json::from_slice(&out).context("secret-rollout JSON")?;
        sr_calls = report["aws_calls"].clone();
        verify_all_on_current(&sb, "secret-rollout")?;

        // secret-rollout with the default 2 s poll ceiling: the first poll is immediate.
        let value = format!("rollout-default-{i}");
        let t = Instant::now();
        let mut cmd = clean_command(&bin, &endpoint, dir.path());
        cmd.args([
            "replace",
            SHARED,
            "--cluster",
            CLUSTER,
            "--value-stdin",
            "--yes",
            "--output",
            "json",
        ]);
        run(cmd, Some(value.as_bytes()))?;
        sr_default.push(t.elapsed());
        verify_all_on_current(&sb, "secret-rollout (default poll)")?;
    }
    let (r, s, sd) = (stats(&rb), stats(&sr), stats(&sr_default));
    row(&format!("runbook: aws CLI, {rb_calls} commands"), &r);
    row("secret-rollout replace --max-poll 50ms", &s);
    row("secret-rollout replace (default --max-poll 2s)", &sd);
    let total: u64 = sr_calls
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    println!("  secret-rollout aws_calls ({total}): {sr_calls}");
    println!(
        "  ratio runbook / secret-rollout: {:.1}x (50ms poll), {:.1}x (default poll); target >= 20x and < 300 ms: {}",
        ratio(r.median, s.median),
        ratio(r.median, sd.median),
        if ratio(r.median, s.median) >= 20.0 && s.median < Duration::from_millis(300) {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}

/// One pass of the runbook with the aws CLI, as a person following it would type it
/// (minus aws-vault): put-secret-value; per service describe-services and update-service
/// --force-new-deployment; describe-clusters until the running count is back to the
/// services' desired total with nothing pending (polled without a pause, which favours
/// the runbook). Returns the number of aws commands run.
fn runbook_once(aws: &Path, endpoint: &str, dir: &Path, value: &str) -> Result<usize> {
    let aws_cmd = |args: &[&str]| {
        let mut c = clean_command(aws, endpoint, dir);
        c.args(args).args(["--output", "json"]);
        c
    };
    let mut commands = 0;
    run(
        aws_cmd(&[
            "secretsmanager",
            "put-secret-value",
            "--secret-id",
            SHARED,
            "--secret-string",
            value,
        ]),
        None,
    )?;
    commands += 1;
    let mut desired = 0;
    for svc in SAMPLE_SERVICES {
        let out = run(
            aws_cmd(&[
                "ecs",
                "describe-services",
                "--cluster",
                CLUSTER,
                "--services",
                svc,
            ]),
            None,
        )?;
        commands += 1;
        let v: Value = serde_json::from_slice(&out)?;
        desired += v["services"][0]["desiredCount"].as_u64().unwrap_or(0);
        run(
            aws_cmd(&[
                "ecs",
                "update-service",
                "--cluster",
                CLUSTER,
                "--force-new-deployment",
                "--service",
                svc,
            ]),
            None,
        )?;
        commands += 1;
    }
    loop {
        let out = run(
            aws_cmd(&["ecs", "describe-clusters", "--clusters", CLUSTER]),
            None,
        )?;
        commands += 1;
        let v: Value = serde_json::from_slice(&out)?;
        let c = &v["clusters"][0];
        let running = c["runningTasksCount"].as_u64().unwrap_or(0);
        let pending = c["pendingTasksCount"].as_u64().unwrap_or(0);
        if running == desired && pending == 0 {
            return Ok(commands);
        }
        if commands > 200 {
            bail!("describe-clusters never settled: running {running}, pending {pending}, desired {desired}");
        }
    }
}

/// Ground truth: every running task of the four services resolved the secret's current
/// version (so each side really did the job it was timed on).
fn verify_all_on_current(sb: &Sandbox, who: &str) -> Result<()> {
    let state = sb.snapshot();
    let current = state["secrets"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == SHARED))
        .and_then(|s| s["versions"].as_array())
        .and_then(|v| {
            v.iter().find(|v| {
                v["stages"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == "AWSCURRENT"))
            })
        })
        .and_then(|v| v["id"].as_str())
        .ok_or_else(|| anyhow!("no AWSCURRENT version of {SHARED}"))?
        .to_string();
    for svc in SAMPLE_SERVICES {
        let group = format!("service:{svc}");
        let tasks: Vec<&Value> = state["ecs"]["tasks"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter(|t| t["group"] == group.as_str() && t["desiredStatus"] == "RUNNING")
                    .collect()
            })
            .unwrap_or_default();
        let stale = tasks
            .iter()
            .filter(|t| {
                !t["secrets"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|s| s["name"] == SHARED && s["version_id"] == current.as_str())
                })
            })
            .count();
        if tasks.is_empty() || stale > 0 {
            bail!(
                "{who}: service {svc} has {stale} of {} running tasks not on the new version",
                tasks.len()
            );
        }
    }
    Ok(())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

// ---------------------------------------------------------------------------------------
// 4. discovery

/// `secret-rollout plan --output json` for a secret read by all 1,000 services over 20
/// clusters: DescribeServices calls from the sandbox's call log, and time.
async fn discovery(o: &Opts) -> Result<()> {
    const SERVICES: usize = 1000;
    const CLUSTERS: usize = 20;
    let bin = secret_rollout_bin()?;
    println!(
        "discovery: plan of a secret read by {SERVICES} services over {CLUSTERS} clusters ({} runs)",
        o.runs
    );
    let sb = start(Scenario::generated(SERVICES, 10, CLUSTERS), 1.0).await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("state"))?;
    let mut times = Vec::new();
    let mut per_run = Vec::new();
    let mut reported = Value::Null;
    let mut consumers = 0;
    for _ in 0..o.runs {
        let before = calls_of(&sb, "DescribeServices");
        let mut cmd = clean_command(&bin, &sb.endpoint(), dir.path());
        cmd.args(["plan", "generated/shared", "--output", "json"]);
        for c in 0..CLUSTERS {
            cmd.args(["--cluster", &format!("cluster-{c}")]);
        }
        let t = Instant::now();
        let out = run(cmd, None)?;
        times.push(t.elapsed());
        per_run.push(calls_of(&sb, "DescribeServices") - before);
        let v: Value = serde_json::from_slice(&out).context("plan JSON")?;
        reported = v["aws_calls"].clone();
        consumers = v["redeploy"].as_array().map_or(0, Vec::len);
    }
    let s = stats(&times);
    row("secret-rollout plan --output json", &s);
    let max_calls = per_run.iter().copied().max().unwrap_or(0);
    let bound = SERVICES.div_ceil(10);
    println!("  services the plan would redeploy: {consumers}");
    if consumers != SERVICES {
        bail!("the plan lists {consumers} services to redeploy, expected {SERVICES}");
    }
    println!(
        "  DescribeServices calls per run (sandbox call log): {max_calls}; bound ceil(n/10) = {bound}: {}",
        if max_calls <= bound { "met" } else { "MISSED" }
    );
    println!(
        "  ratio of calls to one DescribeServices per service: {:.2} ({max_calls} / {SERVICES})",
        max_calls as f64 / SERVICES as f64
    );
    println!("  aws_calls reported by --output json: {reported}");

    // What the batching buys, in the same run: describing the 1,000 services 10 per call
    // (as plan does) against one call per service, through the SDK, sequentially.
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&sb.endpoint()).await);
    let mut names: Vec<(String, String)> = Vec::new();
    for c in 0..CLUSTERS {
        let cluster = format!("cluster-{c}");
        let mut pages = ecs
            .list_services()
            .cluster(&cluster)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for arn in page?.service_arns() {
                let name = arn.rsplit('/').next().unwrap_or(arn).to_string();
                names.push((cluster.clone(), name));
            }
        }
    }
    let (mut batched, mut single) = (Vec::new(), Vec::new());
    for _ in 0..o.runs {
        let t = Instant::now();
        let mut n = 0;
        for c in 0..CLUSTERS {
            let cluster = format!("cluster-{c}");
            let mine: Vec<String> = names
                .iter()
                .filter(|(cl, _)| *cl == cluster)
                .map(|(_, s)| s.clone())
                .collect();
            for chunk in mine.chunks(10) {
                let out = ecs
                    .describe_services()
                    .cluster(&cluster)
                    .set_services(Some(chunk.to_vec()))
                    .send()
                    .await?;
                n += out.services().len();
            }
        }
        batched.push(t.elapsed());
        if n != SERVICES {
            bail!("batched: {n} services described");
        }
        let t = Instant::now();
        for (cluster, name) in &names {
            ecs.describe_services()
                .cluster(cluster)
                .services(name)
                .send()
                .await?;
        }
        single.push(t.elapsed());
    }
    let (b, s1) = (stats(&batched), stats(&single));
    row("DescribeServices x100, 10 services each (SDK)", &b);
    row("DescribeServices x1000, 1 service each (SDK)", &s1);
    println!(
        "  ratio one-per-service / batched: {:.1}x",
        ratio(s1.median, b.median)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 6. sync --watch: calls per idle interval

/// `sync --watch` over 10, 100 and 1,000 watched secrets (named on the command line), beside
/// 500 secrets it does not watch: the calls of each idle interval (nothing changed), from
/// the watcher's own health lines (`calls`, by operation) and checked against the sandbox's
/// call log. Target: ceil(n/100) ListSecrets and nothing else. Alternative: one
/// DescribeSecret per watched secret per interval (n calls), the naive watcher.
async fn watch(o: &Opts) -> Result<()> {
    let bin = secret_rollout_bin()?;
    let intervals = o.runs.max(3);
    println!("watch: calls per idle interval of sync --watch ({intervals} idle intervals each)");
    for n in [10usize, 100, 1000] {
        let sb = start(Scenario::sample(), 1.0).await?;
        {
            let world = sb.world();
            let mut w = world.lock().expect("sandbox lock");
            for i in 0..n {
                w.call(
                    sandbox::Service::SecretsManager,
                    "CreateSecret",
                    &json!({"Name": format!("watched/s{i:04}"), "SecretString": "v"}),
                )
                .map_err(|e| anyhow!("CreateSecret: {e}"))?;
            }
            for i in 0..500 {
                w.call(
                    sandbox::Service::SecretsManager,
                    "CreateSecret",
                    &json!({"Name": format!("other/s{i:04}"), "SecretString": "v"}),
                )
                .map_err(|e| anyhow!("CreateSecret: {e}"))?;
            }
        }
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("state"))?;
        let out_path = dir.path().join("watch.out");
        let mut cmd = clean_command(&bin, &sb.endpoint(), dir.path());
        cmd.args([
            "sync",
            "--watch",
            "--interval",
            "300ms",
            "--cluster",
            CLUSTER,
            "--output",
            "ndjson",
        ]);
        for i in 0..n {
            cmd.arg(format!("watched/s{i:04}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(Stdio::null());
        let mut child = cmd.spawn().context("secret-rollout sync --watch")?;
        let healths = |path: &Path| -> Vec<Value> {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["type"] == "health")
                .collect()
        };
        // The first look (the catch-up sync) is not idle: count from the second on.
        let t0 = Instant::now();
        let mut base = None;
        loop {
            let h = healths(&out_path);
            if base.is_none() && !h.is_empty() {
                base = Some(calls_of(&sb, "ListSecrets"));
            }
            if h.len() > intervals {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("the watcher ended ({status})");
            }
            if t0.elapsed() > Duration::from_secs(300) {
                let _ = child.kill();
                bail!("the watcher made no progress for 5 minutes");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let logged = calls_of(&sb, "ListSecrets") - base.unwrap_or(0);
        let _ = child.kill();
        let _ = child.wait();
        let idle: Vec<Value> = healths(&out_path)
            .into_iter()
            .skip(1)
            .take(intervals)
            .collect();
        let mut list_max = 0;
        let mut others = 0;
        for h in &idle {
            let calls = h["calls"].as_object().cloned().unwrap_or_default();
            for (op, count) in calls {
                let count = count.as_u64().unwrap_or(0);
                if op.ends_with("ListSecrets") {
                    list_max = list_max.max(count);
                } else {
                    others += count;
                }
            }
        }
        let target = n.div_ceil(100) as u64;
        println!(
            "  {n:>5} watched (+500 not watched): ListSecrets per idle interval {list_max} (target ceil(n/100) = {target}: {}), other calls {others}; sandbox log: {logged} ListSecrets over {} looks; naive DescribeSecret per secret: {n} calls ({:.0}x more)",
            if list_max <= target && others == 0 { "met" } else { "MISSED" },
            intervals,
            n as f64 / list_max.max(1) as f64
        );
    }
    Ok(())
}
