//! The secret and its versions: what the Secrets Manager calls' failures mean for the
//! user, and the pure guards on what `DescribeSecret` says. Values travel only as
//! `SecretString` and never reach an error.

use aws_sdk_secretsmanager::Client;
use uuid::Uuid;

use crate::aws::errors::{AwsError, Fault};
pub use crate::aws::model::{SecretInfo, VersionInfo};
use crate::aws::secrets::{self, PutFailure};
use crate::error::{Error, Reach, Result};
use crate::value::SecretValue;

fn sm_error(secret: &str, what: &str, e: AwsError) -> Error {
    match e.fault {
        Fault::NotFound => {
            let err = Error::bad_input(format!("secret {secret} not found"))
                .hint("check the name and region (aws secretsmanager list-secrets), or the environment's secret_prefix");
            e.attach(err)
        }
        Fault::AccessDenied => {
            let err = Error::credentials(format!("not allowed to {what} secret {secret}"))
                .hint("use a role allowed secretsmanager:DescribeSecret, GetSecretValue, PutSecretValue and UpdateSecretVersionStage");
            e.attach(err)
        }
        _ => {
            let message = format!("could not {what} secret {secret}: {}", e.detail);
            e.into_error(
                message,
                "check the network and the endpoint, then rerun; nothing was changed by this step",
            )
        }
    }
}

/// Describes a secret by name or ARN.
pub async fn describe(sm: &Client, id: &str) -> Result<SecretInfo> {
    secrets::describe(sm, id)
        .await
        .map_err(|e| sm_error(id, "describe", e))
}

pub use crate::aws::secrets::Listed;

/// ListSecrets (100 a call) with `name` prefix filters (at most 10), for a watcher: no value
/// is read.
pub async fn list(sm: &Client, name_prefixes: &[String]) -> Result<Vec<Listed>> {
    secrets::list(sm, name_prefixes).await.map_err(|e| {
        let message = format!("could not list secrets: {}", e.detail);
        e.into_error(
            message,
            "check the network and permissions (secretsmanager:ListSecrets)",
        )
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
    match secrets::value(sm, arn, version_id)
        .await
        .map_err(|e| sm_error(arn, "read", e))?
    {
        Some(v) => Ok(v),
        None => Err(Error::refused(format!("secret {arn} holds a binary value"))
            .hint("secret-rollout replaces string secrets only; use aws secretsmanager put-secret-value --secret-binary")),
    }
}

/// Writes a new version with an explicit request token, which becomes its version id: a
/// retry with the same token and value is a no-op, so no retry ever makes a second version.
/// `rotation`: the id of the rotation writing and the options that reach its environment,
/// for the `resume` a refusal suggests.
pub async fn put(
    sm: &Client,
    arn: &str,
    token: &str,
    value: &SecretValue,
    rotation: (Uuid, &Reach),
) -> Result<String> {
    secrets::put(sm, arn, token, value)
        .await
        .map_err(|e| match e {
            PutFailure::VersionExists(e) => e.attach(written_already(arn, token, rotation)),
            PutFailure::Other(e) => sm_error(arn, "write", e),
        })
}

/// The refusal of a write whose version (the rotation's request token) appeared since the
/// rotation looked: another process of the same rotation wrote it. `resume` of that rotation
/// finds the version written, asks for no value, and rolls it out.
fn written_already(arn: &str, token: &str, (rotation_id, reach): (Uuid, &Reach)) -> Error {
    Error::refused(format!(
        "version {token} of {arn} already exists with another value"
    ))
    .hint(format!(
        "the rotation already wrote its version: run `{}` instead of writing again",
        reach.command(&format!("resume {rotation_id}"))
    ))
}

/// Every version of a secret, deprecated ones included, with creation dates.
pub async fn versions(sm: &Client, arn: &str) -> Result<Vec<VersionInfo>> {
    secrets::versions(sm, arn)
        .await
        .map_err(|e| sm_error(arn, "list versions of", e))
}

/// Moves AWSCURRENT from `from` back to `to` (AWSPREVIOUS follows to `from`).
pub async fn move_current(sm: &Client, arn: &str, to: &str, from: &str) -> Result<()> {
    secrets::move_current(sm, arn, to, from)
        .await
        .map_err(|e| sm_error(arn, "restore", e))
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
    use std::collections::BTreeMap;

    /// A version appearing under the rotation's token: exit 4 (refused), and the hint's
    /// `resume` names the rotation and carries the options that reach the environment.
    #[test]
    fn a_written_version_suggests_the_resume_of_its_rotation() {
        let id = Uuid::parse_str("0123abcd-0000-4000-8000-000000000001").unwrap();
        let reach = Reach::new(
            ["--config", "conf/prod.toml", "--env", "production"]
                .map(String::from)
                .to_vec(),
        );
        let e = written_already("arn:x", "tok", (id, &reach));
        assert_eq!(e.kind, Kind::Refused);
        assert_eq!(
            e.message,
            "version tok of arn:x already exists with another value"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("the rotation already wrote its version: run `secret-rollout resume 0123abcd-0000-4000-8000-000000000001 --config conf/prod.toml --env production` instead of writing again")
        );
    }

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
            last_rotated: None,
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
