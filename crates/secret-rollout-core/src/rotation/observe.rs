//! What a phase asks ECS before it redeploys: each service's PRIMARY deployment. The one
//! place in the rotation that asks ECS for them (through the adapter's observations).

use std::collections::BTreeMap;

use crate::rollout::ServiceRef;

use crate::error::Result;

use super::decide::{Activity, Primary};

/// Each service's PRIMARY, and the clusters ECS could not describe (with why).
#[derive(Debug, Default)]
pub(super) struct Primaries {
    /// Per service (absent: not described, or without a PRIMARY).
    pub found: BTreeMap<ServiceRef, Primary>,
    /// Clusters whose services could not be described, with the error.
    pub unreadable: Vec<(String, String)>,
}

/// PRIMARY deployment id, creation time, and whether it is a circuit-breaker rollback, of
/// every service, batched per cluster.
pub(super) async fn primaries(ecs: &aws_sdk_ecs::Client, services: &[ServiceRef]) -> Primaries {
    let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in services {
        by_cluster
            .entry(s.cluster.clone())
            .or_default()
            .push(s.service.clone());
    }
    let mut out = Primaries::default();
    for (cluster, names) in by_cluster {
        let described = match crate::aws::ecs::describe_services(ecs, &cluster, &names).await {
            Ok(described) => described,
            Err(e) => {
                out.unreadable.push((cluster, e.message));
                continue;
            }
        };
        for s in described {
            if let Some(p) = s.primary().filter(|_| !s.info.name.is_empty()) {
                out.found.insert(
                    ServiceRef {
                        cluster: cluster.clone(),
                        service: s.info.name.clone(),
                    },
                    Primary {
                        id: p.id.clone(),
                        created: p.created_at,
                        rolling_back: s.rolling_back(),
                    },
                );
            }
        }
    }
    out
}

/// Every service's deployments, and for blue/green, linear and canary services their
/// service deployments under way: what [`super::decide::busy_consumers`] reads before a
/// write. An error here stops the run before it writes.
pub(super) async fn activity(
    ecs: &aws_sdk_ecs::Client,
    services: &[ServiceRef],
) -> Result<Vec<Activity>> {
    let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in services {
        by_cluster
            .entry(s.cluster.clone())
            .or_default()
            .push(s.service.clone());
    }
    let mut out = Vec::with_capacity(services.len());
    for (cluster, names) in by_cluster {
        let described = crate::aws::ecs::describe_services(ecs, &cluster, &names)
            .await
            .map_err(|e| crate::discovery::ecs_error(&cluster, e))?;
        for s in described {
            let service_deployments = if s.info.staged() {
                crate::aws::ecs::service_deployments_under_way(ecs, &cluster, &s.info.name)
                    .await
                    .map_err(|e| crate::discovery::ecs_error(&cluster, e))?
            } else {
                Vec::new()
            };
            out.push(Activity {
                service: ServiceRef {
                    cluster: cluster.clone(),
                    service: s.info.name.clone(),
                },
                staged: s.info.staged(),
                deployments: s.deployments,
                service_deployments,
            });
        }
    }
    Ok(out)
}
