//! A run's writes to a Parameter Store parameter: the new value in the rollout, the
//! previous value again in the restore. `PutParameter` takes no request token, so each
//! write is journaled as an intent first ([`Record::Intent`]), sent once, and a write whose
//! answer did not come back (or that a crash cut off) is found again in the history by that
//! intent ([`parameter::resolve_written`]). Never a second write; what the history cannot
//! place stops the run with the rotation left open (exit 6) and says what to look at.

use crate::aws::ssm::{self, ParameterInfo};
use crate::error::{Error, Kind, Result};
use crate::journal::{moment_epoch, Phase, Record};
use crate::parameter::{self, Intent, Written};
use crate::progress::Event;
use crate::store;
use crate::value::SecretValue;

use super::run::{now, Run};

/// How far the tool's clock may run ahead of AWS's when the history is matched against a
/// journaled intent. Only versions after the one the intent overwrote count, and that one
/// was the latest a moment before, so a generous allowance cannot take an older write of
/// the same caller for ours.
pub(super) const SKEW_SECS: f64 = 300.0;

/// The start of every message of a write the history cannot place.
const CANNOT_TELL: &str = "cannot tell whether";

impl Run<'_> {
    /// Whether `e` is a parameter write the history cannot place: the rotation stays open.
    pub(super) fn parameter_left_open(&self, e: &Error) -> bool {
        e.kind == Kind::VerifyFailed && e.message.starts_with(CANNOT_TELL)
    }

    /// The stop of a write the history cannot place. The rollout's write can be closed by
    /// the operator (`resume ID --written VERSION`: they read the history and name the
    /// version; [`Run::operator_written`]); `redeploy --secret` cannot, as it refuses while
    /// the rotation is open. A restore's write has no such way out yet.
    fn ambiguous(&self, name: &str, phase: Phase, why: &str) -> Error {
        let id = self.journal.rotation_id();
        let bare = store::parameter_name(name);
        let next = if phase == Phase::Rollout {
            format!(
                "then, if VERSION holds the value you want live, finish the rotation on it (nothing is written): `{}`",
                self.settings
                    .reach
                    .command(&format!("resume {id} --written VERSION"))
            )
        } else {
            format!(
                "once the latest version holds the value you want, roll it out with `{}`",
                self.settings
                    .reach
                    .command(&format!("redeploy --secret {name}"))
            )
        };
        Error::new(
            Kind::VerifyFailed,
            format!("{CANNOT_TELL} rotation {id} wrote parameter {bare}: {why}; nothing more was written"),
        )
        .hint(format!(
            "see who wrote which version with `aws ssm get-parameter-history --name {bare}`; {next}"
        ))
    }

    /// `resume --written VERSION`: the operator names `version` as the one the rollout's
    /// write of parameter `i` made (checked by [`super::resume`]: the write is one the
    /// history cannot place, and `version` exists and is newer than the intent's). Journaled
    /// as written with `operator_named`, so the journal tells it from a write the tool
    /// found; nothing is sent to Parameter Store, and the run goes on as after the write.
    pub(super) fn operator_written(&mut self, i: usize, version: u64) -> Result<()> {
        let s = self.secrets[i].clone();
        let version = version.to_string();
        self.record(Record::Written {
            secret_arn: s.arn.clone(),
            version_id: version.clone(),
            at: now(),
            operator_named: true,
        })?;
        self.secrets[i].written = true;
        self.secrets[i].token = Some(version.clone());
        self.reporter.report(&Event::SecretWritten {
            secret: s.name.clone(),
            version_id: version,
            already: true,
        });
        Ok(())
    }

    /// What the journaled intent of `phase` to write secret `i` came to, from `info`'s
    /// history: `Ok(Some(v))` it wrote version `v`; `Ok(None)` no intent, or the write did
    /// not happen and nobody else wrote since.
    fn resolve_intent(&self, i: usize, phase: Phase, info: &ParameterInfo) -> Result<Option<u64>> {
        let s = &self.secrets[i];
        let Some((previous, at)) = self.intents.get(&(phase, s.arn.clone())) else {
            return Ok(None);
        };
        let previous: u64 = previous.parse().unwrap_or(0);
        let intent = Intent {
            previous,
            caller: &self.caller_arn,
            at: *at,
        };
        match parameter::resolve_written(&intent, &info.history, SKEW_SECS) {
            Written::Ours(v) => Ok(Some(v)),
            Written::NotWritten { others: 0 } => Ok(None),
            Written::NotWritten { others } => Err(Error::new(
                Kind::Superseded,
                format!(
                    "parameter {} has {others} version(s) after {previous} written by someone else, and none by this rotation: nothing was written over them",
                    store::parameter_name(&s.name)
                ),
            )
            .hint(format!(
                "check who changed it (`aws ssm get-parameter-history --name {}`), then plan again (`{}`)",
                store::parameter_name(&s.name),
                self.settings.reach.command(&format!("plan {}", s.name))
            ))),
            Written::Ambiguous(why) => Err(self.ambiguous(&s.name, phase, &why)),
        }
    }

    /// Journals the intent, then sends `PutParameter` once. A failed call may still have
    /// been carried out: the history decides, by the intent.
    async fn put_once(
        &mut self,
        i: usize,
        phase: Phase,
        info: &ParameterInfo,
        value: &SecretValue,
    ) -> Result<u64> {
        let s = self.secrets[i].clone();
        let previous = info
            .latest()
            .map(|(v, _)| v.to_string())
            .unwrap_or_default();
        self.hold()?;
        let at = now();
        self.record(Record::Intent {
            phase,
            secret_arn: s.arn.clone(),
            previous_version_id: previous.clone(),
            caller_arn: self.caller_arn.clone(),
            at,
        })?;
        self.intents
            .insert((phase, s.arn.clone()), (previous, moment_epoch(at)));
        let name = store::parameter_name(&s.name);
        match ssm::put(&self.clients.ssm, name, &info.spec, value).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let after = store::describe_parameter(self.clients, &s.name).await?;
                match self.resolve_intent(i, phase, &after) {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(store::ssm_error(name, "write", e)),
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// The rollout's write of parameter `i`: unless written (or found written by its
    /// journaled intent), checks its latest version is still the one planned, then writes.
    pub(super) async fn write_parameter(
        &mut self,
        i: usize,
        value: Option<SecretValue>,
    ) -> Result<()> {
        let s = self.secrets[i].clone();
        if s.written || self.kind != crate::journal::RotationKind::Replace {
            return Ok(());
        }
        let info = store::describe_parameter(self.clients, &s.name).await?;
        self.specs.insert(s.arn.clone(), info.spec.clone());
        let found = self.resolve_intent(i, Phase::Rollout, &info)?;
        let (version, already) = match found {
            Some(v) => (v, true),
            None => {
                let latest = info.latest().map(|(v, _)| v.to_string());
                if latest != s.previous {
                    return Err(Error::refused(format!(
                        "the latest version of parameter {} moved from {} to {} since the plan: someone else changed it",
                        store::parameter_name(&s.name),
                        s.previous.as_deref().unwrap_or("none"),
                        latest.as_deref().unwrap_or("none")
                    ))
                    .hint(format!(
                        "check who changed it (`aws ssm get-parameter-history --name {}`), then plan again (`{}`)",
                        store::parameter_name(&s.name),
                        self.settings.reach.command(&format!("plan {}", s.name)),
                    )));
                }
                let Some(value) = value else {
                    return Err(Error::bad_input(format!(
                        "the new value of {} was never written and is needed again",
                        s.name
                    ))
                    .hint("give it with --value-stdin, --value-file or --generate"));
                };
                parameter::check_size(&s.name, &info.spec, value.expose().len())?;
                (
                    self.put_once(i, Phase::Rollout, &info, &value).await?,
                    false,
                )
            }
        };
        let version = version.to_string();
        self.record(Record::Written {
            secret_arn: s.arn.clone(),
            version_id: version.clone(),
            at: now(),
            operator_named: false,
        })?;
        self.secrets[i].written = true;
        self.secrets[i].token = Some(version.clone());
        self.reporter.report(&Event::SecretWritten {
            secret: s.name.clone(),
            version_id: version,
            already,
        });
        Ok(())
    }

    /// The restore of parameter `i`: ECS reads the latest version, so the previous value
    /// (`prev`) is written again as a new version, over ours (`new`; empty: a resumed
    /// rollback that does not know it). Returns the version the restore phase delivers and
    /// its `LastModifiedDate`. Never over someone else's version (superseded).
    pub(super) async fn restore_parameter(
        &mut self,
        i: usize,
        prev: &str,
        new: &str,
    ) -> Result<(String, Option<f64>)> {
        let s = self.secrets[i].clone();
        let info = store::describe_parameter(self.clients, &s.name).await?;
        self.specs.insert(s.arn.clone(), info.spec.clone());
        let modified = |v: &str| {
            info.history
                .iter()
                .find(|h| h.version.to_string() == v)
                .map(|h| h.modified)
        };
        if let Some(v) = self.resolve_intent(i, Phase::Restore, &info)? {
            let v = v.to_string();
            if !self.secrets[i].restored {
                self.restored(i, &v, prev)?;
            }
            return Ok((v.clone(), modified(&v)));
        }
        let latest = info.latest().map(|(v, _)| v.to_string());
        if latest.as_deref() == Some(prev) {
            // The write never happened (or the restore is journaled already): the previous
            // version is still the latest.
            self.secrets[i].restored = true;
            return Ok((prev.to_string(), modified(prev)));
        }
        let ours = !new.is_empty() && latest.as_deref() == Some(new);
        if !(ours || (self.kind == crate::journal::RotationKind::Rollback && self.force_restore)) {
            let not = if new.is_empty() {
                format!("not the version {prev} this rollback restores")
            } else {
                format!("neither the new version {new} nor the previous {prev}")
            };
            return Err(Error::new(
                Kind::Superseded,
                format!(
                    "the latest version of parameter {} is now {}, {not}: someone else changed it, and nothing was restored over their change",
                    store::parameter_name(&s.name),
                    latest.as_deref().unwrap_or("none"),
                ),
            )
            .hint(format!(
                "decide which value should be live, then run `{}`",
                self.settings.reach.command(&format!("redeploy --secret {}", s.name))
            )));
        }
        let value = store::value(self.clients, &s.arn, &s.name, prev).await?;
        let v = self
            .put_once(i, Phase::Restore, &info, &value)
            .await?
            .to_string();
        self.restored(i, &v, prev)?;
        let created = store::created(self.clients, &s.arn, &s.name, &v).await?;
        Ok((v, created))
    }

    /// Journals that version `v` carries the previous value `prev` again.
    fn restored(&mut self, i: usize, v: &str, prev: &str) -> Result<()> {
        let s = self.secrets[i].clone();
        self.record(Record::Restored {
            secret_arn: s.arn.clone(),
            version_id: v.to_string(),
            value_of: Some(prev.to_string()),
            at: now(),
        })?;
        self.secrets[i].restored = true;
        self.reporter.report(&Event::SecretRestored {
            secret: s.name.clone(),
            version_id: v.to_string(),
        });
        Ok(())
    }
}
