//! `completions`: shell completions on stdout.

use clap::Args;
use secret_rollout_core::error::{exit, Result};

/// `completions`.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `completions`, for the command line `cmd` (the whole `Cli`, given by the caller).
pub fn run(a: &CompletionsArgs, mut cmd: clap::Command) -> Result<i32> {
    clap_complete::generate(a.shell, &mut cmd, "secret-rollout", &mut std::io::stdout());
    Ok(exit::OK)
}
