//! The rollout: redeploy every consumer at once, follow each deployment by its own id, and
//! prove every running task fresh. The same mechanism serves `replace`, `redeploy`, the
//! restore after a failure, `rollback` and `resume`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

use crate::aws::ecs;
use crate::aws::errors::AwsError;
use crate::progress::{Event, Phase, Reporter};
use crate::verdict::{self, judge, Proof, Stage, TaskObs};

pub mod restore;
pub mod strategy;
pub mod watch;

pub use strategy::{judge_service_deployment, PauseAt, SdVerdict};
pub use watch::SecretWatch;

/// A service to redeploy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ServiceRef {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
}

/// A service whose deployment we follow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tracked {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// Our deployment's id.
    pub deployment_id: String,
}

/// How to poll.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Wait before the second poll (the first is immediate); doubles up to `max_poll`.
    pub first_poll: Duration,
    /// Longest wait between polls while AWS is healthy: completion is noticed within it.
    pub max_poll: Duration,
    /// Give up then (the command's `--timeout`).
    pub deadline: Instant,
    /// Stop following the others as soon as one service fails: a restore will follow,
    /// and every minute spent rolling the failed value further is exposure.
    pub stop_on_failure: bool,
    /// A service deployment superseded by a newer one (someone else's deploy) is not a
    /// failure: follow the newer one, whose tasks the holding rule judges. Only when a
    /// secret is watched: a redeploy without one proves by deployment id.
    pub follow_superseding: bool,
    /// `--max-task-failures`: our failure detector's threshold for every service (else
    /// the circuit breaker's, for the services the breaker does not cover; see
    /// [`strategy::detector_threshold`]).
    pub max_task_failures: Option<u32>,
    /// `--approve-hooks`: at a `PAUSE` hook, continue the deployment once every green task
    /// is proven to hold the watched value, stop it with ROLLBACK when not (rollout only;
    /// a restore not proven is left waiting, reported). Needs a watch.
    pub approve_hooks: bool,
    /// `--until traffic`: a blue/green, linear or canary deployment is followed only until
    /// all production traffic is on the new revision (its bake goes on); verification then
    /// proves the tasks of that deployment, which receive all production traffic.
    pub until_traffic: bool,
    /// The leases of the run's locks in a team state (empty for a local one): checked
    /// right before `--approve-hooks` answers a hook, as before every other write.
    pub leases: Vec<std::sync::Arc<crate::state::Lease>>,
}

/// How a blue/green, linear or canary deployment went, as the follow saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StagedView {
    /// `BLUE_GREEN`, `LINEAR` or `CANARY`.
    pub strategy: String,
    /// The last lifecycle stage seen (empty: no service deployment record read).
    pub lifecycle_stage: String,
    /// The new revision's share of production traffic, percent, as last seen.
    pub production_traffic: Option<f64>,
    /// The traffic moment: when the follow first saw all production traffic on the new
    /// revision (blue/green: the production shift done; linear and canary: the last step),
    /// on the tool's clock, within one poll of it. The deployment is complete only after
    /// the bake and clean-up that follow.
    #[serde(serialize_with = "crate::history::ser_opt_epoch")]
    pub traffic_moved_at: Option<f64>,
    /// The same moment on ECS's clock (see [`Milestones::traffic`]): the deployment's
    /// traffic milestone, kept in the journal, which `status` gives as the shift the bake
    /// began after.
    #[serde(skip)]
    pub traffic_moved_ecs: Option<f64>,
}

/// Whether a deployment strategy is staged (its record has lifecycle stages and traffic).
pub fn is_staged(strategy: &str) -> bool {
    matches!(strategy, "BLUE_GREEN" | "LINEAR" | "CANARY")
}

/// Now on the tool's clock, epoch seconds.
fn wall_now() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9
}

/// When a followed deployment reached its milestones, on ECS's clock (epoch seconds), as
/// far as the polls saw them (for the timeline; issue 19):
///
/// - `started`: the deployment's `createdAt`;
/// - `traffic`: all traffic on new tasks (the moment the tool reports `traffic_on_new`:
///   for a rolling deployment, every old task told to stop; for blue/green, linear and
///   canary, production traffic on the new revision), dated by ECS's latest moment the
///   poll that saw it holds (the latest `updatedAt` of the service's deployments or of its
///   events since the deployment started): the change that made it so, or, if ECS
///   recorded nothing for that change, a little before; unknown when no poll saw it
///   before completion;
/// - `completed`: the same at the poll that saw the deployment complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Milestones {
    /// The deployment's `createdAt`.
    pub started: Option<f64>,
    /// All traffic on new tasks.
    pub traffic: Option<f64>,
    /// Completed.
    pub completed: Option<f64>,
}

/// How a follow ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowResult {
    /// Final (or last seen, on timeout) stage of each service, in the order given.
    pub stages: Vec<(Tracked, Stage)>,
    /// The deadline passed before every service reached a final stage.
    pub timed_out: bool,
    /// The services whose deployment waits at a `PAUSE` hook: following stopped once
    /// every service not done waited at one (nothing more happens until someone
    /// continues it).
    pub paused: Vec<(Tracked, PauseAt)>,
    /// When each deployment reached its milestones, in the order of `stages`.
    #[serde(skip)]
    pub times: Vec<Milestones>,
    /// For each service, in the order of `stages`: how its staged deployment went (`None`
    /// for a rolling one).
    pub staged: Vec<Option<StagedView>>,
    /// For each service, in the order of `stages`: followed only until its traffic moment
    /// (`--until traffic`); not completed, but done for this run.
    pub at_traffic: Vec<bool>,
    /// `--approve-hooks` found a lease of the run's locks lost before answering a hook
    /// (why): it answered nothing, following stopped, and the run must stop (exit 13).
    pub lease_lost: Option<String>,
}

impl FollowResult {
    /// Services whose rollout failed, with why.
    pub fn failures(&self) -> Vec<(&Tracked, &str)> {
        self.stages
            .iter()
            .filter_map(|(t, s)| match s {
                Stage::Failed { reason } => Some((t, reason.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Every service completed.
    pub fn all_completed(&self) -> bool {
        !self.timed_out
            && self
                .stages
                .iter()
                .enumerate()
                .all(|(i, (_, s))| *s == Stage::Completed || self.at_traffic.get(i) == Some(&true))
    }

    /// Nothing failed and every service not completed waits at a `PAUSE` hook.
    pub fn only_paused(&self) -> bool {
        !self.timed_out
            && !self.paused.is_empty()
            && self.stages.iter().all(|(t, s)| {
                *s == Stage::Completed || (!s.is_final() && self.paused.iter().any(|(p, _)| p == t))
            })
    }
}

/// Forces a new deployment of every service at once, exactly one UpdateService per service
/// (see [`ecs::force_new_deployment`]). `on_deployed` runs as each one is accepted, so the
/// journal records it before anything else happens. Returns the deployments started and
/// the services that could not be redeployed.
pub async fn redeploy_all(
    client: &aws_sdk_ecs::Client,
    services: &[(ServiceRef, Option<String>)],
    phase: Phase,
    reporter: &dyn Reporter,
    on_deployed: &mut (dyn FnMut(&Tracked) + Send),
) -> (Vec<Tracked>, Vec<(ServiceRef, AwsError)>) {
    let mut pending: FuturesUnordered<_> = services
        .iter()
        .map(|(svc, previous)| async move {
            let r = ecs::force_new_deployment(
                client,
                &svc.cluster,
                &svc.service,
                previous.as_deref(),
                4,
            )
            .await;
            (svc.clone(), r)
        })
        .collect();
    let mut started = Vec::new();
    let mut failed = Vec::new();
    while let Some((svc, result)) = pending.next().await {
        match result {
            Ok(deployment_id) => {
                let t = Tracked {
                    cluster: svc.cluster.clone(),
                    service: svc.service.clone(),
                    deployment_id,
                };
                on_deployed(&t);
                reporter.report(&Event::Redeployed {
                    phase,
                    cluster: t.cluster.clone(),
                    service: t.service.clone(),
                    deployment_id: t.deployment_id.clone(),
                });
                started.push(t);
            }
            Err(e) => failed.push((svc, e)),
        }
    }
    // Keep the caller's order: reports and tests read better.
    started.sort_by_key(|t| {
        services
            .iter()
            .position(|(s, _)| s.cluster == t.cluster && s.service == t.service)
    });
    (started, failed)
}

struct Watch {
    /// The deployment (`ecs-svc/...`) followed now: ours, or the one that superseded it.
    id: String,
    stage: Stage,
    counts: Option<(i32, i32, i32, i32, i32)>,
    seen_events: HashSet<(u64, String)>,
    since: Option<f64>,
    failed_seen: i32,
    init_failure: Option<String>,
    /// The service deployment followed (ARN), once known: the service's
    /// `currentServiceDeployment` while our deployment is its PRIMARY.
    sd: Option<String>,
    /// What the service deployment said last.
    sd_verdict: Option<SdVerdict>,
    /// Our failure detector gave up on the deployment (then it was stopped).
    detector: Option<String>,
    /// The service deployment waits at a `PAUSE` hook (as of the last poll).
    paused: Option<PauseAt>,
    /// Milestones seen so far.
    times: Milestones,
    /// Hooks `--approve-hooks` continued (never answered twice).
    approved: HashSet<String>,
    /// `--approve-hooks` left this hook waiting on purpose (a restore not proven).
    left_waiting: bool,
    /// A staged deployment's strategy, stage, traffic and traffic moment.
    staged: Option<StagedView>,
    /// `--until traffic` and all production traffic is on the new revision: done here.
    at_traffic: bool,
}

/// Follows every tracked deployment until each is completed or failed, or the deadline.
/// Polls DescribeServices in batches of ten per cluster; rides out transient errors (the
/// SDK has already retried them) and backs off further under throttling.
///
/// With a `watch`, every poll also reads the secrets the phase delivers, and following
/// stops as soon as one changed: no amount of waiting makes the proof true then.
pub async fn follow(
    client: &aws_sdk_ecs::Client,
    tracked: &[Tracked],
    phase: Phase,
    options: &FollowOptions,
    reporter: &dyn Reporter,
    mut watch: Option<&mut SecretWatch>,
) -> FollowResult {
    let mut watches: Vec<Watch> = tracked
        .iter()
        .map(|t| Watch {
            id: t.deployment_id.clone(),
            stage: Stage::Starting,
            counts: None,
            seen_events: HashSet::new(),
            since: None,
            failed_seen: 0,
            init_failure: None,
            sd: None,
            sd_verdict: None,
            detector: None,
            paused: None,
            times: Milestones::default(),
            approved: HashSet::new(),
            left_waiting: false,
            staged: None,
            at_traffic: false,
        })
        .collect();
    let mut interval = options.first_poll;
    let mut max_poll = options.max_poll;
    let mut timed_out = false;
    let mut lease_lost = None;
    loop {
        let open: Vec<usize> = (0..tracked.len())
            .filter(|&i| !watches[i].stage.is_final() && !watches[i].at_traffic)
            .collect();

        if open.is_empty() {
            break;
        }
        if Instant::now() >= options.deadline {
            timed_out = true;
            break;
        }
        let mut by_cluster: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &i in &open {
            by_cluster
                .entry(tracked[i].cluster.as_str())
                .or_default()
                .push(i);
        }
        // The service deployments known from earlier polls are described first, then the
        // services: what DescribeServices says (`currentServiceDeployment`, the PRIMARY)
        // is then never older than the record, so a record `STOPPED` while the service
        // still names it as current really stopped, and a newer deployment that
        // DescribeServices shows first waits for the record to say what became of ours.
        let known: Vec<Vec<String>> = by_cluster
            .values()
            .map(|idx| idx.iter().filter_map(|&i| watches[i].sd.clone()).collect())
            .collect();
        let polls = by_cluster
            .iter()
            .zip(known)
            .map(|((cluster, idx), arns)| async move {
                let names: Vec<String> = idx.iter().map(|&i| tracked[i].service.clone()).collect();
                // One call per poll for the cluster's services (twenty a call): the one
                // extra call per poll that following by service deployment costs.
                let records = if arns.is_empty() {
                    Ok(Vec::new())
                } else {
                    ecs::describe_service_deployments(client, &arns).await
                };
                let services = match records {
                    Ok(_) => ecs::describe_services(client, cluster, &names).await,
                    Err(_) => Ok(Vec::new()),
                };
                (*cluster, idx, records, services)
            });
        let mut throttled = false;
        for (cluster, idx, records, result) in futures::future::join_all(polls).await {
            let (records, services) = match (records, result) {
                (Ok(r), Ok(s)) => (r, s),
                (Err(e), _) | (_, Err(e)) => {
                    throttled |= e.is_throttling();
                    reporter.report(&Event::Retrying {
                        what: format!("following services in {cluster}"),
                        error: e.message,
                    });
                    continue;
                }
            };
            for &i in idx.iter() {
                let t = &tracked[i];
                let Some(obs) = services.iter().find(|s| s.info.name == t.service) else {
                    watches[i].stage = Stage::Failed {
                        reason: format!("service {} no longer exists", t.service),
                    };
                    continue;
                };
                let record = watches[i]
                    .sd
                    .as_deref()
                    .and_then(|a| records.iter().find(|r| r.arn == a));
                observe(
                    client,
                    t,
                    obs,
                    record,
                    &mut watches[i],
                    phase,
                    options,
                    reporter,
                )
                .await;
                // Learn the service deployment to follow from the next poll on: the
                // service's current one while the deployment followed is its PRIMARY.
                let w = &mut watches[i];
                if w.sd.is_none() && obs.primary().is_some_and(|p| p.id == w.id) {
                    w.sd = obs.current_service_deployment.clone();
                }
            }
        }
        if let Some(w) = watch.as_deref_mut() {
            w.look(phase, reporter).await;
            if options.approve_hooks {
                for i in 0..tracked.len() {
                    if watches[i].paused.is_some() && !watches[i].left_waiting {
                        let answer = approve(
                            client,
                            &tracked[i],
                            &mut watches[i],
                            w,
                            phase,
                            reporter,
                            &options.leases,
                        );
                        if let Err(why) = answer.await {
                            lease_lost = Some(why);
                        }
                    }
                    if lease_lost.is_some() {
                        break;
                    }
                }
            }
            if w.changed() || lease_lost.is_some() {
                break;
            }
        }
        if throttled {
            // Politeness: AWS asked us to slow down.
            max_poll = (max_poll * 2).min(Duration::from_secs(10));
        } else if max_poll > options.max_poll {
            max_poll = (max_poll / 2).max(options.max_poll);
        }
        let failed = watches
            .iter()
            .any(|w| matches!(w.stage, Stage::Failed { .. }));
        // Every service not done waits at a PAUSE hook: only someone continuing it
        // moves it on, so stop here and say how.
        // With --approve-hooks the tool answers the hooks itself: it stops only at those
        // it left waiting.
        if watches.iter().all(|w| {
            w.stage.is_final()
                || w.at_traffic
                || (w.paused.is_some()
                    && (!options.approve_hooks || watch.is_none() || w.left_waiting))
        }) || (options.stop_on_failure && failed)
        {
            break;
        }
        let left = options.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(interval.min(left)).await;
        interval = (interval * 2).min(max_poll);
    }
    let paused = tracked
        .iter()
        .zip(&watches)
        .filter(|(_, w)| !w.stage.is_final())
        .filter_map(|(t, w)| {
            w.paused.clone().map(|p| {
                (
                    Tracked {
                        deployment_id: w.id.clone(),
                        ..t.clone()
                    },
                    p,
                )
            })
        })
        .collect();
    let times = watches.iter().map(|w| w.times).collect();
    let staged = watches.iter().map(|w| w.staged.clone()).collect();
    let at_traffic = watches.iter().map(|w| w.at_traffic).collect();
    FollowResult {
        paused,
        times,
        staged,
        at_traffic,
        lease_lost,
        stages: tracked
            .iter()
            .zip(watches)
            .map(|(t, w)| {
                (
                    Tracked {
                        deployment_id: w.id,
                        ..t.clone()
                    },
                    w.stage,
                )
            })
            .collect(),
        timed_out,
    }
}

#[allow(clippy::too_many_arguments)]
async fn observe(
    client: &aws_sdk_ecs::Client,
    t: &Tracked,
    obs: &verdict::ServiceObs,
    record: Option<&crate::aws::model::ServiceDeploymentRecord>,
    w: &mut Watch,
    phase: Phase,
    options: &FollowOptions,
    reporter: &dyn Reporter,
) {
    // The service deployment first: a newer one in force means ours was superseded, and
    // the newer one is followed from here on.
    let ours_created = obs
        .deployments
        .iter()
        .find(|d| d.id == w.id)
        .map(|d| d.created_at);
    let record = match (record, ours_created) {
        // A record older than the deployment followed is not its own (a stale
        // currentServiceDeployment): learn it again on the next poll.
        (Some(r), Some(created)) if r.started_at > 0.0 && r.started_at + 1.0 < created => {
            w.sd = None;
            None
        }
        (r, _) => r,
    };
    let mut sd_verdict = record
        .map(|r| strategy::judge_service_deployment(r, obs.current_service_deployment.as_deref()));
    if let Some(SdVerdict::Superseded { by }) = &sd_verdict {
        let newer = obs.primary().map(|p| p.id.clone()).unwrap_or_default();
        if options.follow_superseding && !newer.is_empty() && newer != w.id {
            reporter.report(&Event::Warning {
                text: format!(
                    "{}: deployment {} was superseded by a newer one ({newer}, not started by secret-rollout): following it; its tasks are judged by when they started",
                    t.service, w.id
                ),
            });
            w.id = newer;
            w.sd = Some(by.clone());
            w.since = None;
            w.failed_seen = 0;
            w.init_failure = None;
            w.counts = None;
            w.staged = None;
            // Judged on the next poll, with the newer record.
            sd_verdict = None;
        }
    }
    if is_staged(&obs.info.strategy) {
        let view = w.staged.get_or_insert_with(|| StagedView {
            strategy: obs.info.strategy.clone(),
            ..StagedView::default()
        });
        if let Some(r) = record.filter(|_| sd_verdict.is_some()) {
            if !r.lifecycle_stage.is_empty() {
                view.lifecycle_stage = r.lifecycle_stage.clone();
            }
            if r.production_weight.is_some() {
                view.production_traffic = r.production_weight;
            }
        }
        let moved = match &sd_verdict {
            Some(SdVerdict::UnderWay { traffic_moved, .. }) => *traffic_moved,
            Some(SdVerdict::Successful) => true,
            _ => false,
        };
        if moved && view.traffic_moved_at.is_none() {
            view.traffic_moved_at = Some(wall_now());
            view.traffic_moved_ecs = ecs_moment(obs, w.times.started);
        }
    }
    let mine = obs.deployments.iter().find(|d| d.id == w.id);
    if let Some(mine) = mine {
        w.times.started = Some(mine.created_at);
        if w.since.is_none() {
            w.since = Some(mine.created_at);
        }
        let old: i32 = obs
            .deployments
            .iter()
            .filter(|d| d.id != w.id)
            .map(|d| d.running + d.pending)
            .sum();
        let counts = (
            mine.desired,
            mine.running,
            mine.pending,
            old,
            mine.failed_tasks,
        );
        if w.counts != Some(counts) {
            w.counts = Some(counts);
            reporter.report(&Event::Progress {
                phase,
                service: t.service.clone(),
                desired: mine.desired,
                running: mine.running,
                pending: mine.pending,
                old,
                failed: mine.failed_tasks,
            });
        }
        if mine.failed_tasks > w.failed_seen {
            w.failed_seen = mine.failed_tasks;
            if let Ok(reasons) = ecs::stopped_reasons(client, &t.cluster, &w.id).await {
                w.init_failure =
                    verdict::init_failure(reasons.iter().map(String::as_str)).map(str::to_string);
            }
        }
        // Our own failure detector, for what the circuit breaker does not cover.
        let threshold = strategy::detector_threshold(
            obs.info.circuit_breaker,
            &obs.info.strategy,
            options.max_task_failures,
            mine.desired.max(obs.info.desired),
        );
        if let Some(threshold) =
            threshold.filter(|&n| w.detector.is_none() && mine.failed_tasks >= n)
        {
            let reason = format!(
                "{} of the new deployment's tasks failed (threshold {threshold}; --max-task-failures sets it)",
                mine.failed_tasks
            );
            if phase == Phase::Rollout {
                stop_failed(client, t, w, &reason, reporter, &options.leases).await;
            }
            w.detector = Some(reason);
        }
    }
    let since = w.since.unwrap_or(0.0) - 1.0;
    for (at, message) in obs.events.iter().rev() {
        if *at >= since && w.seen_events.insert((at.to_bits(), message.clone())) {
            reporter.report(&Event::ServiceEvent {
                service: t.service.clone(),
                at: *at,
                message: message.clone(),
            });
        }
    }
    if let Some(SdVerdict::UnderWay {
        stage,
        traffic_moved,
        awaiting_hook,
    }) = &sd_verdict
    {
        let changed = match &w.sd_verdict {
            Some(SdVerdict::UnderWay {
                stage: s,
                traffic_moved: m,
                awaiting_hook: h,
            }) => s != stage || m != traffic_moved || h != awaiting_hook,
            _ => true,
        };
        if changed && !stage.is_empty() {
            let mut text = format!("{}: lifecycle stage {stage}", t.service);
            if *traffic_moved {
                text.push_str(", all production traffic on the new revision");
            }
            if let Some(h) = awaiting_hook {
                text.push_str(&format!(", waiting at PAUSE hook {h}"));
            }
            reporter.report(&Event::Note { text });
        }
    }
    let stage = combine(
        judge(obs, &w.id, None),
        sd_verdict.as_ref(),
        w.init_failure.as_deref(),
        w.detector.as_deref(),
    );
    if sd_verdict.is_some() {
        w.paused =
            strategy::paused_at(w.sd.as_deref(), sd_verdict.as_ref()).filter(|_| !stage.is_final());
        w.sd_verdict = sd_verdict;
    } else {
        w.paused = None;
    }
    // --until traffic: all production traffic on the new revision ends the follow of this
    // service (a paused or failed one is not there).
    w.at_traffic = options.until_traffic
        && !stage.is_final()
        && w.paused.is_none()
        && w.staged
            .as_ref()
            .is_some_and(|v| v.traffic_moved_at.is_some());
    if stage != w.stage {
        // ECS's moment of the change this poll saw: the latest `updatedAt` of a
        // deployment or the latest event of the service since ours started, whichever
        // is later (ECS does not move `updatedAt` for every change of counts).
        let ecs_at = ecs_moment(obs, w.times.started);
        match &stage {
            Stage::Draining => w.times.traffic = w.times.traffic.or(ecs_at),
            Stage::Completed => w.times.completed = ecs_at,
            Stage::Starting => w.times.traffic = None,
            Stage::Failed { .. } => {}
        }
        reporter.report(&Event::stage(phase, &t.service, &stage));
        w.stage = stage;
    }
    // A blue/green, linear or canary deployment: all traffic is on new tasks when all
    // production traffic is on the new revision, not when the old tasks drain (after the
    // bake); under `--until traffic` the run ends before that.
    if let Some(at) = w.staged.as_ref().and_then(|v| v.traffic_moved_ecs) {
        w.times.traffic = Some(at);
    }
}

/// ECS's moment of the change a poll saw: the latest `updatedAt` of a deployment or the
/// latest event of the service since ours started (`started`), whichever is later (ECS
/// does not move `updatedAt` for every change of counts).
fn ecs_moment(obs: &verdict::ServiceObs, started: Option<f64>) -> Option<f64> {
    let from = started.unwrap_or(0.0) - 1.0;
    obs.deployments
        .iter()
        .map(|d| d.updated_at)
        .chain(
            obs.events
                .iter()
                .map(|(at, _)| *at)
                .filter(|&at| at >= from),
        )
        .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.max(u))))
        .filter(|&u| u > 0.0)
}

/// `--approve-hooks` at a `PAUSE` hook: lists the service's tasks, reads the secrets again
/// a margin later, and asks [`strategy::approval`] whether every green task (those of the
/// deployment followed) holds the watched value. Continue: `ContinueServiceDeployment`.
/// Rollback (in the rollout): `StopServiceDeployment` ROLLBACK, and the service counts as
/// failed, so the restore follows. In the restore a hook not proven is left waiting: rolling
/// the restore back would bring back the tasks holding the value being undone.
#[allow(clippy::too_many_arguments)]
async fn approve(
    client: &aws_sdk_ecs::Client,
    t: &Tracked,
    w: &mut Watch,
    secrets: &mut SecretWatch,
    phase: Phase,
    reporter: &dyn Reporter,
    leases: &[std::sync::Arc<crate::state::Lease>],
) -> Result<(), String> {
    let Some(pause) = w.paused.clone() else {
        return Ok(());
    };
    if w.approved.contains(&pause.hook_id) {
        return Ok(());
    }
    let tasks = match ecs::running_tasks(client, &t.cluster, &t.service).await {
        Ok(tasks) => tasks,
        Err(e) => {
            reporter.report(&Event::Retrying {
                what: format!("listing {}'s tasks to approve its PAUSE hook", t.service),
                error: e.message,
            });
            return Ok(());
        }
    };
    let listed_at = secrets.now();
    secrets.look_after(listed_at, phase, reporter).await;
    let fresh = secrets.read_after(listed_at);
    let holdings = secrets.holdings_listed_at(Some(listed_at));
    let named: Vec<(&str, &crate::holding::Holding)> =
        holdings.iter().map(|(s, h)| (s.name.as_str(), h)).collect();
    let green: Vec<strategy::GreenTask<'_>> = tasks
        .iter()
        .filter(|x| x.desired_status == "RUNNING" && x.started_by == w.id)
        .map(|x| strategy::GreenTask {
            arn: &x.arn,
            created_at: x.created_at,
            last_status: &x.last_status,
        })
        .collect();
    let decision = strategy::approval(&named, &green, fresh, secrets.margin.as_secs_f64());
    let at = if pause.stage.is_empty() {
        String::new()
    } else {
        format!(" at {}", pause.stage)
    };
    // Either answer is a write (ContinueServiceDeployment, StopServiceDeployment), and
    // another machine may have taken the lock (and the rotation) since the last one: a
    // lost lease answers nothing. Not ROLLBACK either: whoever holds the lock now decides,
    // and a hook left waiting moves no production traffic (it ends by its own timeout
    // action if no one answers). The run stops (exit 13); `resume` goes on.
    let writes = match &decision {
        strategy::Approval::Continue { .. } => true,
        strategy::Approval::Rollback { .. } => phase == Phase::Rollout,
        strategy::Approval::Wait { .. } => false,
    };
    if writes {
        if let Err(e) = leases.iter().try_for_each(|l| l.check()) {
            w.left_waiting = true;
            reporter.report(&Event::Warning {
                text: format!(
                    "{}: PAUSE hook {}{at} left waiting, not answered: {}",
                    t.service, pause.hook_id, e.message
                ),
            });
            return Err(e.message);
        }
    }
    match decision {
        strategy::Approval::Continue { tasks } => {
            match ecs::continue_service_deployment(
                client,
                &pause.service_deployment_arn,
                &pause.hook_id,
            )
            .await
            {
                Ok(()) => {
                    w.approved.insert(pause.hook_id.clone());
                    w.paused = None;
                    reporter.report(&Event::Note {
                        text: format!(
                            "{}: {tasks} new task(s) proven to hold the value: continued PAUSE hook {}{at} (--approve-hooks)",
                            t.service, pause.hook_id
                        ),
                    });
                }
                Err(e) => reporter.report(&Event::Retrying {
                    what: format!("continuing {}'s PAUSE hook {}", t.service, pause.hook_id),
                    error: e.message,
                }),
            }
        }
        strategy::Approval::Wait { .. } => {}
        strategy::Approval::Rollback { why } if phase == Phase::Rollout => {
            let reason = format!("PAUSE hook {}{at} not approved: {why}", pause.hook_id);
            stop_failed(client, t, w, &reason, reporter, leases).await;
            w.detector = Some(reason.clone());
            w.paused = None;
            let stage = Stage::Failed { reason };
            reporter.report(&Event::stage(phase, &t.service, &stage));
            w.stage = stage;
        }
        strategy::Approval::Rollback { why } => {
            w.left_waiting = true;
            reporter.report(&Event::Warning {
                text: format!(
                    "{}: PAUSE hook {}{at} of the restore left waiting, not approved: {why}",
                    t.service, pause.hook_id
                ),
            });
        }
    }
    Ok(())
}

/// Our detector gave up: stop the service deployment with ROLLBACK where there is one
/// (production goes back to the revision before), so the bad value stops spreading while
/// the restore begins. Without the service deployments API nothing is stopped here: the
/// restore's own deployment replaces this one.
async fn stop_failed(
    client: &aws_sdk_ecs::Client,
    t: &Tracked,
    w: &Watch,
    reason: &str,
    reporter: &dyn Reporter,
    leases: &[std::sync::Arc<crate::state::Lease>],
) {
    // A write like any other: not once the lock is lost (a team state's lease). The
    // service counts as failed all the same, and the restore's first write stops the run
    // (exit 13) before anything else is sent.
    if let Err(e) = leases.iter().try_for_each(|l| l.check()) {
        reporter.report(&Event::Warning {
            text: format!(
                "{}: {reason}: its service deployment not stopped: {}",
                t.service, e.message
            ),
        });
        return;
    }
    let text = match &w.sd {
        Some(arn) => match ecs::stop_service_deployment(client, arn).await {
            Ok(()) => format!(
                "{}: {reason}: stopped its service deployment with ROLLBACK",
                t.service
            ),
            Err(e) => format!(
                "{}: {reason}: could not stop its service deployment ({}); the restore replaces it",
                t.service, e.message
            ),
        },
        None => format!(
            "{}: {reason}: ECS gave no service deployment to stop; the restore replaces it",
            t.service
        ),
    };
    reporter.report(&Event::Warning { text });
}

/// One stage from what `deployments[]` says (`rolling`, judged without the init
/// failure), what the service deployment says (`sd`, where the API gives one) and the two
/// failures found from tasks (`init_failure`, our detector's).
///
/// With a service deployment record, it alone says failed or superseded (it is read
/// before DescribeServices, so `deployments[]` may already show a newer PRIMARY whose
/// record tells on the next poll what became of ours); `deployments[]` says how far the
/// tasks are. Completion needs both.
pub fn combine(
    rolling: Stage,
    sd: Option<&SdVerdict>,
    init_failure: Option<&str>,
    detector: Option<&str>,
) -> Stage {
    if let Some(reason) = detector {
        return Stage::Failed {
            reason: reason.to_string(),
        };
    }
    if let Some(reason) = init_failure {
        return Stage::Failed {
            reason: format!("new tasks cannot start: {reason}"),
        };
    }
    match sd {
        None => rolling,
        Some(SdVerdict::Failed { reason }) => Stage::Failed {
            reason: reason.clone(),
        },
        // Not followed on (a redeploy without a secret proves by deployment id).
        Some(SdVerdict::Superseded { by }) => Stage::Failed {
            reason: format!("superseded by a newer service deployment ({by})"),
        },
        Some(SdVerdict::Successful | SdVerdict::UnderWay { .. }) => match rolling {
            Stage::Failed { .. } => Stage::Starting,
            Stage::Completed if !matches!(sd, Some(SdVerdict::Successful)) => Stage::Draining,
            other => other,
        },
    }
}

/// Waits until ECS is done with each of `services` (left alone by a restore, whose own
/// rollback may still be stopping green's tasks or launching some: see
/// [`restore::settled`]), polling DescribeServices per cluster like [`follow`], until the
/// deadline. Per service, in the order given: whether it settled.
pub async fn settle(
    client: &aws_sdk_ecs::Client,
    services: &[ServiceRef],
    options: &FollowOptions,
    reporter: &dyn Reporter,
) -> Vec<bool> {
    let mut done = vec![false; services.len()];
    let mut interval = options.first_poll;
    while done.iter().any(|d| !d) && Instant::now() < options.deadline {
        let mut by_cluster: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in services.iter().enumerate().filter(|(i, _)| !done[*i]) {
            by_cluster.entry(s.cluster.as_str()).or_default().push(i);
        }
        for (cluster, idx) in by_cluster {
            let names: Vec<String> = idx.iter().map(|&i| services[i].service.clone()).collect();
            match ecs::describe_services(client, cluster, &names).await {
                Ok(found) => {
                    for i in idx {
                        done[i] = found
                            .iter()
                            .find(|o| o.info.name == services[i].service)
                            .is_some_and(restore::settled);
                    }
                }
                Err(e) => reporter.report(&Event::Retrying {
                    what: format!("waiting for ECS to settle services in {cluster}"),
                    error: e.message,
                }),
            }
        }
        if done.iter().all(|d| *d) {
            break;
        }
        let left = options.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(interval.min(left)).await;
        interval = (interval * 2).min(options.max_poll);
    }
    done
}

/// Proves, for every tracked service, that each task ECS means to run was created at or
/// after `since` (epoch seconds, AWS's clock: from when the value it must hold has been
/// current without a break; see [`crate::holding`]). With `by_deployment` (a redeploy
/// without a secret: there is no value to place in time), a task must also have been
/// started by our deployment. `version_id` names that value in the report.
/// `production_only` (per tracked service): prove only the tasks of the deployment
/// followed, which receive all production traffic (`--until traffic`). `before` (a
/// restore): a task that resolved the previous version before the write, as the reading
/// then proves, holds it too (see [`restore`]). Returns the tasks listed with each proof.
#[allow(clippy::too_many_arguments)]
pub async fn verify(
    client: &aws_sdk_ecs::Client,
    tracked: &[Tracked],
    since: f64,
    by_deployment: bool,
    version_id: &str,
    phase: Phase,
    reporter: &dyn Reporter,
    production_only: &[bool],
    before: Option<&restore::HeldBefore>,
) -> Result<Vec<(Tracked, Vec<TaskObs>, Proof)>, AwsError> {
    let checks = tracked.iter().enumerate().map(|(i, t)| async move {
        let mut tasks = ecs::running_tasks(client, &t.cluster, &t.service).await?;
        if production_only.get(i) == Some(&true) {
            // --until traffic: all production traffic is on this deployment's tasks; the
            // old revision's tasks bake beside them and receive none.
            tasks.retain(|x| x.started_by == t.deployment_id);
        }
        let ours = by_deployment.then_some(t.deployment_id.as_str());
        let mut proof = match (ours, before) {
            (None, Some(b)) => restore::prove(&tasks, since, Some(b)),
            _ => verdict::prove(&tasks, ours, since),
        };
        if tasks.is_empty() {
            // No task to prove: only a service scaled to 0 with nothing running has nothing
            // to prove; anything else stays unproven.
            let obs = ecs::describe_services(client, &t.cluster, std::slice::from_ref(&t.service))
                .await?;
            proof.nothing_to_prove = obs
                .iter()
                .find(|o| o.info.name == t.service)
                .is_some_and(|o| verdict::nothing_to_prove(o, &tasks));
        }
        Ok::<_, AwsError>((t.clone(), tasks, proof))
    });
    let mut out = Vec::with_capacity(tracked.len());
    for result in futures::future::join_all(checks).await {
        let (t, tasks, proof) = result?;
        reporter.report(&Event::Verified {
            phase,
            service: t.service.clone(),
            version_id: version_id.to_string(),
            proof: proof.clone(),
        });
        out.push((t, tasks, proof));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_from_deployments_and_service_deployment() {
        let failed = || Stage::Failed { reason: "x".into() };
        let under_way = SdVerdict::UnderWay {
            stage: String::new(),
            traffic_moved: false,
            awaiting_hook: None,
        };
        let sd_failed = SdVerdict::Failed {
            reason: "rolled back".into(),
        };
        let superseded = SdVerdict::Superseded { by: "b".into() };
        // (case, deployments[] stage, record verdict, init failure, detector, want)
        #[allow(clippy::type_complexity)]
        let table: Vec<(
            &str,
            Stage,
            Option<&SdVerdict>,
            Option<&str>,
            Option<&str>,
            &str,
        )> = vec![
            (
                "no record: deployments[] decides",
                Stage::Draining,
                None,
                None,
                None,
                "draining",
            ),
            ("no record, failed", failed(), None, None, None, "failed"),
            (
                "record under way, tasks starting",
                Stage::Starting,
                Some(&under_way),
                None,
                None,
                "starting",
            ),
            (
                "a newer PRIMARY shows before its record: wait for the record",
                failed(),
                Some(&under_way),
                None,
                None,
                "starting",
            ),
            (
                "deployments[] alone looks completed while the record bakes",
                Stage::Completed,
                Some(&under_way),
                None,
                None,
                "draining",
            ),
            (
                "both done",
                Stage::Completed,
                Some(&SdVerdict::Successful),
                None,
                None,
                "completed",
            ),
            (
                "record done, old tasks drain",
                Stage::Draining,
                Some(&SdVerdict::Successful),
                None,
                None,
                "draining",
            ),
            (
                "record failed",
                Stage::Starting,
                Some(&sd_failed),
                None,
                None,
                "failed",
            ),
            (
                "superseded, not followed",
                Stage::Starting,
                Some(&superseded),
                None,
                None,
                "failed",
            ),
            (
                "secret cannot be fetched",
                Stage::Starting,
                Some(&under_way),
                Some("ResourceInitializationError"),
                None,
                "failed",
            ),
            (
                "our detector gave up",
                Stage::Starting,
                Some(&under_way),
                None,
                Some("3 failed"),
                "failed",
            ),
            (
                "our detector, no record",
                Stage::Starting,
                None,
                None,
                Some("3 failed"),
                "failed",
            ),
        ];
        for (case, rolling, sd, init, detector, want) in table {
            let got = match combine(rolling, sd, init, detector) {
                Stage::Starting => "starting",
                Stage::Draining => "draining",
                Stage::Completed => "completed",
                Stage::Failed { .. } => "failed",
            };
            assert_eq!(got, want, "{case}");
        }
    }
}
