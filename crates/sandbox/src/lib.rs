//! A local emulator of AWS Secrets Manager, SSM Parameter Store, ECS and STS.
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
//! the simulation to "now" and hands the request to [`secrets`], [`ssm`], [`ecs`] or [`sts`].
//! [`scenario`] builds a world from TOML; [`control`] is the HTTP control API.

#![deny(missing_docs)]

pub mod clock;
pub mod control;
pub mod ecr;
pub mod ecs;
pub mod error;
pub mod faults;
pub mod limits;
pub mod scenario;
pub mod secrets;
pub mod server;
pub mod ssm;
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
    /// AWS Systems Manager Parameter Store (JSON 1.1, target prefix `AmazonSSM.`).
    Ssm,
    /// Amazon ECR (JSON 1.1, target prefix `AmazonEC2ContainerRegistry_V20150921`).
    Ecr,
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
    /// Parameter Store state.
    pub parameters: ssm::ParameterStore,
    /// ECS state and the deployment simulation.
    pub ecs: ecs::Ecs,
    /// STS: identities, roles, issued sessions, accepted access keys.
    pub sts: sts::Sts,
    /// ECR: repositories and the image manifests their tags point to.
    pub ecr: ecr::Ecr,
    /// Injected faults.
    pub faults: faults::Faults,
    /// AWS's rate limits (off unless set). The HTTP front holds this same `Arc` and asks
    /// it about every request on arrival, without the world's lock: change the limits with
    /// [`throttle::Throttle::set`], never by replacing the `Arc`.
    pub throttle: Arc<throttle::Throttle>,
    /// Every call answered, in order.
    pub calls: Vec<CallRecord>,
    /// Calls cleared from the log so far: a call's number is its index plus this.
    calls_cleared: usize,
}

/// What ECS reads when it deploys and launches: secrets, parameters, and image tags in ECR.
pub(crate) struct LaunchSources<'a> {
    pub(crate) secrets: &'a secrets::SecretsStore,
    pub(crate) parameters: &'a ssm::ParameterStore,
    pub(crate) ecr: &'a ecr::Ecr,
}

impl secrets::SecretSource for LaunchSources<'_> {
    fn resolve_for_ecs(
        &self,
        value_from: &str,
        region: &str,
        account: &str,
    ) -> Result<secrets::Resolved, String> {
        if ssm::is_parameter_reference(value_from) {
            self.parameters.resolve_for_ecs(value_from, region, account)
        } else {
            self.secrets.resolve_for_ecs(value_from, region, account)
        }
    }

    fn resolve_image(&self, image: &str, region: &str, account: &str) -> Option<String> {
        self.ecr.resolve(image, region, account)
    }
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
            parameters: ssm::ParameterStore::default(),
            ecs: ecs::Ecs::default(),
            sts: sts::Sts::default(),
            ecr: ecr::Ecr::default(),
            faults: faults::Faults::default(),
            throttle: Arc::new(throttle::Throttle::for_account(account)),
            calls: Vec::new(),
            calls_cleared: 0,
        }
    }

    /// Advances the simulation to the clock's now: rotation steps (see
    /// [`secrets::SecretsStore::next_due`]) interleaved in time order with ECS's events, so
    /// a task launched before a rotation's move of `AWSCURRENT` reads the older value.
    pub fn advance(&mut self) {
        let now = self.clock.now();
        while let Some(due) = self.secrets.next_due().filter(|d| *d <= now) {
            let mut ctx = Ctx {
                now: due,
                region: &self.region,
                account: &self.account,
                rng: &mut self.rng,
            };
            self.ecs.advance(&mut ctx, &self.secrets);
            self.secrets.step(&mut ctx);
        }
        let mut ctx = Ctx {
            now,
            region: &self.region,
            account: &self.account,
            rng: &mut self.rng,
        };
        let sources = LaunchSources {
            secrets: &self.secrets,
            parameters: &self.parameters,
            ecr: &self.ecr,
        };
        self.ecs.advance(&mut ctx, &sources);
    }

    /// Runs one JSON 1.1 operation (Secrets Manager, ECS or SSM) after advancing the
    /// simulation. Faults are applied by the server before this is called; auth too.
    pub fn call(&mut self, service: Service, operation: &str, body: &Value) -> OpResult {
        self.call_as(service, operation, body, None)
    }

    /// [`World::call`] signed with `access_key` (who SSM records as `LastModifiedUser`).
    pub fn call_as(
        &mut self,
        service: Service,
        operation: &str,
        body: &Value,
        access_key: Option<&str>,
    ) -> OpResult {
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
            Service::Ecs => {
                let sources = LaunchSources {
                    secrets: &self.secrets,
                    parameters: &self.parameters,
                    ecr: &self.ecr,
                };
                self.ecs.handle(&mut ctx, &sources, operation, body)
            }
            Service::Ssm => {
                let caller = self.sts.caller_arn(&ctx, access_key);
                self.parameters.handle(&mut ctx, &caller, operation, body)
            }
            Service::Ecr => self.ecr.handle(&mut ctx, operation, body),
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
            "repositoryName",
            "imageIds",
            // STS (`sts::call_subject`): never a code or a secret.
            "RoleArn",
            "SerialNumber",
            "DurationSeconds",
            "mfa_code",
            "signed_with",
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

    /// Sets `key` of the subject of call number `call`, if it is still in the log (STS
    /// names the key it issued there).
    pub fn set_call_subject(&mut self, call: usize, key: &str, value: Value) {
        if let Some(Value::Object(subject)) = call
            .checked_sub(self.calls_cleared)
            .and_then(|i| self.calls.get_mut(i))
            .map(|r| &mut r.subject)
        {
            subject.insert(key.to_string(), value);
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
            "parameters": self.parameters.snapshot(&self.region, &self.account),
            "ecs": self.ecs.snapshot(),
            "ecr": self.ecr.snapshot(),
            "calls": self.calls,
        })
    }
}
