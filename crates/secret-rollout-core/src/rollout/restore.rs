//! Which services a restore redeploys: only those that may run the new value.
//!
//! After a blue/green (linear, canary) rollback, blue's tasks never stopped: they were
//! launched before the new version existed and already hold the previous one. Redeploying
//! them costs a whole deployment (its bake included) and proves nothing more. A running
//! task is proven to hold the previous version without a redeploy when one of these holds:
//!
//! - **It resolved its secrets before the write, while the previous version was current.**
//!   Before writing, the tool listed the services' tasks (the plan's image check), then
//!   read each secret (`DescribeSecret`): the previous version `AWSCURRENT`, last changed
//!   at `L`. Nothing changed the secret from `L` to that read (any change moves
//!   `LastChangedDate`), so the previous version was current throughout. Every task
//!   listed had been created and started by the listing, which came before the read: the
//!   latest `createdAt`/`startedAt` listed (`listed_until`, ECS's clock) is a moment before
//!   the read. A task resolves its secrets between its `createdAt` and its `startedAt`;
//!   one created at or after `L` (the holding rule's `since`, [`crate::holding`]) and
//!   started at or before `listed_until` resolved them inside that window. With several
//!   secrets, `L` is the latest of theirs.
//! - **It was launched after `AWSCURRENT` moved back** (the restore's own `since`), by the
//!   holding rule.
//!
//! A service is left alone only when every task ECS means to run is proven so. Anything
//! else is redeployed, as before: a task started after the listing (it may have read the
//! new value), one not started yet, a service with no task, or no reading before the write
//! at all (a resumed run, a `rollback`, a read that failed). The restore's verification
//! proves the tasks of the services left alone by the same rule ([`prove`]), once ECS has
//! finished its own rollback ([`settled`]); a task it cannot prove fails the restore, never
//! passes.

use crate::holding::{task_holds, Holding, TaskHolds};
use crate::verdict::{self, Proof, ServiceObs, TaskObs};

/// What the reading before the write proves: a task created at or after `since` and
/// started at or before `listed_until` holds the previous version of every secret.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldBefore {
    /// The latest `LastChangedDate` the secrets showed before the write (ECS's and
    /// Secrets Manager's clock: AWS's).
    pub since: f64,
    /// The latest `createdAt` or `startedAt` of the tasks listed before that reading.
    pub listed_until: f64,
}

/// One secret as read just before the write.
#[derive(Debug, Clone, Copy)]
pub struct ReadBefore<'a> {
    /// The version the rotation will restore (current when it was planned).
    pub previous: &'a str,
    /// The version `AWSCURRENT` was on at the read.
    pub current: Option<&'a str>,
    /// `LastChangedDate` at the read.
    pub last_changed: Option<f64>,
}

impl HeldBefore {
    /// From the reads of every secret the rotation writes and the plan's listing. `None`
    /// when anything is missing: a secret not read, not on its previous version, without a
    /// `LastChangedDate`, or no task listed.
    pub fn from_reads(reads: &[ReadBefore<'_>], listed_until: Option<f64>) -> Option<Self> {
        let listed_until = listed_until?;
        let mut since: Option<f64> = None;
        for r in reads {
            if r.current != Some(r.previous) {
                return None;
            }
            let l = r.last_changed?;
            since = Some(since.map_or(l, |s| s.max(l)));
        }
        Some(HeldBefore {
            since: since?,
            listed_until,
        })
    }

    /// Whether task `t` resolved its secrets while the previous versions were current,
    /// before the write.
    pub fn holds(&self, t: &TaskObs) -> bool {
        t.desired_status == "RUNNING"
            && t.last_status == "RUNNING"
            && task_holds(t.created_at, &Holding::Holds { since: self.since }, 0.0)
                == TaskHolds::Ours
            && t.started_at.is_some_and(|s| s <= self.listed_until)
    }

    /// Why task `t` is not proven by the reading before the write.
    fn why_not(&self, t: &TaskObs) -> String {
        let id = t.id();
        match t.started_at {
            _ if t.last_status != "RUNNING" => format!("task {id} is {}", t.last_status),
            None => format!("task {id} has not started"),
            Some(s) if s > self.listed_until => format!(
                "task {id} started after its service was listed before the write: it may hold the new value"
            ),
            Some(_) => format!(
                "task {id} was created before the previous version was last changed: what it holds cannot be told"
            ),
        }
    }
}

/// What the restore does with one service.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreStep {
    /// Every task meant to run holds the previous version: no redeploy.
    Keep,
    /// Redeploy it, because of `why`.
    Redeploy {
        /// In words for the operator.
        why: String,
    },
}

/// Decides [`RestoreStep`] for a service from its PRIMARY deployment and its tasks (both
/// read once `AWSCURRENT` is back on the previous version), the rollout's deployment of
/// it, the reading before the write (`None`: none was made) and the restore's `since`
/// (when the previous version was current again, at the latest).
///
/// The rollout's deployment still PRIMARY (ECS did not roll it back: our detector found
/// no service deployment to stop, say) goes on launching tasks and would replace blue at
/// the end of its bake: the restore replaces it.
pub fn restore_step(
    primary: Option<&str>,
    rollout: Option<&str>,
    tasks: &[TaskObs],
    before: Option<&HeldBefore>,
    restored_since: Option<f64>,
) -> RestoreStep {
    let Some(before) = before else {
        return RestoreStep::Redeploy {
            why: "what its tasks held before the write is not known".into(),
        };
    };
    match primary {
        None => {
            return RestoreStep::Redeploy {
                why: "its PRIMARY deployment is not known".into(),
            }
        }
        Some(p) if Some(p) == rollout => {
            return RestoreStep::Redeploy {
                why: format!("the rollout's deployment {p} is still its PRIMARY"),
            }
        }
        Some(_) => {}
    }
    let running: Vec<&TaskObs> = tasks
        .iter()
        .filter(|t| t.desired_status == "RUNNING")
        .collect();
    if running.is_empty() {
        return RestoreStep::Redeploy {
            why: "no task runs to prove".into(),
        };
    }
    for t in running {
        let after_restore = restored_since.is_some_and(|s| {
            task_holds(t.created_at, &Holding::Holds { since: s }, 0.0) == TaskHolds::Ours
        });
        if !before.holds(t) && !after_restore {
            return RestoreStep::Redeploy {
                why: before.why_not(t),
            };
        }
    }
    RestoreStep::Keep
}

/// The restore's proof for a service: every task meant to run holds the previous version,
/// by the holding rule from `since` (the restore's) or by the reading before the write.
pub fn prove(tasks: &[TaskObs], since: f64, before: Option<&HeldBefore>) -> Proof {
    let (held, rest): (Vec<TaskObs>, Vec<TaskObs>) = tasks
        .iter()
        .cloned()
        .partition(|t| before.is_some_and(|b| b.holds(t)));
    let mut proof = verdict::prove(&rest, None, since);
    for t in &held {
        proof.fresh += 1;
        proof.total += 1;
        let s = t.started_at.unwrap_or(t.created_at);
        proof.started = Some(match proof.started {
            None => (s, s),
            Some((lo, hi)) => (lo.min(s), hi.max(s)),
        });
    }
    proof
}

/// Whether ECS is done with a service left alone: one deployment, completed, with its
/// desired count running and nothing pending (after a rollback, blue's deployment
/// completes once green's tasks are gone; a rolling rollback once its tasks run).
pub fn settled(obs: &ServiceObs) -> bool {
    let [only] = obs.deployments.as_slice() else {
        return false;
    };
    only.is_primary()
        && (only.rollout_state == "COMPLETED" || only.rollout_state.is_empty())
        && only.running == only.desired
        && only.pending == 0
        && obs.info.pending == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: f64 = 1_000.0;
    const LISTED: f64 = 5_000.0;
    const RESTORED: f64 = 9_000.0;

    fn task(id: &str, created: f64, started: Option<f64>, last: &str) -> TaskObs {
        TaskObs {
            arn: format!("arn:aws:ecs:eu-west-1:123456789012:task/c/{id}"),
            started_by: "ecs-svc/1".into(),
            last_status: last.into(),
            desired_status: "RUNNING".into(),
            created_at: created,
            started_at: started,
            task_definition_arn: "td:1".into(),
            containers: Vec::new(),
            group: "service:web".into(),
        }
    }

    fn running(id: &str, created: f64, started: f64) -> TaskObs {
        task(id, created, Some(started), "RUNNING")
    }

    fn before() -> HeldBefore {
        HeldBefore {
            since: L,
            listed_until: LISTED,
        }
    }

    #[test]
    fn which_services_the_restore_redeploys() {
        let mut draining = running("green", 6_000.0, 6_010.0);
        draining.desired_status = "STOPPED".into();
        // (case, tasks, reading before the write, restore's since, redeploy because)
        #[allow(clippy::type_complexity)]
        let table: Vec<(
            &str,
            Vec<TaskObs>,
            Option<HeldBefore>,
            Option<f64>,
            Option<&str>,
        )> =
            vec![
            (
                "blue/green rollback: blue's tasks started before the listing, after L",
                vec![running("b1", 2_000.0, 2_030.0), running("b2", 2_000.0, 4_999.0)],
                Some(before()),
                Some(RESTORED),
                None,
            ),
            (
                "a task started at the listing's own moment is before the read",
                vec![running("b1", L, LISTED)],
                Some(before()),
                Some(RESTORED),
                None,
            ),
            (
                "green's tasks draining (ECS stops them) are not meant to run",
                vec![running("b1", 2_000.0, 2_030.0), draining.clone()],
                Some(before()),
                Some(RESTORED),
                None,
            ),
            (
                "a task launched after AWSCURRENT moved back holds the previous version",
                vec![
                    running("b1", 2_000.0, 2_030.0),
                    task("r1", RESTORED, None, "PENDING"),
                ],
                Some(before()),
                Some(RESTORED),
                None,
            ),
            (
                "rolling rollback: a task launched while the new value was current",
                vec![running("b1", 2_000.0, 2_030.0), running("n1", 6_000.0, 6_030.0)],
                Some(before()),
                Some(RESTORED),
                Some("task n1 started after its service was listed before the write"),
            ),
            (
                "created before the listing but started after it: it may have read the new value",
                vec![running("s1", 4_990.0, 5_000.5)],
                Some(before()),
                Some(RESTORED),
                Some("task s1 started after"),
            ),
            (
                "created before the previous version's last change: cannot be told",
                vec![running("o1", L - 0.001, 2_000.0)],
                Some(before()),
                Some(RESTORED),
                Some("task o1 was created before the previous version was last changed"),
            ),
            (
                "not started yet, launched before the restore",
                vec![task("p1", 3_000.0, None, "PENDING")],
                Some(before()),
                Some(RESTORED),
                Some("task p1 is PENDING"),
            ),
            (
                "running but without startedAt",
                vec![task("p2", 3_000.0, None, "RUNNING")],
                Some(before()),
                Some(RESTORED),
                Some("task p2 has not started"),
            ),
            (
                "a task launched before the restore's since is not saved by it",
                vec![task("r0", RESTORED - 0.001, None, "PENDING")],
                Some(before()),
                Some(RESTORED),
                Some("task r0 is PENDING"),
            ),
            (
                "the restore's since unknown: only the reading before the write proves",
                vec![task("r1", RESTORED, None, "PENDING")],
                Some(before()),
                None,
                Some("task r1 is PENDING"),
            ),
            (
                "no reading before the write (resume, rollback): redeploy",
                vec![running("b1", 2_000.0, 2_030.0)],
                None,
                Some(RESTORED),
                Some("what its tasks held before the write is not known"),
            ),
            (
                "no task meant to run: redeploy, as before",
                vec![draining],
                Some(before()),
                Some(RESTORED),
                Some("no task runs to prove"),
            ),
        ];
        for (case, tasks, held, since, want) in table {
            let got = restore_step(
                Some("ecs-svc/1"),
                Some("ecs-svc/2"),
                &tasks,
                held.as_ref(),
                since,
            );
            match (want, got) {
                (None, RestoreStep::Keep) => {}
                (Some(w), RestoreStep::Redeploy { why }) => {
                    assert!(why.starts_with(w), "{case}: {why}")
                }
                (want, got) => panic!("{case}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_rollouts_deployment_still_primary_is_replaced() {
        let blue = vec![running("b1", 2_000.0, 2_030.0)];
        let step = |primary, rollout| restore_step(primary, rollout, &blue, Some(&before()), None);
        assert_eq!(
            step(Some("ecs-svc/1"), Some("ecs-svc/2")),
            RestoreStep::Keep
        );
        // A rotation that never deployed the service (its launch failed): blue is PRIMARY.
        assert_eq!(step(Some("ecs-svc/1"), None), RestoreStep::Keep);
        assert_eq!(
            step(Some("ecs-svc/2"), Some("ecs-svc/2")),
            RestoreStep::Redeploy {
                why: "the rollout's deployment ecs-svc/2 is still its PRIMARY".into()
            }
        );
        assert_eq!(
            step(None, Some("ecs-svc/2")),
            RestoreStep::Redeploy {
                why: "its PRIMARY deployment is not known".into()
            }
        );
    }

    #[test]
    fn the_reading_before_the_write() {
        let read = |previous, current, last_changed| ReadBefore {
            previous,
            current,
            last_changed,
        };
        // Two secrets: the latest last change bounds both.
        assert_eq!(
            HeldBefore::from_reads(
                &[
                    read("v1", Some("v1"), Some(900.0)),
                    read("w1", Some("w1"), Some(L))
                ],
                Some(LISTED)
            ),
            Some(before())
        );
        // Anything missing: no reading.
        for (case, reads, listed) in [
            (
                "no task listed",
                vec![read("v1", Some("v1"), Some(L))],
                None,
            ),
            (
                "moved off the previous version since the plan",
                vec![read("v1", Some("v9"), Some(L))],
                Some(LISTED),
            ),
            (
                "no LastChangedDate",
                vec![read("v1", Some("v1"), None)],
                Some(LISTED),
            ),
            (
                "no current version",
                vec![read("v1", None, Some(L))],
                Some(LISTED),
            ),
            ("no secret read", vec![], Some(LISTED)),
        ] {
            assert_eq!(HeldBefore::from_reads(&reads, listed), None, "{case}");
        }
    }

    #[test]
    fn the_restores_proof_counts_tasks_held_before_the_write() {
        let tasks = vec![
            running("b1", 2_000.0, 2_030.0),
            running("r1", RESTORED + 1.0, RESTORED + 20.0),
            running("n1", 6_000.0, 6_030.0),
        ];
        let p = prove(&tasks, RESTORED, Some(&before()));
        assert_eq!((p.fresh, p.total), (2, 3));
        assert_eq!(p.started, Some((2_030.0, RESTORED + 20.0)));
        assert_eq!(p.stale.len(), 1);
        assert_eq!(p.stale[0].task, "n1");
        assert!(!p.holds(1));
        // Without the reading, only the restore's since proves.
        let p = prove(&tasks[..2], RESTORED, None);
        assert_eq!((p.fresh, p.total), (1, 2));
        let p = prove(&tasks[..2], RESTORED, Some(&before()));
        assert!(p.holds(1));
    }

    #[test]
    fn ecs_is_done_with_a_service_left_alone() {
        use crate::aws::model::{DeploymentObs, ServiceInfo};
        let dep = |status: &str, state: &str, desired, running, pending| DeploymentObs {
            id: "ecs-svc/1".into(),
            status: status.into(),
            rollout_state: state.into(),
            desired,
            running,
            pending,
            ..Default::default()
        };
        let obs = |deployments: Vec<DeploymentObs>| ServiceObs {
            info: ServiceInfo::default(),
            deployments,
            events: Vec::new(),
            current_service_deployment: None,
        };
        assert!(settled(&obs(vec![dep("PRIMARY", "COMPLETED", 4, 4, 0)])));
        for (case, deployments) in [
            (
                "blue rolling back while green drains",
                vec![
                    dep("PRIMARY", "IN_PROGRESS", 4, 4, 0),
                    dep("ACTIVE", "FAILED", 0, 2, 0),
                ],
            ),
            (
                "a rollback still launching",
                vec![dep("PRIMARY", "COMPLETED", 4, 3, 1)],
            ),
            ("in progress", vec![dep("PRIMARY", "IN_PROGRESS", 4, 4, 0)]),
            ("no deployment", vec![]),
        ] {
            assert!(!settled(&obs(deployments)), "{case}");
        }
    }
}
