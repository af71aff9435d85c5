//! Where a rotation's target lives: a Secrets Manager secret or a Parameter Store
//! parameter. The rotation works over both with one set of records and decisions; the
//! few reads that differ branch here, on the target's id (`ssm:NAME` or a parameter ARN:
//! see [`crate::parameter`]).
//!
//! A parameter is described as a [`SecretInfo`] whose `current` is its latest version
//! number (what ECS reads), `last_changed` that version's `LastModifiedDate`, and whose
//! `name` is `ssm:NAME`, the form the command line takes, so every suggested command
//! (`history ssm:/p`, `redeploy --secret ssm:/p`) names it again.

use std::collections::BTreeMap;

use crate::aws::errors::{AwsError, Fault};
use crate::aws::ssm::{self, ParameterInfo};
use crate::clients::Clients;
use crate::error::{Error, Result};
use crate::parameter::{self, SCHEME};
use crate::secret::{self, SecretInfo, VersionInfo};
use crate::value::SecretValue;

/// Whether `id` (a command-line id, a journal's ARN or a display name) is a parameter.
pub fn is_parameter(id: &str) -> bool {
    parameter::is_parameter_target(id)
}

/// The name to send Parameter Store for `ssm:NAME` (or `NAME`).
pub fn parameter_name(display: &str) -> &str {
    display.strip_prefix(SCHEME).unwrap_or(display)
}

/// A Parameter Store failure as the user should see it.
pub fn ssm_error(name: &str, what: &str, e: AwsError) -> Error {
    match e.fault {
        Fault::NotFound => {
            let err = Error::bad_input(format!("parameter {name} not found")).hint(
                "check the name and region (aws ssm describe-parameters), or the environment's parameter_prefix",
            );
            e.attach(err)
        }
        Fault::AccessDenied => {
            let err = Error::credentials(format!("not allowed to {what} parameter {name}"))
                .hint("use a role allowed ssm:GetParameter, GetParameterHistory and PutParameter, and kms:Decrypt and kms:Encrypt on the parameter's key");
            e.attach(err)
        }
        _ => {
            let message = format!("could not {what} parameter {name}: {}", e.detail);
            e.into_error(
                message,
                "check the network and the endpoint, then rerun; nothing was changed by this step",
            )
        }
    }
}

/// The parameter `id` names (`ssm:NAME` or its ARN): every kept version, no value.
pub async fn describe_parameter(clients: &Clients, id: &str) -> Result<ParameterInfo> {
    let name = match parameter::parse_target(id, None) {
        Ok(t) => t.name,
        Err(e) => return Err(e),
    };
    ssm::describe(&clients.ssm, &name)
        .await
        .map_err(|e| ssm_error(&name, "describe", e))
}

/// A parameter as the rotation's secret description (module doc).
pub fn info_of(p: &ParameterInfo) -> SecretInfo {
    let latest = p.latest();
    SecretInfo {
        arn: p.arn.clone(),
        name: format!("{SCHEME}{}", p.name),
        current: latest.map(|(v, _)| v.to_string()),
        previous: None,
        stages: BTreeMap::new(),
        rotation_enabled: false,
        deleted_date: None,
        owning_service: None,
        last_changed: latest.map(|(_, m)| m),
        last_rotated: None,
    }
}

/// Describes a secret or a parameter by its id.
pub async fn describe(clients: &Clients, id: &str) -> Result<SecretInfo> {
    if is_parameter(id) {
        Ok(info_of(&describe_parameter(clients, id).await?))
    } else {
        secret::describe(&clients.sm, id).await
    }
}

/// When `version` of the target was created (AWS's clock): a secret version's
/// `CreatedDate`, a parameter version's `LastModifiedDate`. `name` is the display name
/// (a parameter's `ssm:NAME`).
pub async fn created(
    clients: &Clients,
    arn: &str,
    name: &str,
    version: &str,
) -> Result<Option<f64>> {
    if is_parameter(arn) {
        let info = ssm::describe(&clients.ssm, parameter_name(name))
            .await
            .map_err(|e| ssm_error(name, "describe", e))?;
        Ok(info
            .history
            .iter()
            .find(|h| h.version.to_string() == version)
            .map(|h| h.modified))
    } else {
        Ok(secret::versions(&clients.sm, arn)
            .await?
            .into_iter()
            .find(|v| v.id == version)
            .and_then(|v| v.created))
    }
}

/// Every kept version of a target, with its creation date. A parameter's versions are
/// numbered; the latest (what ECS reads) carries `latest`, each its labels too.
pub async fn versions(clients: &Clients, arn: &str, name: &str) -> Result<Vec<VersionInfo>> {
    if !is_parameter(arn) {
        return secret::versions(&clients.sm, arn).await;
    }
    let info = ssm::describe(&clients.ssm, parameter_name(name))
        .await
        .map_err(|e| ssm_error(name, "describe", e))?;
    let latest = info.latest().map(|(v, _)| v);
    Ok(info
        .history
        .iter()
        .map(|h| VersionInfo {
            id: h.version.to_string(),
            stages: (Some(h.version) == latest)
                .then(|| "latest".to_string())
                .into_iter()
                .chain(h.labels.iter().cloned())
                .collect(),
            created: Some(h.modified),
        })
        .collect())
}

/// The value of `version` of a target: read only for a `--json-key` merge or a restore.
pub async fn value(clients: &Clients, arn: &str, name: &str, version: &str) -> Result<SecretValue> {
    if is_parameter(arn) {
        let v: u64 = version.parse().map_err(|_| {
            Error::local(format!(
                "parameter version {version} of {name} is not a number"
            ))
        })?;
        ssm::value(&clients.ssm, parameter_name(name), v)
            .await
            .map_err(|e| ssm_error(name, "read", e))
    } else {
        secret::value(&clients.sm, arn, version).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parameter::{HistoryEntry, WriteSpec};

    #[test]
    fn a_parameter_is_described_by_its_latest_version_under_its_command_line_name() {
        let p = ParameterInfo {
            name: "/production/db".into(),
            arn: "arn:aws:ssm:eu-west-1:123456789012:parameter/production/db".into(),
            history: vec![
                HistoryEntry {
                    version: 3,
                    modified: 10.0,
                    user: None,
                    labels: vec![],
                },
                HistoryEntry {
                    version: 4,
                    modified: 20.0,
                    user: None,
                    labels: vec![],
                },
            ],
            spec: WriteSpec {
                kind: "SecureString".into(),
                key_id: None,
                tier: "Standard".into(),
                data_type: "text".into(),
            },
        };
        let info = info_of(&p);
        assert_eq!(info.name, "ssm:/production/db");
        assert_eq!(info.current.as_deref(), Some("4"));
        assert_eq!(info.last_changed, Some(20.0));
        assert!(is_parameter(&info.arn));
        assert!(is_parameter(&info.name));
        assert!(!is_parameter("production/db"));
        assert_eq!(parameter_name(&info.name), "/production/db");
    }
}
