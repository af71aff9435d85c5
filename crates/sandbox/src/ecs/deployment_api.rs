//! The operations that came with deployment strategies: the service deployments API
//! (`ListServiceDeployments`, `DescribeServiceDeployments`, `DescribeServiceRevisions`,
//! `StopServiceDeployment`, `ContinueServiceDeployment`), `currentServiceDeployment` and
//! `currentServiceRevisions` of a described service, and `DeleteService`.

use serde_json::{json, Map, Value};

use super::model::ts;
use super::ops::req_str;
use super::service_deployments::{HookStatus, SdStatus};
use super::strategy::HookAction;
use super::Ecs;
use crate::{AwsError, OpResult};

fn opt_bool(body: &Value, key: &str) -> bool {
    body.get(key).and_then(Value::as_bool).unwrap_or(false)
}

impl Ecs {
    /// A service as DescribeServices shows it, with its current service deployment and
    /// the revisions that run tasks.
    pub(crate) fn service_json(&self, s: usize, cluster_arn: &str) -> Value {
        let svc = &self.services[s];
        let mut v = svc.to_json(cluster_arn);
        if let Some(sd) = svc.current_sd {
            v["currentServiceDeployment"] = json!(self.sds[sd].arn);
        }
        let mut revs: Vec<usize> = Vec::new();
        for d in &svc.deployments {
            if !revs.contains(&d.revision) && (d.counts.present > 0 || d.desired > 0) {
                revs.push(d.revision);
            }
        }
        let summaries: Vec<Value> = revs
            .iter()
            .map(|&r| {
                let deps = svc.deployments.iter().filter(|d| d.revision == r);
                let (mut req, mut run, mut pend) = (0, 0, 0);
                for d in deps {
                    req += d.desired;
                    run += d.counts.running;
                    pend += d.counts.pending;
                }
                json!({"arn": self.revisions[r].arn, "requestedTaskCount": req,
                       "runningTaskCount": run, "pendingTaskCount": pend})
            })
            .collect();
        v["currentServiceRevisions"] = Value::Array(summaries);
        v
    }

    /// DeleteService: the service turns DRAINING, its tasks stop, then it is INACTIVE
    /// (still described, no longer listed; its name can be used again).
    pub(crate) fn delete_service(&mut self, body: &Value) -> OpResult {
        let c = self.cluster_of(body)?;
        let s = self.service_idx(c, req_str(body, "service")?)?;
        if self.services[s].status != "ACTIVE" {
            return Err(AwsError::new(
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        if self.services[s].desired > 0 && !opt_bool(body, "force") {
            return Err(AwsError::invalid_parameter(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        let now = self.now;
        if let Some(sd) = self.services[s].current_sd {
            self.finish_sd(
                sd,
                SdStatus::Stopped,
                Some("The service was deleted.".to_string()),
            );
        }
        let svc = &mut self.services[s];
        svc.status = "DRAINING";
        svc.desired = 0;
        for d in &mut svc.deployments {
            d.desired = 0;
            d.updated_at = now;
        }
        self.dirty.insert(s);
        let arn = &self.clusters[c].arn;
        Ok(json!({ "service": self.service_json(s, arn) }))
    }

    fn sd_brief(&self, i: usize) -> Value {
        let sd = &self.sds[i];
        let svc = &self.services[sd.service];
        let mut m = Map::new();
        m.insert("serviceDeploymentArn".into(), json!(sd.arn));
        m.insert("serviceArn".into(), json!(svc.arn));
        m.insert("clusterArn".into(), json!(self.clusters[svc.cluster].arn));
        m.insert("createdAt".into(), ts(sd.created_at));
        m.insert("startedAt".into(), ts(sd.created_at));
        if let Some(t) = sd.finished_at {
            m.insert("finishedAt".into(), ts(t));
        }
        m.insert(
            "targetServiceRevisionArn".into(),
            json!(self.revisions[sd.target_rev].arn),
        );
        m.insert("status".into(), json!(sd.status.as_str()));
        if let Some(r) = &sd.reason {
            m.insert("statusReason".into(), json!(r));
        }
        Value::Object(m)
    }

    pub(crate) fn list_service_deployments(&self, body: &Value) -> OpResult {
        let c = self.cluster_idx(
            body.get("cluster")
                .and_then(Value::as_str)
                .unwrap_or("default"),
        )?;
        let name = body
            .get("service")
            .and_then(Value::as_str)
            .ok_or_else(|| AwsError::missing_field("service"))?;
        let s = self.service_idx(c, name)?;
        let statuses: Option<Vec<&str>> = body
            .get("status")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        let after = body.pointer("/createdAt/after").and_then(Value::as_f64);
        let before = body.pointer("/createdAt/before").and_then(Value::as_f64);
        let max = match body.get("maxResults").and_then(Value::as_u64) {
            None => 20,
            Some(n @ 1..=100) => n as usize,
            Some(_) => {
                return Err(AwsError::invalid_parameter(
                    "maxResults must be between 1 and 100.",
                ))
            }
        };
        let start = super::ops::decode_token(body)?;
        // Newest first.
        let all: Vec<usize> = (0..self.sds.len())
            .rev()
            .filter(|&i| self.sds[i].service == s)
            .filter(|&i| {
                statuses
                    .as_ref()
                    .is_none_or(|st| st.contains(&self.sds[i].status.as_str()))
            })
            .filter(|&i| after.is_none_or(|a| self.sds[i].created_at >= a))
            .filter(|&i| before.is_none_or(|b| self.sds[i].created_at <= b))
            .collect();
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(max)
            .map(|&i| self.sd_brief(i))
            .collect();
        let mut out = json!({ "serviceDeployments": page });
        if start + max < all.len() {
            out["nextToken"] = json!(super::ops::encode_token(start + max));
        }
        Ok(out)
    }

    pub(crate) fn describe_service_deployments(&self, body: &Value) -> OpResult {
        let arns = body
            .get("serviceDeploymentArns")
            .and_then(Value::as_array)
            .ok_or_else(|| AwsError::missing_field("serviceDeploymentArns"))?;
        if arns.is_empty() || arns.len() > 20 {
            return Err(AwsError::invalid_parameter(
                "serviceDeploymentArns must have between 1 and 20 items.",
            ));
        }
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for a in arns {
            let a = a.as_str().unwrap_or_default();
            match self.sd_index.get(a) {
                Some(&i) => found.push(self.sd_to_json(i)),
                None => failures.push(json!({"arn": a, "reason": "MISSING"})),
            }
        }
        Ok(json!({"serviceDeployments": found, "failures": failures}))
    }

    pub(crate) fn describe_service_revisions(&self, body: &Value) -> OpResult {
        let arns = body
            .get("serviceRevisionArns")
            .and_then(Value::as_array)
            .ok_or_else(|| AwsError::missing_field("serviceRevisionArns"))?;
        if arns.is_empty() || arns.len() > 20 {
            return Err(AwsError::invalid_parameter(
                "serviceRevisionArns must have between 1 and 20 items.",
            ));
        }
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for a in arns {
            let a = a.as_str().unwrap_or_default();
            match self.revision_index.get(a) {
                Some(&i) => {
                    let r = &self.revisions[i];
                    let svc = &self.services[r.service];
                    let mut m = Map::new();
                    m.insert("serviceRevisionArn".into(), json!(r.arn));
                    m.insert("serviceArn".into(), json!(svc.arn));
                    m.insert("clusterArn".into(), json!(self.clusters[svc.cluster].arn));
                    m.insert("taskDefinition".into(), json!(r.task_def));
                    m.insert("launchType".into(), json!(r.launch_type));
                    m.insert("createdAt".into(), ts(r.created_at));
                    for (k, v) in &r.extra {
                        m.insert(k.clone(), v.clone());
                    }
                    found.push(Value::Object(m));
                }
                None => failures.push(json!({"arn": a, "reason": "MISSING"})),
            }
        }
        Ok(json!({"serviceRevisions": found, "failures": failures}))
    }

    fn sd_by_arn(&self, body: &Value) -> Result<usize, AwsError> {
        let arn = body
            .get("serviceDeploymentArn")
            .and_then(Value::as_str)
            .ok_or_else(|| AwsError::missing_field("serviceDeploymentArn"))?;
        self.sd_index.get(arn).copied().ok_or_else(|| {
            AwsError::new(
                "ServiceDeploymentNotFoundException",
                "The service deployment does not exist.",
            )
        })
    }

    /// StopServiceDeployment: `ROLLBACK` (the only documented value; it works even when
    /// the service never configured rollback). `ABORT` is refused: what it does on AWS
    /// is unconfirmed.
    pub(crate) fn stop_service_deployment(&mut self, body: &Value) -> OpResult {
        let sd = self.sd_by_arn(body)?;
        match body
            .get("stopType")
            .and_then(Value::as_str)
            .unwrap_or("ROLLBACK")
        {
            "ROLLBACK" => {}
            other => {
                return Err(AwsError::invalid_parameter(format!(
                    "stopType {other} is not supported; the valid value is ROLLBACK."
                )))
            }
        }
        if self.sds[sd].status != SdStatus::InProgress {
            return Err(AwsError::new(
                "ConflictException",
                format!(
                    "The service deployment is {}: only a deployment in progress can be stopped.",
                    self.sds[sd].status.as_str()
                ),
            ));
        }
        let reason = "Service deployment rolled back because of a StopServiceDeployment request."
            .to_string();
        self.roll_back(sd, reason, None);
        Ok(json!({"serviceDeploymentArn": self.sds[sd].arn}))
    }

    /// ContinueServiceDeployment: answers a `PAUSE` hook that awaits action.
    pub(crate) fn continue_service_deployment(&mut self, body: &Value) -> OpResult {
        let sd = self.sd_by_arn(body)?;
        let hook_id = body
            .get("hookId")
            .and_then(Value::as_str)
            .ok_or_else(|| AwsError::missing_field("hookId"))?;
        let action = match body
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("CONTINUE")
        {
            "CONTINUE" => HookAction::Continue,
            "ROLLBACK" => HookAction::Rollback,
            other => {
                return Err(AwsError::invalid_parameter(format!(
                    "Invalid action {other}: CONTINUE or ROLLBACK."
                )))
            }
        };
        let d = &mut self.sds[sd];
        let Some(h) = d.hooks.iter_mut().find(|h| h.hook_id == hook_id) else {
            return Err(AwsError::invalid_parameter(format!(
                "The lifecycle hook {hook_id} is not part of this service deployment."
            )));
        };
        if h.status != HookStatus::AwaitingAction || d.status != SdStatus::InProgress {
            return Err(AwsError::new(
                "ConflictException",
                format!(
                    "The lifecycle hook {hook_id} is {}, not AWAITING_ACTION.",
                    h.status.as_str()
                ),
            ));
        }
        h.status = match action {
            HookAction::Continue => HookStatus::Succeeded,
            HookAction::Rollback => HookStatus::Failed,
        };
        d.updated_at = self.now;
        let s = d.service;
        self.dirty.insert(s);
        Ok(json!({"serviceDeploymentArn": self.sds[sd].arn}))
    }
}
