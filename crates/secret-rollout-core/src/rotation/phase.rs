//! One phase of a run (the rollout, or the restore after it): decide per service whether
//! to follow, adopt or deploy, redeploy, follow, verify, and journal each step.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::journal::{Phase, Record, RotationKind};
use crate::progress::Event;
use crate::rollout::{self, FollowOptions, ServiceRef, Tracked};
use crate::secret;
use crate::verdict::Stage;

use super::decide::{self, PhaseFacts, ServiceFacts, Step, Verification};
use super::observe;
use super::report::{PhaseReport, ServiceReport};
use super::run::{now, short, Run};
use super::OnFailure;

impl Run<'_> {
    /// What this phase does with each service: follow, adopt (journaled here) or deploy.
    async fn steps(&mut self, phase: Phase, since: f64) -> Result<Vec<(ServiceRef, Step)>> {
        // Where each service stands now: a deployment of ours may already run (resume), and
        // UpdateService needs the current PRIMARY to recognise its own lost answer.
        let primaries = observe::primaries(&self.clients.ecs, &self.services).await;
        let after = decide::adopt_after(since, Some(self.started_at));
        let mut steps = Vec::with_capacity(self.services.len());
        for svc in self.services.clone() {
            let step = decide::service_step(&ServiceFacts {
                phase,
                resumed: self.resumed,
                journaled: self.deployed.get(&(phase, svc.clone())).map(String::as_str),
                primary: primaries.found.get(&svc),
                after,
                previous_deployment: self.previous_deployments.get(&svc).map(String::as_str),
                rollout_deployment: self
                    .deployed
                    .get(&(Phase::Rollout, svc.clone()))
                    .map(String::as_str),
            });
            if let Step::Adopt(id) = &step {
                self.record(Record::Redeployed {
                    phase,
                    cluster: svc.cluster.clone(),
                    service: svc.service.clone(),
                    deployment_id: id.clone(),
                    at: now(),
                })?;
                self.deployed.insert((phase, svc.clone()), id.clone());
            }
            steps.push((svc, step));
        }
        // Not knowing a PRIMARY costs twice: on resume a deployment whose journal line was
        // lost is not adopted, and a lost UpdateService answer is not recognised. Either
        // (together with that second fault) deploys the service twice in this phase.
        for (cluster, error) in &primaries.unreadable {
            let blind: Vec<&str> = steps
                .iter()
                .filter(|(s, step)| &s.cluster == cluster && !matches!(step, Step::Follow(_)))
                .map(|(s, _)| s.service.as_str())
                .collect();
            if !blind.is_empty() {
                self.reporter.report(&Event::Warning {
                    text: format!(
                        "cannot describe {} in {cluster} before redeploying ({error}): adopting no deployment there; if an UpdateService answer is lost too, a service may be deployed twice",
                        blind.join(", ")
                    ),
                });
            }
        }
        Ok(steps)
    }

    /// Redeploys every service once in `phase`, follows, verifies against `since`.
    pub(super) async fn phase(
        &mut self,
        phase: Phase,
        since: f64,
        version: &str,
        deadline: Instant,
    ) -> Result<PhaseReport> {
        let mut tracked: Vec<Tracked> = Vec::new();
        let mut to_deploy: Vec<(ServiceRef, Option<String>)> = Vec::new();
        for (svc, step) in self.steps(phase, since).await? {
            match step {
                Step::Follow(id) | Step::Adopt(id) => tracked.push(Tracked {
                    cluster: svc.cluster,
                    service: svc.service,
                    deployment_id: id,
                }),
                Step::Deploy { previous_primary } => to_deploy.push((svc, previous_primary)),
            }
        }
        // Journal each deployment the moment it is accepted: a crash right after still
        // leaves the record that stops `resume` from deploying the service again.
        if !to_deploy.is_empty() {
            self.hold()?;
        }
        let mut journal_error = None;
        let (started, failed) = {
            let journal = &mut self.journal;
            let deployed = &mut self.deployed;
            rollout::redeploy_all(
                &self.clients.ecs,
                &to_deploy,
                phase,
                self.reporter,
                &mut |t: &Tracked| {
                    let record = Record::Redeployed {
                        phase,
                        cluster: t.cluster.clone(),
                        service: t.service.clone(),
                        deployment_id: t.deployment_id.clone(),
                        at: now(),
                    };
                    if let Err(e) = journal.append(&record) {
                        journal_error.get_or_insert(e);
                    }
                    deployed.insert(
                        (
                            phase,
                            ServiceRef {
                                cluster: t.cluster.clone(),
                                service: t.service.clone(),
                            },
                        ),
                        t.deployment_id.clone(),
                    );
                },
            )
            .await
        };
        if let Some(e) = journal_error {
            return Err(e);
        }
        tracked.extend(started);
        let options = FollowOptions {
            first_poll: Duration::from_millis(100).min(self.settings.max_poll),
            max_poll: self.settings.max_poll,
            deadline,
            stop_on_failure: phase == Phase::Rollout
                && self.settings.on_failure == OnFailure::Rollback,
        };
        let followed =
            rollout::follow(&self.clients.ecs, &tracked, phase, &options, self.reporter).await;
        let mut services: Vec<ServiceReport> = followed
            .stages
            .iter()
            .map(|(t, stage)| ServiceReport {
                cluster: t.cluster.clone(),
                service: t.service.clone(),
                deployment_id: Some(t.deployment_id.clone()),
                stage: stage.clone(),
                proof: None,
            })
            .collect();
        for (svc, e) in &failed {
            self.reporter.report(&Event::DeploymentFailed {
                phase,
                service: svc.service.clone(),
                reason: e.message.clone(),
            });
            services.push(ServiceReport {
                cluster: svc.cluster.clone(),
                service: svc.service.clone(),
                deployment_id: None,
                stage: Stage::Failed {
                    reason: e.message.clone(),
                },
                proof: None,
            });
        }
        let mut facts = PhaseFacts {
            timed_out: followed.timed_out,
            failed_launches: failed.len(),
            all_completed: followed.all_completed(),
            verification: None,
        };
        let mut verify_error = None;
        if facts.ready_to_verify() {
            let verified = rollout::verify(
                &self.clients.ecs,
                &tracked,
                since,
                version,
                phase,
                self.reporter,
            )
            .await;
            facts.verification = Some(match verified {
                Ok(proofs) => {
                    let mut all_hold = true;
                    for (t, proof) in proofs {
                        all_hold &= proof.holds(1);
                        if let Some(r) = services
                            .iter_mut()
                            .find(|r| r.service == t.service && r.cluster == t.cluster)
                        {
                            r.proof = Some(proof);
                        }
                    }
                    Verification::Proofs { all_hold }
                }
                Err(e) => {
                    self.reporter.report(&Event::VerifyError {
                        phase,
                        error: e.message.clone(),
                    });
                    verify_error = Some(e.message.clone());
                    Verification::Error(e.message)
                }
            });
        }
        let outcome = decide::phase_outcome(&facts);
        self.record(Record::PhaseFinished {
            phase,
            outcome,
            at: now(),
        })?;
        Ok(PhaseReport {
            services,
            outcome,
            verify_error,
        })
    }

    /// Moves AWSCURRENT back on every written secret, redeploys and verifies.
    pub(super) async fn restore(&mut self) -> Result<PhaseReport> {
        let mut since = 0.0f64;
        let mut labels = Vec::new();
        for i in 0..self.secrets.len() {
            let s = self.secrets[i].clone();
            let (Some(prev), Some(new)) = (s.previous.clone(), s.token.clone()) else {
                continue;
            };
            let info = secret::describe(&self.clients.sm, &s.arn).await?;
            if info.current.as_deref() == Some(prev.as_str()) {
                // Already restored (resume, or the write never happened).
            } else if info.current.as_deref() == Some(new.as_str())
                || self.kind == RotationKind::Rollback
            {
                let from = info.current.clone().unwrap_or(new.clone());
                self.hold()?;
                secret::move_current(&self.clients.sm, &s.arn, &prev, &from).await?;
                self.record(Record::Restored {
                    secret_arn: s.arn.clone(),
                    version_id: prev.clone(),
                    at: now(),
                })?;
                self.reporter.report(&Event::SecretRestored {
                    secret: s.name.clone(),
                    version_id: prev.clone(),
                });
            } else {
                return Err(Error::refused(format!(
                    "AWSCURRENT of {} is now {}, neither the new version {} nor the previous {}: not restoring over someone else's change",
                    s.name,
                    info.current.as_deref().unwrap_or("none"),
                    short(&new),
                    short(&prev)
                ))
                .hint("decide which version should be current, then run `secret-rollout redeploy --secret NAME`"));
            }
            self.secrets[i].restored = true;
            let after = secret::describe(&self.clients.sm, &s.arn).await?;
            since = since.max(after.last_changed.unwrap_or(0.0));
            labels.push(short(&prev).to_string());
        }
        let deadline = Instant::now() + self.settings.timeout;
        let label = labels.join("+");
        self.phase(Phase::Restore, since, &label, deadline).await
    }
}
