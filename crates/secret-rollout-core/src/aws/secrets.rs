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

/// One entry of `ListSecrets`: what a watcher compares between two looks (no value).
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Full ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// `LastChangedDate`, epoch seconds.
    pub last_changed: Option<f64>,
    /// The version carrying `AWSCURRENT`.
    pub current: Option<String>,
    /// The version carrying `AWSPENDING`, when it is another one.
    pub pending: Option<String>,
}

/// ListSecrets, 100 a call, with `name` filters of at most 10 values each (AWS's limit).
pub async fn list(sm: &Client, name_prefixes: &[String]) -> Result<Vec<Listed>, AwsError> {
    use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = sm.list_secrets().max_results(100);
        if !name_prefixes.is_empty() {
            req = req.filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .set_values(Some(name_prefixes.to_vec()))
                    .build(),
            );
        }
        if let Some(t) = &token {
            req = req.next_token(t);
        }
        let page = req
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListSecrets", "ListSecrets", e, |_: &_| None))?;
        for s in page.secret_list() {
            let stages = s.secret_versions_to_stages();
            let with = |label: &str| {
                stages.and_then(|m| {
                    m.iter()
                        .find(|(_, v)| v.iter().any(|x| x == label))
                        .map(|(k, _)| k.clone())
                })
            };
            let current = with("AWSCURRENT");
            let pending = with("AWSPENDING").filter(|p| Some(p) != current.as_ref());
            out.push(Listed {
                arn: s.arn().unwrap_or_default().to_string(),
                name: s.name().unwrap_or_default().to_string(),
                last_changed: s.last_changed_date().map(|t| t.as_secs_f64()),
                current,
                pending,
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}
