//! The secret and its versions: thin Secrets Manager calls and the pure guards on what
//! `DescribeSecret` says. Values travel only as `SecretString` and never reach an error.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::Client;
use serde::Serialize;

use crate::clients::{describe_sdk_error, error_code, refused_credentials};
use crate::error::{Error, Result};
use crate::value::SecretValue;

/// What `DescribeSecret` says about a secret (no value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretInfo {
    /// Full ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Version holding AWSCURRENT.
    pub current: Option<String>,
    /// Version holding AWSPREVIOUS.
    pub previous: Option<String>,
    /// Labelled versions and their stages.
    pub stages: BTreeMap<String, Vec<String>>,
    /// Rotation is configured and on.
    pub rotation_enabled: bool,
    /// Scheduled for deletion at (epoch seconds).
    pub deleted_date: Option<f64>,
    /// Managed by another AWS service.
    pub owning_service: Option<String>,
    /// Last change to the secret (a write or a label move), epoch seconds.
    pub last_changed: Option<f64>,
}

/// One version, as `ListSecretVersionIds` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionInfo {
    /// Version id.
    pub id: String,
    /// Its staging labels (empty: deprecated).
    pub stages: Vec<String>,
    /// Creation date, epoch seconds.
    pub created: Option<f64>,
}

fn sm_error<E, R>(
    secret: &str,
    what: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(refused) = refused_credentials(e) {
        return refused;
    }
    match error_code(e).as_deref() {
        Some("ResourceNotFoundException") => Error::bad_input(format!("secret {secret} not found"))
            .hint("check the name and region (aws secretsmanager list-secrets), or the environment's secret_prefix"),
        Some("AccessDeniedException") => Error::credentials(format!("not allowed to {what} secret {secret}"))
            .hint("use a role allowed secretsmanager:DescribeSecret, GetSecretValue, PutSecretValue and UpdateSecretVersionStage"),
        _ => Error::aws(format!("could not {what} secret {secret}: {}", describe_sdk_error(e)))
            .hint("check the network and the endpoint, then rerun; nothing was changed by this step"),
    }
}

/// Describes a secret by name or ARN.
pub async fn describe(sm: &Client, id: &str) -> Result<SecretInfo> {
    let d = sm
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| sm_error(id, "describe", &e))?;
    let stages: BTreeMap<String, Vec<String>> = d
        .version_ids_to_stages()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let with = |label: &str| {
        stages
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == label))
            .map(|(v, _)| v.clone())
    };
    Ok(SecretInfo {
        arn: d.arn().unwrap_or(id).to_string(),
        name: d.name().unwrap_or(id).to_string(),
        current: with("AWSCURRENT"),
        previous: with("AWSPREVIOUS"),
        rotation_enabled: d.rotation_enabled().unwrap_or(false),
        deleted_date: d.deleted_date().map(|t| t.as_secs_f64()),
        owning_service: d.owning_service().map(str::to_string),
        last_changed: d.last_changed_date().map(|t| t.as_secs_f64()),
        stages,
    })
}

/// The guards that must pass before any write (pure).
pub fn guard(info: &SecretInfo, allow_rotation: bool) -> Result<()> {
    if info.deleted_date.is_some() {
        return Err(Error::refused(format!("secret {} is scheduled for deletion", info.name))
            .hint("restore it first (aws secretsmanager restore-secret --secret-id NAME) if it is still in use"));
    }
    if let Some(owner) = &info.owning_service {
        return Err(
            Error::refused(format!("secret {} is managed by {owner}", info.name))
                .hint(format!("change it through {owner}, which owns its value")),
        );
    }
    if info.rotation_enabled && !allow_rotation {
        return Err(Error::refused(format!("secret {} has rotation enabled: its rotation function would overwrite the new value", info.name))
            .hint("rotate it with aws secretsmanager rotate-secret, or pass --force-with-rotation if you mean to"));
    }
    if info.current.is_none() {
        return Err(Error::refused(format!("secret {} has no AWSCURRENT version", info.name))
            .hint("give it a first value with aws secretsmanager put-secret-value (there is nothing to roll back to)"));
    }
    Ok(())
}

/// Reads a version's string value.
pub async fn value(sm: &Client, arn: &str, version_id: &str) -> Result<SecretValue> {
    let out = sm
        .get_secret_value()
        .secret_id(arn)
        .version_id(version_id)
        .send()
        .await
        .map_err(|e| sm_error(arn, "read", &e))?;
    match out.secret_string() {
        Some(s) => Ok(SecretValue::new(s.to_string())),
        None => Err(Error::refused(format!("secret {arn} holds a binary value"))
            .hint("secret-rollout replaces string secrets only; use aws secretsmanager put-secret-value --secret-binary")),
    }
}

/// Writes a new version with an explicit request token, which becomes its version id: a
/// retry with the same token and value is a no-op, so no retry ever makes a second version.
pub async fn put(sm: &Client, arn: &str, token: &str, value: &SecretValue) -> Result<String> {
    let out = sm
        .put_secret_value()
        .secret_id(arn)
        .client_request_token(token)
        .secret_string(value.expose())
        .send()
        .await
        .map_err(|e| {
            if error_code(&e).as_deref() == Some("ResourceExistsException") {
                Error::refused(format!("version {token} of {arn} already exists with another value"))
                    .hint("the rotation already wrote its version: run `secret-rollout resume` instead of writing again")
            } else {
                sm_error(arn, "write", &e)
            }
        })?;
    Ok(out.version_id().unwrap_or(token).to_string())
}

/// Every version of a secret, deprecated ones included, with creation dates.
pub async fn versions(sm: &Client, arn: &str) -> Result<Vec<VersionInfo>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = sm
            .list_secret_version_ids()
            .secret_id(arn)
            .include_deprecated(true)
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sm_error(arn, "list versions of", &e))?;
        out.extend(page.versions().iter().map(|v| VersionInfo {
            id: v.version_id().unwrap_or_default().to_string(),
            stages: v.version_stages().to_vec(),
            created: v.created_date().map(|t| t.as_secs_f64()),
        }));
        // An empty token also ends the list: moto sends `""` on the last page, and asking
        // again with it would fetch the first page forever.
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Moves AWSCURRENT from `from` back to `to` (AWSPREVIOUS follows to `from`).
pub async fn move_current(sm: &Client, arn: &str, to: &str, from: &str) -> Result<()> {
    sm.update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(to)
        .remove_from_version_id(from)
        .send()
        .await
        .map_err(|e| sm_error(arn, "restore", &e))?;
    Ok(())
}

/// The commands a person can run to restore by hand (printed when our restore failed).
pub fn manual_restore_commands(
    arn: &str,
    previous: &str,
    new: &str,
    services: &[(String, String)],
) -> Vec<String> {
    let mut out = vec![format!(
        "aws secretsmanager update-secret-version-stage --secret-id {arn} --version-stage AWSCURRENT --move-to-version-id {previous} --remove-from-version-id {new}"
    )];
    for (cluster, service) in services {
        out.push(format!(
            "aws ecs update-service --cluster {cluster} --service {service} --force-new-deployment"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn info() -> SecretInfo {
        SecretInfo {
            arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbCdEf".into(),
            name: "production/x".into(),
            current: Some("v1".into()),
            previous: None,
            stages: BTreeMap::new(),
            rotation_enabled: false,
            deleted_date: None,
            owning_service: None,
            last_changed: None,
        }
    }

    #[test]
    fn guards_refuse_unsafe_secrets() {
        assert!(guard(&info(), false).is_ok());
        let mut i = info();
        i.deleted_date = Some(1.0);
        assert!(guard(&i, false)
            .unwrap_err()
            .message
            .contains("scheduled for deletion"));
        let mut i = info();
        i.owning_service = Some("rds".into());
        assert!(guard(&i, false)
            .unwrap_err()
            .message
            .contains("managed by rds"));
        let mut i = info();
        i.rotation_enabled = true;
        let e = guard(&i, false).unwrap_err();
        assert_eq!(e.kind, Kind::Refused);
        assert!(e.hint.unwrap().contains("--force-with-rotation"));
        assert!(guard(&i, true).is_ok());
    }

    #[test]
    fn manual_commands_name_every_service() {
        let cmds = manual_restore_commands(
            "arn",
            "old",
            "new",
            &[("c".into(), "api".into()), ("c".into(), "front".into())],
        );
        assert_eq!(cmds.len(), 3);
        assert!(cmds[0].contains("--move-to-version-id old --remove-from-version-id new"));
        assert!(cmds[2].contains("--service front --force-new-deployment"));
    }
}
