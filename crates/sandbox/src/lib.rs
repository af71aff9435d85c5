//! A local emulator of AWS Secrets Manager, ECS and STS.
//!
//! It speaks the real wire protocols (AWS JSON 1.1 for Secrets Manager and ECS, the query
//! protocol for STS) on loopback, so the AWS SDKs and the aws CLI use it unchanged through
//! `AWS_ENDPOINT_URL`. Unlike other emulators its ECS services really roll out: a forced
//! deployment starts tasks that read their secrets at launch, stops old ones within the
//! deployment's min/max percent, trips the circuit breaker and rolls back, all on a
//! virtual clock (see [`clock`]); blue/green, linear and canary services run green beside
//! blue through the documented lifecycle stages, with hooks, alarms and the service
//! deployments API. The whole state, every task with the secret versions it
//! resolved, is readable as ground truth ([`World::snapshot`], control API).
//!
//! Layout: [`server`] (HTTP, routing, auth, faults) calls [`World::call`], which advances
//! the simulation to "now" and hands the request to [`secrets`], [`ecs`] or [`sts`].
//! [`scenario`] builds a world from TOML; [`control`] is the HTTP control API.

#![deny(missing_docs)]

pub mod clock;
pub mod control;
pub mod ecs;
pub mod error;
pub mod faults;
pub mod limits;
pub mod scenario;
pub mod secrets;
pub mod server;
pub mod sts;
pub mod throttle;

use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;

pub use error::{AwsError, OpResult};
pub use scenario::Scenario;
pub use server::{Sandbox, SandboxOptions};

/// The AWS service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Service {
    /// AWS Secrets Manager (JSON 1.1, target prefix `secretsmanager.`).
    SecretsManager,
    /// Amazon ECS (JSON 1.1, target prefix `AmazonEC2ContainerServiceV20141113.`).
    Ecs,
    /// AWS STS (query protocol).
    Sts,
}

/// What every operation handler gets besides its request: time, place and randomness.
pub struct Ctx<'a> {
    /// Virtual now, epoch seconds.
    pub now: f64,
    /// The sandbox's region (`eu-west-1` in the sample).
    pub region: &'a str,
    /// The sandbox's account id (`123456789012` in the sample).
    pub account: &'a str,
    /// The seeded random source: all ids come from it, so a seeded run is deterministic.
    pub rng: &'a mut ChaCha8Rng,
}

/// One AWS call the sandbox answered: tests count calls with it (never holds a value).
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// Which service.
    pub service: Service,
    /// The operation name (`UpdateService`).
    pub operation: String,
    /// Virtual time of the call.
    pub at: f64,
    /// `cluster`, `service`, `services`, `SecretId` of the request, when present.
    pub subject: Value,
    /// The error code returned, if the call failed (including injected faults).
    pub error: Option<String>,
}

/// The whole emulated account: everything behind one lock.
pub struct World {
    /// Region served.
    pub region: String,
    /// Account id served.
    pub account: String,
    /// Virtual clock.
    pub clock: clock::Clock,
    /// Seeded randomness for ids, jitter and probabilistic rules.
    pub rng: ChaCha8Rng,
    /// Secrets Manager state.
    pub secrets: secrets::SecretsStore,
    /// ECS state and the deployment simulation.
    pub ecs: ecs::Ecs,
    /// STS: identities, roles, issued sessions, accepted access keys.
    pub sts: sts::Sts,
    /// Injected faults.
    pub faults: faults::Faults,
    /// AWS's rate limits (off unless set).
    pub throttle: throttle::Throttle,
    /// Every call answered, in order.
    pub calls: Vec<CallRecord>,
    /// Calls cleared from the log so far: a call's number is its index plus this.
    calls_cleared: usize,
}

/// The world shared between connections.
pub type Shared = Arc<Mutex<World>>;

impl World {
    /// An empty world.
    pub fn new(region: &str, account: &str, speed: f64, seed: u64) -> Self {
        Self {
            region: region.to_string(),
            account: account.to_string(),
            clock: clock::Clock::real_start(speed),
            rng: ChaCha8Rng::seed_from_u64(seed),
            secrets: secrets::SecretsStore::default(),
            ecs: ecs::Ecs::default(),
            sts: sts::Sts::default(),
            faults: faults::Faults::default(),
            throttle: throttle::Throttle::default(),
            calls: Vec::new(),
            calls_cleared: 0,
        }
    }

    /// Advances the ECS simulation to the clock's now.
    pub fn advance(&mut self) {
        let now = self.clock.now();
        let mut ctx = Ctx {
            now,
            region: &self.region,
            account: &self.account,
            rng: &mut self.rng,
        };
        self.ecs.advance(&mut ctx, &self.secrets);
    }

    /// Runs one JSON 1.1 operation (Secrets Manager or ECS) after advancing the simulation.
    /// Faults are applied by the server before this is called; auth too.
    pub fn call(&mut self, service: Service, operation: &str, body: &Value) -> OpResult {
        self.advance();
        let now = self.clock.now();
        let mut ctx = Ctx {
            now,
            region: &self.region,
            account: &self.account,
            rng: &mut self.rng,
        };
        let result = match service {
            Service::SecretsManager => self.secrets.handle(&mut ctx, operation, body),
            Service::Ecs => self.ecs.handle(&mut ctx, &self.secrets, operation, body),
            Service::Sts => Err(AwsError::new(
                "InvalidAction",
                "STS is served by the query protocol",
            )),
        };
        // Secret writes can change what the next task launch reads; ECS changes can start
        // tasks "now": run the scheduler once more so the state is settled at `now`.
        self.advance();
        result
    }

    /// Records a call (the server does this for every request, faults included); returns
    /// its number, for [`World::set_call_error`].
    pub fn record(
        &mut self,
        service: Service,
        operation: &str,
        body: &Value,
        error: Option<&str>,
    ) -> usize {
        let mut subject = serde_json::Map::new();
        for key in [
            "cluster",
            "service",
            "services",
            "SecretId",
            "Name",
            "taskDefinition",
        ] {
            if let Some(v) = body.get(key) {
                subject.insert(key.to_string(), v.clone());
            }
        }
        self.calls.push(CallRecord {
            service,
            operation: operation.to_string(),
            at: self.clock.now(),
            subject: Value::Object(subject),
            error: error.map(str::to_string),
        });
        self.calls_cleared + self.calls.len() - 1
    }

    /// Sets the error of call number `call` (as [`World::record`] returned it), if it is
    /// still in the log.
    pub fn set_call_error(&mut self, call: usize, code: &str) {
        if let Some(r) = call
            .checked_sub(self.calls_cleared)
            .and_then(|i| self.calls.get_mut(i))
        {
            r.error = Some(code.to_string());
        }
    }

    /// Empties the call log (call numbers go on counting).
    pub fn clear_calls(&mut self) {
        self.calls_cleared += self.calls.len();
        self.calls.clear();
    }

    /// The whole state as JSON: the ground truth tests compare against. Holds no secret
    /// values, only version ids and labels.
    pub fn snapshot(&mut self) -> Value {
        self.advance();
        serde_json::json!({
            "now": self.clock.now(),
            "speed": self.clock.speed(),
            "region": self.region,
            "account": self.account,
            "secrets": self.secrets.snapshot(),
            "ecs": self.ecs.snapshot(),
            "calls": self.calls,
        })
    }
}
