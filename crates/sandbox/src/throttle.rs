//! AWS's request rate limits: token buckets per account and action group, on the wall clock.
//!
//! ECS throttles every account per region with one token bucket per group of actions
//! ("Request throttling for the Amazon ECS API": bucket size = burst, refill per second =
//! sustained); Secrets Manager gives requests per second per group of actions (its quotas
//! page: the writes `PutSecretValue`, `UpdateSecret`, `UpdateSecretVersionStage` and the
//! replication calls share 50/s; `DescribeSecret` and `GetSecretValue` share 10,000/s),
//! modelled as a bucket of one second's worth. A request that finds its bucket empty is
//! answered as AWS answers it: `ThrottlingException` "Rate exceeded", HTTP 400 (STS's query
//! protocol: `Throttling`), without running.
//!
//! The bucket is asked the moment a request has arrived, before the request waits for the
//! world's lock (or anything else), as AWS's front end decides before any work is queued:
//! requests that queue behind a long simulation step must not reach the bucket later in a
//! burst they were not sent in.
//!
//! The buckets run on the real clock, never the virtual one: a client's own rate limiter
//! runs on the real clock too, so it is tested honestly at any sandbox speed. Off unless a
//! scenario's `[limits]`, the control API (`/_sandbox/limits`) or `sandbox --limits aws`
//! turns them on. Actions of no group (STS, `ListSecrets`, ...) are never throttled.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::{AwsError, Service};

/// One bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Bucket size: requests accepted at once from a full bucket.
    pub burst: u32,
    /// Refill, requests per second.
    pub sustained: f64,
}

/// An action group: the actions that share one bucket, and AWS's published rate.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// `ecs.service_read`, `secretsmanager.write`, ...: the key of scenario overrides.
    pub name: &'static str,
    /// The service.
    pub service: Service,
    /// The actions sharing the bucket.
    pub actions: &'static [&'static str],
    /// AWS's default rate.
    pub aws: Rate,
}

const fn rate(burst: u32, sustained: u32) -> Rate {
    Rate {
        burst,
        sustained: sustained as f64,
    }
}

/// Every group the sandbox knows, with AWS's published rates.
pub const GROUPS: &[Group] = &[
    Group {
        name: "ecs.cluster_read",
        service: Service::Ecs,
        actions: &["DescribeClusters", "ListClusters"],
        aws: rate(50, 20),
    },
    Group {
        name: "ecs.cluster_modify",
        service: Service::Ecs,
        actions: &[
            "CreateCluster",
            "DeleteCluster",
            "PutClusterCapacityProviders",
            "UpdateCluster",
            "UpdateClusterSettings",
        ],
        aws: rate(20, 1),
    },
    Group {
        name: "ecs.task_definition_read",
        service: Service::Ecs,
        actions: &[
            "DescribeTaskDefinition",
            "ListTaskDefinitions",
            "ListTaskDefinitionFamilies",
        ],
        aws: rate(50, 20),
    },
    Group {
        name: "ecs.task_definition_modify",
        service: Service::Ecs,
        actions: &["DeregisterTaskDefinition", "RegisterTaskDefinition"],
        aws: rate(20, 1),
    },
    Group {
        name: "ecs.task_definition_delete",
        service: Service::Ecs,
        actions: &["DeleteTaskDefinitions"],
        aws: rate(5, 1),
    },
    Group {
        name: "ecs.tag_read",
        service: Service::Ecs,
        actions: &["ListTagsForResource"],
        aws: rate(50, 20),
    },
    Group {
        name: "ecs.tag_modify",
        service: Service::Ecs,
        actions: &["TagResource", "UntagResource"],
        aws: rate(20, 10),
    },
    Group {
        name: "ecs.cluster_resource_modify",
        service: Service::Ecs,
        actions: &["RunTask", "StartTask", "StopTask"],
        aws: rate(100, 40),
    },
    Group {
        name: "ecs.cluster_resource_read",
        service: Service::Ecs,
        actions: &[
            "DescribeContainerInstances",
            "DescribeTasks",
            "ListAttributes",
            "ListContainerInstances",
            "ListTasks",
        ],
        aws: rate(100, 20),
    },
    Group {
        name: "ecs.service_modify",
        service: Service::Ecs,
        actions: &["CreateService", "DeleteService", "UpdateService"],
        aws: rate(50, 5),
    },
    Group {
        name: "ecs.service_read",
        service: Service::Ecs,
        actions: &["DescribeServices", "ListServices"],
        aws: rate(100, 20),
    },
    Group {
        name: "ecs.service_deployment",
        service: Service::Ecs,
        actions: &["DescribeServiceDeployments", "ListServiceDeployments"],
        aws: rate(50, 20),
    },
    Group {
        name: "ecs.service_revision",
        service: Service::Ecs,
        actions: &["DescribeServiceRevisions"],
        aws: rate(50, 20),
    },
    Group {
        name: "secretsmanager.write",
        service: Service::SecretsManager,
        actions: &[
            "PutSecretValue",
            "RemoveRegionsFromReplication",
            "ReplicateSecretToRegion",
            "StopReplicationToReplica",
            "UpdateSecret",
            "UpdateSecretVersionStage",
        ],
        aws: rate(50, 50),
    },
    Group {
        name: "secretsmanager.read",
        service: Service::SecretsManager,
        actions: &["DescribeSecret", "GetSecretValue"],
        aws: rate(10_000, 10_000),
    },
    Group {
        name: "secretsmanager.batch_read",
        service: Service::SecretsManager,
        actions: &["BatchGetSecretValue"],
        aws: rate(100, 100),
    },
    Group {
        name: "secretsmanager.rotate",
        service: Service::SecretsManager,
        actions: &["RotateSecret", "CancelRotateSecret"],
        aws: rate(50, 50),
    },
    Group {
        name: "secretsmanager.restore",
        service: Service::SecretsManager,
        actions: &["RestoreSecret"],
        aws: rate(50, 50),
    },
    Group {
        name: "secretsmanager.tag",
        service: Service::SecretsManager,
        actions: &["TagResource", "UntagResource"],
        aws: rate(50, 50),
    },
];

/// The group `operation` of `service` belongs to, if any.
pub fn group_of(service: Service, operation: &str) -> Option<&'static Group> {
    GROUPS
        .iter()
        .find(|g| g.service == service && g.actions.contains(&operation))
}

/// Which rates apply when limits are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// AWS's published rates for every group.
    #[default]
    Aws,
    /// Only the groups `groups` names are limited.
    None,
}

/// The rate limits of a scenario (`[limits]`) or of the control API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// The base rates.
    #[serde(default)]
    pub preset: Preset,
    /// Per-group overrides, by group name (`ecs.service_read`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Rate>,
}

impl LimitsSpec {
    /// AWS's published rates.
    pub fn aws() -> Self {
        Self::default()
    }

    /// `Ok` when every override names a known group with a usable rate; otherwise one line
    /// naming it.
    pub fn validate(&self) -> Result<(), String> {
        for (name, r) in &self.groups {
            if !GROUPS.iter().any(|g| g.name == name) {
                let known: Vec<&str> = GROUPS.iter().map(|g| g.name).collect();
                return Err(format!(
                    "limits.groups: unknown group {name:?} (known: {})",
                    known.join(", ")
                ));
            }
            if r.burst == 0 || r.burst > 1_000_000 {
                return Err(format!(
                    "limits.groups.{name}.burst must be from 1 to 1000000, not {}",
                    r.burst
                ));
            }
            crate::limits::SUSTAINED_RATE
                .check(&format!("limits.groups.{name}.sustained"), r.sustained)?;
        }
        Ok(())
    }

    /// The rate of `group` under this spec, or `None` when it is not limited.
    pub fn rate_of(&self, group: &Group) -> Option<Rate> {
        match (self.groups.get(group.name), self.preset) {
            (Some(r), _) => Some(*r),
            (None, Preset::Aws) => Some(group.aws),
            (None, Preset::None) => None,
        }
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

fn bucket(r: Rate) -> Bucket {
    // validate() keeps burst >= 1 and sustained > 0.
    let burst = NonZeroU32::new(r.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs_f64(1.0 / r.sustained.max(1e-6));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::direct(quota)
}

/// The buckets of every account, and how many requests each group refused.
///
/// Shared between the world and the HTTP front ([`crate::World::throttle`] is an `Arc` of
/// it): the front decides every request on arrival, before it waits for the world's lock,
/// as AWS's front end decides before any work is queued. Its own lock is held only for the
/// decision, never while the world works.
#[derive(Default)]
pub struct Throttle {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    spec: Option<LimitsSpec>,
    /// The account whose buckets [`Throttle::arrive`] uses.
    account: String,
    buckets: HashMap<(String, &'static str), Bucket>,
    throttled: BTreeMap<&'static str, u64>,
}

impl Throttle {
    /// Limits off, for `account`'s requests.
    pub fn for_account(account: &str) -> Self {
        let t = Self::default();
        t.lock().account = account.to_string();
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere must not stop the sandbox from answering.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Turns limits on with `spec` (full buckets, counts from zero), or off with `None`.
    pub fn set(&self, spec: Option<LimitsSpec>) -> Result<(), String> {
        if let Some(s) = &spec {
            s.validate()?;
        }
        let mut st = self.lock();
        st.spec = spec;
        st.buckets.clear();
        st.throttled.clear();
        Ok(())
    }

    /// Takes on the account and limits of `other` (a freshly built world's), with full
    /// buckets and counts from zero: how a loaded scenario replaces the world without
    /// replacing the throttle the HTTP front holds.
    pub fn take_over(&self, other: &Throttle) {
        let (spec, account) = {
            let o = other.lock();
            (o.spec.clone(), o.account.clone())
        };
        let mut st = self.lock();
        st.spec = spec;
        st.account = account;
        st.buckets.clear();
        st.throttled.clear();
    }

    /// Takes a token for one request of `account`; `Some(error)` when the bucket is empty
    /// (the request must be answered with it and not run), counted as refused.
    pub fn admit(&self, account: &str, service: Service, operation: &str) -> Option<AwsError> {
        self.take(Some(account), service, operation)
            .map(|_| throttling_error(service))
    }

    /// What the HTTP front asks the moment a request has arrived, before it waits for the
    /// world: takes a token of the request's group for the account this throttle serves;
    /// `Some(group)`, counted as refused, when the bucket was empty. The token is spent
    /// whatever becomes of the request; a refused request that turns out unauthenticated
    /// is answered with its auth error instead and [`Throttle::forgive`]n.
    pub fn arrive(&self, service: Service, operation: &str) -> Option<&'static str> {
        self.take(None, service, operation)
    }

    /// Uncounts one refusal of `group` that was answered otherwise (an auth error).
    pub fn forgive(&self, group: &'static str) {
        let mut st = self.lock();
        if let Some(n) = st.throttled.get_mut(group) {
            *n = n.saturating_sub(1);
        }
    }

    fn take(
        &self,
        account: Option<&str>,
        service: Service,
        operation: &str,
    ) -> Option<&'static str> {
        let mut st = self.lock();
        let State {
            spec,
            account: served,
            buckets,
            throttled,
        } = &mut *st;
        let spec = spec.as_ref()?;
        let group = group_of(service, operation)?;
        let r = spec.rate_of(group)?;
        let account = account.unwrap_or(served.as_str()).to_string();
        let b = buckets
            .entry((account, group.name))
            .or_insert_with(|| bucket(r));
        if b.check().is_ok() {
            return None;
        }
        *throttled.entry(group.name).or_default() += 1;
        Some(group.name)
    }

    /// The state for the control API: on or off, every limited group's rate, and the
    /// requests refused per group since limits were set.
    pub fn report(&self) -> serde_json::Value {
        let st = self.lock();
        let Some(spec) = &st.spec else {
            return serde_json::json!({"enabled": false, "groups": {}, "throttled": {}, "throttled_total": 0});
        };
        let groups: BTreeMap<&str, serde_json::Value> = GROUPS
            .iter()
            .filter_map(|g| {
                spec.rate_of(g).map(|r| {
                    (
                        g.name,
                        serde_json::json!({"burst": r.burst, "sustained": r.sustained, "actions": g.actions}),
                    )
                })
            })
            .collect();
        serde_json::json!({
            "enabled": true,
            "preset": spec.preset,
            "groups": groups,
            "throttled": st.throttled,
            "throttled_total": st.throttled.values().sum::<u64>(),
        })
    }
}

/// AWS's answer to a request over its rate, in the protocol of `service`.
pub fn throttling_error(service: Service) -> AwsError {
    // STS's query protocol names it differently from the JSON services.
    let code = if service == Service::Sts {
        "Throttling"
    } else {
        "ThrottlingException"
    };
    AwsError::new(code, "Rate exceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_in_at_most_one_group_of_its_service() {
        for g in GROUPS {
            for a in g.actions {
                let n = GROUPS
                    .iter()
                    .filter(|h| h.service == g.service && h.actions.contains(a))
                    .count();
                assert_eq!(n, 1, "{a} of {}", g.name);
            }
        }
        assert_eq!(
            group_of(Service::Ecs, "DescribeServices").map(|g| g.aws),
            Some(rate(100, 20))
        );
        assert_eq!(
            group_of(Service::SecretsManager, "UpdateSecretVersionStage").map(|g| g.name),
            Some("secretsmanager.write")
        );
        assert!(group_of(Service::Sts, "GetCallerIdentity").is_none());
    }

    #[test]
    fn a_full_bucket_takes_its_burst_then_refuses_and_counts() {
        let t = Throttle::default();
        // Off: nothing is refused.
        for _ in 0..500 {
            assert!(t.admit("1", Service::Ecs, "DescribeServices").is_none());
        }
        let mut spec = LimitsSpec::aws();
        // A refill of one per thousand seconds: none arrives during the test.
        spec.groups.insert(
            "ecs.service_read".into(),
            Rate {
                burst: 5,
                sustained: 0.001,
            },
        );
        t.set(Some(spec)).unwrap();
        for _ in 0..5 {
            assert!(t.admit("1", Service::Ecs, "ListServices").is_none());
        }
        let e = t.admit("1", Service::Ecs, "DescribeServices").unwrap();
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.status),
            ("ThrottlingException", "Rate exceeded", 400)
        );
        // Another group, another account: their own buckets.
        assert!(t.admit("1", Service::Ecs, "DescribeTasks").is_none());
        assert!(t.admit("2", Service::Ecs, "DescribeServices").is_none());
        // Ungrouped actions are never refused.
        assert!(t.admit("1", Service::Sts, "GetCallerIdentity").is_none());
        let r = t.report();
        assert_eq!(r["throttled"]["ecs.service_read"], 1);
        assert_eq!(r["throttled_total"], 1);
        assert_eq!(r["groups"]["ecs.service_read"]["burst"], 5);
        assert_eq!(r["groups"]["ecs.cluster_read"]["sustained"], 20.0);
    }

    #[test]
    fn bad_overrides_are_refused_with_the_key() {
        let mut spec = LimitsSpec::aws();
        spec.groups.insert("ecs.nope".into(), rate(1, 1));
        assert!(spec
            .validate()
            .unwrap_err()
            .starts_with("limits.groups: unknown group \"ecs.nope\""));
        let mut spec = LimitsSpec::aws();
        spec.groups.insert("ecs.service_read".into(), rate(0, 1));
        assert!(spec
            .validate()
            .unwrap_err()
            .contains("limits.groups.ecs.service_read.burst"));
        let mut spec = LimitsSpec::aws();
        spec.groups.insert(
            "ecs.service_read".into(),
            Rate {
                burst: 1,
                sustained: 0.0,
            },
        );
        assert!(spec
            .validate()
            .unwrap_err()
            .contains("limits.groups.ecs.service_read.sustained"));
    }
}
