//! The AWS clients every command uses, built from one `SdkConfig`, and a count of the
//! calls they make (printed by `--output json`: how many calls a run costs is part of
//! the contract, e.g. DescribeServices in batches of ten).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts HTTP attempts per `Service.Operation` (retries count: they are calls AWS sees).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounter {
    /// Calls so far, by `Service.Operation`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("call counter lock").clone()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            // "Secrets Manager" -> "SecretsManager": keys without spaces for machines.
            let service: String = meta
                .service()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let key = format!("{service}.{}", meta.name());
            *self
                .0
                .lock()
                .expect("call counter lock")
                .entry(key)
                .or_default() += 1;
        }
        Ok(())
    }
}

/// Secrets Manager, ECS and STS clients sharing one configuration and one call counter.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Secrets Manager.
    pub sm: aws_sdk_secretsmanager::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    /// Calls made through these clients.
    pub calls: CallCounter,
}

impl Clients {
    /// Builds the three clients from one configuration.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        let calls = CallCounter::default();
        let sm = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(config)
                .interceptor(calls.clone())
                .build(),
        );
        let ecs = aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(config)
                .interceptor(calls.clone())
                .build(),
        );
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(config)
                .interceptor(calls.clone())
                .build(),
        );
        Self {
            sm,
            ecs,
            sts,
            calls,
        }
    }
}

/// Describes an SDK error for an operator: the AWS error code and message when there is
/// one, the transport problem otherwise. Never includes request bodies.
pub fn describe_sdk_error<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => e.to_string(),
            }
        }
        SdkError::TimeoutError(_) => "the request timed out".to_string(),
        SdkError::DispatchFailure(f) => {
            if f.is_io() {
                "the connection failed (network or endpoint unreachable)".to_string()
            } else if f.is_timeout() {
                "the connection timed out".to_string()
            } else {
                format!("the request could not be sent: {f:?}")
            }
        }
        SdkError::ResponseError(_) => "AWS sent a response that could not be read".to_string(),
        SdkError::ConstructionFailure(_) => "the request could not be built".to_string(),
        _ => err.to_string(),
    }
}

/// The AWS error code of an SDK error, if AWS gave one.
pub fn error_code<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<String>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string)
}

/// The error for credentials AWS refused (expired, unknown, badly signed), whatever the
/// service; `None` for any other failure.
pub fn refused_credentials<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<crate::error::Error>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error_code(err).as_deref() {
        Some(
            "ExpiredTokenException" | "UnrecognizedClientException" | "InvalidSignatureException",
        ) => Some(
            crate::error::Error::credentials(format!(
                "AWS rejected the credentials: {}",
                describe_sdk_error(err)
            ))
            .hint("sign in again (aws-vault exec PROFILE -- ..., or --profile) and rerun"),
        ),
        _ => None,
    }
}
