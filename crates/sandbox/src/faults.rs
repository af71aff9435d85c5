//! Injected faults: errors, latency, dropped connections and a gate, by probability or by
//! script.
//!
//! A rule matches calls by service, operation and the resource the call names (all
//! optional), then fires when its script (`nth`: 1-based call numbers of that service and
//! operation) and its probability (drawn from the world's seeded source) say so, at most
//! `count` times. The first rule that fires decides. Call counters restart whenever the
//! rules are replaced, so "the 3rd UpdateService call fails" means the 3rd after the rules
//! were set.
//!
//! A `gate` rule holds the calls it fires on: they wait, unanswered and not yet run, until
//! the control API (or [`Faults::release`]) lets them through one at a time or all at
//! once, to run normally, or drops them unrun. A test can so advance a client call by call
//! and look at the world between calls. A held call is run when it is released even if its
//! client has gone away meanwhile, as AWS acts on a request it has received whether or not
//! the caller is still there to read the answer; drop it to model a request that never
//! arrived. Replacing or clearing the rules releases every held call.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::{AwsError, Service};

/// What to do to one request.
#[derive(Debug, Clone)]
pub enum FaultAction {
    /// Answer with this error instead of running the operation.
    Error(AwsError),
    /// Wait this long (real time), then run the operation.
    Latency(Duration),
    /// Close the connection without answering.
    Drop,
    /// Hold the call at the gate until it is released ([`Faults::hold`] registers it).
    Hold,
}

/// The kind of fault a rule injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `ThrottlingException` "Rate exceeded", HTTP 400 (STS: `Throttling`).
    Throttling,
    /// `InternalFailure`, HTTP 500.
    Internal,
    /// `ServiceUnavailable`, HTTP 503.
    Unavailable,
    /// Added latency (`latency_ms`), then the call runs normally.
    Latency,
    /// The connection is closed without an answer.
    Drop,
    /// The call is held, unanswered and not run, until released through the control API.
    Gate,
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// `secretsmanager`, `ecs` or `sts`; any service when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Operation name (`UpdateService`); any operation when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// A resource the call must name (by name or ARN) in its `SecretId`, `Name`,
    /// `cluster`, `service`, `services` or `taskDefinition`; any call when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What to inject.
    pub kind: FaultKind,
    /// Chance of firing on a matching call (after `nth`); always when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Fire only on these calls (1-based, counted per service and operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<Vec<u64>>,
    /// Fire at most this many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Delay for `latency` (default 1000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

/// The canonical lower-case name of a service in fault rules.
pub fn service_name(service: Service) -> &'static str {
    match service {
        Service::SecretsManager => "secretsmanager",
        Service::Ecs => "ecs",
        Service::Sts => "sts",
        Service::Ssm => "ssm",
        Service::Ecr => "ecr",
    }
}

fn normalise_service(s: &str) -> Option<&'static str> {
    match s.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
        "secretsmanager" => Some("secretsmanager"),
        "ecs" => Some("ecs"),
        "sts" => Some("sts"),
        "ssm" => Some("ssm"),
        "ecr" => Some("ecr"),
        _ => None,
    }
}

impl FaultRule {
    /// A rule of `kind` on every call of `service`'s `operation`.
    pub fn on(service: &str, operation: &str, kind: FaultKind) -> Self {
        Self {
            service: Some(service.to_string()),
            operation: Some(operation.to_string()),
            resource: None,
            kind,
            probability: None,
            nth: None,
            count: None,
            latency_ms: None,
        }
    }

    /// A gate on every call of `service`'s `operation`.
    pub fn gate(service: &str, operation: &str) -> Self {
        Self::on(service, operation, FaultKind::Gate)
    }

    /// The same rule, only for calls that name `resource`.
    pub fn naming(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    /// Checks the rule's fields; `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.service {
            if normalise_service(s).is_none() {
                return Err(format!(
                    "unknown service {s:?} in fault rule (use secretsmanager, ecs, ssm or sts)"
                ));
            }
        }
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("fault probability {p} is not between 0 and 1"));
            }
        }
        crate::limits::LATENCY_MS.check_opt("latency_ms", self.latency_ms.map(|ms| ms as f64))?;
        if let Some(nth) = &self.nth {
            if nth.contains(&0) {
                return Err("fault nth counts from 1".to_string());
            }
        }
        if self.resource.as_deref().is_some_and(str::is_empty) {
            return Err("fault resource is empty (leave it out to match any call)".to_string());
        }
        Ok(())
    }

    fn matches(&self, service: Service, operation: &str, body: &Value) -> bool {
        self.service
            .as_deref()
            .is_none_or(|s| normalise_service(s) == Some(service_name(service)))
            && self.operation.as_deref().is_none_or(|o| o == operation)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| names_resource(body, r))
    }

    fn action(&self, service: Service) -> FaultAction {
        match self.kind {
            FaultKind::Throttling => FaultAction::Error(AwsError::new(
                // STS's query protocol names it differently from the JSON services.
                if service == Service::Sts {
                    "Throttling"
                } else {
                    "ThrottlingException"
                },
                "Rate exceeded",
            )),
            FaultKind::Internal => FaultAction::Error(AwsError::with_status(
                "InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure.",
                500,
            )),
            FaultKind::Unavailable => FaultAction::Error(AwsError::with_status(
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
                503,
            )),
            FaultKind::Latency => {
                FaultAction::Latency(Duration::from_millis(self.latency_ms.unwrap_or(1000)))
            }
            FaultKind::Drop => FaultAction::Drop,
            FaultKind::Gate => FaultAction::Hold,
        }
    }
}

/// The request fields that name what a call is about.
const RESOURCE_FIELDS: [&str; 6] = [
    "SecretId",
    "Name",
    "cluster",
    "service",
    "services",
    "taskDefinition",
];

/// Whether a request names `resource` in one of [`RESOURCE_FIELDS`], by name or by ARN.
fn names_resource(body: &Value, resource: &str) -> bool {
    RESOURCE_FIELDS.iter().any(|k| match body.get(*k) {
        Some(Value::String(v)) => is_named(v, resource),
        Some(Value::Array(vs)) => vs
            .iter()
            .any(|v| v.as_str().is_some_and(|v| is_named(v, resource))),
        _ => false,
    })
}

/// `value` is `resource`, or an ARN ending in it: `.../NAME` (ECS), `:NAME` or
/// `:NAME-XXXXXX` (Secrets Manager's six random characters).
fn is_named(value: &str, resource: &str) -> bool {
    if value == resource {
        return true;
    }
    if !value.starts_with("arn:") {
        return false;
    }
    if value.ends_with(&format!("/{resource}")) || value.ends_with(&format!(":{resource}")) {
        return true;
    }
    value
        .len()
        .checked_sub(7)
        .and_then(|cut| value.get(..cut).map(|head| (head, &value[cut..])))
        .is_some_and(|(head, tail)| {
            tail.starts_with('-') && head.ends_with(&format!(":{resource}"))
        })
}

/// What to do with a call released from the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// Run it and answer as if it had never been held.
    Run,
    /// Close its connection unrun, as if the request had never arrived.
    Drop,
}

/// A call waiting at the gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldCall {
    /// Gate id, counting from 1 over the world's life, in order of arrival.
    pub id: u64,
    /// `secretsmanager`, `ecs` or `sts`.
    pub service: &'static str,
    /// The operation.
    pub operation: String,
    /// The request's naming fields, as in the call log.
    pub subject: Value,
    /// Virtual time of arrival.
    pub at: f64,
    /// Its number in the call log (0-based, counted since the world was built).
    #[serde(skip)]
    pub call: usize,
}

/// Which held calls to release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The `n` that arrived first; refused unless at least `n` are held.
    Oldest(usize),
    /// The one with this gate id; refused unless it is held.
    Id(u64),
    /// Every one held (maybe none).
    All,
}

#[derive(Debug)]
struct Waiting {
    call: HeldCall,
    release: oneshot::Sender<Release>,
}

/// Calls held by `gate` rules.
#[derive(Debug, Default)]
struct Gate {
    last_id: u64,
    waiting: Vec<Waiting>,
}

/// The fault table.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
    /// Times each rule has fired (same index as `rules`).
    fired: Vec<u64>,
    /// Calls seen per (service, operation) since the rules were set.
    calls: HashMap<(&'static str, String), u64>,
    /// Calls held at the gate.
    gate: Gate,
}

impl Faults {
    /// Replaces the rules (and restarts call counters). `Err` if a rule is invalid.
    pub fn set(&mut self, rules: Vec<FaultRule>) -> Result<(), String> {
        for r in &rules {
            r.validate()?;
        }
        self.fired = vec![0; rules.len()];
        self.rules = rules;
        self.calls.clear();
        self.open_gate();
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
        self.fired.clear();
        self.calls.clear();
        self.open_gate();
    }

    /// New rules: whatever the old gate held goes on as if never held.
    fn open_gate(&mut self) {
        let _ = self.release(Which::All, Release::Run);
    }

    /// Registers a call that [`Faults::check`] answered with [`FaultAction::Hold`]: it
    /// waits for the receiver. `call` is its number in the call log.
    pub fn hold(
        &mut self,
        service: Service,
        operation: &str,
        subject: Value,
        at: f64,
        call: usize,
    ) -> (u64, oneshot::Receiver<Release>) {
        let (tx, rx) = oneshot::channel();
        self.gate.last_id += 1;
        let id = self.gate.last_id;
        self.gate.waiting.push(Waiting {
            call: HeldCall {
                id,
                service: service_name(service),
                operation: operation.to_string(),
                subject,
                at,
                call,
            },
            release: tx,
        });
        (id, rx)
    }

    /// The calls held now, oldest first.
    pub fn held(&self) -> Vec<HeldCall> {
        self.gate.waiting.iter().map(|w| w.call.clone()).collect()
    }

    /// Lets held calls go, to run or to be dropped; returns them, oldest first. `Err` (and
    /// nothing released) when `which` names calls that are not held.
    pub fn release(&mut self, which: Which, how: Release) -> Result<Vec<HeldCall>, String> {
        let held = self.gate.waiting.len();
        let chosen: Vec<usize> = match which {
            Which::All => (0..held).collect(),
            Which::Oldest(0) => return Err("release at least one call".to_string()),
            Which::Oldest(n) if n > held => {
                return Err(format!(
                    "{n} call{} to release, {held} held at the gate",
                    if n == 1 { "" } else { "s" }
                ))
            }
            Which::Oldest(n) => (0..n).collect(),
            Which::Id(id) => vec![self
                .gate
                .waiting
                .iter()
                .position(|w| w.call.id == id)
                .ok_or_else(|| format!("no call {id} is held at the gate"))?],
        };
        let mut out = Vec::with_capacity(chosen.len());
        for i in chosen.into_iter().rev() {
            let w = self.gate.waiting.remove(i);
            // The waiting side is gone only when the sandbox stops: nothing to run.
            let _ = w.release.send(how);
            out.push(w.call);
        }
        out.reverse();
        Ok(out)
    }

    /// The current rules.
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// Decides the fault, if any, for this call (counts calls per operation for scripts).
    /// `body` is the request, for rules that name a resource.
    pub fn check(
        &mut self,
        service: Service,
        operation: &str,
        body: &Value,
        rng: &mut ChaCha8Rng,
    ) -> Option<FaultAction> {
        if self.rules.is_empty() {
            return None;
        }
        let n = self
            .calls
            .entry((service_name(service), operation.to_string()))
            .or_insert(0);
        *n += 1;
        let n = *n;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches(service, operation, body) {
                continue;
            }
            if rule.count.is_some_and(|c| self.fired[i] >= c) {
                continue;
            }
            if rule.nth.as_ref().is_some_and(|nth| !nth.contains(&n)) {
                continue;
            }
            if let Some(p) = rule.probability {
                if rng.random::<f64>() >= p {
                    continue;
                }
            }
            self.fired[i] += 1;
            return Some(rule.action(service));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    fn rule(json: &str) -> FaultRule {
        serde_json::from_str(json).unwrap()
    }

    fn code(a: Option<FaultAction>) -> Option<String> {
        match a? {
            FaultAction::Error(e) => Some(format!("{} {}", e.code, e.status)),
            FaultAction::Drop => Some("drop".into()),
            FaultAction::Latency(d) => Some(format!("latency {}", d.as_millis())),
            FaultAction::Hold => Some("hold".into()),
        }
    }

    #[test]
    fn nth_fires_on_listed_calls_of_that_operation_only() {
        let mut f = Faults::default();
        f.set(vec![rule(
            r#"{"service":"ecs","operation":"UpdateService","kind":"throttling","nth":[3]}"#,
        )])
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen = vec![];
        for _ in 0..4 {
            // Other operations do not advance UpdateService's counter.
            assert!(f
                .check(Service::Ecs, "DescribeServices", &Value::Null, &mut rng)
                .is_none());
            seen.push(code(f.check(
                Service::Ecs,
                "UpdateService",
                &Value::Null,
                &mut rng,
            )));
        }
        assert_eq!(
            seen,
            vec![None, None, Some("ThrottlingException 400".into()), None]
        );
    }

    #[test]
    fn count_limits_firings_and_kinds_map_to_aws_errors() {
        let mut f = Faults::default();
        f.set(vec![
            rule(r#"{"operation":"A","kind":"internal","count":1}"#),
            rule(r#"{"operation":"A","kind":"unavailable","count":1}"#),
            rule(r#"{"operation":"A","kind":"latency","latency_ms":5,"count":1}"#),
            rule(r#"{"operation":"A","kind":"drop","count":1}"#),
            rule(r#"{"service":"sts","kind":"throttling"}"#),
        ])
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let got: Vec<_> = (0..5)
            .map(|_| code(f.check(Service::SecretsManager, "A", &Value::Null, &mut rng)))
            .collect();
        assert_eq!(
            got,
            vec![
                Some("InternalFailure 500".into()),
                Some("ServiceUnavailable 503".into()),
                Some("latency 5".into()),
                Some("drop".into()),
                None
            ]
        );
        assert_eq!(
            code(f.check(Service::Sts, "GetCallerIdentity", &Value::Null, &mut rng)),
            Some("Throttling 400".into())
        );
    }

    #[test]
    fn probability_is_seeded() {
        let run = |seed| {
            let mut f = Faults::default();
            f.set(vec![rule(r#"{"kind":"throttling","probability":0.5}"#)])
                .unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..200)
                .map(|_| f.check(Service::Ecs, "X", &Value::Null, &mut rng).is_some())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        let fired = a.iter().filter(|b| **b).count();
        assert!((60..140).contains(&fired), "{fired}");
    }

    #[test]
    fn invalid_rules_are_refused() {
        let mut f = Faults::default();
        assert!(f
            .set(vec![rule(r#"{"service":"s3","kind":"drop"}"#)])
            .is_err());
        assert!(f
            .set(vec![rule(r#"{"kind":"drop","probability":2}"#)])
            .is_err());
        assert!(serde_json::from_str::<FaultRule>(r#"{"kind":"explode"}"#).is_err());
    }

    #[test]
    fn a_resource_is_named_by_name_or_arn_in_any_naming_field() {
        let secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbC123";
        for (body, resource, named) in [
            (json!({"SecretId": "prod/db"}), "prod/db", true),
            (json!({"SecretId": secret_arn}), "prod/db", true),
            (json!({"SecretId": secret_arn}), "db", false),
            (json!({"SecretId": "prod/db2"}), "prod/db", false),
            (json!({"service": "api", "cluster": "c"}), "api", true),
            (
                json!({"service": "arn:aws:ecs:eu-west-1:1:service/c/api"}),
                "api",
                true,
            ),
            (json!({"services": ["front", "api"]}), "api", true),
            (json!({"services": ["front"]}), "api", false),
            (json!({"taskDefinition": "family:3"}), "family", false),
            (json!({"other": "api"}), "api", false),
            (Value::Null, "api", false),
        ] {
            assert_eq!(names_resource(&body, resource), named, "{body} {resource}");
        }
    }

    #[test]
    fn gate_holds_and_releases_oldest_by_id_or_all_and_new_rules_open_it() {
        let mut f = Faults::default();
        f.set(vec![FaultRule::gate("ecs", "UpdateService").naming("api")])
            .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let api = json!({"service": "api"});
        assert_eq!(
            code(f.check(
                Service::Ecs,
                "UpdateService",
                &json!({"service": "front"}),
                &mut rng
            )),
            None
        );
        let mut rx = Vec::new();
        for call in 0..3 {
            assert_eq!(
                code(f.check(Service::Ecs, "UpdateService", &api, &mut rng)),
                Some("hold".into())
            );
            rx.push(
                f.hold(Service::Ecs, "UpdateService", api.clone(), 0.0, call)
                    .1,
            );
        }
        let ids = |v: Vec<HeldCall>| v.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(f.held()), [1, 2, 3]);
        assert!(f.release(Which::Oldest(4), Release::Run).is_err());
        assert!(f.release(Which::Id(9), Release::Run).is_err());
        assert_eq!(
            ids(f.held()),
            [1, 2, 3],
            "a refused release lets nothing go"
        );
        assert_eq!(ids(f.release(Which::Oldest(1), Release::Run).unwrap()), [1]);
        assert_eq!(rx[0].try_recv(), Ok(Release::Run));
        assert!(rx[1].try_recv().is_err(), "2 still held");
        assert_eq!(ids(f.release(Which::Id(3), Release::Drop).unwrap()), [3]);
        assert_eq!(rx[2].try_recv(), Ok(Release::Drop));
        f.set(Vec::new()).unwrap();
        assert_eq!(rx[1].try_recv(), Ok(Release::Run), "new rules release it");
        assert!(f.held().is_empty());
    }
}
