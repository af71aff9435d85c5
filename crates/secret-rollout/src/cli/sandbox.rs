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
}

/// `sandbox`.
pub async fn run(a: &SandboxArgs) -> Result<i32, Error> {
    let scenario = match &a.scenario {
        Some(path) => ::sandbox::Scenario::load(path).map_err(|e| {
            Error::bad_input(e).hint("fix the scenario file (see crates/sandbox/SCENARIOS.md)")
        })?,
        None => ::sandbox::Scenario::sample(),
    };
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
    println!("sandbox listening on {}", sb.endpoint());
    println!(
        "  region:      {}",
        state["region"].as_str().unwrap_or_default()
    );
    println!(
        "  account:     {}",
        state["account"].as_str().unwrap_or_default()
    );
    println!("  credentials: any access key (unless the scenario lists some)");
    println!();
    println!("  export AWS_ENDPOINT_URL={}", sb.endpoint());
    println!(
        "  export AWS_REGION={} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox",
        state["region"].as_str().unwrap_or_default()
    );
    println!("  state: curl {}/_sandbox/state", sb.endpoint());
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    Ok(exit::OK)
}
