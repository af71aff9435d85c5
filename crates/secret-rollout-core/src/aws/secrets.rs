//! Secrets Manager calls, answering in observations. Values travel only as
//! [`SecretValue`] and never reach an error: the SDK's error of PutSecretValue and
//! GetSecretValue carries AWS's code and message, never the request or response body.

use aws_sdk_secretsmanager::Client;

use super::convert;
use super::errors::{AwsError, Fault};
use super::model::{SecretInfo, VersionInfo};
use crate::value::SecretValue;

/// DescribeSecret by name or ARN.
pub async fn describe(sm: &Client, id: &str) -> Result<SecretInfo, AwsError> {
    let d = sm
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("DescribeSecret", "DescribeSecret", e, |e| {
                e.is_resource_not_found_exception()
                    .then_some(Fault::NotFound)
            })
        })?;
    Ok(convert::secret(id, &d))
}

/// GetSecretValue of one version: its string, or `None` when it holds a binary value.
pub async fn value(
    sm: &Client,
    arn: &str,
    version_id: &str,
) -> Result<Option<SecretValue>, AwsError> {
    let out = sm
        .get_secret_value()
        .secret_id(arn)
        .version_id(version_id)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("GetSecretValue", "GetSecretValue", e, |e| {
                e.is_resource_not_found_exception()
                    .then_some(Fault::NotFound)
            })
        })?;
    Ok(out.secret_string().map(|s| SecretValue::new(s.to_string())))
}

/// How a PutSecretValue failed.
#[derive(Debug)]
pub enum PutFailure {
    /// A version with this request token exists with another value.
    VersionExists(AwsError),
    /// Anything else.
    Other(AwsError),
}

/// PutSecretValue with an explicit request token, which becomes the version id.
pub async fn put(
    sm: &Client,
    arn: &str,
    token: &str,
    value: &SecretValue,
) -> Result<String, PutFailure> {
    let out = sm
        .put_secret_value()
        .secret_id(arn)
        .client_request_token(token)
        .secret_string(value.expose())
        .send()
        .await
        .map_err(|e| {
            let exists = e
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception());
            let err = AwsError::from_sdk("PutSecretValue", "PutSecretValue", e, |e| {
                e.is_resource_not_found_exception()
                    .then_some(Fault::NotFound)
            });
            if exists {
                PutFailure::VersionExists(err)
            } else {
                PutFailure::Other(err)
            }
        })?;
    Ok(out.version_id().unwrap_or(token).to_string())
}

/// ListSecretVersionIds, every page, deprecated versions included.
pub async fn versions(sm: &Client, arn: &str) -> Result<Vec<VersionInfo>, AwsError> {
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
            .map_err(|e| {
                AwsError::from_sdk("ListSecretVersionIds", "ListSecretVersionIds", e, |e| {
                    e.is_resource_not_found_exception()
                        .then_some(Fault::NotFound)
                })
            })?;
        out.extend(page.versions().iter().map(convert::version));
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

/// UpdateSecretVersionStage: moves AWSCURRENT from `from` to `to`.
pub async fn move_current(sm: &Client, arn: &str, to: &str, from: &str) -> Result<(), AwsError> {
    sm.update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(to)
        .remove_from_version_id(from)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk(
                "UpdateSecretVersionStage",
                "UpdateSecretVersionStage",
                e,
                |e| {
                    e.is_resource_not_found_exception()
                        .then_some(Fault::NotFound)
                },
            )
        })?;
    Ok(())
}
