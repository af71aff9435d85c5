//! `sync`: rolls out values that changed outside secret-rollout (a rotation function, the
//! console, Terraform). For each secret, the consumers whose running tasks may hold a
//! value older than the current one, by the rule `status` uses ([`crate::status`], on
//! [`crate::holding`]): stale tasks, and tasks that cannot be told. Those services, and no
//! other, are redeployed, followed and proven to hold the current version, with the
//! journaled run of `replace` and nothing written.
//!
//! A secret whose rotation is under way (`AWSPENDING` on another version than
//! `AWSCURRENT`) is left for later: `AWSCURRENT` is about to move, and a redeploy now would
//! launch tasks onto the value being replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::clients::Clients;
use crate::config::Target;
use crate::error::Result;
use crate::journal::{self, OnFailure, RotationKind};
use crate::rollout::ServiceRef;
use crate::status::{self, Status};

use super::decide::Ours;
use super::replace::settle_first;
use super::run::{lock_all, start_record, Run, SecretState};
use super::{confirmed, Context, Operator, Report};

/// What `sync` is asked about: these secrets (names, the target's prefix added, or ARNs),
/// or, empty, every secret the environment's services read.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Secret names or ARNs.
    pub secrets: Vec<String>,
}

/// One secret as `sync` sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncSecret {
    /// Full ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// The version carrying `AWSCURRENT`: the one the redeployed tasks must hold.
    pub current: Option<String>,
    /// A rotation is under way to this version: the secret waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotating_to: Option<String>,
    /// Services (in the environment's list) that run tasks which may hold an older value.
    pub stale_services: Vec<String>,
}

/// One service `sync` redeploys, or names without redeploying.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncService {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// Running tasks that hold an older value.
    pub stale_tasks: usize,
    /// Running tasks that cannot be told (they may hold an older value).
    pub unproven_tasks: usize,
    /// The secrets they may hold an older value of.
    pub secrets: Vec<String>,
    /// Its PRIMARY deployment now (never ours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
}

/// What `sync` will do: the preview it shows before asking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncPlan {
    /// Environment label.
    pub environment: String,
    /// The secrets checked.
    pub secrets: Vec<SyncSecret>,
    /// The services to redeploy, in the order `status` lists them.
    pub redeploy: Vec<SyncService>,
    /// Readers outside the environment's `services` list whose tasks may hold an older
    /// value: named, not redeployed (a rotation of the environment does not touch them).
    pub left_out: Vec<SyncService>,
    /// Notes (a referenced secret that does not exist, a rotation under way).
    pub notes: Vec<String>,
}

impl SyncPlan {
    /// Nothing to redeploy.
    pub fn nothing_to_do(&self) -> bool {
        self.redeploy.is_empty()
    }

    /// The secrets the run proves: those a redeployed service may hold an older value of.
    pub fn proven_secrets(&self) -> Vec<&SyncSecret> {
        let named: BTreeSet<&str> = self
            .redeploy
            .iter()
            .flat_map(|s| s.secrets.iter().map(String::as_str))
            .collect();
        self.secrets
            .iter()
            .filter(|s| named.contains(s.name.as_str()))
            .collect()
    }
}

/// Decides what to redeploy from a status (pure): every service in the list with a stale
/// or a cannot-be-told task for a secret that is not being rotated.
pub fn decide(environment: &str, st: &Status) -> SyncPlan {
    let rotating: BTreeMap<&str, &str> = st
        .secrets
        .iter()
        .filter_map(|s| Some((s.arn.as_str(), s.pending.as_deref()?)))
        .collect();
    let mut notes = st.notes.clone();
    for s in &st.secrets {
        if let Some(p) = &s.pending {
            notes.push(format!(
                "{} is being rotated (AWSPENDING on {}): its readers wait until AWSCURRENT moves",
                s.name,
                super::run::short(p)
            ));
        }
    }
    let mut redeploy = Vec::new();
    let mut left_out = Vec::new();
    let mut stale_by_secret: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for svc in &st.services {
        let mut stale: BTreeSet<&str> = BTreeSet::new();
        let mut unproven: BTreeSet<&str> = BTreeSet::new();
        let mut secrets = Vec::new();
        for read in &svc.secrets {
            if rotating.contains_key(read.secret_arn.as_str()) {
                continue;
            }
            // Baking tasks (an old deployment with no production traffic, until its bake
            // ends) hold an older value all the same: "nothing to sync" says every running
            // task holds the current one, so they count as stale here, as before status
            // told them apart.
            if read.stale_tasks.is_empty()
                && read.unproven_tasks.is_empty()
                && read.baking_tasks.is_empty()
            {
                continue;
            }
            stale.extend(read.stale_tasks.iter().map(String::as_str));
            stale.extend(read.baking_tasks.iter().map(String::as_str));
            unproven.extend(read.unproven_tasks.iter().map(String::as_str));
            secrets.push(read.secret_name.clone());
        }
        if secrets.is_empty() {
            continue;
        }
        let unproven_only = unproven.difference(&stale).count();
        let entry = SyncService {
            cluster: svc.cluster.clone(),
            service: svc.name.clone(),
            stale_tasks: stale.len(),
            unproven_tasks: unproven_only,
            secrets: secrets.clone(),
            primary: svc
                .deployments
                .iter()
                .find(|d| d.is_primary())
                .map(|d| d.id.clone()),
        };
        if svc.outside_services_list {
            left_out.push(entry);
        } else {
            for s in secrets {
                stale_by_secret.entry(s).or_default().push(svc.name.clone());
            }
            redeploy.push(entry);
        }
    }
    SyncPlan {
        environment: environment.to_string(),
        secrets: st
            .secrets
            .iter()
            .map(|s| SyncSecret {
                arn: s.arn.clone(),
                name: s.name.clone(),
                current: s.current.clone(),
                rotating_to: s.pending.clone(),
                stale_services: stale_by_secret.remove(&s.name).unwrap_or_default(),
            })
            .collect(),
        redeploy,
        left_out,
        notes,
    }
}

/// Reads the environment and decides what `sync` would redeploy. Writes nothing.
pub async fn sync_plan(
    clients: &Clients,
    target: &Target,
    request: &SyncRequest,
    state_dir: Option<&Path>,
) -> Result<SyncPlan> {
    let ids: Vec<String> = request
        .secrets
        .iter()
        .map(|s| target.secret_id(s))
        .collect();
    let st = status::gather(clients, target, &ids, state_dir).await?;
    Ok(decide(&target.label(), &st))
}

/// `sync`: plans, asks, then redeploys exactly the services of the plan, follows them and
/// proves that every running task holds each secret's current version. `Ok(None)`: there
/// was nothing to do (no journal, no deployment). `plan`, when given, is the one the
/// caller showed (a watcher plans on its own schedule); otherwise it is made here.
pub async fn sync(
    ctx: &Context<'_>,
    target: &Target,
    request: &SyncRequest,
    plan: Option<SyncPlan>,
    operator: &dyn Operator,
) -> Result<(SyncPlan, Option<Report>)> {
    let state_dir = Some(ctx.settings.state_dir.as_path());
    let mut plan = match plan {
        Some(p) => p,
        None => sync_plan(ctx.clients, target, request, state_dir).await?,
    };
    loop {
        if plan.nothing_to_do() {
            return Ok((plan, None));
        }
        let services = refs(&plan);
        // Someone else deploying one of them: refuse, wait or go on, as for replace;
        // after a wait, what is stale may have changed.
        if !settle_first(
            ctx.clients,
            ctx.settings,
            ctx.reporter,
            &services,
            &Ours::default(),
            None,
        )
        .await?
        {
            break;
        }
        plan = sync_plan(ctx.clients, target, request, state_dir).await?;
    }
    // A redeploy also ships what was pushed under a moved image tag: refused (exit 4)
    // before any deployment unless --allow-image-change (issue 18).
    let images = crate::images::guard(
        ctx.clients,
        &refs(&plan),
        ctx.settings.allow_image_change,
        ctx.reporter,
    )
    .await?;
    let names: Vec<&str> = plan.redeploy.iter().map(|s| s.service.as_str()).collect();
    confirmed(
        operator,
        &format!(
            "redeploy {} (they may run a value older than the current one)?",
            names.join(", ")
        ),
        None,
    )?;
    let mut report = run(ctx, target, &plan).await?;
    report.image_changed = images.changed_list();
    Ok((plan, Some(report)))
}

fn refs(plan: &SyncPlan) -> Vec<ServiceRef> {
    plan.redeploy
        .iter()
        .map(|s| ServiceRef {
            cluster: s.cluster.clone(),
            service: s.service.clone(),
        })
        .collect()
}

/// The `name` filter values of a watcher's ListSecrets (AWS takes at most 10 per filter,
/// each a prefix): the names themselves when there are at most 10, else their longest
/// common prefix (none: no filter; the listing is then cut to the watched secrets here).
pub fn name_filters(names: &[String]) -> Vec<String> {
    if names.len() <= 10 {
        return names.to_vec();
    }
    let first = names[0].as_str();
    let len = names.iter().skip(1).fold(first.len(), |len, n| {
        first
            .bytes()
            .zip(n.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count()
    });
    match first.get(..len) {
        Some(p) if !p.is_empty() => vec![p.to_string()],
        _ => Vec::new(),
    }
}

/// What a watcher remembers of a secret between two looks.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// `LastChangedDate`.
    pub last_changed: Option<f64>,
    /// `AWSCURRENT`.
    pub current: Option<String>,
}

/// The watched secrets (`arn`s) whose listing differs from what was seen (or that were not
/// seen yet), and among them those being rotated (`AWSPENDING` on another version): these
/// wait. Listed secrets that are not watched are ignored.
pub fn changed(
    seen: &BTreeMap<String, Seen>,
    watched: &BTreeSet<String>,
    listed: &[crate::secret::Listed],
) -> (Vec<String>, Vec<String>) {
    let mut changed = Vec::new();
    let mut rotating = Vec::new();
    for l in listed.iter().filter(|l| watched.contains(&l.arn)) {
        let now = Seen {
            last_changed: l.last_changed,
            current: l.current.clone(),
        };
        if l.pending.is_some() {
            rotating.push(l.arn.clone());
        } else if seen.get(&l.arn) != Some(&now) {
            changed.push(l.arn.clone());
        }
    }
    (changed, rotating)
}

/// The journaled run: a start record naming each proven secret's current version, the
/// redeploys, the follow, the proof. On failure nothing is restored (nothing was written).
async fn run(ctx: &Context<'_>, target: &Target, plan: &SyncPlan) -> Result<Report> {
    let proven = plan.proven_secrets();
    let arns: Vec<String> = proven.iter().map(|s| s.arn.clone()).collect();
    let locks = lock_all(ctx.settings, &target.label(), &arns, None, ctx.rotation_id)?;
    let secrets: Vec<journal::StartedSecret> = proven
        .iter()
        .map(|s| journal::StartedSecret {
            arn: s.arn.clone(),
            name: s.name.clone(),
            previous_version_id: s.current.clone(),
            request_token: None,
            json_key: None,
        })
        .collect();
    let services = refs(plan);
    let mut started = journal::Started {
        on_failure: Some(OnFailure::Keep),
        ..start_record(ctx, RotationKind::Sync, target, secrets, &services)
    };
    for (planned, s) in started.services.iter_mut().zip(&plan.redeploy) {
        planned.previous_deployment = s.primary.clone();
    }
    let states = started
        .secrets
        .iter()
        .map(|s| SecretState {
            arn: s.arn.clone(),
            name: s.name.clone(),
            previous: s.previous_version_id.clone(),
            token: None,
            written: false,
            restored: false,
        })
        .collect();
    let n = started.secrets.len();
    let mut run = Run::start(ctx, started, states, services, locks)?;
    run.rotate(vec![None; n]).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::model::DeploymentObs;
    use crate::status::{SecretRead, SecretState, ServiceStatus};

    const DB: &str = "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf";
    const KEY: &str = "arn:aws:secretsmanager:eu-west-1:1:secret:key-AbCdEf";

    fn secret(arn: &str, name: &str, pending: Option<&str>) -> SecretState {
        SecretState {
            arn: arn.into(),
            name: name.into(),
            current: Some("v2".into()),
            since: Some(100.0),
            created: Some(90.0),
            moved_back_from: None,
            rotated_at: None,
            pending: pending.map(str::to_string),
        }
    }

    fn read(arn: &str, name: &str, stale: &[&str], unproven: &[&str]) -> SecretRead {
        SecretRead {
            secret_arn: arn.into(),
            secret_name: name.into(),
            current_version: Some("v2".into()),
            tasks: 2,
            stale_tasks: stale.iter().map(|s| s.to_string()).collect(),
            baking_tasks: vec![],
            unproven_tasks: unproven.iter().map(|s| s.to_string()).collect(),
            pinned: vec![],
        }
    }

    fn svc(name: &str, outside: bool, reads: Vec<SecretRead>) -> ServiceStatus {
        ServiceStatus {
            cluster: "c".into(),
            name: name.into(),
            desired: 2,
            running: 2,
            pending: 0,
            deployments: vec![DeploymentObs {
                id: format!("ecs-svc/{name}"),
                status: "PRIMARY".into(),
                rollout_state: "COMPLETED".into(),
                ..Default::default()
            }],
            tasks: vec![],
            images: Vec::new(),
            secrets: reads,
            nothing_to_prove: false,
            outside_services_list: outside,
            staged_deployment: None,
        }
    }

    /// Exactly the services with a stale or cannot-be-told task are redeployed; a reader
    /// that holds the current value, a bystander of another secret, a secret being
    /// rotated, and a reader outside the list are not (the last is named).
    #[test]
    fn redeploys_exactly_the_services_that_may_hold_an_older_value() {
        let st = Status {
            secrets: vec![secret(DB, "db", None), secret(KEY, "key", Some("v3"))],
            services: vec![
                svc("api", false, vec![read(DB, "db", &["a1"], &["a2"])]),
                svc("front", false, vec![read(DB, "db", &[], &["f1"])]),
                svc("fresh", false, vec![read(DB, "db", &[], &[])]),
                svc("worker", false, vec![read(KEY, "key", &["w1"], &[])]),
                svc("admin", true, vec![read(DB, "db", &["x1"], &[])]),
            ],
            stale: 3,
            baking: 0,
            notes: vec![],
        };
        let p = decide("production", &st);
        let names: Vec<(&str, usize, usize)> = p
            .redeploy
            .iter()
            .map(|s| (s.service.as_str(), s.stale_tasks, s.unproven_tasks))
            .collect();
        assert_eq!(names, [("api", 1, 1), ("front", 0, 1)]);
        assert_eq!(p.left_out.len(), 1);
        assert_eq!(p.left_out[0].service, "admin");
        assert_eq!(p.secrets[0].stale_services, ["api", "front"]);
        assert_eq!(p.secrets[1].rotating_to.as_deref(), Some("v3"));
        assert!(p.notes.iter().any(|n| n.contains("key is being rotated")));
        let proven: Vec<&str> = p.proven_secrets().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(proven, ["db"]);
        assert_eq!(p.redeploy[0].primary.as_deref(), Some("ecs-svc/api"));
    }

    #[test]
    fn name_filters_stay_within_awss_ten_values() {
        let few: Vec<String> = (0..10).map(|i| format!("production/s{i}")).collect();
        assert_eq!(name_filters(&few), few);
        let many: Vec<String> = (0..11).map(|i| format!("production/s{i}")).collect();
        assert_eq!(name_filters(&many), ["production/s"]);
        let apart = vec!["a/x".to_string(); 11]
            .into_iter()
            .chain(["b/y".to_string()])
            .collect::<Vec<_>>();
        assert!(name_filters(&apart).is_empty());
    }

    #[test]
    fn a_change_is_a_new_last_changed_or_current_and_a_pending_one_waits() {
        let listed = |arn: &str, l: f64, c: &str, p: Option<&str>| crate::secret::Listed {
            arn: arn.into(),
            name: arn.into(),
            last_changed: Some(l),
            current: Some(c.into()),
            pending: p.map(str::to_string),
        };
        let seen: BTreeMap<String, Seen> = [
            (
                "a".to_string(),
                Seen {
                    last_changed: Some(1.0),
                    current: Some("v1".into()),
                },
            ),
            (
                "b".to_string(),
                Seen {
                    last_changed: Some(1.0),
                    current: Some("v1".into()),
                },
            ),
        ]
        .into();
        let watched: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
        let (changed, rotating) = changed(
            &seen,
            &watched,
            &[
                listed("a", 1.0, "v1", None),
                listed("b", 2.0, "v1", None),
                listed("c", 1.0, "v1", None),
                listed("d", 3.0, "v1", Some("v2")),
                listed("e", 9.0, "v9", None),
            ],
        );
        assert_eq!(changed, ["b", "c"]);
        assert_eq!(rotating, ["d"]);
    }

    /// Tasks of an old deployment baking beside a blue/green one (no production traffic)
    /// hold an older value: not "nothing to sync".
    #[test]
    fn baking_tasks_are_not_nothing_to_do() {
        let baking = SecretRead {
            baking_tasks: vec!["b1".into()],
            ..read(DB, "db", &[], &[])
        };
        let st = Status {
            secrets: vec![secret(DB, "db", None)],
            services: vec![svc("web", false, vec![baking])],
            stale: 0,
            baking: 1,
            notes: vec![],
        };
        let p = decide("production", &st);
        assert!(!p.nothing_to_do());
        assert_eq!(p.redeploy.len(), 1);
        assert_eq!(p.redeploy[0].service, "web");
    }

    #[test]
    fn nothing_stale_is_nothing_to_do() {
        let st = Status {
            secrets: vec![secret(DB, "db", None)],
            services: vec![svc("api", false, vec![read(DB, "db", &[], &[])])],
            stale: 0,
            baking: 0,
            notes: vec![],
        };
        let p = decide("production", &st);
        assert!(p.nothing_to_do());
        assert!(p.proven_secrets().is_empty());
    }
}
