//! What a phase asks ECS before it redeploys: each service's PRIMARY deployment. The one
//! place in the rotation that reads the SDK's types.

use std::collections::BTreeMap;

use crate::rollout::{self, ServiceRef};

use super::decide::Primary;

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
        let described = match rollout::ecs::describe_services(ecs, &cluster, &names).await {
            Ok(described) => described,
            Err(e) => {
                out.unreadable.push((cluster, e.message));
                continue;
            }
        };
        for s in described {
            let primary = s
                .deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"));
            if let (Some(name), Some(p), Some(id)) =
                (s.service_name(), primary, primary.and_then(|p| p.id()))
            {
                out.found.insert(
                    ServiceRef {
                        cluster: cluster.clone(),
                        service: name.to_string(),
                    },
                    Primary {
                        id: id.to_string(),
                        created: p.created_at().map(|t| t.as_secs_f64()).unwrap_or(0.0),
                        // ECS's wording for a circuit-breaker rollback in progress.
                        rolling_back: p
                            .rollout_state_reason()
                            .is_some_and(|r| r.contains("rolling back")),
                    },
                );
            }
        }
    }
    out
}
