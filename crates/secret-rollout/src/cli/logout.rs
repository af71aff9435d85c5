//! `logout`: forgetting cached MFA sessions.

use clap::Args;
use secret_rollout_core::credentials;
use secret_rollout_core::error::{exit, Result};
use serde_json::json;

use super::args::{Global, Output};
use super::ndjson;

/// `logout`.
#[derive(Debug, Args, Clone)]
pub struct LogoutArgs {
    /// Only this profile's session (default: all).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// `logout`.
pub fn run(global: &Global, a: &LogoutArgs) -> Result<i32> {
    let n = credentials::logout(a.profile.as_deref())?;
    let doc = json!({ "forgotten": n, "profile": a.profile });
    match global.output {
        Output::Ndjson => ndjson::print_document("logout", &doc),
        Output::Json => println!("{doc}"),
        Output::Text => match (&a.profile, n) {
            (Some(p), 0) => println!("no cached session for profile {p}"),
            (Some(p), _) => println!("forgot the cached session of profile {p}"),
            (None, 0) => println!("no cached sessions"),
            (None, n) => println!("forgot {n} cached session(s)"),
        },
    }
    Ok(exit::OK)
}
