//! `plan` (and `replace --dry-run`): what `replace` would do, with nothing written.

use clap::Args;
use secret_rollout_core::error::{exit, Result};
use secret_rollout_core::rotation;

use super::args::{self, Global};
use super::output;
use super::session;

/// `plan`.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// Secret names or ARNs.
    #[arg(required = true, value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// Where.
    #[command(flatten)]
    pub target: args::Target,
    /// Only these consumers.
    #[arg(long, value_delimiter = ',', value_name = "A,B", value_parser = super::parse::service_name)]
    pub services: Vec<String>,
}

/// `plan`.
pub async fn run(global: &Global, a: &PlanArgs) -> Result<i32> {
    show(global, &a.secrets, &a.target, &a.services).await
}

/// Shows the plan whole, then refuses with why `replace` would stop, if it would.
pub async fn show(
    global: &Global,
    secrets: &[String],
    t: &args::Target,
    services: &[String],
) -> Result<i32> {
    let target = session::target(global, t)?;
    let s = session::sign_in(target, t).await?;
    let p = rotation::plan(&s.clients, &s.target, secrets, services).await?;
    let refusal = p.consumers.refusal();
    output::plan(global.output, &p, &s.clients, &s.caller, refusal.as_ref());
    match refusal {
        Some(refusal) => Err(refusal),
        None => Ok(exit::OK),
    }
}
