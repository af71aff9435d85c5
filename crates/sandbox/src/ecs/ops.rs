//! The ECS API operations (AWS JSON 1.1), request and response fields as in the AWS API
//! reference.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Map, Value};

use super::model::{Cluster, Service, Status};
use super::sim::Launch;
use super::Ecs;
use crate::secrets::SecretSource;
use crate::{AwsError, Ctx, OpResult};

fn opt_str<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

pub(crate) fn req_str<'a>(body: &'a Value, key: &str) -> Result<&'a str, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Err(AwsError::missing_field(key)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(AwsError::invalid_parameter(format!(
            "Invalid value for parameter '{key}'."
        ))),
    }
}

fn opt_u32(body: &Value, key: &str) -> Result<Option<u32>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                AwsError::invalid_parameter(format!("Invalid value for parameter '{key}'."))
            }),
    }
}

/// ECS's quota of tasks per service; also keeps a typo from launching billions of tasks.
const MAX_DESIRED: u32 = 5000;

fn desired_count(body: &Value) -> Result<Option<u32>, AwsError> {
    match opt_u32(body, "desiredCount")? {
        Some(n) if n > MAX_DESIRED => Err(AwsError::invalid_parameter(format!(
            "desiredCount must be between 0 and {MAX_DESIRED}."
        ))),
        other => Ok(other),
    }
}

fn opt_bool(body: &Value, key: &str) -> bool {
    body.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn str_list(body: &Value, key: &str) -> Result<Option<Vec<String>>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    AwsError::invalid_parameter(format!("Invalid value for parameter '{key}'."))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(AwsError::invalid_parameter(format!(
            "Invalid value for parameter '{key}'."
        ))),
    }
}

/// An opaque pagination token for "start at position N".
pub(crate) fn encode_token(n: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("sandbox-next:{n}"))
}

pub(crate) fn decode_token(body: &Value) -> Result<usize, AwsError> {
    let Some(tok) = opt_str(body, "nextToken") else {
        return Ok(0);
    };
    base64::engine::general_purpose::STANDARD
        .decode(tok)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("sandbox-next:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| AwsError::invalid_parameter("Invalid token"))
}

fn max_results(body: &Value, default: u32, max: u32) -> Result<usize, AwsError> {
    match opt_u32(body, "maxResults")? {
        None => Ok(default as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(_) => Err(AwsError::invalid_parameter(format!(
            "maxResults must be between 1 and {max}."
        ))),
    }
}

/// The last path segment of an ARN (`...:service/cluster/NAME` -> `NAME`), or the input.
fn short_name(s: &str) -> &str {
    if s.starts_with("arn:") {
        s.rsplit('/').next().unwrap_or(s)
    } else {
        s
    }
}

fn valid_family(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 255
        && f.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Ecs {
    pub(crate) fn dispatch(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        operation: &str,
        body: &Value,
    ) -> OpResult {
        match operation {
            "CreateCluster" => self.create_cluster(ctx, body),
            "ListClusters" => self.list_clusters(body),
            "DescribeClusters" => self.describe_clusters(ctx, body),
            "RegisterTaskDefinition" => self.register_task_definition(ctx, body),
            "DescribeTaskDefinition" => self.describe_task_definition(body),
            "ListTaskDefinitions" => self.list_task_definitions(body),
            "CreateService" => self.create_service(ctx, secrets, body),
            "UpdateService" => self.update_service(ctx, secrets, body),
            "DescribeServices" => self.describe_services(ctx, body),
            "ListServices" => self.list_services(body),
            "ListTasks" => self.list_tasks(body),
            "DescribeTasks" => self.describe_tasks(body),
            "RunTask" => self.run_task(ctx, secrets, body),
            "StopTask" => self.stop_task_op(body),
            "DeleteService" => self.delete_service(body),
            "ListServiceDeployments" => self.list_service_deployments(body),
            "DescribeServiceDeployments" => self.describe_service_deployments(body),
            "DescribeServiceRevisions" => self.describe_service_revisions(body),
            "StopServiceDeployment" => self.stop_service_deployment(body),
            "ContinueServiceDeployment" => self.continue_service_deployment(body),
            _ => Err(AwsError::new(
                "UnknownOperationException",
                format!("Unknown operation {operation}"),
            )),
        }
    }

    /// A cluster by name or ARN.
    pub(crate) fn cluster_idx(&self, name_or_arn: &str) -> Result<usize, AwsError> {
        self.cluster_by_name
            .get(short_name(name_or_arn))
            .copied()
            .ok_or_else(|| AwsError::new("ClusterNotFoundException", "Cluster not found."))
    }

    pub(crate) fn cluster_of(&self, body: &Value) -> Result<usize, AwsError> {
        self.cluster_idx(opt_str(body, "cluster").unwrap_or("default"))
    }

    /// A service of a cluster by name or ARN.
    pub(crate) fn service_idx(&self, cluster: usize, name_or_arn: &str) -> Result<usize, AwsError> {
        self.clusters[cluster]
            .service_by_name
            .get(short_name(name_or_arn))
            .copied()
            .ok_or_else(|| AwsError::new("ServiceNotFoundException", "Service not found."))
    }

    /// A registered task definition by `family`, `family:revision` or ARN.
    pub(crate) fn find_task_def(&self, reference: &str) -> Option<&Value> {
        let r = reference
            .rsplit_once(":task-definition/")
            .map_or(reference, |(_, r)| r);
        let (family, rev) = match r.rsplit_once(':') {
            Some((f, rev)) => (f, Some(rev.parse::<usize>().ok()?)),
            None => (r, None),
        };
        let revs = self.task_defs.get(family)?;
        match rev {
            Some(n) => revs.get(n.checked_sub(1)?),
            None => revs.last(),
        }
    }

    fn task_def_or_err(&self, reference: &str) -> Result<Value, AwsError> {
        self.find_task_def(reference)
            .cloned()
            .ok_or_else(|| AwsError::invalid_parameter("TaskDefinition not found."))
    }

    fn create_cluster(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let name = opt_str(body, "clusterName").unwrap_or("default");
        if name.is_empty()
            || name.len() > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(AwsError::invalid_parameter(
                "Cluster name can only contain letters, numbers, hyphens and underscores, up to 255 characters.",
            ));
        }
        if let Some(&c) = self.cluster_by_name.get(name) {
            return Ok(json!({ "cluster": self.clusters[c].to_json() }));
        }
        let arn = format!("arn:aws:ecs:{}:{}:cluster/{name}", ctx.region, ctx.account);
        self.clusters.push(Cluster {
            name: name.to_string(),
            arn,
            services: Vec::new(),
            service_by_name: HashMap::new(),
            tasks: Default::default(),
            counts: Default::default(),
        });
        let idx = self.clusters.len() - 1;
        self.cluster_by_name.insert(name.to_string(), idx);
        Ok(json!({ "cluster": self.clusters[idx].to_json() }))
    }

    fn list_clusters(&self, body: &Value) -> OpResult {
        let start = decode_token(body)?;
        let max = max_results(body, 100, 100)?;
        let arns: Vec<&str> = self
            .clusters
            .iter()
            .skip(start)
            .take(max)
            .map(|c| c.arn.as_str())
            .collect();
        let mut out = json!({ "clusterArns": arns });
        if start + max < self.clusters.len() {
            out["nextToken"] = json!(encode_token(start + max));
        }
        Ok(out)
    }

    fn describe_clusters(&self, ctx: &Ctx<'_>, body: &Value) -> OpResult {
        let wanted = str_list(body, "clusters")?.unwrap_or_else(|| vec!["default".to_string()]);
        if wanted.len() > 100 {
            return Err(AwsError::invalid_parameter(
                "clusters can have at most 100 items.",
            ));
        }
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for w in &wanted {
            match self.cluster_idx(w) {
                Ok(c) => clusters.push(self.clusters[c].to_json()),
                Err(_) => {
                    let arn = if w.starts_with("arn:") {
                        w.clone()
                    } else {
                        format!("arn:aws:ecs:{}:{}:cluster/{w}", ctx.region, ctx.account)
                    };
                    failures.push(json!({"arn": arn, "reason": "MISSING"}));
                }
            }
        }
        Ok(json!({ "clusters": clusters, "failures": failures }))
    }

    fn register_task_definition(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let family = req_str(body, "family")?;
        if !valid_family(family) {
            return Err(AwsError::new(
                "ClientException",
                "Family contains invalid characters or is longer than 255 characters.",
            ));
        }
        let containers = match body.get("containerDefinitions") {
            None | Some(Value::Null) => {
                return Err(AwsError::missing_field("containerDefinitions"))
            }
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(_) => {
                return Err(AwsError::new(
                    "ClientException",
                    "Container list cannot be empty.",
                ))
            }
        };
        for c in containers {
            if c.get("name").and_then(Value::as_str).is_none() {
                return Err(AwsError::new(
                    "ClientException",
                    "Container.name should not be null or empty.",
                ));
            }
            // ECS reads a parameter's latest version only: `name:version` and `name:label`
            // are refused as invalid names.
            for s in c
                .get("secrets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let vf = s
                    .get("valueFrom")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if crate::ssm::is_parameter_reference(vf) && !crate::ssm::valid_reference(vf) {
                    let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
                    return Err(AwsError::new(
                        "ClientException",
                        format!("The Systems Manager parameter name specified for secret {name} is invalid. The parameter name can be up to 2048 characters and include the following letters and symbols: a-zA-Z0-9_.-"),
                    ));
                }
            }
        }
        let mut td = body.as_object().cloned().unwrap_or_default();
        let tags = td.remove("tags").unwrap_or_else(|| json!([]));
        let revs = self.task_defs.entry(family.to_string()).or_default();
        let revision = revs.len() + 1;
        let arn = format!(
            "arn:aws:ecs:{}:{}:task-definition/{family}:{revision}",
            ctx.region, ctx.account
        );
        td.insert("taskDefinitionArn".into(), json!(arn));
        td.insert("revision".into(), json!(revision));
        td.insert("status".into(), json!("ACTIVE"));
        td.insert("registeredAt".into(), super::model::ts(ctx.now));
        td.insert("compatibilities".into(), json!(["EC2", "FARGATE"]));
        td.entry("volumes").or_insert_with(|| json!([]));
        td.entry("placementConstraints")
            .or_insert_with(|| json!([]));
        let td = Value::Object(td);
        revs.push(td.clone());
        Ok(json!({ "taskDefinition": td, "tags": tags }))
    }

    fn describe_task_definition(&self, body: &Value) -> OpResult {
        let r = req_str(body, "taskDefinition")?;
        let td = self.find_task_def(r).ok_or_else(|| {
            AwsError::new("ClientException", "Unable to describe task definition.")
        })?;
        Ok(json!({ "taskDefinition": td, "tags": [] }))
    }

    fn list_task_definitions(&self, body: &Value) -> OpResult {
        let prefix = opt_str(body, "familyPrefix");
        let status = opt_str(body, "status").unwrap_or("ACTIVE");
        if !matches!(status, "ACTIVE" | "INACTIVE" | "DELETE_IN_PROGRESS") {
            return Err(AwsError::invalid_parameter("Invalid status."));
        }
        let desc = match opt_str(body, "sort").unwrap_or("ASC") {
            "ASC" => false,
            "DESC" => true,
            _ => return Err(AwsError::invalid_parameter("Invalid sort.")),
        };
        let start = decode_token(body)?;
        let max = max_results(body, 100, 100)?;
        // Deregistering is not modelled: every definition is ACTIVE.
        let mut arns: Vec<&str> = if status == "ACTIVE" {
            self.task_defs
                .iter()
                .filter(|(f, _)| prefix.is_none_or(|p| f.starts_with(p)))
                .flat_map(|(_, revs)| revs.iter())
                .filter_map(|td| td.get("taskDefinitionArn").and_then(Value::as_str))
                .collect()
        } else {
            Vec::new()
        };
        if desc {
            arns.reverse();
        }
        let total = arns.len();
        let page: Vec<&str> = arns.into_iter().skip(start).take(max).collect();
        let mut out = json!({ "taskDefinitionArns": page });
        if start + max < total {
            out["nextToken"] = json!(encode_token(start + max));
        }
        Ok(out)
    }

    fn create_service(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        body: &Value,
    ) -> OpResult {
        let c = self.cluster_of(body)?;
        let name = req_str(body, "serviceName")?;
        if !valid_family(name) {
            return Err(AwsError::invalid_parameter(
                "Service name can only contain letters, numbers, hyphens and underscores, up to 255 characters.",
            ));
        }
        let td_ref = req_str(body, "taskDefinition")?;
        let td = self.task_def_or_err(td_ref)?;
        let desired =
            desired_count(body)?.ok_or_else(|| AwsError::missing_field("desiredCount"))?;
        if let Some(&old) = self.clusters[c].service_by_name.get(name) {
            if self.services[old].status != "INACTIVE" {
                return Err(AwsError::invalid_parameter(
                    "Creation of service was not idempotent.",
                ));
            }
        }
        let controller = body
            .get("deploymentController")
            .and_then(|d| d.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("ECS");
        if !matches!(controller, "ECS" | "CODE_DEPLOY" | "EXTERNAL") {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid deployment controller type {controller}."
            )));
        }
        let launch_type = opt_str(body, "launchType").unwrap_or("FARGATE");
        if !matches!(launch_type, "EC2" | "FARGATE" | "EXTERNAL") {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid launch type {launch_type}."
            )));
        }
        let mut extra = Map::new();
        for key in [
            "networkConfiguration",
            "loadBalancers",
            "serviceRegistries",
            "platformVersion",
            "healthCheckGracePeriodSeconds",
            "propagateTags",
            "enableECSManagedTags",
            "enableExecuteCommand",
            "capacityProviderStrategy",
            "placementConstraints",
            "placementStrategy",
        ] {
            if let Some(v) = body.get(key) {
                extra.insert(key.to_string(), v.clone());
            }
        }
        let cluster_name = self.clusters[c].name.clone();
        let mut svc = Service {
            name: name.to_string(),
            arn: format!(
                "arn:aws:ecs:{}:{}:service/{cluster_name}/{name}",
                ctx.region, ctx.account
            ),
            cluster: c,
            task_def: td
                .get("taskDefinitionArn")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            desired,
            min_pct: 100,
            max_pct: 200,
            breaker: false,
            rollback: false,
            controller: controller.to_string(),
            launch_type: launch_type.to_string(),
            deployments: Vec::new(),
            events: Default::default(),
            created_at: self.now,
            timing: self.default_timing.clone(),
            last_completed: None,
            tasks: Default::default(),
            extra,
            strategy: Default::default(),
            status: "ACTIVE",
            current_sd: None,
        };
        if let Some(dc) = body.get("deploymentConfiguration") {
            apply_deployment_configuration(&mut svc, dc)?;
        }
        self.services.push(svc);
        let s = self.services.len() - 1;
        let cl = &mut self.clusters[c];
        cl.services.push(s);
        // A deleted (INACTIVE) service of the same name is no longer found by name.
        cl.service_by_name.insert(name.to_string(), s);
        self.new_deployment(ctx, secrets, s);
        let arn = &self.clusters[c].arn;
        Ok(json!({ "service": self.service_json(s, arn) }))
    }

    fn update_service(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        body: &Value,
    ) -> OpResult {
        let c = self.cluster_of(body)?;
        let s = self.service_idx(c, req_str(body, "service")?)?;
        if self.services[s].status != "ACTIVE" {
            return Err(AwsError::new(
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        let force = opt_bool(body, "forceNewDeployment");
        let td = match opt_str(body, "taskDefinition") {
            Some(r) => Some(self.task_def_or_err(r)?),
            None => None,
        };
        let desired = desired_count(body)?;
        let controller = self.services[s].controller.clone();
        if controller != "ECS" && (force || td.is_some()) {
            // AWS's wording for CODE_DEPLOY; EXTERNAL is worded the same way by analogy
            // (inferred: not seen on real AWS).
            let how = if controller == "CODE_DEPLOY" {
                "Use AWS CodeDeploy to trigger a new deployment."
            } else {
                "Use task sets to trigger a new deployment."
            };
            return Err(AwsError::invalid_parameter(format!(
                "Unable to update task definition on services with a {controller} deployment controller. {how}"
            )));
        }
        if let Some(dc) = body.get("deploymentConfiguration") {
            let mut copy = self.services[s].clone();
            apply_deployment_configuration(&mut copy, dc)?;
            let svc = &mut self.services[s];
            svc.min_pct = copy.min_pct;
            svc.max_pct = copy.max_pct;
            svc.breaker = copy.breaker;
            svc.rollback = copy.rollback;
            svc.strategy = copy.strategy;
        }
        let mut deploy = force;
        if let Some(td) = td {
            let arn = td
                .get("taskDefinitionArn")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if arn != self.services[s].task_def {
                self.services[s].task_def = arn;
                deploy = true;
            }
        }
        if let Some(n) = desired {
            // As on ECS, a desired-count change alone scales the current deployment; it does
            // not start a new one.
            let svc = &mut self.services[s];
            svc.desired = n;
            if !deploy {
                if let Some(p) = svc.deployments.first_mut() {
                    p.desired = n;
                    p.updated_at = self.now;
                }
            }
            self.dirty.insert(s);
        }
        if deploy {
            self.new_deployment(ctx, secrets, s);
        }
        let arn = &self.clusters[c].arn;
        Ok(json!({ "service": self.service_json(s, arn) }))
    }

    fn describe_services(&self, ctx: &Ctx<'_>, body: &Value) -> OpResult {
        let c = self.cluster_of(body)?;
        let wanted =
            str_list(body, "services")?.ok_or_else(|| AwsError::missing_field("services"))?;
        if wanted.is_empty() || wanted.len() > 10 {
            return Err(AwsError::invalid_parameter(
                "services can have at most 10 items.",
            ));
        }
        let arn = &self.clusters[c].arn;
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for w in &wanted {
            // A service ARN naming another cluster is MISSING here too.
            let other_cluster = w.starts_with("arn:")
                && !w.contains(&format!(":service/{}/", self.clusters[c].name))
                && w.matches('/').count() >= 2;
            match self.service_idx(c, w) {
                Ok(s) if !other_cluster => services.push(self.service_json(s, arn)),
                _ => {
                    let missing = if w.starts_with("arn:") {
                        w.clone()
                    } else {
                        format!("arn:aws:ecs:{}:{}:service/{w}", ctx.region, ctx.account)
                    };
                    failures.push(json!({"arn": missing, "reason": "MISSING"}));
                }
            }
        }
        Ok(json!({ "services": services, "failures": failures }))
    }

    fn list_services(&self, body: &Value) -> OpResult {
        let c = self.cluster_of(body)?;
        let start = decode_token(body)?;
        let max = max_results(body, 10, 100)?;
        let launch_type = opt_str(body, "launchType");
        let all: Vec<&str> = self.clusters[c]
            .services
            .iter()
            .map(|&s| &self.services[s])
            .filter(|s| s.status != "INACTIVE")
            .filter(|s| launch_type.is_none_or(|l| l == s.launch_type))
            .map(|s| s.arn.as_str())
            .collect();
        let page: Vec<&str> = all.iter().skip(start).take(max).copied().collect();
        let mut out = json!({ "serviceArns": page });
        if start + max < all.len() {
            out["nextToken"] = json!(encode_token(start + max));
        }
        Ok(out)
    }

    fn list_tasks(&self, body: &Value) -> OpResult {
        let c = self.cluster_of(body)?;
        let index = match opt_str(body, "serviceName") {
            Some(name) => &self.services[self.service_idx(c, name)?].tasks,
            None => &self.clusters[c].tasks,
        };
        let want_running = match opt_str(body, "desiredStatus").unwrap_or("RUNNING") {
            "RUNNING" | "PENDING" => true,
            "STOPPED" => false,
            other => {
                return Err(AwsError::invalid_parameter(format!(
                    "Invalid desiredStatus {other}."
                )))
            }
        };
        let family = opt_str(body, "family");
        let started_by = opt_str(body, "startedBy");
        let launch_type = opt_str(body, "launchType");
        let start = decode_token(body)?;
        let max = max_results(body, 100, 100)?;
        let mut arns = Vec::new();
        let mut next = None;
        for &t in index.range(start..) {
            let task = &self.tasks[t];
            if task.desired_running != want_running
                || family.is_some_and(|f| f != task.family)
                || started_by.is_some_and(|s| Some(s) != task.started_by.as_deref())
                || launch_type.is_some_and(|l| l != task.launch_type)
            {
                continue;
            }
            if arns.len() == max {
                next = Some(t);
                break;
            }
            arns.push(task.arn.as_str());
        }
        let mut out = json!({ "taskArns": arns });
        if let Some(n) = next {
            out["nextToken"] = json!(encode_token(n));
        }
        Ok(out)
    }

    fn describe_tasks(&self, body: &Value) -> OpResult {
        let c = self.cluster_of(body)?;
        let wanted = str_list(body, "tasks")?.ok_or_else(|| AwsError::missing_field("tasks"))?;
        if wanted.is_empty() || wanted.len() > 100 {
            return Err(AwsError::invalid_parameter(
                "Tasks cannot be empty and can have at most 100 items.",
            ));
        }
        let cluster_arn = &self.clusters[c].arn;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for w in &wanted {
            let found = self
                .task_index
                .get(w.as_str())
                .or_else(|| self.task_index.get(short_name(w)))
                .map(|&t| &self.tasks[t])
                .filter(|t| t.cluster == c && !t.expired);
            match found {
                Some(t) => tasks.push(t.to_json(cluster_arn)),
                None => failures.push(json!({"arn": w, "reason": "MISSING"})),
            }
        }
        Ok(json!({ "tasks": tasks, "failures": failures }))
    }

    fn run_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        body: &Value,
    ) -> OpResult {
        let c = self.cluster_of(body)?;
        let td = self.task_def_or_err(req_str(body, "taskDefinition")?)?;
        let count = opt_u32(body, "count")?.unwrap_or(1);
        if !(1..=10).contains(&count) {
            return Err(AwsError::invalid_parameter(
                "count must be between 1 and 10.",
            ));
        }
        let family = td
            .get("family")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let group = opt_str(body, "group")
            .map(str::to_string)
            .unwrap_or_else(|| format!("family:{family}"));
        let launch_type = opt_str(body, "launchType").unwrap_or("FARGATE").to_string();
        let started_by = opt_str(body, "startedBy").map(str::to_string);
        let cluster_arn = self.clusters[c].arn.clone();
        let mut tasks = Vec::new();
        for _ in 0..count {
            let idx = self.create_task(
                ctx,
                secrets,
                Launch {
                    cluster: c,
                    service: None,
                    dep_uid: None,
                    revision: None,
                    started_by: started_by.clone(),
                    group: group.clone(),
                    task_def: &td,
                    launch_type: launch_type.clone(),
                    timing: self.default_timing.clone(),
                },
            );
            tasks.push(self.tasks[idx].to_json(&cluster_arn));
        }
        Ok(json!({ "tasks": tasks, "failures": [] }))
    }

    fn stop_task_op(&mut self, body: &Value) -> OpResult {
        let c = self.cluster_of(body)?;
        let w = req_str(body, "task")?;
        let idx = self
            .task_index
            .get(w)
            .or_else(|| self.task_index.get(short_name(w)))
            .copied()
            .filter(|&t| self.tasks[t].cluster == c && !self.tasks[t].expired)
            .ok_or_else(|| AwsError::invalid_parameter("The referenced task was not found."))?;
        let reason = opt_str(body, "reason")
            .filter(|r| !r.is_empty())
            .unwrap_or("Task stopped by user")
            .to_string();
        if self.tasks[idx].last != Status::Stopped {
            // Only service tasks sit behind a load balancer and drain.
            let drain = self.tasks[idx].service.is_some();
            self.stop_task(idx, reason, "UserInitiated", drain);
        }
        let arn = &self.clusters[c].arn;
        Ok(json!({ "task": self.tasks[idx].to_json(arn) }))
    }
}

fn apply_deployment_configuration(svc: &mut Service, dc: &Value) -> Result<(), AwsError> {
    if let Some(min) = opt_u32(dc, "minimumHealthyPercent")? {
        if min > 100 {
            return Err(AwsError::invalid_parameter(
                "minimumHealthyPercent must be between 0 and 100.",
            ));
        }
        svc.min_pct = min;
    }
    if let Some(max) = opt_u32(dc, "maximumPercent")? {
        if max == 0 || (max < 100 && svc.min_pct > 0) {
            return Err(AwsError::invalid_parameter(
                "maximumPercent must be at least 100 unless minimumHealthyPercent is 0.",
            ));
        }
        svc.max_pct = max;
    }
    if let Some(cb) = dc.get("deploymentCircuitBreaker") {
        svc.breaker = opt_bool(cb, "enable");
        svc.rollback = opt_bool(cb, "rollback");
    }
    svc.strategy.apply(dc)?;
    if svc.strategy.strategy.staged() && svc.controller != "ECS" {
        return Err(AwsError::invalid_parameter(
            "The deployment strategy requires the ECS deployment controller.",
        ));
    }
    Ok(())
}
