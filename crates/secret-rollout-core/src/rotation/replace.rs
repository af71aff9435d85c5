//! `plan`, `replace` and `redeploy`: from names to a plan, from a plan to a journaled run.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::clients::Clients;
use crate::config::Target;
use crate::error::{Error, Reach, Result};
use crate::journal::{self, Phase, RotationKind};
use crate::plan::{self, RotationPlan};
use crate::progress::{Event, Reporter};
use crate::rollout::{SecretWatch, ServiceRef};
use crate::secret::SecretInfo;
use crate::value::{self, SecretValue};

use super::decide::{self, Activity, Busy, Ours};
use super::observe;
use super::run::{lock_all, start_record, Run, SecretState};
use super::{confirmed, ConcurrentDeploy, Context, Operator, Report, Settings};

fn only(names: &[String]) -> Option<&[String]> {
    (!names.is_empty()).then_some(names)
}

/// What `replace` is asked to do.
#[derive(Debug)]
pub struct ReplaceRequest {
    /// Secret names (the target's prefix is added) or ARNs.
    pub secrets: Vec<String>,
    /// One new value per secret, in order, as given (before any `json_key` merge).
    pub values: Vec<SecretValue>,
    /// Replace this key of a JSON secret and keep the others.
    pub json_key: Option<String>,
    /// Only these consumers (empty: all).
    pub only_services: Vec<String>,
    /// Write even though the secret has rotation enabled.
    pub allow_rotation: bool,
    /// Write a `String` (unencrypted) parameter.
    pub allow_plaintext: bool,
}

/// What `plan` and `replace --dry-run` show: the plan, with nothing written. Consumers that
/// cannot be redeployed are in it (`refusal()` says why `replace` would stop).
/// A secret `replace` would refuse (scheduled for deletion, managed by another service,
/// rotation enabled without `allow_rotation`, no current version) is refused here too.
pub async fn plan(
    clients: &Clients,
    target: &Target,
    secrets: &[String],
    only_services: &[String],
    guards: impl Into<plan::Guards>,
) -> Result<RotationPlan> {
    let ids: Vec<String> = secrets.iter().map(|s| target.secret_id(s)).collect();
    let mut p = plan::plan(clients, target, &ids, only(only_services), guards).await?;
    p.busy = decide::busy_consumers(&p.activity, &Ours::default());
    Ok(p)
}

/// Before any write: what to do when a consumer in `services` is in the middle of a
/// deployment that is not `ours` ([`decide::busy_consumers`]), as `settings.concurrent`
/// says: refuse (exit 4, naming the service and since when), go on with a warning, or
/// wait for it to settle, reporting what it waits for, for at most `settings.timeout`
/// (the rollout that follows has its own). `Ok(true)`: it waited, so what was read
/// before is stale and should be read again. `seen`: what ECS said a moment ago (the
/// plan's), so the first look asks ECS nothing more.
pub(super) async fn settle_first(
    clients: &Clients,
    settings: &Settings,
    reporter: &dyn Reporter,
    services: &[ServiceRef],
    ours: &Ours,
    mut seen: Option<Vec<Activity>>,
) -> Result<bool> {
    let start = Instant::now();
    let mut told: Vec<(String, String, String)> = Vec::new();
    loop {
        let observed = match seen.take() {
            Some(seen) => seen,
            None => observe::activity(&clients.ecs, services).await?,
        };
        let busy = decide::busy_consumers(&observed, ours);
        let waited = start.elapsed();
        let Some(refusal) = decide::busy_refusal(&busy, None) else {
            return Ok(!told.is_empty());
        };
        match settings.concurrent {
            ConcurrentDeploy::Refuse => return Err(refusal),
            ConcurrentDeploy::Allow => {
                for b in &busy {
                    reporter.report(&Event::Warning {
                        text: format!(
                            "going on (--allow-concurrent-deploy) although {}",
                            decide::busy_line(b)
                        ),
                    });
                }
                return Ok(false);
            }
            ConcurrentDeploy::Wait => {
                if waited >= settings.timeout {
                    return Err(decide::busy_refusal(&busy, Some(waited)).unwrap_or(refusal));
                }
                let now: Vec<(String, String, String)> = busy.iter().map(key).collect();
                for b in busy.iter().filter(|b| !told.contains(&key(b))) {
                    reporter.report(&Event::WaitingForDeployment {
                        cluster: b.cluster.clone(),
                        service: b.service.clone(),
                        deployment_id: b.deployment.clone(),
                        state: b.state.clone(),
                        since: b.since,
                    });
                }
                told = now;
                let pause = settings
                    .max_poll
                    .min(settings.timeout.saturating_sub(waited))
                    .max(Duration::from_millis(10));
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// What a waiting event is about: it is sent again only when this changes.
fn key(b: &Busy) -> (String, String, String) {
    (b.service.clone(), b.deployment.clone(), b.state.clone())
}

/// `replace`: plans, refuses what cannot be redeployed, merges and checks the values
/// against the current ones, asks, then writes, redeploys, follows, verifies, and restores
/// on failure.
pub async fn replace(
    ctx: &Context<'_>,
    target: &Target,
    request: ReplaceRequest,
    operator: &dyn Operator,
) -> Result<Report> {
    if request.values.len() != request.secrets.len() {
        return Err(Error::bad_input(format!(
            "{} value(s) given for {} secret(s)",
            request.values.len(),
            request.secrets.len()
        ))
        .hint("give one value per secret, in the order the secrets are named"));
    }
    let ids: Vec<String> = request
        .secrets
        .iter()
        .map(|s| target.secret_id(s))
        .collect();
    // Plan, refuse what cannot be redeployed, and make sure no consumer is mid-deployment
    // (someone else's); after waiting for one (--wait), plan again: its PRIMARY, and
    // maybe the current version, have changed.
    let p = loop {
        let p = plan::plan(
            ctx.clients,
            target,
            &ids,
            only(&request.only_services),
            plan::Guards {
                allow_rotation: request.allow_rotation,
                allow_plaintext: request.allow_plaintext,
            },
        )
        .await?;
        if let Some(refusal) = p.refusal() {
            return Err(refusal);
        }
        if let Some(refusal) = p.images.refusal(ctx.settings.allow_image_change) {
            return Err(refusal);
        }
        let least: Vec<(&str, &str, u64)> = p
            .consumers
            .redeploy
            .iter()
            .map(|c| {
                let s = &c.service;
                (s.name.as_str(), s.strategy.as_str(), s.least_rollout_secs)
            })
            .collect();
        if let Some((message, hint)) =
            crate::rollout::strategy::too_slow_for(&least, ctx.settings.timeout.as_secs())
                .filter(|_| !ctx.settings.until_traffic)
        {
            return Err(Error::bad_input(message).hint(hint));
        }
        // --until traffic ends at the last traffic step, which no timeout can bring closer.
        let steps: Vec<(&str, &str, u64)> = p
            .consumers
            .redeploy
            .iter()
            .map(|c| {
                let s = &c.service;
                (s.name.as_str(), s.strategy.as_str(), s.least_traffic_secs)
            })
            .collect();
        if let Some((message, hint)) =
            crate::rollout::strategy::traffic_too_slow_for(&steps, ctx.settings.timeout.as_secs())
                .filter(|_| ctx.settings.until_traffic)
        {
            return Err(Error::bad_input(message).hint(hint));
        }
        let services: Vec<ServiceRef> = p.redeploy.iter().map(|(s, _)| s.clone()).collect();
        if !settle_first(
            ctx.clients,
            ctx.settings,
            ctx.reporter,
            &services,
            &Ours::default(),
            Some(p.activity.clone()),
        )
        .await?
        {
            break p;
        }
    };
    let json_key = request.json_key.as_deref();
    let given = request.values.into_iter().map(Some).collect();
    let values: Vec<SecretValue> =
        check_values(ctx.clients, &p, given, json_key, &ctx.settings.reach)
            .await?
            .into_iter()
            .flatten()
            .collect();
    confirmed(
        operator,
        &format!(
            "write a new version and redeploy {} service(s)?",
            p.redeploy.len()
        ),
        Some(&p),
    )?;
    replace_planned(ctx, &p, values, json_key).await
}

/// The checks of the new values against the planned secrets' current ones that `replace`
/// makes before its first write, shared with `plan` and `replace --dry-run` so that these
/// refuse the same way: merges `json_key` (the current value must be a JSON object with
/// that key, the member keep its type) and refuses an empty, oversized or unchanged value.
/// `given[i]` is the value for the `i`-th planned secret; `None` (a plan with no value
/// given) checks only that `json_key` can be replaced. Returns the values to write.
pub async fn check_values(
    clients: &Clients,
    plan: &RotationPlan,
    given: Vec<Option<SecretValue>>,
    json_key: Option<&str>,
    reach: &Reach,
) -> Result<Vec<Option<SecretValue>>> {
    let mut values = Vec::with_capacity(plan.secrets.len());
    for (planned, given) in plan.secrets.iter().zip(given) {
        let info = &planned.info;
        if given.is_none() && json_key.is_none() {
            values.push(None);
            continue;
        }
        // A parameter's current value is read only to merge a JSON key into it.
        let current = if crate::store::is_parameter(&info.arn) && json_key.is_none() {
            None
        } else {
            current_value(clients, &info.arn, &info.name, info.current.as_deref()).await?
        };
        let Some(given) = given else {
            if let Some(key) = json_key {
                match &current {
                    Some(current) => value::check_json_key(current, key)?,
                    None => {
                        return Err(no_current_for_json_key(&info.name));
                    }
                }
            }
            values.push(None);
            continue;
        };
        let current = current.as_ref().map(|value| value::Current {
            value,
            secret: &info.name,
            reach,
        });
        let new = merged(&info.name, current, json_key, given)?;
        value::validate(&new, current).map_err(|e| Error {
            message: format!("{}: {}", info.name, e.message),
            ..e
        })?;
        if let Some(spec) = &planned.parameter {
            crate::parameter::check_size(&info.name, spec, new.expose().len())?;
        }
        values.push(Some(new));
    }
    Ok(values)
}

fn no_current_for_json_key(name: &str) -> Error {
    Error::bad_input(format!(
        "{name} has no current value to replace a JSON key in"
    ))
    .hint("give the whole value, without --json-key")
}

/// The value of `version` (the current one), if there is one.
pub(super) async fn current_value(
    clients: &Clients,
    arn: &str,
    name: &str,
    version: Option<&str>,
) -> Result<Option<SecretValue>> {
    match version {
        Some(version) => Ok(Some(
            crate::store::value(clients, arn, name, version).await?,
        )),
        None => Ok(None),
    }
}

/// The value to write: `given`, or with `json_key`, `current` with that key replaced.
pub(super) fn merged(
    name: &str,
    current: Option<value::Current<'_>>,
    json_key: Option<&str>,
    given: SecretValue,
) -> Result<SecretValue> {
    match (json_key, current) {
        (None, _) => Ok(given),
        (Some(key), Some(current)) => value::merge_json_key(current, key, &given),
        (Some(_), None) => Err(no_current_for_json_key(name)),
    }
}

/// Replaces the planned secrets with `values` (one per planned secret, final: JSON keys
/// already merged), redeploys, follows, verifies, and restores on failure. Asks nothing.
pub async fn replace_planned(
    ctx: &Context<'_>,
    plan: &RotationPlan,
    values: Vec<SecretValue>,
    json_key: Option<&str>,
) -> Result<Report> {
    let Context { settings, .. } = *ctx;
    let arns: Vec<String> = plan.secrets.iter().map(|s| s.info.arn.clone()).collect();
    let locks = lock_all(settings, &plan.target.label(), &arns, None, ctx.rotation_id)?;
    let secrets = plan
        .secrets
        .iter()
        .map(|s| journal::StartedSecret {
            arn: s.info.arn.clone(),
            name: s.info.name.clone(),
            previous_version_id: s.info.current.clone(),
            // A parameter takes no request token: its write is journaled as an intent.
            request_token: s.parameter.is_none().then(Uuid::new_v4),
            json_key: json_key.map(str::to_string),
        })
        .collect();
    let services: Vec<ServiceRef> = plan.redeploy.iter().map(|(s, _)| s.clone()).collect();
    let mut started = journal::Started {
        on_failure: Some(settings.on_failure),
        ..start_record(ctx, RotationKind::Replace, &plan.target, secrets, &services)
    };
    for (planned, (_, previous)) in started.services.iter_mut().zip(&plan.redeploy) {
        planned.previous_deployment = previous.clone();
    }
    let states = started
        .secrets
        .iter()
        .map(|s| SecretState {
            arn: s.arn.clone(),
            name: s.name.clone(),
            previous: s.previous_version_id.clone(),
            token: s.request_token.map(|t| t.to_string()),
            written: false,
            restored: false,
        })
        .collect();
    let mut run = Run::start(ctx, started, states, services, locks)?;
    run.no_readers = plan.consumers.no_readers();
    run.listed_until = plan.images.listed_until;
    let values: Vec<Option<SecretValue>> = values.into_iter().map(Some).collect();
    plan.images.warn(ctx.reporter, crate::images::ALLOWED);
    let mut report = run.rotate(values).await?;
    report.image_changed = plan.images.changed_list();
    report.nothing_to_prove = plan
        .consumers
        .idle
        .iter()
        .filter(|c| crate::verdict::idle_has_nothing_to_prove(&c.service))
        .map(|c| ServiceRef {
            cluster: c.service.cluster.clone(),
            service: c.service.name.clone(),
        })
        .collect();
    Ok(report)
}

/// What `redeploy` is asked to do: these services, or every consumer of a secret.
#[derive(Debug, Clone, Default)]
pub struct RedeployRequest {
    /// Services by name (with `secret`: only these of its consumers).
    pub services: Vec<String>,
    /// Every service that reads this secret; the proof is then "holds its current version".
    pub secret: Option<String>,
}

/// `redeploy`: forces new deployments, follows and verifies them (no write). With a
/// secret, the new tasks must have started after its current version was created; without
/// one, the proof is "started by the new deployment". With a secret, its lock is taken
/// for the run and a held lock or an unfinished rotation of it is refused (exit 4) before
/// anything is deployed, as `replace` refuses them.
pub async fn redeploy(
    ctx: &Context<'_>,
    target: &Target,
    request: RedeployRequest,
    operator: &dyn Operator,
) -> Result<Report> {
    let clients = ctx.clients;
    let mut locks: Option<Vec<crate::lock::Lock>> = None;
    let (services, info) = loop {
        let (services, info) = redeploy_targets(clients, target, &request).await?;
        // With a secret: its lock, as `replace` takes it, before anything is deployed.
        // Its readers redeployed in the middle of someone else's rotation of it (between
        // its write and its proof, or during its restore) would muddle that rotation's
        // proof and restore; and one left unfinished is finished by `resume`, not by
        // this. Held to the end, with its lease renewed in a team state.
        if let (None, Some(info)) = (&locks, &info) {
            locks = Some(lock_all(
                ctx.settings,
                &target.label(),
                std::slice::from_ref(&info.arn),
                None,
                ctx.rotation_id,
            )?);
        }
        let refs: Vec<ServiceRef> = services.iter().map(|(r, _)| r.clone()).collect();
        if !settle_first(
            clients,
            ctx.settings,
            ctx.reporter,
            &refs,
            &Ours::default(),
            None,
        )
        .await?
        {
            break (services, info);
        }
    };
    if services.is_empty() {
        return Err(
            Error::refused("nothing to redeploy: no running service reads that secret").hint(
                "check the name with secret-rollout plan SECRET, or name services with --services",
            ),
        );
    }
    let names: Vec<String> = services.iter().map(|(r, _)| r.service.clone()).collect();
    let refs: Vec<ServiceRef> = services.into_iter().map(|(r, _)| r).collect();
    let images = crate::images::guard(
        clients,
        &refs,
        ctx.settings.allow_image_change,
        ctx.reporter,
    )
    .await?;
    confirmed(operator, &format!("redeploy {}?", names.join(", ")), None)?;
    let locks = locks.unwrap_or_default();
    let mut report = redeploy_services(ctx, target, refs, info.as_ref(), locks).await?;
    report.image_changed = images.changed_list();
    Ok(report)
}

/// The services `redeploy` is asked to redeploy, each with its PRIMARY now, and the secret
/// whose consumers they are; refuses those a forced new deployment does not roll out.
async fn redeploy_targets(
    clients: &Clients,
    target: &Target,
    request: &RedeployRequest,
) -> Result<(Vec<(ServiceRef, Option<String>)>, Option<SecretInfo>)> {
    Ok(match &request.secret {
        Some(name) => {
            let info = crate::store::describe(clients, &target.secret_id(name)).await?;
            let (consumers, redeploy) = plan::consumers_of(
                clients,
                target,
                std::slice::from_ref(&info),
                only(&request.services),
            )
            .await?;
            if let Some(refusal) = consumers.refusal() {
                return Err(refusal);
            }
            (redeploy, Some(info))
        }
        None => {
            let found = plan::find_services(clients, target, &request.services).await?;
            let infos: Vec<_> = found.iter().map(|(_, _, info)| info.clone()).collect();
            if let Some(refusal) = decide::redeploy_refusal(&infos) {
                return Err(refusal);
            }
            let found = found.into_iter().map(|(r, p, _)| (r, p)).collect();
            (found, None)
        }
    })
}

async fn redeploy_services(
    ctx: &Context<'_>,
    target: &Target,
    services: Vec<ServiceRef>,
    secret: Option<&SecretInfo>,
    locks: Vec<crate::lock::Lock>,
) -> Result<Report> {
    let Context {
        clients, settings, ..
    } = *ctx;
    let secrets = secret
        .map(|s| journal::StartedSecret {
            arn: s.arn.clone(),
            name: s.name.clone(),
            previous_version_id: s.current.clone(),
            request_token: None,
            json_key: None,
        })
        .into_iter()
        .collect();
    let started = start_record(ctx, RotationKind::Redeploy, target, secrets, &services);
    let mut run = Run::start(ctx, started, Vec::new(), services, locks)?;
    // With a secret, the tasks must hold its version current at the start, by the
    // holding rule; without one, the proof is "started by our deployment".
    let (watch, version) = match secret.and_then(|s| Some((s, s.current.clone()?))) {
        Some((s, current)) => {
            let created = crate::store::created(clients, &s.arn, &s.name, &current).await?;
            let watch = SecretWatch::new(
                clients.sm.clone(),
                settings.consistency_margin,
                vec![(s.arn.clone(), s.name.clone(), current.clone(), created)],
            )
            .with_parameters(clients.ssm.clone());
            (Some(watch), current)
        }
        None => (None, "current".to_string()),
    };
    let deadline = Instant::now() + settings.timeout;
    let phase = run.phase(Phase::Rollout, watch, &version, deadline).await?;
    let message = match phase.outcome {
        crate::journal::PhaseOutcome::Superseded => phase.superseded_message(),
        _ if phase.changed_by_another() => phase.unexplained_message(),
        _ => decide::failure_message(&phase),
    };
    let outcome = decide::kept_outcome(Some(phase.outcome));
    run.finish(outcome, message, Some(phase), None, Vec::new())
}
