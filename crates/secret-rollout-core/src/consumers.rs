//! Who reads a secret, and what to do with each reader: pure decisions.
//!
//! The caller describes the environment's services and their task definitions (the
//! adapter's observations, `crate::aws::model`) and [`classify`] decides:
//!
//! - **redeploy**: a service reads a target secret through an unpinned reference and is
//!   deployed by ECS with tasks wanted. Each service appears once, whatever number of
//!   target secrets it reads; its [`Consumer::reads`] say which secrets and where.
//! - **pinned**: every reference of the service to the target secrets is pinned (version id,
//!   or a stage other than `AWSCURRENT`). It would not pick up the new value, so it is
//!   reported and left alone. A service with a pinned *and* an unpinned reference is
//!   redeployed, and its pins are kept in its reads for the report.
//! - **idle**: desired count 0: nothing runs, the next task launched reads the new value.
//! - **unsupported**: deployment controller `CODE_DEPLOY` or `EXTERNAL`: a forced new
//!   deployment does not roll them out, so [`Plan::refusal`] stops the command before any
//!   write.
//! - **excluded**: left out by `--services`.
//! - **outside**: not in the environment's `services` list (`secret-rollout.toml`): not
//!   redeployed, but named, since it keeps the old value until its next deployment.
//! - **one-off**: task families no service runs (migrations, cron): they pick up the new
//!   value at their next run.

use std::collections::HashMap;

pub use crate::aws::model::{
    name_from_arn, Controller, Place, RefSite, ServiceInfo, ServiceKey, TaskDef,
};
use crate::error::{Error, Result};
use crate::reference::{parse_value_from, Pin};

/// A secret being replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSecret {
    /// Full ARN (with the 6-character suffix), from DescribeSecret.
    pub arn: String,
    /// Name, from DescribeSecret.
    pub name: String,
}

/// One reference to one target secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRead {
    /// The target secret's ARN.
    pub secret_arn: String,
    /// The target secret's name.
    pub secret_name: String,
    /// Where it is referenced.
    pub site: RefSite,
    /// `Some` when this reference will not pick up the new value.
    pub pin: Option<Pin>,
    /// The JSON key the reference selects, if any.
    pub json_key: Option<String>,
}

/// A service that reads at least one target secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// The service.
    pub service: ServiceInfo,
    /// Its task definition's revision.
    pub task_definition_revision: i32,
    /// Every reference to a target secret.
    pub reads: Vec<SecretRead>,
}

impl Consumer {
    /// The pinned references (reported: they keep the old value even after a redeploy).
    pub fn pinned_reads(&self) -> impl Iterator<Item = &SecretRead> {
        self.reads.iter().filter(|r| r.pin.is_some())
    }

    /// Whether it reads this secret through at least one unpinned reference.
    pub fn follows(&self, secret_arn: &str) -> bool {
        self.reads
            .iter()
            .any(|r| r.secret_arn == secret_arn && r.pin.is_none())
    }

    /// The distinct target secrets it reads (ARNs, in order of first reference).
    pub fn secrets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.reads {
            if !out.contains(&r.secret_arn.as_str()) {
                out.push(&r.secret_arn);
            }
        }
        out
    }
}

/// A task family that no service runs but that reads a target secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyConsumer {
    /// Family.
    pub family: String,
    /// The revision inspected.
    pub revision: i32,
    /// Its task definition ARN.
    pub task_definition_arn: String,
    /// Every reference to a target secret.
    pub reads: Vec<SecretRead>,
}

/// What happens to the consumers of one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretPlan {
    /// The secret.
    pub secret: TargetSecret,
    /// Redeployed, and they follow this secret: they will run on its new value.
    pub redeploy: Vec<ServiceKey>,
    /// Every reference of theirs to this secret is pinned: they keep the old value (some
    /// are still redeployed for another secret; see [`Plan::redeploy`]).
    pub pinned: Vec<ServiceKey>,
    /// Desired count 0: skipped.
    pub idle: Vec<ServiceKey>,
    /// CODE_DEPLOY / EXTERNAL: the command refuses (see [`Plan::refusal`]).
    pub unsupported: Vec<ServiceKey>,
    /// Left out by `--services`: they keep the old value until their next deployment.
    pub excluded: Vec<ServiceKey>,
    /// Not in the environment's `services` list: they keep the old value until their next
    /// deployment.
    pub outside: Vec<ServiceKey>,
    /// One-off families: pick up the new value at their next run.
    pub one_off: Vec<String>,
}

/// The decision for a set of target secrets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Per secret, in the order given.
    pub secrets: Vec<SecretPlan>,
    /// Services to redeploy, each once, in the order the services were given.
    pub redeploy: Vec<Consumer>,
    /// Services whose every reference to the targets is pinned: reported, not redeployed.
    pub pinned: Vec<Consumer>,
    /// Desired count 0: listed, skipped.
    pub idle: Vec<Consumer>,
    /// CODE_DEPLOY / EXTERNAL consumers.
    pub unsupported: Vec<Consumer>,
    /// Consumers left out by `--services`.
    pub excluded: Vec<Consumer>,
    /// Consumers outside the environment's `services` list (never redeployed by it).
    pub outside: Vec<Consumer>,
    /// Families no service runs that read a target.
    pub one_off: Vec<FamilyConsumer>,
}

impl Plan {
    /// The refusal to give before any write when a consumer cannot be redeployed by ECS.
    pub fn refusal(&self) -> Option<Error> {
        let first = self.unsupported.first()?;
        let all_codedeploy = self
            .unsupported
            .iter()
            .all(|c| c.service.controller == Controller::CodeDeploy);
        let (message, hint) = if self.unsupported.len() == 1 {
            let s = &first.service;
            (
                format!(
                    "service {} in cluster {} reads the secret but is deployed by {}, which a forced new deployment does not roll out",
                    s.name, s.cluster, s.controller
                ),
                match s.controller {
                    Controller::CodeDeploy => "deploy it with CodeDeploy after the write, or exclude it with --services".to_string(),
                    _ => "deploy it with its external controller after the write, or exclude it with --services".to_string(),
                },
            )
        } else {
            let list = self
                .unsupported
                .iter()
                .map(|c| format!("{} ({})", c.service.key(), c.service.controller))
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!(
                    "{} services read the secret but are not deployed by ECS, so a forced new deployment does not roll them out: {list}",
                    self.unsupported.len()
                ),
                if all_codedeploy {
                    "deploy them with CodeDeploy after the write, or exclude them with --services".to_string()
                } else {
                    "deploy them with their own controller after the write, or exclude them with --services".to_string()
                },
            )
        };
        Some(Error::refused(message).hint(hint))
    }

    /// The refusal to give before any write when services read the secrets but none would
    /// be redeployed, and some would keep the old value (outside the environment's list,
    /// left out by `--services`, pinned): the run would write a value no task picks up,
    /// with nothing to follow or prove. A plan with something to redeploy, no readers at
    /// all, or only services scaled to 0 and one-off families is not refused here.
    pub fn stranded_refusal(&self) -> Option<Error> {
        if !self.redeploy.is_empty() {
            return None;
        }
        let stranded: Vec<String> = self
            .outside
            .iter()
            .map(|c| {
                format!(
                    "{} (outside the environment's services list)",
                    c.service.name
                )
            })
            .chain(
                self.excluded
                    .iter()
                    .map(|c| format!("{} (left out by --services)", c.service.name)),
            )
            .chain(
                self.pinned
                    .iter()
                    .map(|c| format!("{} (pinned)", c.service.name)),
            )
            .collect();
        if stranded.is_empty() {
            return None;
        }
        let hint = if self.outside.is_empty() {
            "name a service that follows AWSCURRENT with --services, or repoint the pinned references first"
        } else {
            "add them to the environment's services in secret-rollout.toml, or rotate from an environment that lists them"
        };
        Some(
            Error::refused(format!(
                "nothing to redeploy: the services that read it would keep the old value: {}",
                stranded.join(", ")
            ))
            .hint(hint),
        )
    }

    /// Every consumer service, whatever its fate.
    pub fn consumers(&self) -> impl Iterator<Item = &Consumer> {
        self.redeploy
            .iter()
            .chain(&self.pinned)
            .chain(&self.idle)
            .chain(&self.unsupported)
            .chain(&self.excluded)
            .chain(&self.outside)
    }

    /// Whether nothing reads the secret at `index`: no service (whatever its fate) and no
    /// one-off family.
    pub fn unread(&self, index: usize) -> bool {
        self.secrets.get(index).is_some_and(|sp| {
            sp.redeploy.is_empty()
                && sp.pinned.is_empty()
                && sp.idle.is_empty()
                && sp.unsupported.is_empty()
                && sp.excluded.is_empty()
                && sp.outside.is_empty()
                && sp.one_off.is_empty()
        })
    }

    /// Whether nothing reads any of the secrets (see [`Plan::unread`]).
    pub fn no_readers(&self) -> bool {
        (0..self.secrets.len()).all(|i| self.unread(i))
    }
}

/// Whether `value_from` reads the parameter `secret` (its ARN gives region and account).
fn parameter_read(value_from: &str, secret: &TargetSecret) -> bool {
    reads_parameter(value_from, &secret.arn, &secret.name)
}

/// Whether `value_from` reads the parameter whose ARN is `arn` and whose name is `name`
/// (`ssm:NAME` or `NAME`): by name, or by ARN in the same region and account.
pub fn reads_parameter(value_from: &str, arn: &str, name: &str) -> bool {
    if !crate::store::is_parameter(arn) {
        return false;
    }
    let mut parts = arn.splitn(6, ':');
    let (Some(_), Some(_), Some(_), Some(region), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    crate::parameter::reads(
        value_from,
        crate::store::parameter_name(name),
        region,
        account,
    )
}

/// Collects the references of `td` to any of `secrets`.
fn reads_of(td: &TaskDef, secrets: &[TargetSecret]) -> Vec<SecretRead> {
    let mut reads = Vec::new();
    for site in &td.refs {
        // A Parameter Store parameter (by name or ARN): ECS always reads its latest
        // version (it refuses a pinned reference), so no read of one is pinned.
        for secret in secrets
            .iter()
            .filter(|s| crate::store::is_parameter(&s.arn))
        {
            if parameter_read(&site.value_from, secret) {
                reads.push(SecretRead {
                    secret_arn: secret.arn.clone(),
                    secret_name: secret.name.clone(),
                    site: site.clone(),
                    pin: None,
                    json_key: None,
                });
            }
        }
        let Some(r) = parse_value_from(&site.value_from) else {
            continue;
        };
        for secret in secrets {
            if r.matches(&secret.arn, &secret.name) {
                reads.push(SecretRead {
                    secret_arn: secret.arn.clone(),
                    secret_name: secret.name.clone(),
                    site: site.clone(),
                    pin: r.pin(),
                    json_key: r.json_key.clone(),
                });
            }
        }
    }
    reads
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Redeploy,
    Pinned,
    Idle,
    Unsupported,
    Excluded,
    Outside,
}

/// Decides what happens to every reader of `secrets`.
///
/// `task_defs` maps each service's `task_definition_arn` to its description;
/// `families_without_service` are the latest ACTIVE revisions of the families no service
/// runs. `only` is `--services`: names (or `cluster/name`) of consumers to keep; a name that
/// is not a consumer of any target is bad input. `scope` is the environment's `services`
/// list: a reader outside it is never redeployed but always in the plan ([`Plan::outside`]),
/// and `--services` may not name it.
pub fn classify(
    secrets: &[TargetSecret],
    services: &[ServiceInfo],
    task_defs: &HashMap<String, TaskDef>,
    families_without_service: &[TaskDef],
    only: Option<&[String]>,
    scope: Option<&[String]>,
) -> Result<Plan> {
    let in_scope = |s: &ServiceInfo| scope.is_none_or(|list| list.contains(&s.name));
    let mut consumers: Vec<(Consumer, Fate)> = Vec::new();
    for service in services {
        let td = task_defs.get(&service.task_definition_arn).ok_or_else(|| {
            Error::aws_call(format!(
                "task definition {} of service {} was not described",
                service.task_definition_arn,
                service.key()
            ))
            .hint("this is a bug in secret-rollout: please report it with the command you ran")
        })?;
        let reads = reads_of(td, secrets);
        if reads.is_empty() {
            continue;
        }
        let consumer = Consumer {
            service: service.clone(),
            task_definition_revision: td.revision,
            reads,
        };
        let fate = if !in_scope(service) {
            // Not this environment's to redeploy, but a reader all the same.
            Fate::Outside
        } else if consumer.reads.iter().all(|r| r.pin.is_some()) {
            Fate::Pinned
        } else if service.desired == 0 {
            // Nothing runs: the next task launched reads the new value, whatever deploys it.
            Fate::Idle
        } else if service.controller != Controller::Ecs {
            Fate::Unsupported
        } else {
            Fate::Redeploy
        };
        consumers.push((consumer, fate));
    }

    if let Some(only) = only {
        let selected = |c: &Consumer| {
            only.iter()
                .any(|n| *n == c.service.name || *n == c.service.key().to_string())
        };
        let names = |n: &str, c: &Consumer| n == c.service.name || n == c.service.key().to_string();
        let outside: Vec<&str> = only
            .iter()
            .filter(|n| {
                consumers
                    .iter()
                    .any(|(c, fate)| *fate == Fate::Outside && names(n, c))
            })
            .map(String::as_str)
            .collect();
        if !outside.is_empty() {
            return Err(Error::bad_input(format!(
                "--services names {}, outside the environment's services list",
                outside.join(", ")
            ))
            .hint("add it to the environment's services in secret-rollout.toml, or drop it from --services"));
        }
        let unknown: Vec<&str> = only
            .iter()
            .filter(|n| !consumers.iter().any(|(c, _)| names(n, c)))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let names = secrets
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut known: Vec<String> = consumers
                .iter()
                .filter(|(_, fate)| *fate != Fate::Outside)
                .map(|(c, _)| c.service.name.clone())
                .collect();
            known.dedup();
            let hint = if known.is_empty() {
                "no service reads it: drop --services".to_string()
            } else {
                format!("the services that read it are: {}", known.join(", "))
            };
            return Err(Error::bad_input(format!(
                "--services names {} that {} not read {names}",
                unknown.join(", "),
                if unknown.len() == 1 { "does" } else { "do" }
            ))
            .hint(hint));
        }
        for (c, fate) in &mut consumers {
            if *fate != Fate::Outside && !selected(c) {
                *fate = Fate::Excluded;
            }
        }
    }

    let mut plan = Plan::default();
    for secret in secrets {
        let mut sp = SecretPlan {
            secret: secret.clone(),
            redeploy: Vec::new(),
            pinned: Vec::new(),
            idle: Vec::new(),
            unsupported: Vec::new(),
            excluded: Vec::new(),
            outside: Vec::new(),
            one_off: Vec::new(),
        };
        for (c, fate) in &consumers {
            if !c.reads.iter().any(|r| r.secret_arn == secret.arn) {
                continue;
            }
            let key = c.service.key();
            let list = match fate {
                Fate::Excluded => &mut sp.excluded,
                Fate::Outside => &mut sp.outside,
                // Redeployed for another secret but pinned for this one: still stale.
                _ if !c.follows(&secret.arn) => &mut sp.pinned,
                Fate::Redeploy => &mut sp.redeploy,
                Fate::Pinned => &mut sp.pinned,
                Fate::Idle => &mut sp.idle,
                Fate::Unsupported => &mut sp.unsupported,
            };
            list.push(key);
        }
        plan.secrets.push(sp);
    }
    for (c, fate) in consumers {
        match fate {
            Fate::Redeploy => plan.redeploy.push(c),
            Fate::Pinned => plan.pinned.push(c),
            Fate::Idle => plan.idle.push(c),
            Fate::Unsupported => plan.unsupported.push(c),
            Fate::Excluded => plan.excluded.push(c),
            Fate::Outside => plan.outside.push(c),
        }
    }
    for td in families_without_service {
        let reads = reads_of(td, secrets);
        if reads.is_empty() {
            continue;
        }
        for sp in &mut plan.secrets {
            if reads.iter().any(|r| r.secret_arn == sp.secret.arn)
                && !sp.one_off.contains(&td.family)
            {
                sp.one_off.push(td.family.clone());
            }
        }
        plan.one_off.push(FamilyConsumer {
            family: td.family.clone(),
            revision: td.revision,
            task_definition_arn: td.arn.clone(),
            reads,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    const ACCOUNT: &str = "123456789012";
    const REGION: &str = "eu-west-1";
    const CLUSTER: &str = "production-online-lpa";

    fn secret_arn(name: &str) -> String {
        // A stable fake 6-character suffix per name.
        let sum: u32 = name.bytes().map(u32::from).sum();
        format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-Ab{:04}",
            sum % 10000
        )
    }

    fn target(short: &str) -> TargetSecret {
        let name = format!("production/{short}");
        TargetSecret {
            arn: secret_arn(&name),
            name,
        }
    }

    fn ssm(short: &str) -> String {
        format!("/aws/reference/secretsmanager/production/{short}")
    }

    fn env_site(env: &str, value_from: String) -> RefSite {
        RefSite {
            container: "app".into(),
            place: Place::Secret { env: env.into() },
            value_from,
        }
    }

    fn td(family: &str, refs: Vec<RefSite>) -> TaskDef {
        TaskDef {
            arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:7"),
            family: family.into(),
            revision: 7,
            refs,
            images: Vec::new(),
        }
    }

    fn service(name: &str, desired: i32) -> ServiceInfo {
        ServiceInfo {
            cluster: CLUSTER.into(),
            name: name.into(),
            arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{name}"),
            task_definition_arn: format!(
                "arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/production-{name}:7"
            ),
            desired,
            running: desired,
            pending: 0,
            controller: Controller::Ecs,
            min_healthy_percent: 50,
            max_percent: 200,
            circuit_breaker: Some((true, true)),
            status: "ACTIVE".into(),
            strategy: String::new(),
            least_rollout_secs: 0,
            least_traffic_secs: 0,
        }
    }

    /// The sample environment of `shared/reference/sample-environment.md`.
    struct Sample {
        services: Vec<ServiceInfo>,
        task_defs: HashMap<String, TaskDef>,
        families: Vec<TaskDef>,
    }

    fn sample() -> Sample {
        let front = vec![
            env_site("OPG_LPA_FRONT_CSRF_SALT", ssm("opg_lpa_front_csrf_salt")),
            env_site(
                "OPG_LPA_FRONT_EMAIL_NOTIFY_API_KEY",
                ssm("opg_lpa_api_notify_api_key"),
            ),
            env_site(
                "OPG_LPA_FRONT_GOV_PAY_KEY",
                ssm("opg_lpa_front_gov_pay_key"),
            ),
            env_site(
                "OPG_LPA_COMMON_ACCOUNT_CLEANUP_NOTIFICATION_RECIPIENTS",
                ssm("opg_lpa_common_account_cleanup_notification_recipients"),
            ),
            env_site(
                "OPG_LPA_FRONT_OS_PLACES_HUB_LICENSE_KEY",
                ssm("opg_lpa_front_os_places_hub_license_key"),
            ),
            env_site(
                "OPG_LPA_COMMON_REDIS_AUTH_TOKEN",
                secret_arn("production/elasticache_auth_token"),
            ),
            env_site(
                "CLIENT_ID",
                secret_arn("production/mock-onelogin-client-id"),
            ),
        ];
        let api = [
            "opg_lpa_api_notify_api_key",
            "api_rds_username",
            "api_rds_password",
            "opg_lpa_common_account_cleanup_notification_recipients",
            "opg_lpa_api_auth_log_salt",
            "opg_lpa_admin_service_secret",
        ]
        .iter()
        .map(|s| env_site(&s.to_uppercase(), ssm(s)))
        .collect();
        let admin = [
            "opg_lpa_common_account_cleanup_notification_recipients",
            "opg_lpa_admin_service_secret",
        ]
        .iter()
        .map(|s| env_site(&s.to_uppercase(), ssm(s)))
        .collect();
        let pdf = vec![env_site(
            "OWNER_PASSWORD",
            ssm("opg_lpa_pdf_owner_password"),
        )];
        let mut task_defs = HashMap::new();
        let mut services = Vec::new();
        for (name, desired, mut refs) in [
            ("front", 3, front),
            ("api", 3, api),
            ("pdf", 2, pdf),
            ("admin", 1, admin),
        ] {
            // The web container has no secrets but a log option that is not a secret.
            refs.push(RefSite {
                container: "web".into(),
                place: Place::LogOption {
                    name: "token".into(),
                },
                value_from: "/production/log_token".into(),
            });
            let s = service(name, desired);
            task_defs.insert(
                s.task_definition_arn.clone(),
                td(&format!("production-{name}"), refs),
            );
            services.push(s);
        }
        let families = vec![
            td(
                "production-migrations",
                [
                    "api_rds_username",
                    "api_rds_password",
                    "opg_lpa_api_auth_log_salt",
                ]
                .iter()
                .map(|s| env_site(s, ssm(s)))
                .collect(),
            ),
            td(
                "production-seeding",
                vec![env_site("X", ssm("opg_lpa_admin_service_secret"))],
            ),
            td("production-api-cron", vec![]),
        ];
        Sample {
            services,
            task_defs,
            families,
        }
    }

    fn names(list: &[Consumer]) -> Vec<&str> {
        list.iter().map(|c| c.service.name.as_str()).collect()
    }

    fn keys(list: &[ServiceKey]) -> Vec<&str> {
        list.iter().map(|k| k.name.as_str()).collect()
    }

    fn run(s: &Sample, secrets: &[TargetSecret], only: Option<&[String]>) -> Result<Plan> {
        classify(secrets, &s.services, &s.task_defs, &s.families, only, None)
    }

    #[test]
    fn shared_secret_is_read_by_front_api_admin_not_pdf() {
        let s = sample();
        let t = target("opg_lpa_common_account_cleanup_notification_recipients");
        let plan = run(&s, std::slice::from_ref(&t), None).unwrap();
        assert_eq!(names(&plan.redeploy), ["front", "api", "admin"]);
        assert!(plan.pinned.is_empty() && plan.idle.is_empty() && plan.unsupported.is_empty());
        assert!(plan.one_off.is_empty());
        assert!(plan.refusal().is_none());
        assert_eq!(keys(&plan.secrets[0].redeploy), ["front", "api", "admin"]);
        let front = &plan.redeploy[0];
        assert_eq!(front.reads.len(), 1);
        assert_eq!(
            front.reads[0].site.place,
            Place::Secret {
                env: "OPG_LPA_COMMON_ACCOUNT_CLEANUP_NOTIFICATION_RECIPIENTS".into()
            }
        );
    }

    #[test]
    fn secret_by_full_arn_is_found() {
        let s = sample();
        let plan = run(&s, &[target("elasticache_auth_token")], None).unwrap();
        assert_eq!(names(&plan.redeploy), ["front"]);
    }

    #[test]
    fn two_secrets_redeploy_each_service_once() {
        let s = sample();
        let a = target("opg_lpa_common_account_cleanup_notification_recipients");
        let b = target("opg_lpa_admin_service_secret");
        let plan = run(&s, &[a.clone(), b.clone()], None).unwrap();
        assert_eq!(names(&plan.redeploy), ["front", "api", "admin"]);
        let api = &plan.redeploy[1];
        assert_eq!(api.secrets(), [a.arn.as_str(), b.arn.as_str()]);
        assert_eq!(keys(&plan.secrets[1].redeploy), ["api", "admin"]);
        // admin service secret is read by the seeding family too.
        assert_eq!(plan.secrets[1].one_off, ["production-seeding"]);
        assert!(plan.secrets[0].one_off.is_empty());
    }

    #[test]
    fn one_off_families_are_listed() {
        let s = sample();
        let plan = run(&s, &[target("api_rds_password")], None).unwrap();
        assert_eq!(names(&plan.redeploy), ["api"]);
        assert_eq!(plan.one_off.len(), 1);
        assert_eq!(plan.one_off[0].family, "production-migrations");
        assert_eq!(plan.secrets[0].one_off, ["production-migrations"]);
    }

    #[test]
    fn unread_secret_has_no_consumers() {
        let s = sample();
        let plan = run(&s, &[target("nobody_reads_this")], None).unwrap();
        assert_eq!(plan.consumers().count(), 0);
        assert!(plan.one_off.is_empty());
    }

    #[test]
    fn pinned_only_is_reported_not_redeployed() {
        let mut s = sample();
        let t = target("opg_lpa_pdf_owner_password");
        let pdf = s.services[2].task_definition_arn.clone();
        s.task_defs.get_mut(&pdf).unwrap().refs[0].value_from = format!("{}::AWSPREVIOUS:", t.arn);
        let plan = run(&s, std::slice::from_ref(&t), None).unwrap();
        assert!(plan.redeploy.is_empty());
        assert_eq!(names(&plan.pinned), ["pdf"]);
        assert_eq!(keys(&plan.secrets[0].pinned), ["pdf"]);
        assert_eq!(
            plan.pinned[0].reads[0].pin,
            Some(Pin::Stage("AWSPREVIOUS".into()))
        );
    }

    #[test]
    fn pinned_and_unpinned_is_redeployed_with_the_pin_noted() {
        let mut s = sample();
        let t = target("opg_lpa_pdf_owner_password");
        let pdf = s.services[2].task_definition_arn.clone();
        s.task_defs.get_mut(&pdf).unwrap().refs.push(RefSite {
            container: "app".into(),
            place: Place::Secret { env: "OLD".into() },
            value_from: format!("{}:::v-old", t.arn),
        });
        let plan = run(&s, std::slice::from_ref(&t), None).unwrap();
        assert_eq!(names(&plan.redeploy), ["pdf"]);
        let pins: Vec<_> = plan.redeploy[0].pinned_reads().collect();
        assert_eq!(pins.len(), 1);
        assert_eq!(pins[0].pin, Some(Pin::VersionId("v-old".into())));
    }

    #[test]
    fn redeployed_for_one_secret_but_pinned_to_another() {
        let mut s = sample();
        let a = target("opg_lpa_pdf_owner_password");
        let b = target("pinned_one");
        let pdf = s.services[2].task_definition_arn.clone();
        s.task_defs
            .get_mut(&pdf)
            .unwrap()
            .refs
            .push(env_site("B", format!("{}:::v1", b.arn)));
        let plan = run(&s, &[a, b], None).unwrap();
        assert_eq!(names(&plan.redeploy), ["pdf"]);
        assert_eq!(keys(&plan.secrets[0].redeploy), ["pdf"]);
        assert_eq!(keys(&plan.secrets[1].pinned), ["pdf"]);
        assert!(plan.secrets[1].redeploy.is_empty());
    }

    #[test]
    fn desired_zero_is_skipped() {
        let mut s = sample();
        s.services[3].desired = 0;
        s.services[3].running = 0;
        let plan = run(&s, &[target("opg_lpa_admin_service_secret")], None).unwrap();
        assert_eq!(names(&plan.redeploy), ["api"]);
        assert_eq!(names(&plan.idle), ["admin"]);
        assert_eq!(keys(&plan.secrets[0].idle), ["admin"]);
    }

    #[test]
    fn codedeploy_and_external_consumers_are_refused() {
        let mut s = sample();
        s.services[1].controller = Controller::CodeDeploy;
        let t = target("opg_lpa_common_account_cleanup_notification_recipients");
        let plan = run(&s, std::slice::from_ref(&t), None).unwrap();
        assert_eq!(names(&plan.unsupported), ["api"]);
        let e = plan.refusal().unwrap();
        assert_eq!(e.kind, Kind::Refused);
        assert!(
            e.message
                .contains("service api in cluster production-online-lpa"),
            "{}",
            e.message
        );
        assert!(e.message.contains("CODE_DEPLOY"));
        assert!(e.hint.as_deref().unwrap().contains("--services"));
        assert!(e.hint.as_deref().unwrap().contains("CodeDeploy"));

        s.services[3].controller = Controller::External;
        let plan = run(&s, std::slice::from_ref(&t), None).unwrap();
        let e = plan.refusal().unwrap();
        assert!(
            e.message
                .contains("production-online-lpa/api (CODE_DEPLOY)"),
            "{}",
            e.message
        );
        assert!(e.message.contains("production-online-lpa/admin (EXTERNAL)"));
        assert!(e.hint.unwrap().contains("their own controller"));

        // Two CodeDeploy consumers: the hint names CodeDeploy; two external ones: their
        // own controller (cargo-mutants: the `all_codedeploy` test).
        s.services[3].controller = Controller::CodeDeploy;
        let hint = run(&s, std::slice::from_ref(&t), None)
            .unwrap()
            .refusal()
            .unwrap()
            .hint
            .unwrap();
        assert!(hint.contains("deploy them with CodeDeploy"), "{hint}");
        s.services[1].controller = Controller::External;
        s.services[3].controller = Controller::External;
        let hint = run(&s, std::slice::from_ref(&t), None)
            .unwrap()
            .refusal()
            .unwrap()
            .hint
            .unwrap();
        assert!(hint.contains("their own controller"), "{hint}");
        s.services[1].controller = Controller::CodeDeploy;

        // Excluding them with --services lifts the refusal.
        let only = vec!["front".to_string()];
        let plan = run(&s, &[t], Some(&only)).unwrap();
        assert!(plan.refusal().is_none());
        assert_eq!(names(&plan.redeploy), ["front"]);
        assert_eq!(names(&plan.excluded), ["api", "admin"]);
    }

    #[test]
    fn services_filter_narrows_and_rejects_unknown_names() {
        let s = sample();
        let t = target("opg_lpa_common_account_cleanup_notification_recipients");
        let only = vec!["api".to_string(), format!("{CLUSTER}/admin")];
        let plan = run(&s, std::slice::from_ref(&t), Some(&only)).unwrap();
        assert_eq!(names(&plan.redeploy), ["api", "admin"]);
        assert_eq!(names(&plan.excluded), ["front"]);
        assert_eq!(keys(&plan.secrets[0].excluded), ["front"]);

        // pdf exists but does not read it; `nope` does not exist at all.
        let only = vec!["pdf".to_string(), "nope".to_string(), "api".to_string()];
        let e = run(&s, std::slice::from_ref(&t), Some(&only)).unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert!(e.message.contains("pdf, nope"), "{}", e.message);
        assert_eq!(
            e.hint.as_deref(),
            Some("the services that read it are: front, api, admin")
        );
    }

    /// The environment's `services` list narrows what is redeployed, never what is shown:
    /// a reader outside it is in the plan, even CODE_DEPLOY (no refusal: not ours to
    /// deploy), and `--services` may not name it.
    #[test]
    fn readers_outside_the_environment_list_are_named_not_redeployed() {
        let mut s = sample();
        s.services[1].controller = Controller::CodeDeploy;
        let t = target("opg_lpa_common_account_cleanup_notification_recipients");
        let scope = vec!["front".to_string()];
        let plan = classify(
            std::slice::from_ref(&t),
            &s.services,
            &s.task_defs,
            &s.families,
            None,
            Some(&scope),
        )
        .unwrap();
        assert_eq!(names(&plan.redeploy), ["front"]);
        assert_eq!(names(&plan.outside), ["api", "admin"]);
        assert_eq!(keys(&plan.secrets[0].outside), ["api", "admin"]);
        assert!(plan.excluded.is_empty() && plan.unsupported.is_empty());
        assert!(plan.refusal().is_none());
        assert_eq!(plan.consumers().count(), 3);
        assert!(!plan.no_readers());

        let only = vec!["api".to_string()];
        let e = classify(
            std::slice::from_ref(&t),
            &s.services,
            &s.task_defs,
            &s.families,
            Some(&only),
            Some(&scope),
        )
        .unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert_eq!(
            e.message,
            "--services names api, outside the environment's services list"
        );

        // A pdf-only list leaves the shared secret with no reader to redeploy, three named.
        let scope = vec!["pdf".to_string()];
        let plan = classify(
            &[t],
            &s.services,
            &s.task_defs,
            &s.families,
            None,
            Some(&scope),
        )
        .unwrap();
        assert!(plan.redeploy.is_empty());
        assert_eq!(names(&plan.outside), ["front", "api", "admin"]);
    }

    /// Readers none of which would be redeployed refuse the write; a plan with something
    /// to redeploy, no reader at all, or only one-off families does not.
    #[test]
    fn a_plan_that_redeploys_no_reader_is_refused() {
        let mut s = sample();
        let t = target("opg_lpa_pdf_owner_password");
        let pdf = s.services[2].task_definition_arn.clone();
        s.task_defs.get_mut(&pdf).unwrap().refs[0].value_from = format!("{}::AWSPREVIOUS:", t.arn);
        let plan = run(&s, std::slice::from_ref(&t), None).unwrap();
        let e = plan.stranded_refusal().unwrap();
        assert_eq!(e.kind, Kind::Refused);
        assert_eq!(
            e.message,
            "nothing to redeploy: the services that read it would keep the old value: pdf (pinned)"
        );
        assert!(e.hint.unwrap().contains("repoint the pinned references"));

        let s = sample();
        for secret in [
            "nobody_reads_this",
            "api_rds_password",
            "opg_lpa_front_csrf_salt",
        ] {
            let plan = run(&s, &[target(secret)], None).unwrap();
            assert!(plan.stranded_refusal().is_none(), "{secret}");
        }
        let mut s = sample();
        s.services.retain(|x| x.name != "api");
        let plan = run(&s, &[target("api_rds_password")], None).unwrap();
        assert!(plan.redeploy.is_empty());
        assert!(plan.stranded_refusal().is_none(), "one-off families only");
    }

    #[test]
    fn unread_is_per_secret_and_counts_one_off_families() {
        let s = sample();
        let plan = run(
            &s,
            &[target("nobody_reads_this"), target("api_rds_password")],
            None,
        )
        .unwrap();
        assert!(plan.unread(0));
        assert!(!plan.unread(1));
        assert!(!plan.no_readers());
        let plan = run(&s, &[target("nobody_reads_this")], None).unwrap();
        assert!(plan.no_readers());
        // Read by a one-off family only: a reader.
        let mut s = sample();
        s.services.retain(|x| x.name != "api");
        let plan = run(&s, &[target("api_rds_password")], None).unwrap();
        assert!(plan.consumers().next().is_none());
        assert!(!plan.no_readers());
    }

    #[test]
    fn services_filter_with_no_consumers() {
        let s = sample();
        let only = vec!["api".to_string()];
        let e = run(&s, &[target("nobody")], Some(&only)).unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("no service reads it: drop --services")
        );
    }

    #[test]
    fn log_options_and_repository_credentials_count() {
        let t = target("registry");
        let mut s = sample();
        let pdf = s.services[2].task_definition_arn.clone();
        let refs = &mut s.task_defs.get_mut(&pdf).unwrap().refs;
        refs.push(RefSite {
            container: "web".into(),
            place: Place::RepositoryCredentials,
            value_from: t.arn.clone(),
        });
        let admin = s.services[3].task_definition_arn.clone();
        s.task_defs.get_mut(&admin).unwrap().refs.push(RefSite {
            container: "web".into(),
            place: Place::LogOption {
                name: "apikey".into(),
            },
            value_from: format!(
                "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:production/registry"
            ),
        });
        let plan = run(&s, &[t], None).unwrap();
        assert_eq!(names(&plan.redeploy), ["pdf", "admin"]);
        assert_eq!(
            plan.redeploy[0].reads[0].site.place,
            Place::RepositoryCredentials
        );
    }

    #[test]
    fn missing_task_definition_is_an_error_not_a_silent_skip() {
        let mut s = sample();
        s.task_defs.clear();
        assert!(run(&s, &[target("x")], None).is_err());
    }
}
