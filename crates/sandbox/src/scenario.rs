//! Scenario files (TOML): the world a sandbox starts with.
//!
//! A scenario is built through the AWS operations themselves (CreateSecret,
//! PutSecretValue, CreateCluster, RegisterTaskDefinition, CreateService...), one virtual
//! hour before the clock's start, and the simulation then runs that hour so services are
//! settled when the first client call arrives. Anything a scenario holds can therefore
//! also be made by any AWS client. The format is documented in `SCENARIOS.md`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::ecs::{HealthRule, HookRule, Timing};
use crate::faults::FaultRule;
use crate::sts::{Sts, StsConfig};
use crate::{clock, limits, Ctx, World};

mod generated;

/// How long before the clock's start the scenario is built (virtual seconds).
const BUILD_LEAD: f64 = 3600.0;

/// A scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Region served.
    #[serde(default = "default_region")]
    pub region: String,
    /// Account id served.
    #[serde(default = "default_account")]
    pub account: String,
    /// Seed for ids and probabilistic rules.
    #[serde(default)]
    pub seed: u64,
    /// Virtual seconds per real second.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Virtual start time: epoch seconds or RFC 3339 text; real now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartTime>,
    /// Access keys, roles and the minimum session duration.
    #[serde(default)]
    pub sts: StsConfig,
    /// Secrets.
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    /// Parameter Store parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParameterSpec>,
    /// Clusters, as CreateCluster requests (`clusterName`).
    #[serde(default)]
    pub clusters: Vec<Map<String, Value>>,
    /// ECR repositories, as CreateRepository requests (`repositoryName`,
    /// `imageTagMutability`). Every ECR image of this account and region that a task
    /// definition names is pushed (a manifest made from its name), its repository created
    /// `MUTABLE` when not listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecr_repositories: Vec<Map<String, Value>>,
    /// Task definitions, as RegisterTaskDefinition requests.
    #[serde(default)]
    pub task_definitions: Vec<Map<String, Value>>,
    /// Services, as CreateService requests plus an optional `timing`.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// Default task timing of every service without its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// Health rules (applied once the initial deployments have settled).
    #[serde(default)]
    pub health_rules: Vec<HealthRule>,
    /// Fault rules.
    #[serde(default)]
    pub faults: Vec<FaultRule>,
    /// Answers of `AWS_LAMBDA` lifecycle hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_rules: Vec<HookRule>,
    /// AWS's rate limits (`[limits]`, see [`crate::throttle`]); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::throttle::LimitsSpec>,
    /// CloudWatch alarm states at the start (name -> `OK` | `ALARM` |
    /// `INSUFFICIENT_DATA`), set once the initial deployments have settled.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alarms: BTreeMap<String, String>,
}

fn default_region() -> String {
    "eu-west-1".to_string()
}
fn default_account() -> String {
    "123456789012".to_string()
}
fn default_speed() -> f64 {
    1.0
}

/// A virtual start time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StartTime {
    /// Epoch seconds.
    Epoch(f64),
    /// RFC 3339 (`2026-01-05T09:00:00Z`).
    Text(String),
}

impl StartTime {
    fn epoch(&self) -> Result<f64, String> {
        match self {
            StartTime::Epoch(e) => Ok(*e),
            StartTime::Text(t) => {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map(|d| d.unix_timestamp_nanos() as f64 / 1e9)
                    .map_err(|e| format!("start {t:?} is not an RFC 3339 time: {e}"))
            }
        }
    }
}

/// One version's value: a string or a JSON table.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    /// The `SecretString`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A table stored as its JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// The version id (the ClientRequestToken, 32..64 characters); random when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Staging labels for this version (`VersionStages` of PutSecretValue); the put's
    /// default (`AWSCURRENT`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<String>>,
}

impl std::fmt::Debug for VersionSpec {
    // Values stay out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionSpec")
            .field("version_id", &self.version_id)
            .field("stages", &self.stages)
            .finish_non_exhaustive()
    }
}

impl VersionSpec {
    fn secret_string(&self, name: &str) -> Result<String, String> {
        match (&self.value, &self.json) {
            (Some(v), None) => Ok(v.clone()),
            (None, Some(j)) => serde_json::to_string(j).map_err(|e| e.to_string()),
            _ => Err(format!(
                "secret {name}: give exactly one of `value` and `json`"
            )),
        }
    }
}

/// A secret of a scenario.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// Secret name.
    pub name: String,
    /// The current value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The current value as a table, stored as its JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// The current version's id (32..64 characters); random when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Pins the ARN's 6-character suffix so task definitions can quote full ARNs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn_suffix: Option<String>,
    /// `Description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Earlier versions, oldest first (the current value is put after them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionSpec>,
    /// `true`: rotation configured and on; `false`: configured then cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_enabled: Option<bool>,
    /// Rotation Lambda ARN (a made-up one when rotation is on and this is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_lambda_arn: Option<String>,
    /// The value each rotation puts (`{n}` is replaced by the rotation's number, 1, 2,
    /// ...); random when absent. Stands for the rotation Lambda's `createSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_value: Option<String>,
    /// Virtual seconds from a rotation's new version (`AWSPENDING`) to the move of
    /// `AWSCURRENT` (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_seconds: Option<f64>,
    /// The managing service (`rds`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owning_service: Option<String>,
    /// Scheduled for deletion (DeleteSecret with the default 30-day window).
    #[serde(default)]
    pub deleted: bool,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSpec")
            .field("name", &self.name)
            .field("arn_suffix", &self.arn_suffix)
            .field("versions", &self.versions.len())
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

/// A Parameter Store parameter of a scenario, made by one `PutParameter` per version (a day
/// apart, the current one at the build time).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpec {
    /// Name (`/production/api/db_password`).
    pub name: String,
    /// The current (latest) value.
    pub value: String,
    /// Earlier values, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// `String`, `StringList` or `SecureString` (the default).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// KMS key of a `SecureString` (`alias/aws/ssm` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// `Standard` (default) or `Advanced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// `text` (default), `aws:ec2:image`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// `Description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl std::fmt::Debug for ParameterSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterSpec")
            .field("name", &self.name)
            .field("type", &self.kind)
            .field("versions", &(self.versions.len() + 1))
            .finish_non_exhaustive()
    }
}

/// A service of a scenario: a CreateService request plus its timing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// This service's task timing (default timing when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// The CreateService request (`cluster`, `serviceName`, `taskDefinition`, ...).
    #[serde(flatten)]
    pub request: Map<String, Value>,
}

impl SecretSpec {
    /// The current version as a [`VersionSpec`].
    pub fn current(&self) -> VersionSpec {
        VersionSpec {
            value: self.value.clone(),
            json: self.json.clone(),
            version_id: self.version_id.clone(),
            stages: None,
        }
    }
}

/// An empty world: no secrets, clusters or services, in `eu-west-1`, account
/// `123456789012`; build it up through the AWS operations.
impl Default for Scenario {
    fn default() -> Self {
        Scenario::from_toml("").expect("the empty scenario parses")
    }
}

impl Scenario {
    /// The built-in sample scenario (mirrors `shared/reference/sample-environment.md`).
    pub fn sample() -> Scenario {
        Scenario::from_toml(SAMPLE_TOML).expect("the built-in sample scenario parses")
    }

    /// The sample plus a blue/green service, `viewer` (see
    /// `scenarios/sample-blue-green.toml`): same secrets, one more task definition and
    /// service on cluster `production-online-lpa`, reading the secret front, api and admin
    /// share (`production/opg_lpa_common_account_cleanup_notification_recipients`).
    pub fn sample_with_blue_green() -> Scenario {
        let mut s = Scenario::sample();
        let extra = Scenario::from_toml(SAMPLE_BLUE_GREEN_TOML)
            .expect("the built-in blue/green addition parses");
        s.task_definitions.extend(extra.task_definitions);
        s.services.extend(extra.services);
        s
    }

    /// The demo's environment: [`Scenario::sample_with_blue_green`] plus
    /// [`SAMPLE_PARAMETERS_TOML`], a service `notify` reading an SSM Parameter Store
    /// SecureString.
    pub fn demo() -> Scenario {
        let mut s = Scenario::sample_with_blue_green();
        let extra = Scenario::from_toml(SAMPLE_PARAMETERS_TOML)
            .expect("the built-in parameter addition parses");
        s.parameters.extend(extra.parameters);
        s.task_definitions.extend(extra.task_definitions);
        s.services.extend(extra.services);
        s
    }

    /// Parses a scenario. `Err` says what is wrong and where.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    /// Reads and parses a scenario file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read scenario: {e}", path.display()))?;
        Scenario::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks what parsing cannot: value fields, rules, names.
    pub fn validate(&self) -> Result<(), String> {
        limits::SPEED.check("speed", self.speed)?;
        if let Some(s) = &self.start {
            limits::EPOCH_SECONDS.check("start", s.epoch()?)?;
        }
        if let Some(t) = &self.timing {
            t.validate("timing")?;
        }
        for (i, s) in self.services.iter().enumerate() {
            if let Some(t) = &s.timing {
                t.validate(&format!("services[{i}].timing"))?;
            }
        }
        for (i, r) in self.health_rules.iter().enumerate() {
            r.validate(&format!("health_rules[{i}]"))?;
        }
        for (i, r) in self.hook_rules.iter().enumerate() {
            r.validate(&format!("hook_rules[{i}]"))?;
        }
        let sessions = limits::SESSION_SECONDS;
        let min_session = self.sts.min_session_seconds.map(|v| v as f64);
        sessions.check_opt("sts.min_session_seconds", min_session)?;
        for (i, r) in self.sts.roles.iter().enumerate() {
            let max = r.max_session_seconds.map(|v| v as f64);
            sessions.check_opt(&format!("sts.roles[{i}].max_session_seconds"), max)?;
            let age = r.max_mfa_age_seconds.map(|v| v as f64);
            limits::MFA_AGE_SECONDS
                .check_opt(&format!("sts.roles[{i}].max_mfa_age_seconds"), age)?;
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.secrets {
            if !seen.insert(&s.name) {
                return Err(format!("secret {} is listed twice", s.name));
            }
            s.current().secret_string(&s.name)?;
            for v in &s.versions {
                v.secret_string(&s.name)?;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.parameters {
            if !seen.insert(&p.name) {
                return Err(format!("parameter {} is listed twice", p.name));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            f.validate().map_err(|e| format!("faults[{i}]: {e}"))?;
        }
        if let Some(l) = &self.limits {
            l.validate()?;
        }
        for (i, r) in self.sts.roles.iter().enumerate() {
            if let Some(seed) = &r.totp_seed {
                crate::sts::totp_code(seed, 0)
                    .map_err(|e| format!("sts.roles[{i}] ({}): {e}", r.arn))?;
            }
        }
        for (name, state) in &self.alarms {
            if !crate::ecs::ALARM_STATES.contains(&state.as_str()) {
                return Err(format!(
                    "alarms.{name}: state {state:?} must be one of OK, ALARM, INSUFFICIENT_DATA"
                ));
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            if !s.request.contains_key("serviceName") {
                return Err(format!("services[{i}]: serviceName is missing"));
            }
        }
        Ok(())
    }

    /// Every `valueFrom` in the scenario's task definitions, as (family, container,
    /// valueFrom): `secrets[]`, `logConfiguration.secretOptions[]` and
    /// `repositoryCredentials.credentialsParameter`.
    pub fn secret_references(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for td in &self.task_definitions {
            let family = td.get("family").and_then(Value::as_str).unwrap_or_default();
            let containers = td
                .get("containerDefinitions")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for c in containers {
                let cname = c.get("name").and_then(Value::as_str).unwrap_or_default();
                let mut push = |v: &Value| {
                    if let Some(s) = v.as_str() {
                        out.push((family.to_string(), cname.to_string(), s.to_string()));
                    }
                };
                for list in [
                    c.get("secrets"),
                    c.pointer("/logConfiguration/secretOptions"),
                ]
                .into_iter()
                .flatten()
                .filter_map(Value::as_array)
                {
                    for s in list {
                        if let Some(v) = s.get("valueFrom") {
                            push(v);
                        }
                    }
                }
                if let Some(v) = c.pointer("/repositoryCredentials/credentialsParameter") {
                    push(v);
                }
            }
        }
        out
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The sample scenario's text.
pub const SAMPLE_TOML: &str = include_str!("../scenarios/sample.toml");

/// What [`Scenario::sample_with_blue_green`] adds to the sample.
pub const SAMPLE_BLUE_GREEN_TOML: &str = include_str!("../scenarios/sample-blue-green.toml");

/// The demo's addition: a service reading a Parameter Store SecureString (see
/// [`Scenario::demo`]).
pub const SAMPLE_PARAMETERS_TOML: &str = include_str!("../scenarios/sample-parameters.toml");

/// Builds a world from a scenario; `speed` and `seed` override the scenario's.
pub fn build_world(
    scenario: &Scenario,
    speed: Option<f64>,
    seed: Option<u64>,
) -> Result<World, String> {
    scenario.validate()?;
    let speed = speed.unwrap_or(scenario.speed);
    let seed = seed.unwrap_or(scenario.seed);
    let mut world = World::new(&scenario.region, &scenario.account, speed, seed);
    if let Some(start) = &scenario.start {
        world.clock = clock::Clock::new(start.epoch()?, speed);
    }
    world.sts = Sts::new(scenario.sts.clone());
    if let Some(t) = &scenario.timing {
        world.ecs.set_default_timing(t.clone());
    }
    let t0 = world.clock.now() - BUILD_LEAD;
    let World {
        region,
        account,
        rng,
        secrets,
        parameters,
        ecs,
        ecr,
        ..
    } = &mut world;

    for spec in &scenario.secrets {
        build_secret(spec, t0, region, account, rng, secrets)?;
    }
    for spec in &scenario.parameters {
        build_parameter(spec, t0, region, account, rng, parameters)?;
    }
    let sources = crate::ssm::Sources {
        secrets,
        parameters,
    };
    let secrets = &sources;

    let mut ctx = Ctx {
        now: t0,
        region,
        account,
        rng,
    };
    for c in &scenario.clusters {
        let name = c
            .get("clusterName")
            .and_then(Value::as_str)
            .unwrap_or("default");
        ecs.handle(
            &mut ctx,
            secrets,
            "CreateCluster",
            &Value::Object(c.clone()),
        )
        .map_err(|e| format!("cluster {name}: {e}"))?;
    }
    for td in &scenario.task_definitions {
        let family = td.get("family").and_then(Value::as_str).unwrap_or("?");
        ecs.handle(
            &mut ctx,
            secrets,
            "RegisterTaskDefinition",
            &Value::Object(td.clone()),
        )
        .map_err(|e| format!("task definition {family}: {e}"))?;
    }
    for r in &scenario.ecr_repositories {
        let name = r
            .get("repositoryName")
            .and_then(Value::as_str)
            .unwrap_or("?");
        ecr.create(&mut ctx, &Value::Object(r.clone()))
            .map_err(|e| format!("ECR repository {name}: {e}"))?;
    }
    for td in &scenario.task_definitions {
        let containers = td.get("containerDefinitions").and_then(Value::as_array);
        for image in containers
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("image").and_then(Value::as_str))
        {
            ecr.seed(image, t0, ctx.region, ctx.account);
        }
    }
    let sources = crate::LaunchSources {
        secrets: secrets.secrets,
        parameters: secrets.parameters,
        ecr,
    };
    let secrets = &sources;
    for s in &scenario.services {
        let name = s
            .request
            .get("serviceName")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let cluster = s
            .request
            .get("cluster")
            .and_then(Value::as_str)
            .unwrap_or("default");
        ecs.handle(
            &mut ctx,
            secrets,
            "CreateService",
            &Value::Object(s.request.clone()),
        )
        .map_err(|e| format!("service {name}: {e}"))?;
        // Before the simulation runs, so the initial deployment already uses it.
        if let Some(t) = &s.timing {
            let cluster_name = cluster.rsplit('/').next().unwrap_or(cluster);
            ecs.set_service_timing(cluster_name, name, t.clone())
                .map_err(|e| format!("service {name}: timing: {e}"))?;
        }
    }
    // Let ECS act at t0 (a scheduler may only place tasks when it runs), then run the past
    // hour: initial deployments settle before the first client call.
    ecs.advance(&mut ctx, secrets);
    world.advance();
    // Health rules only now, so the initial deployments are not hit by them.
    world.ecs.set_health_rules(scenario.health_rules.clone());
    world.ecs.set_hook_rules(scenario.hook_rules.clone());
    world.set_alarm_states(&scenario.alarms)?;
    world.faults.set(scenario.faults.clone())?;
    world.throttle.set(scenario.limits.clone())?;
    Ok(world)
}

/// Creates one parameter through PutParameter, one version a day.
fn build_parameter(
    spec: &ParameterSpec,
    t0: f64,
    region: &str,
    account: &str,
    rng: &mut rand_chacha::ChaCha8Rng,
    parameters: &mut crate::ssm::ParameterStore,
) -> Result<(), String> {
    let caller = format!(
        "arn:{}:iam::{account}:user/sandbox",
        crate::secrets::partition_for(region)
    );
    let all: Vec<&String> = spec.versions.iter().chain([&spec.value]).collect();
    let n = all.len();
    for (i, value) in all.into_iter().enumerate() {
        let mut ctx = Ctx {
            now: t0 - 86400.0 * (n - 1 - i) as f64,
            region,
            account,
            rng,
        };
        let mut body = json!({
            "Name": spec.name,
            "Value": value,
            "Type": spec.kind.as_deref().unwrap_or("SecureString"),
            "Overwrite": i > 0,
        });
        for (key, v) in [
            ("KeyId", &spec.key_id),
            ("Tier", &spec.tier),
            ("DataType", &spec.data_type),
            ("Description", &spec.description),
        ] {
            if let Some(v) = v {
                body[key] = json!(v);
            }
        }
        parameters
            .handle(&mut ctx, &caller, "PutParameter", &body)
            .map_err(|e| format!("parameter {}: {e}", spec.name))?;
    }
    Ok(())
}

/// Creates one secret through CreateSecret / PutSecretValue / DeleteSecret / RotateSecret.
fn build_secret(
    spec: &SecretSpec,
    t0: f64,
    region: &str,
    account: &str,
    rng: &mut rand_chacha::ChaCha8Rng,
    secrets: &mut crate::secrets::SecretsStore,
) -> Result<(), String> {
    let name = spec.name.as_str();
    let err = |e: crate::AwsError| format!("secret {name}: {e}");
    // Earlier versions a day apart, the current one at t0.
    let current = spec.current();
    let all: Vec<&VersionSpec> = spec
        .versions
        .iter()
        .chain(std::iter::once(&current))
        .collect();
    let n = all.len();
    for (i, v) in all.iter().enumerate() {
        let mut ctx = Ctx {
            now: t0 - 86400.0 * (n - 1 - i) as f64,
            region,
            account,
            rng,
        };
        let mut body = json!({ "SecretString": v.secret_string(name)? });
        if let Some(id) = &v.version_id {
            body["ClientRequestToken"] = json!(id);
        }
        if i == 0 {
            body["Name"] = json!(name);
            if let Some(d) = &spec.description {
                body["Description"] = json!(d);
            }
            if !spec.tags.is_empty() {
                body["Tags"] = Value::Array(
                    spec.tags
                        .iter()
                        .map(|(k, v)| json!({"Key": k, "Value": v}))
                        .collect(),
                );
            }
            secrets
                .handle(&mut ctx, "CreateSecret", &body)
                .map_err(err)?;
            if let Some(suffix) = &spec.arn_suffix {
                secrets.set_arn_suffix(name, suffix)?;
            }
            // CreateSecret has no VersionStages: labels other than AWSCURRENT for the
            // first version are applied with UpdateSecretVersionStage.
            if let Some(stages) = &v.stages {
                let vid = secrets
                    .find(name)
                    .and_then(|s| s.current())
                    .map(|v| v.id.clone())
                    .unwrap_or_default();
                for st in stages.iter().filter(|s| *s != crate::secrets::AWSCURRENT) {
                    secrets
                        .handle(
                            &mut ctx,
                            "UpdateSecretVersionStage",
                            &json!({"SecretId": name, "VersionStage": st, "MoveToVersionId": vid}),
                        )
                        .map_err(err)?;
                }
            }
        } else {
            body["SecretId"] = json!(name);
            if let Some(stages) = &v.stages {
                body["VersionStages"] = json!(stages);
            }
            secrets
                .handle(&mut ctx, "PutSecretValue", &body)
                .map_err(err)?;
        }
    }
    let mut ctx = Ctx {
        now: t0,
        region,
        account,
        rng,
    };
    if spec.rotation_value.is_some() || spec.rotation_seconds.is_some() {
        secrets.set_rotation_rule(
            name,
            crate::secrets::RotationRule {
                value: spec.rotation_value.clone(),
                seconds: spec
                    .rotation_seconds
                    .unwrap_or(crate::secrets::DEFAULT_ROTATION_SECONDS),
                held: false,
            },
        )?;
    }
    if let Some(enabled) = spec.rotation_enabled {
        let lambda = spec.rotation_lambda_arn.clone().unwrap_or_else(|| {
            format!(
                "arn:{}:lambda:{region}:{account}:function:SecretsManagerRotation",
                crate::secrets::partition_for(region)
            )
        });
        secrets
            .handle(
                &mut ctx,
                "RotateSecret",
                &json!({"SecretId": name, "RotationLambdaARN": lambda,
                        "RotationRules": {"AutomaticallyAfterDays": 30}, "RotateImmediately": false}),
            )
            .map_err(err)?;
        if !enabled {
            secrets
                .handle(&mut ctx, "CancelRotateSecret", &json!({"SecretId": name}))
                .map_err(err)?;
        }
    }
    if let Some(o) = &spec.owning_service {
        // No AWS operation sets this: other services (RDS...) do it on real AWS.
        secrets.set_owning_service(name, o)?;
    }
    if spec.deleted {
        secrets
            .handle(&mut ctx, "DeleteSecret", &json!({"SecretId": name}))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretSource;

    #[test]
    fn sample_parses_with_the_real_shape() {
        let s = Scenario::sample();
        assert_eq!(
            (s.region.as_str(), s.account.as_str()),
            ("eu-west-1", "123456789012")
        );
        assert_eq!(
            s.secrets.len(),
            13,
            "12 read by tasks + api_rds_credentials"
        );
        let refs: Vec<_> = s
            .secret_references()
            .into_iter()
            .filter(|(f, _, _)| {
                [
                    "production-front",
                    "production-api",
                    "production-pdf",
                    "production-admin",
                ]
                .contains(&f.as_str())
            })
            .collect();
        assert_eq!(refs.len(), 16);
        let by_path = refs
            .iter()
            .filter(|(_, _, v)| v.starts_with("/aws/reference/secretsmanager/production/"))
            .count();
        assert_eq!(by_path, 14);
        assert!(refs.iter().all(|(_, c, _)| c == "app"));
        let distinct: std::collections::BTreeSet<_> = refs
            .iter()
            .map(|(_, _, v)| v.rsplit("production/").next().unwrap().to_string())
            .map(|n| {
                n.trim_end_matches("-Xy12Ab")
                    .trim_end_matches("-Qw34Er")
                    .to_string()
            })
            .collect();
        assert_eq!(distinct.len(), 12, "{distinct:?}");
        assert_eq!(s.services.len(), 4);
        let families: Vec<_> = s
            .task_definitions
            .iter()
            .map(|t| t["family"].as_str().unwrap().to_string())
            .collect();
        for f in [
            "production-migrations",
            "production-seeding",
            "production-api-cron",
        ] {
            assert!(families.contains(&f.to_string()), "{f}");
        }
    }

    #[test]
    fn sample_secrets_resolve_every_reference() {
        // Secrets only: the ECS part is exercised by the ECS side's tests.
        let mut s = Scenario::sample();
        let refs = s.secret_references();
        s.clusters.clear();
        s.task_definitions.clear();
        s.services.clear();
        let world = build_world(&s, None, None).unwrap();
        assert_eq!(world.secrets.len(), 13);
        for (family, _, vf) in refs {
            let r = world
                .secrets
                .resolve_for_ecs(&vf, "eu-west-1", "123456789012")
                .unwrap_or_else(|e| panic!("{family} {vf}: {e}"));
            assert!(!r.value.is_empty());
        }
        let creds = world
            .secrets
            .find("production/api_rds_credentials")
            .unwrap();
        let v: Value = serde_json::from_str(&creds.current().unwrap().value.as_text()).unwrap();
        for k in [
            "username",
            "password",
            "engine",
            "host",
            "port",
            "dbClusterIdentifier",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn secret_options_build_through_the_api() {
        let s = Scenario::from_toml(
            r#"
            start = "2026-01-05T09:00:00Z"
            [[secrets]]
            name = "a"
            value = "v3"
            version_id = "cccccccccccccccccccccccccccccccc"
            rotation_enabled = true
            owning_service = "rds"
            tags = { team = "lpa" }
            [[secrets.versions]]
            value = "v1"
            version_id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            [[secrets.versions]]
            json = { k = "v2" }
            version_id = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
            [[secrets]]
            name = "gone"
            value = "x"
            deleted = true
            "#,
        )
        .unwrap();
        let world = build_world(&s, Some(0.0), None).unwrap();
        assert_eq!(world.clock.now(), 1_767_603_600.0);
        let a = world.secrets.find("a").unwrap();
        let ids: Vec<_> = a
            .versions
            .iter()
            .map(|v| (v.id.as_str(), v.stages.clone()))
            .collect();
        assert_eq!(ids[0], ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", vec![]));
        assert_eq!(ids[1].1, vec!["AWSPREVIOUS".to_string()]);
        assert_eq!(
            ids[2],
            (
                "cccccccccccccccccccccccccccccccc",
                vec!["AWSCURRENT".to_string()]
            )
        );
        assert_eq!(a.versions[1].value.as_text(), r#"{"k":"v2"}"#);
        assert_eq!(a.rotation_enabled, Some(true));
        assert_eq!(a.owning_service.as_deref(), Some("rds"));
        assert!(a.versions[0].created < a.versions[2].created);
        assert!(world.secrets.find("gone").unwrap().is_deleted());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Scenario::from_toml("[[secrets]]\nname = \"a\"\n").unwrap_err();
        assert!(e.contains("secret a") && e.contains("value"), "{e}");
        let e = Scenario::from_toml("bogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = Scenario::from_toml("[[faults]]\nkind = \"drop\"\nservice = \"s3\"\n").unwrap_err();
        assert!(e.contains("faults[0]"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "speed = \"fast\"\n").unwrap();
        let e = Scenario::load(&p).unwrap_err();
        assert!(e.contains("bad.toml") && e.contains("speed"), "{e}");
        let e = Scenario::load(dir.path().join("missing.toml")).unwrap_err();
        assert!(e.contains("missing.toml"), "{e}");
        let e = build_world(
            &Scenario::from_toml("[[secrets]]\nname=\"a\"\nvalue=\"x\"\narn_suffix=\"short\"\n")
                .unwrap(),
            None,
            None,
        )
        .err()
        .unwrap();
        assert!(e.contains("arn_suffix"), "{e}");
    }

    #[test]
    fn documented_example_parses() {
        let doc = include_str!("../SCENARIOS.md");
        let example = doc.split("### Example scenario").nth(1).unwrap();
        let toml = example
            .split("```toml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let s = Scenario::from_toml(toml).unwrap();
        assert_eq!(s.services.len(), 1);
        assert_eq!(s.sts.roles.len(), 1);
        assert_eq!(s.faults.len(), 1);
        let refs = s.secret_references();
        let mut secrets_only = s.clone();
        secrets_only.clusters.clear();
        secrets_only.task_definitions.clear();
        secrets_only.services.clear();
        let w = build_world(&secrets_only, None, None).unwrap();
        assert!(w
            .secrets
            .resolve_for_ecs(&refs[0].2, "eu-west-1", "123456789012")
            .is_ok());
    }

    #[test]
    fn documented_strategy_example_builds() {
        let doc = include_str!("../SCENARIOS.md");
        let section = doc.split("### Deployment strategies").nth(1).unwrap();
        let example = section
            .split("```toml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let text = format!(
            "[[clusters]]\nclusterName = \"production-online-lpa\"\n\
             [[task_definitions]]\nfamily = \"production-viewer\"\n\
             containerDefinitions = [{{ name = \"app\", image = \"x\" }}]\n\
             [alarms]\nviewer-5xx = \"OK\"\n{example}"
        );
        let s = Scenario::from_toml(&text).unwrap();
        let mut w = build_world(&s, Some(0.0), None).unwrap();
        let state = w.snapshot();
        let svc = &state["ecs"]["services"][0];
        assert_eq!(svc["strategy"], "LINEAR");
        // The PAUSE hook holds the initial deployment too, as SCENARIOS.md warns.
        let sd = &svc["serviceDeployments"][0];
        assert_eq!(sd["status"], "IN_PROGRESS");
        assert_eq!(sd["lifecycleStage"], "POST_TEST_TRAFFIC_SHIFT");
        assert!(Scenario::from_toml("[alarms]\nx = \"RED\"\n")
            .unwrap_err()
            .contains("alarms.x"));
    }

    #[test]
    fn service_timing_is_split_from_the_request() {
        let s = Scenario::from_toml(
            r#"
            [timing]
            pending = 2.5
            [[services]]
            cluster = "c"
            serviceName = "api"
            desiredCount = 2
            timing = { health_check = 1.0 }
            deploymentConfiguration = { minimumHealthyPercent = 50 }
            "#,
        )
        .unwrap();
        let svc = &s.services[0];
        assert_eq!(svc.timing.as_ref().unwrap().health_check, 1.0);
        assert_eq!(
            svc.timing.as_ref().unwrap().pending,
            Timing::default().pending
        );
        assert!(!svc.request.contains_key("timing"));
        assert_eq!(svc.request["desiredCount"], 2);
        assert_eq!(
            svc.request["deploymentConfiguration"]["minimumHealthyPercent"],
            50
        );
        assert_eq!(s.timing.unwrap().pending, 2.5);
    }

    #[test]
    fn generated_scenario_has_the_asked_shape() {
        let s = Scenario::generated(1000, 10, 4);
        assert_eq!(s.services.len(), 1000);
        assert_eq!(s.clusters.len(), 4);
        let tasks: u64 = s
            .services
            .iter()
            .map(|x| x.request["desiredCount"].as_u64().unwrap())
            .sum();
        assert_eq!(tasks, 10_000);
        let mut secrets_only = s.clone();
        secrets_only.task_definitions.clear();
        secrets_only.services.clear();
        secrets_only.clusters.clear();
        let w = build_world(&secrets_only, None, None).unwrap();
        for (_, _, vf) in s.secret_references().iter().take(50) {
            assert!(
                w.secrets
                    .resolve_for_ecs(vf, "eu-west-1", "123456789012")
                    .is_ok(),
                "{vf}"
            );
        }
    }
}
