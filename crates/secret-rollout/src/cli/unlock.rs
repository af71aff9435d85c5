//! `unlock`: removes a secret's lock left behind, after showing who holds it and since
//! when. In a team state (S3) the lock object is deleted only if it did not change since
//! it was shown (`If-Match` on its ETag); a local lock is the operating system's and goes
//! with its process, so it is only shown.

use std::io::Write;

use clap::Args;
use secret_rollout_core::error::{exit, Error, Result};
use secret_rollout_core::lock::{lock_path, Lock};
use secret_rollout_core::secret;
use secret_rollout_core::state::{s3, Backend};

use super::args::{Global, Target};
use super::rotating;
use super::session;

/// `unlock`.
#[derive(Debug, Args, Clone)]
pub struct UnlockArgs {
    /// The secret (a name, the environment's prefix added, or an ARN).
    #[arg(value_name = "SECRET")]
    pub secret: String,
    /// Where.
    #[command(flatten)]
    pub target: Target,
    /// Remove it without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `unlock`.
pub async fn run(global: &Global, a: &UnlockArgs) -> Result<i32> {
    let target = session::account_target(global, &a.target)?;
    let id = target.secret_id(&a.secret);
    let s = session::sign_in(target, &a.target).await?;
    let info = secret::describe(&s.clients.sm, &id).await?;
    let environment = s.target.label();
    let mut err = std::io::stderr().lock();
    match session::backend(global, &a.target, &s)? {
        Backend::S3(state) => {
            let Some(found) = s3::find_lock(&state, &environment, &info.arn).await? else {
                let _ = writeln!(
                    err,
                    "{} in {environment} is not locked in {}",
                    info.name, state.location
                );
                return Ok(exit::OK);
            };
            let _ = writeln!(
                err,
                "lock of {} in {environment}: held by {}",
                info.name,
                found.describe()
            );
            if !found.expired() {
                let _ = writeln!(
                    err,
                    "its lease is live: removing it lets a second run write while this one may still be running"
                );
            }
            drop(err);
            if !rotating::ask(a.yes, "remove this lock?")? {
                return Err(Error::refused("not confirmed: the lock stays")
                    .hint("rerun and answer y, or pass --yes"));
            }
            s3::remove_lock(&state, &found).await?;
            eprintln!("removed the lock of {} in {environment}", info.name);
            Ok(exit::OK)
        }
        Backend::Local => {
            let state_dir = session::state_dir()?;
            let path = lock_path(&state_dir, &environment, &info.arn);
            if !path.exists() {
                let _ = writeln!(err, "{} in {environment} is not locked here", info.name);
                return Ok(exit::OK);
            }
            match Lock::acquire(&state_dir, &environment, &info.arn) {
                Ok(_) => {
                    let _ = writeln!(
                        err,
                        "{} in {environment} is not locked: no process holds {}",
                        info.name,
                        path.display()
                    );
                    Ok(exit::OK)
                }
                Err(e) => {
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .map_or(String::new(), |d| format!(", taken {}s ago", d.as_secs()));
                    Err(Error::refused(format!("{}{age}", e.message)).hint(
                        "a local lock belongs to a running process and goes away when it exits: stop that process (kill PID) to release it",
                    ))
                }
            }
        }
    }
}
