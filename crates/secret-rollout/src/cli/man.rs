//! `man`: the man page (roff) on stdout. It takes no arguments.

use std::io::Write;

use secret_rollout_core::error::{exit, Error, Result};

/// `man`, for the command line `cmd` (the whole `Cli`, given by the caller).
pub fn run(cmd: clap::Command) -> Result<i32> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| Error::local(format!("cannot render the man page: {e}")).caused_by(e))?;
    let _ = std::io::stdout().write_all(&out);
    Ok(exit::OK)
}
