//! The ECS data model: clusters, services, deployments, tasks, and their AWS JSON shapes.

use std::collections::{BTreeSet, HashMap, VecDeque};

use serde_json::{json, Map, Value};

use super::Timing;

/// A task's `lastStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Provisioning,
    Pending,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Provisioning => "PROVISIONING",
            Status::Pending => "PENDING",
            Status::Running => "RUNNING",
            Status::Deactivating => "DEACTIVATING",
            Status::Stopping => "STOPPING",
            Status::Deprovisioning => "DEPROVISIONING",
            Status::Stopped => "STOPPED",
        }
    }
}

/// What a task recorded about one secret reference at launch (never the value).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskSecret {
    pub value_from: String,
    pub secret_arn: String,
    pub name: String,
    pub version_id: String,
    pub json_key: Option<String>,
    /// A Parameter Store parameter (its ARN, name, and version number as `version_id`).
    pub parameter: bool,
}

/// What will happen to a task, decided at placement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fate {
    Healthy,
    /// The application exits on the value it read.
    AppRejectsValue,
    FailHealthCheck,
    /// A secret could not be resolved: the full stoppedReason.
    SecretError(String),
}

/// One task.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub id: String,
    pub arn: String,
    pub cluster: usize,
    pub service: Option<usize>,
    /// Internal uid of the deployment that owns the task (rollbacks reuse public ids).
    pub dep_uid: Option<u64>,
    /// Service revision (`Ecs::revisions`) it was launched for.
    pub revision: Option<usize>,
    pub started_by: Option<String>,
    pub group: String,
    pub task_def: String,
    pub family: String,
    pub launch_type: String,
    pub containers: Vec<String>,
    /// Per container (same order): the image as written and the digest it launched with.
    pub images: Vec<(String, Option<String>)>,
    pub cpu: Option<Value>,
    pub memory: Option<Value>,
    pub last: Status,
    pub desired_running: bool,
    /// None = UNKNOWN (health check not evaluated yet).
    pub healthy: Option<bool>,
    pub created_at: f64,
    pub pull_started_at: Option<f64>,
    pub pull_stopped_at: Option<f64>,
    pub started_at: Option<f64>,
    pub stopping_at: Option<f64>,
    pub execution_stopped_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<&'static str>,
    pub secrets: Vec<TaskSecret>,
    pub fate: Fate,
    /// Bumped whenever the task's schedule changes, so stale heap events are ignored.
    pub gen: u32,
    pub version: u64,
    pub timing: Timing,
    /// Left the listable indexes (stopped more than an hour ago).
    pub expired: bool,
}

/// Per-deployment / per-cluster task counters, kept incrementally so describing and
/// scheduling never scan all tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// PROVISIONING/PENDING and not told to stop.
    pub pending: u32,
    /// lastStatus RUNNING.
    pub running: u32,
    /// RUNNING, health check passed, not told to stop.
    pub healthy: u32,
    /// Not told to stop and not STOPPED.
    pub live: u32,
    /// Not STOPPED (draining included).
    pub present: u32,
}

impl Counts {
    pub(crate) fn of(t: &Task) -> Counts {
        let stopped = t.last == Status::Stopped;
        let live = t.desired_running && !stopped;
        Counts {
            pending: u32::from(live && matches!(t.last, Status::Provisioning | Status::Pending)),
            running: u32::from(t.last == Status::Running),
            healthy: u32::from(live && t.last == Status::Running && t.healthy == Some(true)),
            live: u32::from(live),
            present: u32::from(!stopped),
        }
    }

    pub(crate) fn add(&mut self, o: Counts) {
        self.pending += o.pending;
        self.running += o.running;
        self.healthy += o.healthy;
        self.live += o.live;
        self.present += o.present;
    }

    pub(crate) fn sub(&mut self, o: Counts) {
        // Saturating: a bookkeeping slip must never panic the server.
        self.pending = self.pending.saturating_sub(o.pending);
        self.running = self.running.saturating_sub(o.running);
        self.healthy = self.healthy.saturating_sub(o.healthy);
        self.live = self.live.saturating_sub(o.live);
        self.present = self.present.saturating_sub(o.present);
    }
}

/// `rolloutState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rollout {
    InProgress,
    Completed,
    Failed,
}

impl Rollout {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Rollout::InProgress => "IN_PROGRESS",
            Rollout::Completed => "COMPLETED",
            Rollout::Failed => "FAILED",
        }
    }
}

/// One entry of a service's `deployments[]`.
#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub uid: u64,
    pub id: String,
    pub task_def: String,
    pub desired: u32,
    pub failed: u32,
    pub rollout: Rollout,
    pub reason: String,
    pub created_at: f64,
    pub updated_at: f64,
    pub launch_type: String,
    /// Tasks not yet STOPPED.
    pub tasks: BTreeSet<usize>,
    pub counts: Counts,
    /// A circuit-breaker rollback: exempt from the breaker so it retries until it works.
    pub is_rollback: bool,
    /// One of its tasks passed its health check: per the API reference the failed-task count
    /// then resets to zero and the circuit breaker stops evaluating the deployment.
    pub succeeded: bool,
    /// A desired-0 deployment completes no earlier than this.
    pub earliest_complete: f64,
    /// Index of its service revision in `Ecs::revisions`.
    pub revision: usize,
    /// Index of the service deployment (`Ecs::sds`) it belongs to: the one that started
    /// it, or the one rolling back to it.
    pub sd: Option<usize>,
    /// Share of production traffic its healthy tasks receive (100 under rolling).
    pub prod_weight: f64,
    /// Share of test traffic (blue/green, linear, canary).
    pub test_weight: f64,
}

/// A service event.
#[derive(Debug, Clone)]
pub(crate) struct SvcEvent {
    pub id: String,
    pub at: f64,
    pub message: String,
}

/// A service.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub name: String,
    pub arn: String,
    pub cluster: usize,
    pub task_def: String,
    pub desired: u32,
    pub min_pct: u32,
    pub max_pct: u32,
    pub breaker: bool,
    pub rollback: bool,
    pub controller: String,
    pub launch_type: String,
    pub deployments: Vec<Deployment>,
    pub events: VecDeque<SvcEvent>,
    pub created_at: f64,
    pub timing: Timing,
    /// (deployment id, task definition, revision) of the last deployment that completed.
    pub last_completed: Option<(String, String, usize)>,
    /// `strategy` and the fields that go with it.
    pub strategy: super::strategy::StrategyConfig,
    /// `ACTIVE`, `DRAINING` (deleted, tasks stopping) or `INACTIVE`.
    pub status: &'static str,
    /// The newest service deployment (`Ecs::sds`).
    pub current_sd: Option<usize>,
    /// Listable tasks (stopped ones until they expire).
    pub tasks: BTreeSet<usize>,
    /// Request fields kept as given (networkConfiguration, loadBalancers, ...).
    pub extra: Map<String, Value>,
}

/// A cluster.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub name: String,
    pub arn: String,
    pub services: Vec<usize>,
    pub service_by_name: HashMap<String, usize>,
    /// Listable tasks (stopped ones until they expire).
    pub tasks: BTreeSet<usize>,
    pub counts: Counts,
}

/// Epoch seconds rounded to the millisecond, as AWS puts them on the wire.
pub(crate) fn ts(t: f64) -> Value {
    json!((t * 1000.0).round() / 1000.0)
}

fn put_ts(m: &mut Map<String, Value>, key: &str, t: Option<f64>) {
    if let Some(t) = t {
        m.insert(key.to_string(), ts(t));
    }
}

impl Task {
    pub(crate) fn to_json(&self, cluster_arn: &str) -> Value {
        let health = match self.healthy {
            None => "UNKNOWN",
            Some(true) => "HEALTHY",
            Some(false) => "UNHEALTHY",
        };
        let desired = if self.desired_running {
            "RUNNING"
        } else {
            "STOPPED"
        };
        let containers: Vec<Value> = self
            .containers
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (image, digest) = self
                    .images
                    .get(i)
                    .map_or((None, None), |(im, d)| (Some(im), d.as_ref()));
                let mut c = json!({
                    "containerArn": format!("{}/{}", self.arn.replace(":task/", ":container/"), name),
                    "taskArn": self.arn,
                    "name": name,
                    "lastStatus": match self.last {
                        Status::Provisioning | Status::Pending => "PENDING",
                        Status::Running | Status::Deactivating => "RUNNING",
                        _ => "STOPPED",
                    },
                    "healthStatus": health,
                });
                if let Some(image) = image {
                    c["image"] = json!(image);
                }
                // ECS reports the digest once the image is pulled.
                if let (Some(d), true) = (digest, self.pull_stopped_at.is_some()) {
                    c["imageDigest"] = json!(d);
                }
                c
            })
            .collect();
        let mut m = Map::new();
        m.insert("taskArn".into(), json!(self.arn));
        m.insert("clusterArn".into(), json!(cluster_arn));
        m.insert("taskDefinitionArn".into(), json!(self.task_def));
        m.insert("lastStatus".into(), json!(self.last.as_str()));
        m.insert("desiredStatus".into(), json!(desired));
        m.insert("healthStatus".into(), json!(health));
        m.insert("launchType".into(), json!(self.launch_type));
        m.insert("group".into(), json!(self.group));
        if let Some(s) = &self.started_by {
            m.insert("startedBy".into(), json!(s));
        }
        m.insert("version".into(), json!(self.version));
        m.insert("availabilityZone".into(), json!("eu-west-1a"));
        m.insert("connectivity".into(), json!("CONNECTED"));
        // The API types cpu and memory as strings on tasks; a number given at registration
        // must not break a client's parser.
        for (key, v) in [("cpu", &self.cpu), ("memory", &self.memory)] {
            match v {
                Some(Value::String(s)) => {
                    m.insert(key.into(), json!(s));
                }
                Some(Value::Number(n)) => {
                    m.insert(key.into(), json!(n.to_string()));
                }
                _ => {}
            }
        }
        m.insert("containers".into(), Value::Array(containers));
        put_ts(&mut m, "createdAt", Some(self.created_at));
        put_ts(&mut m, "pullStartedAt", self.pull_started_at);
        put_ts(&mut m, "pullStoppedAt", self.pull_stopped_at);
        put_ts(&mut m, "startedAt", self.started_at);
        put_ts(&mut m, "stoppingAt", self.stopping_at);
        put_ts(&mut m, "executionStoppedAt", self.execution_stopped_at);
        put_ts(&mut m, "stoppedAt", self.stopped_at);
        if let Some(r) = &self.stopped_reason {
            m.insert("stoppedReason".into(), json!(r));
        }
        if let Some(c) = self.stop_code {
            m.insert("stopCode".into(), json!(c));
        }
        m.insert("tags".into(), json!([]));
        Value::Object(m)
    }

    pub(crate) fn snapshot(&self, cluster: &str, service: Option<&str>) -> Value {
        let parameters: Vec<Value> = self
            .secrets
            .iter()
            .filter(|s| s.parameter)
            .map(|s| {
                json!({
                    "value_from": s.value_from,
                    "arn": s.secret_arn,
                    "name": s.name,
                    "version": s.version_id.parse::<u64>().unwrap_or_default(),
                })
            })
            .collect();
        let secrets: Vec<Value> = self
            .secrets
            .iter()
            .filter(|s| !s.parameter)
            .map(|s| {
                json!({
                    "value_from": s.value_from,
                    "secret_arn": s.secret_arn,
                    "name": s.name,
                    "version_id": s.version_id,
                    "json_key": s.json_key,
                })
            })
            .collect();
        json!({
            "arn": self.arn,
            "id": self.id,
            "cluster": cluster,
            "service": service,
            "startedBy": self.started_by,
            "group": self.group,
            "taskDefinition": self.task_def,
            "lastStatus": self.last.as_str(),
            "desiredStatus": if self.desired_running { "RUNNING" } else { "STOPPED" },
            "healthStatus": match self.healthy { None => "UNKNOWN", Some(true) => "HEALTHY", Some(false) => "UNHEALTHY" },
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "stoppedAt": self.stopped_at,
            "stoppedReason": self.stopped_reason,
            "stopCode": self.stop_code,
            "secrets": secrets,
            "parameters": parameters,
            "containers": self.containers.iter().zip(&self.images).map(|(n, (image, digest))| json!({
                "name": n, "image": image, "imageDigest": digest,
            })).collect::<Vec<_>>(),
        })
    }
}

impl Deployment {
    pub(crate) fn to_json(&self, primary: bool) -> Value {
        json!({
            "id": self.id,
            "status": if primary { "PRIMARY" } else { "ACTIVE" },
            "taskDefinition": self.task_def,
            "desiredCount": self.desired,
            "pendingCount": self.counts.pending,
            "runningCount": self.counts.running,
            "failedTasks": self.failed,
            "createdAt": ts(self.created_at),
            "updatedAt": ts(self.updated_at),
            "launchType": self.launch_type,
            "rolloutState": self.rollout.as_str(),
            "rolloutStateReason": self.reason,
        })
    }
}

impl Service {
    /// `deploymentConfiguration` as DescribeServices shows it.
    pub(crate) fn deployment_configuration(&self) -> Value {
        let mut dc = Map::new();
        dc.insert(
            "deploymentCircuitBreaker".into(),
            json!({"enable": self.breaker, "rollback": self.rollback}),
        );
        dc.insert("maximumPercent".into(), json!(self.max_pct));
        dc.insert("minimumHealthyPercent".into(), json!(self.min_pct));
        self.strategy.render(&mut dc);
        Value::Object(dc)
    }

    pub(crate) fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for d in &self.deployments {
            c.add(d.counts);
        }
        c
    }

    pub(crate) fn to_json(&self, cluster_arn: &str) -> Value {
        let c = self.counts();
        let deployments: Vec<Value> = self
            .deployments
            .iter()
            .enumerate()
            .map(|(i, d)| d.to_json(i == 0))
            .collect();
        let events: Vec<Value> = self
            .events
            .iter()
            .map(|e| json!({"id": e.id, "createdAt": ts(e.at), "message": e.message}))
            .collect();
        let mut m = Map::new();
        m.insert("serviceArn".into(), json!(self.arn));
        m.insert("serviceName".into(), json!(self.name));
        m.insert("clusterArn".into(), json!(cluster_arn));
        m.insert("status".into(), json!(self.status));
        m.insert("desiredCount".into(), json!(self.desired));
        m.insert("runningCount".into(), json!(c.running));
        m.insert("pendingCount".into(), json!(c.pending));
        m.insert("launchType".into(), json!(self.launch_type));
        m.insert("taskDefinition".into(), json!(self.task_def));
        m.insert(
            "deploymentConfiguration".into(),
            self.deployment_configuration(),
        );
        m.insert(
            "deploymentController".into(),
            json!({"type": self.controller}),
        );
        m.insert("deployments".into(), Value::Array(deployments));
        m.insert("events".into(), Value::Array(events));
        m.insert("createdAt".into(), ts(self.created_at));
        m.insert("schedulingStrategy".into(), json!("REPLICA"));
        m.insert("loadBalancers".into(), json!([]));
        m.insert("serviceRegistries".into(), json!([]));
        if self.launch_type == "FARGATE" {
            m.insert("platformVersion".into(), json!("LATEST"));
            m.insert("platformFamily".into(), json!("Linux"));
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

impl Cluster {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "clusterArn": self.arn,
            "clusterName": self.name,
            "status": "ACTIVE",
            "registeredContainerInstancesCount": 0,
            "runningTasksCount": self.counts.running,
            "pendingTasksCount": self.counts.pending,
            "activeServicesCount": self.services.len(),
            "statistics": [],
            "tags": [],
            "settings": [{"name": "containerInsights", "value": "disabled"}],
            "capacityProviders": [],
            "defaultCapacityProviderStrategy": [],
        })
    }
}
