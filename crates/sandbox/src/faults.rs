//! Injected faults: errors, latency and dropped connections, by probability or by script.
//!
//! A rule matches calls by service and operation (both optional), then fires when its
//! script (`nth`: 1-based call numbers of that service and operation) and its probability
//! (drawn from the world's seeded source) say so, at most `count` times. The first rule
//! that fires decides. Call counters restart whenever the rules are replaced, so "the 3rd
//! UpdateService call fails" means the 3rd after the rules were set.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
    }
}

fn normalise_service(s: &str) -> Option<&'static str> {
    match s.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
        "secretsmanager" => Some("secretsmanager"),
        "ecs" => Some("ecs"),
        "sts" => Some("sts"),
        _ => None,
    }
}

impl FaultRule {
    /// Checks the rule's fields; `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.service {
            if normalise_service(s).is_none() {
                return Err(format!(
                    "unknown service {s:?} in fault rule (use secretsmanager, ecs or sts)"
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
        Ok(())
    }

    fn matches(&self, service: Service, operation: &str) -> bool {
        self.service
            .as_deref()
            .is_none_or(|s| normalise_service(s) == Some(service_name(service)))
            && self.operation.as_deref().is_none_or(|o| o == operation)
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
        }
    }
}

/// The fault table.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
    /// Times each rule has fired (same index as `rules`).
    fired: Vec<u64>,
    /// Calls seen per (service, operation) since the rules were set.
    calls: HashMap<(&'static str, String), u64>,
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
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
        self.fired.clear();
        self.calls.clear();
    }

    /// The current rules.
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// Decides the fault, if any, for this call (counts calls per operation for scripts).
    pub fn check(
        &mut self,
        service: Service,
        operation: &str,
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
            if !rule.matches(service, operation) {
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

    fn rule(json: &str) -> FaultRule {
        serde_json::from_str(json).unwrap()
    }

    fn code(a: Option<FaultAction>) -> Option<String> {
        match a? {
            FaultAction::Error(e) => Some(format!("{} {}", e.code, e.status)),
            FaultAction::Drop => Some("drop".into()),
            FaultAction::Latency(d) => Some(format!("latency {}", d.as_millis())),
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
                .check(Service::Ecs, "DescribeServices", &mut rng)
                .is_none());
            seen.push(code(f.check(Service::Ecs, "UpdateService", &mut rng)));
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
            .map(|_| code(f.check(Service::SecretsManager, "A", &mut rng)))
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
            code(f.check(Service::Sts, "GetCallerIdentity", &mut rng)),
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
                .map(|_| f.check(Service::Ecs, "X", &mut rng).is_some())
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
}
