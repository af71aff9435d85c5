//! `sandbox`: the local AWS emulator (Secrets Manager, ECS, STS) until Ctrl-C.

use std::path::PathBuf;

use clap::Args;
use secret_rollout_core::error::{exit, Error, Result};

/// `sandbox`.
#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 4566)]
    pub port: u16,
    /// Scenario file (TOML); default: the built-in sample environment.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Virtual seconds per real second.
    #[arg(long, value_name = "FACTOR", value_parser = super::parse::speed)]
    pub speed: Option<f64>,
    /// Seed for ids and random rules.
    #[arg(long)]
    pub seed: Option<u64>,
    /// AWS's request rate limits: `aws` throttles every action group at AWS's published
    /// burst and sustained rates (wall clock), `none` never throttles; default: the
    /// scenario's `[limits]`.
    #[arg(long, value_name = "aws|none")]
    pub limits: Option<Limits>,
    /// The generated large world instead of a scenario file: SERVICES x TASKS x CLUSTERS
    /// (services, tasks per service, clusters), e.g. `1000x10x20`, as the benchmarks use.
    #[arg(long, value_name = "SxTxC", conflicts_with = "scenario", value_parser = generated_size)]
    pub generated: Option<(usize, usize, usize)>,
}

/// `--limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Limits {
    /// AWS's published rates.
    Aws,
    /// No throttling.
    None,
}

/// The largest generated world: services, tasks per service, clusters.
const GENERATED_MAX: (usize, usize, usize) = (10_000, 100, 1_000);

/// `--generated SxTxC`: three whole numbers within [`GENERATED_MAX`], at least one each.
fn generated_size(s: &str) -> Result<(usize, usize, usize), String> {
    let (ms, mt, mc) = GENERATED_MAX;
    let usage = || {
        format!(
            "{s:?} is not SERVICESxTASKSxCLUSTERS: give e.g. 1000x10x20 (at most {ms}x{mt}x{mc}, at least 1 each)"
        )
    };
    let parts: Vec<usize> = s
        .split(['x', 'X'])
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| usage())?;
    match parts[..] {
        [sv, t, c] if (1..=ms).contains(&sv) && (1..=mt).contains(&t) && (1..=mc).contains(&c) => {
            Ok((sv, t, c))
        }
        _ => Err(usage()),
    }
}

/// `sandbox`.
pub async fn run(a: &SandboxArgs) -> Result<i32, Error> {
    let scenario = match &a.scenario {
        Some(path) => ::sandbox::Scenario::load(path).map_err(|e| {
            Error::bad_input(e).hint("fix the scenario file (see crates/sandbox/SCENARIOS.md)")
        })?,
        None => match a.generated {
            Some((services, tasks, clusters)) => {
                ::sandbox::Scenario::generated(services, tasks, clusters)
            }
            None => ::sandbox::Scenario::sample(),
        },
    };
    let mut scenario = scenario;
    match a.limits {
        Some(Limits::Aws) => scenario.limits = Some(::sandbox::throttle::LimitsSpec::aws()),
        Some(Limits::None) => scenario.limits = None,
        None => {}
    }
    // The banner's keys: the scenario's first listed key when it lists any (it refuses
    // every other), else any.
    let keys: Vec<(String, String)> = scenario
        .sts
        .keys
        .iter()
        .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
        .collect();
    let scenario_limits = scenario.limits.is_some();
    let options = ::sandbox::SandboxOptions {
        port: a.port,
        scenario,
        speed: a.speed,
        seed: a.seed,
    };
    let sb = ::sandbox::Sandbox::start(options).await.map_err(|e| {
        Error::bad_input(format!("cannot start the sandbox: {e}"))
            .hint("pick another port with --port (0 picks a free one)")
    })?;
    let state = sb.snapshot();
    print!(
        "{}",
        banner(
            &sb.endpoint(),
            state["region"].as_str().unwrap_or_default(),
            state["account"].as_str().unwrap_or_default(),
            &keys,
        )
    );
    if scenario_limits {
        println!(
            "  limits:      AWS's request rates (throttled calls: curl {}/_sandbox/limits)",
            sb.endpoint()
        );
    }
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    Ok(exit::OK)
}

/// What the sandbox prints when it is up: where it listens and the exports that reach it,
/// with keys it accepts (`keys`: the scenario's, id and secret; any key when empty).
fn banner(endpoint: &str, region: &str, account: &str, keys: &[(String, String)]) -> String {
    let (credentials, id, secret) = match keys.first() {
        None => (
            "any access key".to_string(),
            "sandbox".to_string(),
            "sandbox".to_string(),
        ),
        Some((id, secret)) => (
            format!(
                "only the scenario's keys: {}",
                keys.iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            id.clone(),
            if secret.is_empty() {
                "sandbox".to_string()
            } else {
                secret.clone()
            },
        ),
    };
    format!(
        "sandbox listening on {endpoint}\n  region:      {region}\n  account:     {account}\n  credentials: {credentials}\n\n  export AWS_ENDPOINT_URL={endpoint}\n  export AWS_REGION={region} AWS_ACCESS_KEY_ID={id} AWS_SECRET_ACCESS_KEY={secret}\n  state: curl {endpoint}/_sandbox/state\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sizes_are_three_bounded_counts() {
        assert_eq!(generated_size("1000x10x20"), Ok((1000, 10, 20)));
        assert_eq!(generated_size("1X1X1"), Ok((1, 1, 1)));
        for bad in [
            "1000x10",
            "0x1x1",
            "1x0x1",
            "1x1x0",
            "10001x1x1",
            "1x101x1",
            "axbxc",
            "",
            "1x1x1x1",
            "-1x1x1",
        ] {
            let e = generated_size(bad).unwrap_err();
            assert!(e.contains("is not SERVICESxTASKSxCLUSTERS"), "{bad}: {e}");
        }
    }

    /// Item 13 of issue 21: the banner never suggests a key the scenario refuses.
    #[test]
    fn banner_suggests_a_key_the_scenario_accepts() {
        let any = banner("http://127.0.0.1:4566", "eu-west-1", "123456789012", &[]);
        assert!(any.contains("credentials: any access key\n"), "{any}");
        assert!(
            any.contains("export AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox\n"),
            "{any}"
        );
        let listed = banner(
            "http://127.0.0.1:4566",
            "eu-west-1",
            "123456789012",
            &[
                ("AKIAALICE".into(), "alice-secret".into()),
                ("AKIABOB".into(), String::new()),
            ],
        );
        assert!(
            listed.contains("credentials: only the scenario's keys: AKIAALICE, AKIABOB\n"),
            "{listed}"
        );
        assert!(
            listed.contains("AWS_ACCESS_KEY_ID=AKIAALICE AWS_SECRET_ACCESS_KEY=alice-secret\n"),
            "{listed}"
        );
        assert!(!listed.contains("=sandbox AWS_SECRET"), "{listed}");
    }
}
