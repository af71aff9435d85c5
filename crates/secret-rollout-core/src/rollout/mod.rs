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

pub mod watch;

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
}

/// How a follow ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowResult {
    /// Final (or last seen, on timeout) stage of each service, in the order given.
    pub stages: Vec<(Tracked, Stage)>,
    /// The deadline passed before every service reached a final stage.
    pub timed_out: bool,
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
        !self.timed_out && self.stages.iter().all(|(_, s)| *s == Stage::Completed)
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
    stage: Stage,
    counts: Option<(i32, i32, i32, i32, i32)>,
    seen_events: HashSet<(u64, String)>,
    since: Option<f64>,
    failed_seen: i32,
    init_failure: Option<String>,
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
        .map(|_| Watch {
            stage: Stage::Starting,
            counts: None,
            seen_events: HashSet::new(),
            since: None,
            failed_seen: 0,
            init_failure: None,
        })
        .collect();
    let mut interval = options.first_poll;
    let mut max_poll = options.max_poll;
    let mut timed_out = false;
    loop {
        let open: Vec<usize> = (0..tracked.len())
            .filter(|&i| !watches[i].stage.is_final())
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
        let polls = by_cluster.iter().map(|(cluster, idx)| async move {
            let names: Vec<String> = idx.iter().map(|&i| tracked[i].service.clone()).collect();
            (
                *cluster,
                idx,
                ecs::describe_services(client, cluster, &names).await,
            )
        });
        let mut throttled = false;
        for (cluster, idx, result) in futures::future::join_all(polls).await {
            let services = match result {
                Ok(s) => s,
                Err(e) => {
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
                observe(client, t, obs, &mut watches[i], phase, reporter).await;
            }
        }
        if let Some(w) = watch.as_deref_mut() {
            w.look(phase, reporter).await;
            if w.changed() {
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
        if watches.iter().all(|w| w.stage.is_final()) || (options.stop_on_failure && failed) {
            break;
        }
        let left = options.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(interval.min(left)).await;
        interval = (interval * 2).min(max_poll);
    }
    FollowResult {
        stages: tracked
            .iter()
            .cloned()
            .zip(watches.into_iter().map(|w| w.stage))
            .collect(),
        timed_out,
    }
}

async fn observe(
    client: &aws_sdk_ecs::Client,
    t: &Tracked,
    obs: &verdict::ServiceObs,
    w: &mut Watch,
    phase: Phase,
    reporter: &dyn Reporter,
) {
    let mine = obs.deployments.iter().find(|d| d.id == t.deployment_id);
    if let Some(mine) = mine {
        if w.since.is_none() {
            w.since = Some(mine.created_at);
        }
        let old: i32 = obs
            .deployments
            .iter()
            .filter(|d| d.id != t.deployment_id)
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
            if let Ok(reasons) = ecs::stopped_reasons(client, &t.cluster, &t.deployment_id).await {
                w.init_failure =
                    verdict::init_failure(reasons.iter().map(String::as_str)).map(str::to_string);
            }
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
    let stage = judge(obs, &t.deployment_id, w.init_failure.as_deref());
    if stage != w.stage {
        reporter.report(&Event::stage(phase, &t.service, &stage));
        w.stage = stage;
    }
}

/// Proves, for every tracked service, that each task ECS means to run was created at or
/// after `since` (epoch seconds, AWS's clock: from when the value it must hold has been
/// current without a break; see [`crate::holding`]). With `by_deployment` (a redeploy
/// without a secret: there is no value to place in time), a task must also have been
/// started by our deployment. `version_id` names that value in the report. Returns the
/// tasks listed with each proof.
pub async fn verify(
    client: &aws_sdk_ecs::Client,
    tracked: &[Tracked],
    since: f64,
    by_deployment: bool,
    version_id: &str,
    phase: Phase,
    reporter: &dyn Reporter,
) -> Result<Vec<(Tracked, Vec<TaskObs>, Proof)>, AwsError> {
    let checks = tracked.iter().map(|t| async move {
        let tasks = ecs::running_tasks(client, &t.cluster, &t.service).await?;
        let ours = by_deployment.then_some(t.deployment_id.as_str());
        let mut proof = verdict::prove(&tasks, ours, since);
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
