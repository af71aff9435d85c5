//! Pure decisions about a rollout: given what ECS reported, where does a service stand, and
//! is every running task proven fresh? No I/O here; `follow` and `verify` feed it.

use serde::Serialize;

pub use crate::aws::model::{DeploymentObs, ServiceObs, TaskObs};

/// Where one service's rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Stage {
    /// New tasks are starting or old ones still serve traffic.
    Starting,
    /// Every old task has been told to stop: all traffic is on new tasks; old ones drain.
    Draining,
    /// Our deployment is COMPLETED and is the service's only deployment.
    Completed,
    /// The rollout failed; the text says how.
    Failed {
        /// Why, in words for the operator.
        reason: String,
    },
}

impl Stage {
    /// Completed or failed: nothing more will happen without us.
    pub fn is_final(&self) -> bool {
        matches!(self, Stage::Completed | Stage::Failed { .. })
    }
}

/// Decides where a service stands relative to *our* deployment (`ours`), by id: a
/// circuit-breaker rollback makes the PRIMARY carry an old id again, and the "services
/// stable" waiter would call that success.
///
/// `init_failure` is the stoppedReason of a task of ours that failed to start because its
/// secret could not be fetched (`ResourceInitializationError`): retrying cannot help, so it
/// fails the rollout at once.
pub fn judge(obs: &ServiceObs, ours: &str, init_failure: Option<&str>) -> Stage {
    let Some(mine) = obs.deployments.iter().find(|d| d.id == ours) else {
        let now = obs.primary().map(|p| p.id.as_str()).unwrap_or("none");
        return Stage::Failed {
            reason: format!("deployment {ours} is no longer listed (primary is now {now})"),
        };
    };
    if let Some(reason) = init_failure {
        return Stage::Failed {
            reason: format!("new tasks cannot start: {reason}"),
        };
    }
    if mine.rollout_state == "FAILED" {
        let why = if mine.reason.is_empty() {
            "deployment failed"
        } else {
            &mine.reason
        };
        return Stage::Failed {
            reason: why.to_string(),
        };
    }
    if mine.status != "PRIMARY" {
        let primary = obs.primary().map(|p| p.id.as_str()).unwrap_or("none");
        return Stage::Failed {
            reason: format!("deployment {ours} was superseded: {primary} is now primary (a rollback or another deploy)"),
        };
    }
    if mine.rollout_state == "COMPLETED" && obs.deployments.len() == 1 {
        return Stage::Completed;
    }
    let others_serving = obs
        .deployments
        .iter()
        .filter(|d| d.id != ours)
        .any(|d| d.running + d.pending > 0);
    if mine.running >= mine.desired && !others_serving {
        return Stage::Draining;
    }
    Stage::Starting
}

/// Why a running task is not proven fresh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleTask {
    /// Task id.
    pub task: String,
    /// Why.
    pub reason: String,
}

/// The proof for one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proof {
    /// Running tasks proven fresh.
    pub fresh: usize,
    /// Running tasks seen in all.
    pub total: usize,
    /// Earliest and latest `startedAt` of the fresh tasks (RFC 3339 in JSON).
    #[serde(serialize_with = "crate::history::ser_opt_epoch_pair")]
    pub started: Option<(f64, f64)>,
    /// Tasks that are not proven fresh.
    pub stale: Vec<StaleTask>,
    /// The service is scaled to 0 and no task of it runs or starts: there is no task to
    /// prove anything about (the next one launched reads the current value). See
    /// [`nothing_to_prove`].
    pub nothing_to_prove: bool,
}

impl Proof {
    /// Every running task is proven fresh (and there is at least one when any is desired,
    /// unless the service really has nothing to prove).
    pub fn holds(&self, desired: i32) -> bool {
        self.stale.is_empty() && (desired == 0 || self.fresh > 0 || self.nothing_to_prove)
    }
}

/// Whether a service has nothing to prove: desired 0 for the service and every deployment
/// of it, nothing running or pending anywhere, and no task ECS means to run (`tasks`: the
/// tasks listed with desiredStatus RUNNING). A task that exists, even a draining one
/// (counted in `running`), is never "nothing to prove".
pub fn nothing_to_prove(obs: &ServiceObs, tasks: &[TaskObs]) -> bool {
    let info = &obs.info;
    info.desired == 0
        && info.running == 0
        && info.pending == 0
        && obs
            .deployments
            .iter()
            .all(|d| d.desired == 0 && d.running == 0 && d.pending == 0)
        && tasks.is_empty()
}

/// Whether a consumer left out of a rollout because it is scaled to 0 (idle) has nothing
/// to prove: no task runs or starts. One still draining tasks holds the old value.
pub fn idle_has_nothing_to_prove(info: &crate::aws::model::ServiceInfo) -> bool {
    info.desired == 0 && info.running == 0 && info.pending == 0
}

/// Proves freshness by the holding rule ([`crate::holding`]): every task still meant to
/// run must be RUNNING and created at or after `since`, the moment from which the value it
/// must hold has been current without a break (the caller judges the break with the
/// watch). The deployment that launched a task does not matter then, except with `ours`:
/// a `redeploy` without a secret can only prove "started by our deployment".
pub fn prove(tasks: &[TaskObs], ours: Option<&str>, since: f64) -> Proof {
    let mut fresh = 0;
    let mut started: Option<(f64, f64)> = None;
    let mut stale = Vec::new();
    let mut total = 0;
    let holding = crate::holding::Holding::Holds { since };
    for t in tasks.iter().filter(|t| t.desired_status == "RUNNING") {
        total += 1;
        let reason = if let Some(ours) = ours.filter(|o| t.started_by != *o) {
            let by = if t.started_by.is_empty() {
                "not a deployment"
            } else {
                &t.started_by
            };
            Some(format!("started by {by}, not {ours}"))
        } else if crate::holding::task_holds(t.created_at, &holding, 0.0)
            != crate::holding::TaskHolds::Ours
        {
            Some(format!(
                "created {:.3}s before the value it must hold was current",
                since - t.created_at
            ))
        } else if t.last_status != "RUNNING" {
            Some(format!("is {} not RUNNING", t.last_status))
        } else {
            None
        };
        if let Some(reason) = reason {
            stale.push(StaleTask {
                task: t.id().to_string(),
                reason,
            });
            continue;
        }
        fresh += 1;
        let s = t.started_at.unwrap_or(t.created_at);
        started = Some(match started {
            None => (s, s),
            Some((lo, hi)) => (lo.min(s), hi.max(s)),
        });
    }
    Proof {
        fresh,
        total,
        started,
        stale,
        nothing_to_prove: false,
    }
}

/// The ResourceInitializationError reason among stopped tasks of ours, if any.
pub fn init_failure<'a>(stopped_reasons: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    stopped_reasons
        .into_iter()
        .find(|r| r.starts_with("ResourceInitializationError"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::model::ServiceInfo;

    fn dep(id: &str, status: &str, state: &str, desired: i32, running: i32) -> DeploymentObs {
        DeploymentObs {
            id: id.into(),
            status: status.into(),
            rollout_state: state.into(),
            reason: String::new(),
            desired,
            running,
            pending: 0,
            failed_tasks: 0,
            created_at: 0.0,
            ..Default::default()
        }
    }

    fn svc(deployments: Vec<DeploymentObs>) -> ServiceObs {
        ServiceObs {
            info: ServiceInfo {
                cluster: "c".into(),
                name: "api".into(),
                desired: 3,
                ..Default::default()
            },
            deployments,
            ..Default::default()
        }
    }

    #[test]
    fn starting_while_old_tasks_serve() {
        let s = svc(vec![
            dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 3, 2),
            dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0, 2),
        ]);
        assert_eq!(judge(&s, "ecs-svc/2", None), Stage::Starting);
    }

    #[test]
    fn draining_once_old_tasks_are_told_to_stop() {
        let s = svc(vec![
            dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 3, 3),
            dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0, 0),
        ]);
        assert_eq!(judge(&s, "ecs-svc/2", None), Stage::Draining);
    }

    #[test]
    fn completed_only_when_alone() {
        let s = svc(vec![dep("ecs-svc/2", "PRIMARY", "COMPLETED", 3, 3)]);
        assert_eq!(judge(&s, "ecs-svc/2", None), Stage::Completed);
        let s = svc(vec![
            dep("ecs-svc/2", "PRIMARY", "COMPLETED", 3, 3),
            dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0, 0),
        ]);
        assert_eq!(judge(&s, "ecs-svc/2", None), Stage::Draining);
    }

    #[test]
    fn rollback_to_old_id_is_failure_even_when_stable() {
        // After a circuit-breaker rollback the PRIMARY carries the old id and is COMPLETED:
        // the waiter calls this stable; we call it failed.
        let mut failed = dep("ecs-svc/2", "ACTIVE", "FAILED", 0, 0);
        failed.reason = "ECS deployment circuit breaker: tasks failed to start.".into();
        let s = svc(vec![
            dep("ecs-svc/1", "PRIMARY", "IN_PROGRESS", 3, 1),
            failed,
        ]);
        match judge(&s, "ecs-svc/2", None) {
            Stage::Failed { reason } => assert!(reason.contains("circuit breaker"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let s = svc(vec![dep("ecs-svc/1", "PRIMARY", "COMPLETED", 3, 3)]);
        assert!(matches!(judge(&s, "ecs-svc/2", None), Stage::Failed { .. }));
    }

    #[test]
    fn superseded_by_another_deploy() {
        let s = svc(vec![
            dep("ecs-svc/3", "PRIMARY", "IN_PROGRESS", 3, 0),
            dep("ecs-svc/2", "ACTIVE", "IN_PROGRESS", 0, 3),
        ]);
        match judge(&s, "ecs-svc/2", None) {
            Stage::Failed { reason } => assert!(reason.contains("superseded"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn init_failure_fails_at_once() {
        let s = svc(vec![
            dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 3, 0),
            dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0, 3),
        ]);
        let reasons = [
            "Scaling activity initiated by (deployment ecs-svc/1)",
            "ResourceInitializationError: unable to pull secrets",
        ];
        let why = init_failure(reasons.iter().copied());
        assert!(matches!(judge(&s, "ecs-svc/2", why), Stage::Failed { .. }));
        assert_eq!(init_failure(reasons[..1].iter().copied()), None);
    }

    fn task(id: &str, by: &str, created: f64, status: &str) -> TaskObs {
        TaskObs {
            arn: format!("arn:aws:ecs:eu-west-1:1:task/c/{id}"),
            started_by: by.into(),
            last_status: status.into(),
            desired_status: "RUNNING".into(),
            created_at: created,
            started_at: Some(created + 5.0),
            task_definition_arn: "td".into(),
            group: String::new(),
            containers: Vec::new(),
        }
    }

    #[test]
    fn proof_holds_for_fresh_tasks() {
        let tasks = vec![
            task("a", "ecs-svc/2", 110.0, "RUNNING"),
            task("b", "ecs-svc/2", 120.0, "RUNNING"),
        ];
        let p = prove(&tasks, Some("ecs-svc/2"), 100.0);
        assert!(p.holds(2));
        assert_eq!((p.fresh, p.total), (2, 2));
        assert_eq!(p.started, Some((115.0, 125.0)));
    }

    #[test]
    fn proof_rejects_old_deployment_and_early_tasks() {
        let tasks = vec![
            task("a", "ecs-svc/2", 110.0, "RUNNING"),
            task("b", "ecs-svc/1", 120.0, "RUNNING"),
            task("c", "ecs-svc/2", 90.0, "RUNNING"),
            task("d", "ecs-svc/2", 130.0, "PENDING"),
        ];
        let p = prove(&tasks, Some("ecs-svc/2"), 100.0);
        assert!(!p.holds(4));
        let ids: Vec<&str> = p.stale.iter().map(|s| s.task.as_str()).collect();
        assert_eq!(ids, ["b", "c", "d"]);
        assert_eq!(p.fresh, 1);
        // By the holding rule, the deployment does not matter: b was launched after the
        // value was current, so it holds it.
        let p = prove(&tasks, None, 100.0);
        let ids: Vec<&str> = p.stale.iter().map(|s| s.task.as_str()).collect();
        assert_eq!(ids, ["c", "d"]);
        assert_eq!(p.fresh, 2);
    }

    #[test]
    fn tasks_told_to_stop_do_not_count() {
        let mut draining = task("b", "ecs-svc/1", 10.0, "DEACTIVATING");
        draining.desired_status = "STOPPED".into();
        let p = prove(
            &[task("a", "ecs-svc/2", 110.0, "RUNNING"), draining],
            Some("ecs-svc/2"),
            100.0,
        );
        assert!(p.holds(1));
        assert_eq!(p.total, 1);
    }

    #[test]
    fn no_task_at_all_is_no_proof_when_tasks_are_desired() {
        let p = prove(&[], None, 100.0);
        assert!(!p.holds(2));
        assert!(p.holds(0));
    }

    #[test]
    fn nothing_to_prove_only_when_nothing_runs_and_nothing_is_wanted() {
        let quiet = |desired: i32, running: i32, pending: i32| ServiceObs {
            info: ServiceInfo {
                desired,
                running,
                pending,
                ..ServiceInfo::default()
            },
            deployments: vec![dep("ecs-svc/2", "PRIMARY", "COMPLETED", desired, running)],
            ..Default::default()
        };
        let task = TaskObs {
            arn: "arn:aws:ecs:eu-west-1:1:task/c/t1".into(),
            started_by: "ecs-svc/1".into(),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            created_at: 1.0,
            started_at: Some(1.0),
            task_definition_arn: "td".into(),
            group: String::new(),
            containers: Vec::new(),
        };
        let mut draining_old = quiet(0, 0, 0);
        draining_old
            .deployments
            .push(dep("ecs-svc/1", "ACTIVE", "COMPLETED", 1, 1));
        // (case, service, tasks listed, nothing to prove?)
        let table: Vec<(&str, ServiceObs, Vec<TaskObs>, bool)> = vec![
            ("scaled to 0, nothing runs", quiet(0, 0, 0), vec![], true),
            ("tasks wanted", quiet(2, 0, 0), vec![], false),
            (
                "desired 0 but a task still runs",
                quiet(0, 1, 0),
                vec![],
                false,
            ),
            (
                "desired 0 but a task is pending",
                quiet(0, 0, 1),
                vec![],
                false,
            ),
            (
                "desired 0, a task listed",
                quiet(0, 0, 0),
                vec![task.clone()],
                false,
            ),
            (
                "an old deployment still serves",
                draining_old,
                vec![],
                false,
            ),
        ];
        for (case, obs, tasks, want) in table {
            assert_eq!(nothing_to_prove(&obs, &tasks), want, "{case}");
            let proof = Proof {
                nothing_to_prove: nothing_to_prove(&obs, &tasks),
                ..prove(&tasks, Some("ecs-svc/2"), 0.0)
            };
            // The rollout asks every proof to hold as if tasks were desired.
            assert_eq!(proof.holds(1), want, "{case}");
        }
    }

    #[test]
    fn only_completed_and_failed_are_final() {
        assert!(Stage::Completed.is_final());
        assert!(Stage::Failed {
            reason: String::new()
        }
        .is_final());
        assert!(!Stage::Starting.is_final());
        assert!(!Stage::Draining.is_final());
    }

    #[test]
    fn draining_needs_every_desired_task_and_no_old_task_running_or_pending() {
        // Exactly the desired count running, the old deployment empty: draining.
        let s = svc(vec![
            dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 3, 3),
            dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0, 0),
        ]);
        assert_eq!(judge(&s, "ecs-svc/2", None), Stage::Draining);
        // One short of the desired count: still starting.
        let s = svc(vec![
            dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 3, 2),
            dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0, 0),
        ]);
        assert_eq!(judge(&s, "ecs-svc/2", None), Stage::Starting);
        // An old task still pending (none running) serves soon: starting.
        let mut old = dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0, 0);
        old.pending = 1;
        let s = svc(vec![dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 3, 3), old]);
        assert_eq!(judge(&s, "ecs-svc/2", None), Stage::Starting);
        // COMPLETED yet not alone: not completed.
        let s = svc(vec![
            dep("ecs-svc/2", "PRIMARY", "COMPLETED", 3, 3),
            dep("ecs-svc/1", "ACTIVE", "COMPLETED", 0, 1),
        ]);
        assert_eq!(judge(&s, "ecs-svc/2", None), Stage::Starting);
    }

    #[test]
    fn a_failed_deployment_says_why_or_that_it_failed() {
        let mut failed = dep("ecs-svc/2", "PRIMARY", "FAILED", 3, 0);
        let s = svc(vec![failed.clone()]);
        assert_eq!(
            judge(&s, "ecs-svc/2", None),
            Stage::Failed {
                reason: "deployment failed".into()
            }
        );
        failed.reason = "circuit breaker".into();
        let s = svc(vec![failed]);
        assert_eq!(
            judge(&s, "ecs-svc/2", None),
            Stage::Failed {
                reason: "circuit breaker".into()
            }
        );
        // Ours gone from the list: failed, naming the primary now.
        let s = svc(vec![dep("ecs-svc/1", "PRIMARY", "COMPLETED", 3, 3)]);
        match judge(&s, "ecs-svc/2", None) {
            Stage::Failed { reason } => assert!(reason.contains("primary is now ecs-svc/1")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn proof_boundaries() {
        // Created exactly when the value became current: holds it.
        let p = prove(&[task("a", "ecs-svc/2", 100.0, "RUNNING")], None, 100.0);
        assert_eq!((p.fresh, p.total, p.stale.len()), (1, 1, 0));
        // Without startedAt, the creation time stands for it; the range spans the tasks
        // whatever their order.
        let mut a = task("a", "ecs-svc/2", 130.0, "RUNNING");
        a.started_at = None;
        let p = prove(
            &[
                a,
                task("b", "ecs-svc/2", 110.0, "RUNNING"),
                task("c", "ecs-svc/2", 120.0, "RUNNING"),
            ],
            None,
            100.0,
        );
        assert_eq!(p.started, Some((115.0, 130.0)));
        // A task no deployment started is named so when `ours` is asked for.
        let p = prove(&[task("a", "", 110.0, "RUNNING")], Some("ecs-svc/2"), 100.0);
        assert_eq!(
            p.stale[0].reason,
            "started by not a deployment, not ecs-svc/2"
        );
        // A stale task spoils the proof even with fresh ones, and even at desired 0.
        let p = prove(
            &[
                task("a", "ecs-svc/2", 110.0, "RUNNING"),
                task("b", "ecs-svc/2", 90.0, "RUNNING"),
            ],
            None,
            100.0,
        );
        assert!(!p.holds(2));
        assert!(!p.holds(0));
    }

    #[test]
    fn idle_only_when_nothing_is_desired_running_or_pending() {
        let info = |desired, running, pending| ServiceInfo {
            desired,
            running,
            pending,
            ..ServiceInfo::default()
        };
        assert!(idle_has_nothing_to_prove(&info(0, 0, 0)));
        assert!(!idle_has_nothing_to_prove(&info(1, 0, 0)));
        assert!(!idle_has_nothing_to_prove(&info(0, 1, 0)));
        assert!(!idle_has_nothing_to_prove(&info(0, 0, 1)));
    }

    /// Every deployment must be empty too: one still running or starting a task (its
    /// counts ahead of the service's) is something to prove.
    #[test]
    fn nothing_to_prove_looks_at_every_deployments_counts() {
        let with = |d: DeploymentObs| ServiceObs {
            info: ServiceInfo::default(),
            deployments: vec![d],
            events: vec![],
            current_service_deployment: None,
        };
        assert!(nothing_to_prove(
            &with(dep("ecs-svc/2", "PRIMARY", "COMPLETED", 0, 0)),
            &[]
        ));
        let running = dep("ecs-svc/2", "PRIMARY", "COMPLETED", 0, 1);
        assert!(!nothing_to_prove(&with(running), &[]));
        let mut pending = dep("ecs-svc/2", "PRIMARY", "COMPLETED", 0, 0);
        pending.pending = 1;
        assert!(!nothing_to_prove(&with(pending), &[]));
        let desired = dep("ecs-svc/2", "PRIMARY", "IN_PROGRESS", 1, 0);
        assert!(!nothing_to_prove(&with(desired), &[]));
    }
}
