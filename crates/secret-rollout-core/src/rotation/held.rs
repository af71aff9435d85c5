//! What stands in the way of a rotation of a secret right now, read without touching it:
//! its lock (the local `flock`, and for a team state the lock object in the bucket) and an
//! unfinished rotation of it in the journal. `replace` refuses on either ([`super::run`]'s
//! `lock_all`); `plan` and `replace --dry-run` say so beforehand, one line per secret with
//! the refusal's own hint, so that a plan that looks clear is not followed by a refusal.
//!
//! Reading only: nothing here takes, renews or removes a lock ([`crate::lock::peek`] for
//! the local one, a GET of the object for the bucket's). The journal is read as the
//! caller left it: with a team state, the caller syncs it with the bucket first.

use std::path::Path;

use crate::error::{Reach, Result};
use crate::journal::{self, RotationSummary};
use crate::lock::{self, Seen};
use crate::state::s3::{self, FoundLock};
use crate::state::Backend;

use super::decide;

/// One secret's lock and journal, as seen now.
#[derive(Debug, Clone)]
pub struct Held {
    /// The secret's name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// The local lock.
    pub local: Seen,
    /// The lock object in the team state's bucket, if there is one (live or expired).
    pub team: Option<FoundLock>,
    /// The most recent unfinished rotation of the secret in the journal.
    pub unfinished: Option<RotationSummary>,
    /// What to do: the hint `replace`'s refusal gives (`None`: nothing in the way).
    pub hint: Option<String>,
}

impl Held {
    /// Whether `replace` would be refused now for this secret (as far as can be seen:
    /// where the local lock cannot be read without taking it, it does not count).
    pub fn in_the_way(&self) -> bool {
        self.hint.is_some()
    }

    /// A live lock object in the bucket (an expired one is taken over by the next run).
    pub fn team_live(&self) -> Option<&FoundLock> {
        self.team.as_ref().filter(|f| !f.expired())
    }

    /// The one line saying what is in the way and what to do, or `None` when nothing is.
    pub fn line(&self) -> Option<String> {
        let hint = self.hint.as_ref()?;
        let open = self.unfinished.as_ref().map(|o| {
            format!(
                "rotation {} ({}) started {} is unfinished",
                o.rotation_id(),
                o.started.kind.name(),
                crate::history::rfc3339(o.started.started_at)
            )
        });
        let what = if let Seen::Held {
            pid,
            taken_secs_ago,
        } = &self.local
        {
            let pid = pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"));
            let age = taken_secs_ago.map_or(String::new(), |s| format!(", taken {s}s ago"));
            let also = open.map_or(String::new(), |o| format!("; {o}"));
            format!("locked: another secret-rollout is rotating it here ({pid}{age}){also}")
        } else if let Some(found) = self.team_live() {
            format!("locked in the team state: held by {}", found.describe())
        } else {
            open?
        };
        Some(format!(
            "{}: {what}: replace refuses now; {hint}",
            self.name
        ))
    }
}

/// The locks and unfinished rotations of `secrets` (name, ARN) in `environment`. For a
/// team state the journal in `state_dir` must have been synced with the bucket.
pub async fn held(
    state_dir: &Path,
    backend: &Backend,
    reach: &Reach,
    environment: &str,
    secrets: &[(String, String)],
) -> Result<Vec<Held>> {
    let mut out = Vec::with_capacity(secrets.len());
    for (name, arn) in secrets {
        let local = lock::peek(state_dir, environment, arn);
        let team = match backend.s3() {
            Some(s3) => s3::find_lock(s3, environment, arn).await?,
            None => None,
        };
        let unfinished = journal::unfinished(state_dir, environment, arn)?;
        // The hint of the refusal `replace` would meet first: the local lock, the
        // bucket's, then the journal (the order of `lock_all`).
        let hint = match (&local, team.as_ref().filter(|f| !f.expired()), &unfinished) {
            // Unknown (no kernel table to read): lock files stay after every run, so an
            // existing one says nothing; not reported rather than reported wrongly.
            (Seen::Held { .. }, ..) => Some(lock::LOCAL_HELD_HINT.to_string()),
            (_, Some(found), _) => Some(s3::held_hint(reach, arn, found)),
            (_, None, Some(open)) => Some(decide::unfinished_hint(open, reach)),
            _ => None,
        };
        out.push(Held {
            name: name.clone(),
            arn: arn.clone(),
            local,
            team,
            unfinished,
            hint,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbCdEf";

    fn seen(dir: &Path) -> Held {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let reach = Reach::new(vec!["--env".into(), "production".into()]);
        let secrets = [("production/x".to_string(), ARN.to_string())];
        let mut all = rt
            .block_on(held(dir, &Backend::Local, &reach, "production", &secrets))
            .unwrap();
        assert_eq!(all.len(), 1);
        all.pop().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_held_local_lock_is_in_the_way_with_the_refusals_hint_and_a_free_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let free = seen(dir.path());
        assert!(!free.in_the_way());
        assert_eq!(free.line(), None);
        let lock = crate::lock::Lock::acquire(dir.path(), "production", ARN).unwrap();
        let held = seen(dir.path());
        assert!(held.in_the_way());
        assert_eq!(held.hint.as_deref(), Some(lock::LOCAL_HELD_HINT));
        let line = held.line().unwrap();
        let start = format!(
            "production/x: locked: another secret-rollout is rotating it here (pid {}, taken ",
            std::process::id()
        );
        assert!(line.starts_with(&start), "{line}");
        assert!(
            line.ends_with(&format!(
                "s ago): replace refuses now; {}",
                lock::LOCAL_HELD_HINT
            )),
            "{line}"
        );
        drop(lock);
        // The file stays, unlocked: not in the way.
        assert!(!seen(dir.path()).in_the_way());
    }
}
