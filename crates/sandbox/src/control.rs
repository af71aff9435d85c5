//! The HTTP control API under [`PREFIX`]: load scenarios, set rules, faults and clock speed,
//! read the whole state. Every endpoint answers JSON; a bad request gets 400 with
//! `{"error": "..."}`. The same operations are methods on [`World`] for in-process tests.
//! Documented in `SCENARIOS.md`.

use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::ecs::{HealthRule, HookRule, Timing};
use crate::faults::{FaultRule, HeldCall, Release, Which};
use crate::{limits, scenario, Scenario, Shared, World};

/// Path prefix reserved for the control API.
pub const PREFIX: &str = "/_sandbox/";

impl World {
    /// Replaces the fault rules (call counters restart). `Err` if a rule is invalid.
    pub fn set_faults(&mut self, rules: Vec<FaultRule>) -> Result<(), String> {
        self.faults.set(rules)
    }

    /// Removes every fault rule (releasing every call held at the gate).
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// The calls held at the gate now, oldest first.
    pub fn held_calls(&self) -> Vec<HeldCall> {
        self.faults.held()
    }

    /// Lets held calls go, to run or to be dropped unrun; returns them. `Err` (nothing
    /// released) when `which` names calls that are not held.
    pub fn release_calls(&mut self, which: Which, how: Release) -> Result<Vec<HeldCall>, String> {
        let released = self.faults.release(which, how)?;
        if how == Release::Drop {
            // Logged at once, not when the held task wakes: a reader of the call log right
            // after the release sees the drop.
            for c in &released {
                self.set_call_error(c.call, "DroppedConnection");
            }
        }
        Ok(released)
    }

    /// Replaces the ECS health rules (after running the simulation to now, so the rules
    /// only affect what happens from now on).
    pub fn set_health_rules(&mut self, rules: Vec<HealthRule>) {
        self.advance();
        self.ecs.set_health_rules(rules);
    }

    /// Replaces the rules that answer `AWS_LAMBDA` lifecycle hooks (from now on).
    pub fn set_hook_rules(&mut self, rules: Vec<HookRule>) {
        self.advance();
        self.ecs.set_hook_rules(rules);
    }

    /// Sets CloudWatch alarm states (name -> `OK` | `ALARM` | `INSUFFICIENT_DATA`);
    /// deployments watching an alarm in `ALARM` fail at once. `Err` names a bad state.
    pub fn set_alarm_states(
        &mut self,
        states: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), String> {
        self.advance();
        for (name, state) in states {
            self.ecs.set_alarm_state(name, state)?;
        }
        self.advance();
        Ok(())
    }

    /// Sets the task timing of one service (`cluster` and `service` given) or the default
    /// of services created from now on (both absent).
    pub fn set_timing(
        &mut self,
        cluster: Option<&str>,
        service: Option<&str>,
        timing: Timing,
    ) -> Result<(), String> {
        timing.validate("timing")?;
        self.advance();
        match (cluster, service) {
            (None, None) => {
                self.ecs.set_default_timing(timing);
                Ok(())
            }
            (Some(c), Some(s)) => self
                .ecs
                .set_service_timing(c, s, timing)
                .map_err(|e| e.to_string()),
            _ => Err("give both cluster and service, or neither".to_string()),
        }
    }

    /// Changes the clock's speed from now on. `Err` outside [`limits::SPEED`].
    pub fn set_speed(&mut self, speed: f64) -> Result<(), String> {
        limits::SPEED.check("speed", speed)?;
        self.advance();
        self.clock.set_speed(speed);
        Ok(())
    }

    /// Jumps virtual time forward and runs the simulation to the new now. `Err` outside
    /// [`limits::ADVANCE_SECONDS`], or past the last time served ([`limits::EPOCH_SECONDS`]).
    pub fn advance_clock(&mut self, seconds: f64) -> Result<(), String> {
        limits::ADVANCE_SECONDS.check("seconds", seconds)?;
        let now = self.clock.now();
        if now + seconds > limits::EPOCH_SECONDS.max {
            return Err(format!(
                "seconds: the clock would pass {} (epoch seconds), the last time served",
                limits::EPOCH_SECONDS.max
            ));
        }
        self.clock.advance(seconds);
        self.advance();
        Ok(())
    }

    /// Holds (`true`) or releases (`false`) the rotations of the named secrets mid-way
    /// (see [`crate::secrets::SecretsStore::hold_rotation`]). `Err` names an unknown secret
    /// (nothing is changed then).
    pub fn hold_rotations(&mut self, names: &[String], held: bool) -> Result<(), String> {
        self.advance();
        if let Some(n) = names.iter().find(|n| self.secrets.find(n).is_none()) {
            return Err(format!("secret {n} does not exist"));
        }
        let now = self.clock.now();
        for n in names {
            let name = self
                .secrets
                .find(n)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            self.secrets.hold_rotation(&name, held, now)?;
        }
        self.advance();
        Ok(())
    }

    /// Expires every STS session issued so far.
    pub fn expire_sessions(&mut self) {
        self.sts.expire_sessions();
    }

    /// Replaces the whole world with one built from `scenario` (its own speed and seed).
    pub fn load_scenario(&mut self, scenario: &Scenario) -> Result<(), String> {
        let mut world = scenario::build_world(scenario, None, None)?;
        // The HTTP front holds this world's throttle: keep it, with the new limits.
        self.throttle.take_over(&world.throttle);
        world.throttle = std::sync::Arc::clone(&self.throttle);
        *self = world;
        Ok(())
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> (StatusCode, Value) {
    (status, json!({ "error": message.into() }))
}

fn bad(message: impl Into<String>) -> (StatusCode, Value) {
    error(StatusCode::BAD_REQUEST, message)
}

fn ok(extra: Value) -> (StatusCode, Value) {
    let mut v = json!({"ok": true});
    if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    (StatusCode::OK, v)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, (StatusCode, Value)> {
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

/// A number field of a JSON object body.
fn number(body: &[u8], key: &str) -> Result<f64, (StatusCode, Value)> {
    let v: Value = parse(body)?;
    v.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| bad(format!("body must be {{\"{key}\": NUMBER}}")))
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Answers one control request.
pub fn handle(
    world: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    // A panic elsewhere must not make the control API unusable.
    let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
    let path = path.trim_end_matches('/');
    let result = match (method, path) {
        (&Method::GET, "/_sandbox/state") => Ok((StatusCode::OK, w.snapshot())),
        (&Method::GET, "/_sandbox/calls") => {
            let service = query_param(query, "service");
            let operation = query_param(query, "operation");
            let calls: Vec<Value> = w
                .calls
                .iter()
                .filter(|c| {
                    service.is_none_or(|s| {
                        crate::faults::service_name(c.service).eq_ignore_ascii_case(s)
                    })
                })
                .filter(|c| operation.is_none_or(|o| c.operation == o))
                .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                .collect();
            Ok((StatusCode::OK, json!({ "calls": calls })))
        }
        (&Method::DELETE, "/_sandbox/calls") => {
            w.clear_calls();
            Ok(ok(json!({})))
        }
        (&Method::POST, "/_sandbox/scenario") => (|| {
            let text = std::str::from_utf8(body).map_err(|_| bad("scenario is not UTF-8"))?;
            if text.trim().is_empty() {
                return Err(bad("empty body: send a scenario in TOML"));
            }
            let s = Scenario::from_toml(text).map_err(|e| bad(format!("scenario: {e}")))?;
            w.load_scenario(&s)
                .map_err(|e| bad(format!("scenario: {e}")))?;
            Ok(ok(json!({
                "region": w.region, "account": w.account,
                "secrets": w.secrets.len(),
            })))
        })(),
        (&Method::GET, "/_sandbox/faults") => Ok((StatusCode::OK, json!(w.faults.rules()))),
        (&Method::PUT, "/_sandbox/faults") => (|| {
            let rules: Vec<FaultRule> = parse(body)?;
            let n = rules.len();
            w.set_faults(rules).map_err(bad)?;
            Ok(ok(json!({ "rules": n })))
        })(),
        (&Method::DELETE, "/_sandbox/faults") => {
            w.clear_faults();
            Ok(ok(json!({})))
        }
        (&Method::GET, "/_sandbox/gate") => Ok((StatusCode::OK, json!({ "held": w.held_calls() }))),
        (&Method::POST, "/_sandbox/gate/release") => (|| {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Req {
                count: Option<usize>,
                id: Option<u64>,
                #[serde(default)]
                all: bool,
                #[serde(default)]
                drop: bool,
            }
            let r: Req = if body.iter().all(u8::is_ascii_whitespace) {
                Req {
                    count: None,
                    id: None,
                    all: false,
                    drop: false,
                }
            } else {
                parse(body)?
            };
            let which = match (r.count, r.id, r.all) {
                (Some(0), None, false) => return Err(bad("count: release at least one call")),
                (None, None, false) => Which::Oldest(1),
                (Some(n), None, false) => Which::Oldest(n),
                (None, Some(id), false) => Which::Id(id),
                (None, None, true) => Which::All,
                _ => return Err(bad("give one of count, id or all (none: the oldest call)")),
            };
            let how = if r.drop { Release::Drop } else { Release::Run };
            let released = w
                .release_calls(which, how)
                .map_err(|e| error(StatusCode::CONFLICT, e))?;
            Ok(ok(json!({ "released": released })))
        })(),
        (&Method::PUT, "/_sandbox/health-rules") => (|| {
            let rules: Vec<HealthRule> = parse(body)?;
            for (i, r) in rules.iter().enumerate() {
                r.validate(&format!("[{i}]")).map_err(bad)?;
            }
            let n = rules.len();
            w.set_health_rules(rules);
            Ok(ok(json!({ "rules": n })))
        })(),
        (&Method::PUT, "/_sandbox/hook-rules") => (|| {
            let rules: Vec<HookRule> = parse(body)?;
            for (i, r) in rules.iter().enumerate() {
                r.validate(&format!("[{i}]")).map_err(bad)?;
            }
            let n = rules.len();
            w.set_hook_rules(rules);
            Ok(ok(json!({ "rules": n })))
        })(),
        (&Method::GET, "/_sandbox/alarms") => Ok((StatusCode::OK, json!(w.ecs.alarm_states()))),
        (&Method::PUT, "/_sandbox/alarms") => (|| {
            let states: std::collections::BTreeMap<String, String> = parse(body)?;
            w.set_alarm_states(&states).map_err(bad)?;
            Ok(ok(json!({ "alarms": w.ecs.alarm_states() })))
        })(),
        (&Method::PUT, "/_sandbox/timing") => (|| {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Req {
                cluster: Option<String>,
                service: Option<String>,
                timing: Timing,
            }
            let r: Req = parse(body)?;
            w.set_timing(r.cluster.as_deref(), r.service.as_deref(), r.timing)
                .map_err(bad)?;
            Ok(ok(json!({})))
        })(),
        (&Method::GET, "/_sandbox/clock") => Ok((
            StatusCode::OK,
            json!({"now": w.clock.now(), "speed": w.clock.speed()}),
        )),
        (&Method::PUT, "/_sandbox/clock") => (|| {
            let speed = number(body, "speed")?;
            w.set_speed(speed).map_err(bad)?;
            Ok(ok(json!({"now": w.clock.now(), "speed": w.clock.speed()})))
        })(),
        (&Method::POST, "/_sandbox/clock/advance") => (|| {
            let seconds = number(body, "seconds")?;
            w.advance_clock(seconds).map_err(bad)?;
            Ok(ok(json!({"now": w.clock.now(), "speed": w.clock.speed()})))
        })(),
        (&Method::PUT, "/_sandbox/rotation-holds") => (|| {
            #[derive(serde::Deserialize)]
            struct Holds {
                secrets: Vec<String>,
                held: bool,
            }
            let h: Holds = parse(body)?;
            w.hold_rotations(&h.secrets, h.held).map_err(bad)?;
            Ok(ok(json!({})))
        })(),
        (&Method::GET, "/_sandbox/limits") => Ok((StatusCode::OK, w.throttle.report())),
        (&Method::PUT, "/_sandbox/limits") => (|| {
            let spec: crate::throttle::LimitsSpec = if body.iter().all(u8::is_ascii_whitespace) {
                crate::throttle::LimitsSpec::aws()
            } else {
                parse(body)?
            };
            w.throttle.set(Some(spec)).map_err(bad)?;
            Ok((StatusCode::OK, w.throttle.report()))
        })(),
        (&Method::DELETE, "/_sandbox/limits") => {
            let _ = w.throttle.set(None);
            Ok((StatusCode::OK, w.throttle.report()))
        }
        (&Method::POST, "/_sandbox/sts/expire-sessions") => {
            w.expire_sessions();
            Ok(ok(json!({})))
        }
        (&Method::POST, "/_sandbox/sts/age-mfa") => (|| {
            let seconds = number(body, "seconds")?;
            crate::limits::MFA_AGE_SECONDS
                .check("seconds", seconds)
                .map_err(bad)?;
            w.sts.age_mfa(seconds as u64);
            Ok(ok(json!({})))
        })(),
        (
            _,
            "/_sandbox/state"
            | "/_sandbox/calls"
            | "/_sandbox/scenario"
            | "/_sandbox/faults"
            | "/_sandbox/gate"
            | "/_sandbox/gate/release"
            | "/_sandbox/health-rules"
            | "/_sandbox/hook-rules"
            | "/_sandbox/alarms"
            | "/_sandbox/timing"
            | "/_sandbox/clock"
            | "/_sandbox/clock/advance"
            | "/_sandbox/rotation-holds"
            | "/_sandbox/limits"
            | "/_sandbox/sts/expire-sessions"
            | "/_sandbox/sts/age-mfa",
        ) => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(error(
            StatusCode::NOT_FOUND,
            format!("no control endpoint {method} {path}"),
        )),
    };
    result.unwrap_or_else(|e| e)
}
