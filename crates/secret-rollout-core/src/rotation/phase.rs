//! One phase of a run (the rollout, or the restore after it): decide per service whether
//! to follow, adopt or deploy, redeploy, follow, verify, and journal each step.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Kind, Result};
use crate::holding::{task_holds, Holding, TaskHolds};
use crate::journal::{
    epoch_moment, Phase, PhaseOutcome, PhaseTimes, Record, RotationKind, ServiceTimes,
};
use crate::progress::Event;
use crate::rollout::restore::{restore_step, RestoreStep};
use crate::rollout::{self, FollowOptions, SecretWatch, ServiceRef, Tracked};
use crate::secret;
use crate::verdict::Stage;

use super::decide::{self, PhaseFacts, ServiceFacts, Step, Verification};
use super::observe;
use super::report::{PhaseReport, SecretHolding, ServiceReport, TaskCounts};
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

    /// Redeploys every service once in `phase`, follows, verifies. `watch`: the secrets
    /// the phase delivers (`None`: a redeploy without a secret, proven by deployment id).
    /// The watch's first look comes before any redeploy: a secret already on another
    /// version ends the phase as superseded with nothing deployed.
    pub(super) async fn phase(
        &mut self,
        phase: Phase,
        mut watch: Option<SecretWatch>,
        version: &str,
        deadline: Instant,
    ) -> Result<PhaseReport> {
        let created = watch.as_ref().map_or(0.0, |w| {
            w.secrets
                .iter()
                .filter_map(|s| s.created)
                .fold(0.0, f64::max)
        });
        if let Some(w) = watch.as_mut() {
            w.look(phase, self.reporter).await;
            if w.changed() {
                // Nothing is redeployed; the running tasks are listed to say what they hold.
                let all: Vec<Tracked> = self
                    .services
                    .iter()
                    .map(|s| Tracked {
                        cluster: s.cluster.clone(),
                        service: s.service.clone(),
                        deployment_id: String::new(),
                    })
                    .collect();
                let facts = PhaseFacts {
                    timed_out: false,
                    failed_launches: 0,
                    all_completed: false,
                    paused: false,
                    verification: None,
                };
                return self
                    .end_phase(
                        phase,
                        Vec::new(),
                        all,
                        Vec::new(),
                        Some((facts, version)),
                        watch,
                    )
                    .await;
            }
        }
        let since = watch
            .as_ref()
            .and_then(SecretWatch::since)
            .unwrap_or(created);
        let mut tracked: Vec<Tracked> = Vec::new();
        let mut to_deploy: Vec<(ServiceRef, Option<String>)> = Vec::new();
        let steps = self.steps(phase, since).await?;
        // A restore leaves alone the services whose every task already holds the
        // previous version (blue's, after a blue/green rollback).
        let kept = if phase == Phase::Restore {
            let restored_since = watch.as_ref().and_then(SecretWatch::since);
            self.left_alone(&steps, restored_since).await
        } else {
            Vec::new()
        };
        for (svc, step) in steps {
            if kept.contains(&svc) {
                continue;
            }
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
            follow_superseding: watch.is_some(),
            max_task_failures: self.settings.max_task_failures,
            approve_hooks: self.settings.approve_hooks,
            until_traffic: self.settings.until_traffic && phase == Phase::Rollout,
            leases: self
                ._locks
                .iter()
                .filter_map(crate::lock::Lock::lease)
                .collect(),
        };
        let followed = rollout::follow(
            &self.clients.ecs,
            &tracked,
            phase,
            &options,
            self.reporter,
            watch.as_mut(),
        )
        .await;
        // A lease lost while following (--approve-hooks found it before answering a hook,
        // the failure detector before stopping a deployment, or its renewal failed
        // meanwhile): stop before journaling anything more, as before any write (exit 13);
        // `resume` follows again.
        self.hold()?;
        if let Some(why) = &followed.lease_lost {
            return Err(Error::new(Kind::LeaseLost, why.clone()));
        }
        // The services left alone: ECS may still be rolling them back (stopping green's
        // tasks); their tasks are proven once it is done.
        let settled = if kept.is_empty() {
            Vec::new()
        } else {
            rollout::settle(&self.clients.ecs, &kept, &options, self.reporter).await
        };
        self.paused = followed.paused.clone();
        let mut services: Vec<ServiceReport> = followed
            .stages
            .iter()
            .zip(&followed.staged)
            .enumerate()
            .map(|(i, ((t, stage), staged))| ServiceReport {
                cluster: t.cluster.clone(),
                service: t.service.clone(),
                deployment_id: Some(t.deployment_id.clone()),
                stage: stage.clone(),
                proof: None,
                times: followed.times.get(i).copied().unwrap_or_default(),
                staged: staged.clone(),
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
                times: Default::default(),
                staged: None,
            });
        }
        for (svc, done) in kept.iter().zip(&settled) {
            services.push(ServiceReport {
                cluster: svc.cluster.clone(),
                service: svc.service.clone(),
                deployment_id: None,
                stage: if *done {
                    Stage::Completed
                } else {
                    Stage::Starting
                },
                proof: None,
                times: Default::default(),
                staged: None,
            });
        }
        let all_settled = settled.iter().all(|d| *d);
        let facts = PhaseFacts {
            timed_out: followed.timed_out || !all_settled,
            failed_launches: failed.len(),
            all_completed: followed.all_completed() && all_settled,
            paused: followed.only_paused(),
            verification: None,
        };
        let changed = watch.as_ref().is_some_and(SecretWatch::changed);
        // After someone else's change, verify anyway: the report says what tasks hold.
        let to_verify = if facts.ready_to_verify() || changed {
            tracked
                .into_iter()
                .chain(kept.iter().map(|s| Tracked {
                    cluster: s.cluster.clone(),
                    service: s.service.clone(),
                    deployment_id: String::new(),
                }))
                .collect()
        } else {
            Vec::new()
        };
        let production_only: Vec<bool> = to_verify
            .iter()
            .map(|t| {
                followed
                    .stages
                    .iter()
                    .zip(&followed.at_traffic)
                    .any(|((f, _), at)| *at && f.cluster == t.cluster && f.service == t.service)
            })
            .collect();
        self.end_phase(
            phase,
            services,
            to_verify,
            production_only,
            Some((facts, version)),
            watch,
        )
        .await
    }

    /// Verifies `tracked` (when any), takes the watch's final look a margin after the
    /// tasks were listed, judges the holdings and journals how the phase ended.
    async fn end_phase(
        &mut self,
        phase: Phase,
        mut services: Vec<ServiceReport>,
        tracked: Vec<Tracked>,
        production_only: Vec<bool>,
        facts: Option<(PhaseFacts, &str)>,
        mut watch: Option<SecretWatch>,
    ) -> Result<PhaseReport> {
        let mut verify_error = None;
        let mut listed: Vec<crate::verdict::TaskObs> = Vec::new();
        let mut facts = facts.map(|(f, v)| (f, v.to_string()));
        if let (Some((f, version)), false) = (facts.as_mut(), tracked.is_empty()) {
            let since = watch.as_ref().and_then(SecretWatch::since).unwrap_or(0.0);
            // After someone else's change the tasks are listed only to say what they
            // hold: no per-service proof is claimed, in progress or in the report.
            let changed = watch.as_ref().is_some_and(SecretWatch::changed);
            let reporter: &dyn crate::progress::Reporter = if changed {
                &crate::progress::Silent
            } else {
                self.reporter
            };
            let verified = rollout::verify(
                &self.clients.ecs,
                &tracked,
                since,
                watch.is_none(),
                version,
                phase,
                reporter,
                &production_only,
                self.held_before
                    .as_ref()
                    .filter(|_| phase == Phase::Restore),
            )
            .await;
            if let Some(w) = watch.as_mut() {
                w.listed_at = Some(w.now());
                if !w.changed() {
                    w.final_look(phase, self.reporter).await;
                }
            }
            f.verification = Some(match verified {
                Ok(proofs) => {
                    let mut all_hold = true;
                    for (t, tasks, proof) in proofs {
                        all_hold &= proof.holds(1);
                        listed.extend(tasks);
                        if let Some(r) = services
                            .iter_mut()
                            .find(|r| !changed && r.service == t.service && r.cluster == t.cluster)
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
        let secrets = match &watch {
            Some(w) => self.holdings(w, &listed, phase).await,
            None => Vec::new(),
        };
        if let Some((f, _)) = facts.as_mut() {
            if let Some(Verification::Proofs { all_hold }) = f.verification.as_mut() {
                *all_hold &= secrets.iter().all(|s| s.holding.proven());
            }
        }
        let outcome = if secrets
            .iter()
            .any(|s| matches!(s.holding, Holding::Superseded { .. }))
        {
            PhaseOutcome::Superseded
        } else {
            facts.as_ref().map_or(PhaseOutcome::VerifyFailed, |(f, _)| {
                decide::phase_outcome(f)
            })
        };
        self.record(Record::PhaseFinished {
            phase,
            outcome,
            at: now(),
            times: Some(phase_times(&services, &secrets)),
        })?;
        Ok(PhaseReport {
            services,
            outcome,
            verify_error,
            secrets,
        })
    }

    /// The holding rule's answer for each watched secret, with what the listed tasks hold
    /// and the superseding version's creation date.
    async fn holdings(
        &self,
        watch: &SecretWatch,
        tasks: &[crate::verdict::TaskObs],
        phase: Phase,
    ) -> Vec<SecretHolding> {
        let margin = watch.margin.as_secs_f64();
        // In a restore, a task that resolved the previous version before the write (as
        // read then) holds it, while it is current again (the rule below says so).
        let before = self.held_before.filter(|_| phase == Phase::Restore);
        let mut out = Vec::new();
        for (w, holding) in watch.holdings() {
            let mut counts = TaskCounts::default();
            for t in tasks.iter().filter(|t| t.desired_status == "RUNNING") {
                let held = before.is_some_and(|b| b.holds(t)) && holding.proven();
                match task_holds(t.created_at, &holding, margin) {
                    TaskHolds::Before if held => counts.ours += 1,
                    TaskHolds::Ours => counts.ours += 1,
                    TaskHolds::Other => counts.other += 1,
                    TaskHolds::Before => counts.before += 1,
                    TaskHolds::Unknown => counts.unknown += 1,
                }
            }
            let other_created = match &holding {
                Holding::Superseded { by, .. } => {
                    crate::store::created(self.clients, &w.arn, &w.name, by)
                        .await
                        .ok()
                        .flatten()
                }
                _ => None,
            };
            let first = w.looks.first().map(|l| l.last_changed);
            let changed = w.looks.iter().any(|l| {
                l.current.as_deref() != Some(w.version.as_str()) || Some(l.last_changed) != first
            });
            out.push(SecretHolding {
                secret: w.name.clone(),
                arn: w.arn.clone(),
                version: w.version.clone(),
                holding,
                other_created,
                changed,
                tasks: counts,
            });
        }
        out
    }

    /// The blue/green, linear and canary services among `steps` to deploy whose every task
    /// ECS means to run holds the previous version already (see
    /// [`crate::rollout::restore`]): the restore leaves them alone and says why; it
    /// redeploys the others, saying why too. Needs the read before the write: without it
    /// (a resumed run, a rollback) none is left alone. Rolling services are redeployed as
    /// before, unasked: the rule holds for them too, but after a rolling rollback ECS has
    /// relaunched tasks, so there is rarely anything to spare, and the restore keeps one
    /// behaviour there.
    async fn left_alone(
        &self,
        steps: &[(ServiceRef, Step)],
        restored_since: Option<f64>,
    ) -> Vec<ServiceRef> {
        let Some(before) = self.held_before else {
            return Vec::new();
        };
        let mut by_cluster: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (s, step) in steps {
            if matches!(step, Step::Deploy { .. }) {
                by_cluster
                    .entry(s.cluster.as_str())
                    .or_default()
                    .push(s.service.clone());
            }
        }
        // Each candidate's PRIMARY deployment, read once AWSCURRENT is back.
        let mut candidates: Vec<(ServiceRef, Option<String>)> = Vec::new();
        for (cluster, names) in by_cluster {
            let Ok(described) =
                crate::aws::ecs::describe_services(&self.clients.ecs, cluster, &names).await
            else {
                continue;
            };
            for o in described
                .iter()
                .filter(|o| rollout::is_staged(&o.info.strategy))
            {
                candidates.push((
                    ServiceRef {
                        cluster: cluster.to_string(),
                        service: o.info.name.clone(),
                    },
                    o.primary().map(|p| p.id.clone()),
                ));
            }
        }
        let listings = futures::future::join_all(candidates.iter().map(|(s, _)| {
            crate::aws::ecs::running_tasks(&self.clients.ecs, &s.cluster, &s.service)
        }))
        .await;
        let mut kept = Vec::new();
        for ((svc, primary), listed) in candidates.into_iter().zip(listings) {
            let rollout = self
                .deployed
                .get(&(Phase::Rollout, svc.clone()))
                .map(String::as_str);
            let step = match listed {
                Ok(tasks) => restore_step(
                    primary.as_deref(),
                    rollout,
                    &tasks,
                    Some(&before),
                    restored_since,
                ),
                Err(e) => RestoreStep::Redeploy {
                    why: format!("its tasks cannot be listed ({})", e.message),
                },
            };
            let text = match step {
                RestoreStep::Keep => {
                    let text = format!(
                        "{}: not redeployed: every running task resolved the previous version before the new one was written",
                        svc.service
                    );
                    kept.push(svc);
                    text
                }
                RestoreStep::Redeploy { why } => format!("{}: redeployed: {why}", svc.service),
            };
            self.reporter.report(&Event::Note { text });
        }
        kept
    }

    /// A watch of the secrets this run delivers in `phase`: the written versions in the
    /// rollout (with their creation dates), the previous ones in the restore.
    pub(super) fn watch(&self, versions: Vec<(usize, String, Option<f64>)>) -> SecretWatch {
        SecretWatch::new(
            self.clients.sm.clone(),
            self.settings.consistency_margin,
            versions
                .into_iter()
                .map(|(i, v, created)| {
                    let s = &self.secrets[i];
                    (s.arn.clone(), s.name.clone(), v, created)
                })
                .collect(),
        )
        .with_parameters(self.clients.ssm.clone())
    }

    /// Moves AWSCURRENT back on every written secret, redeploys and verifies. Never over a
    /// version this run did not write: then the rotation is superseded.
    pub(super) async fn restore(&mut self) -> Result<PhaseReport> {
        let mut labels = Vec::new();
        let mut watched = Vec::new();
        for i in 0..self.secrets.len() {
            let s = self.secrets[i].clone();
            let Some(prev) = s.previous.clone() else {
                continue;
            };
            // A rollback resumed from its journal does not know the version it moved
            // AWSCURRENT off (its journal records none written): it still delivers `prev`,
            // and must watch it, or its restore phase would prove nothing and adopt any
            // deployment. Any other rotation restores only what it wrote.
            let new = match s.token.clone() {
                Some(new) => new,
                None if self.kind == RotationKind::Rollback => String::new(),
                None => continue,
            };
            if crate::store::is_parameter(&s.arn) {
                let (version, created) = self.restore_parameter(i, &prev, &new).await?;
                labels.push(version.clone());
                watched.push((i, version, created));
                continue;
            }
            let info = secret::describe(&self.clients.sm, &s.arn).await?;
            if info.current.as_deref() == Some(prev.as_str()) {
                // Already restored (resume, or the write never happened).
            } else if (!new.is_empty() && info.current.as_deref() == Some(new.as_str()))
                || (self.kind == RotationKind::Rollback && self.force_restore)
            {
                let from = info.current.clone().unwrap_or(new.clone());
                self.hold()?;
                secret::move_current(&self.clients.sm, &s.arn, &prev, &from).await?;
                self.record(Record::Restored {
                    secret_arn: s.arn.clone(),
                    version_id: prev.clone(),
                    value_of: None,
                    at: now(),
                })?;
                self.reporter.report(&Event::SecretRestored {
                    secret: s.name.clone(),
                    version_id: prev.clone(),
                });
            } else {
                let not = if new.is_empty() {
                    format!("not the version {} this rollback restores", short(&prev))
                } else {
                    format!(
                        "neither the new version {} nor the previous {}",
                        short(&new),
                        short(&prev)
                    )
                };
                return Err(Error::new(Kind::Superseded, format!(
                    "AWSCURRENT of {} is now {}, {not}: someone else changed it, and nothing was restored over their change",
                    s.name,
                    info.current.as_deref().unwrap_or("none"),
                ))
                .hint(format!(
                    "decide which version should be current, then run `{}`",
                    self.settings.reach.command(&format!("redeploy --secret {}", s.name))
                )));
            }
            self.secrets[i].restored = true;
            // The version restored was current from the stage move on: the watch's first
            // look bounds that moment (its LastChangedDate), not the old creation date.
            watched.push((i, prev.clone(), None));
            labels.push(short(&prev).to_string());
        }
        if self.services.is_empty() {
            // A rotation that redeployed nothing (its secrets have no readers): moving
            // AWSCURRENT back is the whole restore; there is no task to prove, and an empty
            // rollout would only fail to list tasks.
            return Ok(PhaseReport {
                services: Vec::new(),
                outcome: PhaseOutcome::Verified,
                verify_error: None,
                secrets: Vec::new(),
            });
        }
        let deadline = Instant::now() + self.settings.timeout;
        let label = labels.join("+");
        let watch = self.watch(watched);
        self.phase(Phase::Restore, Some(watch), &label, deadline)
            .await
    }
}

/// The milestones of a phase for the journal: when its version became current (the
/// earliest `since` of its secrets) and each service's, all on AWS's clock.
fn phase_times(services: &[ServiceReport], secrets: &[SecretHolding]) -> PhaseTimes {
    let since = secrets
        .iter()
        .filter_map(|s| s.holding.since())
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.min(s))));
    PhaseTimes {
        since: since.and_then(epoch_moment),
        services: services
            .iter()
            .map(|s| ServiceTimes {
                cluster: s.cluster.clone(),
                service: s.service.clone(),
                started: s.times.started.and_then(epoch_moment),
                traffic: s.times.traffic.and_then(epoch_moment),
                completed: s.times.completed.and_then(epoch_moment),
            })
            .collect(),
    }
}
