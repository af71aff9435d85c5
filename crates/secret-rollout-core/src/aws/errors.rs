//! The one classifier of AWS SDK errors: what went wrong ([`Fault`]), decided from the
//! SDK's generated checks (`is_..._exception()`, through the caller's `specific`), the error
//! code ([`ProvideErrorMetadata::code`]), the SDK's retry classification
//! ([`ProvideErrorKind::retryable_error_kind`]) and the SDK's own lists of throttling and
//! transient codes. The SDK error is kept whole as the source of the [`AwsError`] and of
//! the core [`Error`] made from it, so `-v` can show its chain.

use std::fmt;
use std::sync::Arc;

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::{ErrorKind, ProvideErrorKind};

use crate::error::{Cause, Error};

/// What kind of failure an AWS call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The resource asked for does not exist (a modeled not-found exception).
    NotFound,
    /// The identity is not allowed to make the call.
    AccessDenied,
    /// AWS refused the credentials themselves: expired, unknown, badly signed.
    CredentialsRefused,
    /// AWS asked us to slow down.
    Throttled,
    /// A 5xx, a request timeout, an unreadable answer: may heal on its own.
    Transient,
    /// No answer at all: the network, or the endpoint, is unreachable.
    Unreachable,
    /// AWS refused the request as it was (a client error that retrying will not heal).
    Rejected,
    /// The request could not even be built.
    Local,
}

impl Fault {
    /// Whether the same call may succeed later.
    pub fn may_heal(self) -> bool {
        matches!(
            self,
            Fault::Throttled | Fault::Transient | Fault::Unreachable | Fault::Local
        )
    }
}

/// Codes meaning AWS refused the credentials, whatever the service (STS spells them
/// without `Exception`). Not modeled as exceptions by the services, so matched by code.
const REFUSED_CREDENTIALS: &[&str] = &[
    "ExpiredTokenException",
    "ExpiredToken",
    "RequestExpired",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
];

/// Access-denied codes (not modeled by ECS or Secrets Manager either).
const ACCESS_DENIED: &[&str] = &["AccessDeniedException", "AccessDenied"];

/// An AWS call failed (after the SDK's retries).
#[derive(Clone)]
pub struct AwsError {
    /// The operation, as in the call counts (`DescribeServices`).
    pub operation: String,
    /// What kind of failure.
    pub fault: Fault,
    /// The AWS error code, when AWS answered.
    pub code: Option<String>,
    /// AWS's own message, when AWS answered with one.
    pub aws_message: Option<String>,
    /// What was being done (`UpdateService api`).
    pub what: String,
    /// What AWS said (code and message) or the transport problem, for an operator.
    pub detail: String,
    /// Operator-readable: what was being done, then what AWS said (code and message) or
    /// the transport problem. Never a request or response body.
    pub message: String,
    /// The SDK error, whole.
    pub source: Option<Cause>,
}

impl fmt::Debug for AwsError {
    // Not the SDK error's Debug: it holds the raw HTTP response.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsError")
            .field("operation", &self.operation)
            .field("fault", &self.fault)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("detail", &self.detail)
            .finish()
    }
}

impl PartialEq for AwsError {
    fn eq(&self, other: &Self) -> bool {
        self.operation == other.operation
            && self.fault == other.fault
            && self.code == other.code
            && self.message == other.message
            && self.detail == other.detail
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AwsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl AwsError {
    /// Classifies an SDK error of `operation`. `what` prefixes the message (`UpdateService
    /// api`); `specific` gives the fault the operation's generated checks decide, e.g.
    /// `|e| e.is_resource_not_found_exception().then_some(Fault::NotFound)`.
    pub fn from_sdk<E>(
        operation: &str,
        what: &str,
        err: SdkError<E, HttpResponse>,
        specific: impl FnOnce(&E) -> Option<Fault>,
    ) -> Self
    where
        E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + Send + Sync + 'static,
    {
        let fault = classify(&err, specific);
        let detail = describe(&err);
        Self {
            operation: operation.to_string(),
            fault,
            code: err
                .as_service_error()
                .and_then(|e| ProvideErrorMetadata::code(e))
                .map(str::to_string),
            aws_message: err
                .as_service_error()
                .and_then(|e| e.message())
                .map(str::to_string),
            message: format!("{what}: {detail}"),
            what: what.to_string(),
            detail,
            source: Some(Arc::new(err)),
        }
    }

    /// A failure that is not an SDK error (an answer missing what it must hold).
    pub fn answer(operation: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            operation: operation.to_string(),
            fault: Fault::Rejected,
            code: None,
            aws_message: None,
            what: operation.to_string(),
            detail: message.clone(),
            message,
            source: None,
        }
    }

    /// AWS throttled us.
    pub fn is_throttling(&self) -> bool {
        self.fault == Fault::Throttled
    }

    /// The core error for it: refused or denied credentials are credentials errors (exit
    /// 3), anything else an AWS error (exit 10) with `message` and `hint`. Callers handle
    /// [`Fault::NotFound`] themselves: what is missing is theirs to say.
    pub fn into_error(self, message: impl Into<String>, hint: &str) -> Error {
        let message = message.into();
        let err = match self.fault {
            Fault::CredentialsRefused => {
                Error::credentials(format!("AWS rejected the credentials: {}", self.detail))
                    .hint("sign in again (aws-vault exec PROFILE -- ..., or --profile) and rerun")
            }
            Fault::Unreachable => Error::aws_call(message).hint(format!(
                "AWS could not be reached: check the network, --region and any --endpoint-url / AWS_ENDPOINT_URL; {hint}"
            )),
            _ => Error::aws_call(message).hint(hint),
        };
        self.attach(err)
    }

    /// `err` with this failure (and the SDK error under it) as its source.
    pub fn attach(self, err: Error) -> Error {
        err.with_cause(Arc::new(self))
    }
}

/// Decides the [`Fault`] of an SDK error.
pub fn classify<E>(
    err: &SdkError<E, HttpResponse>,
    specific: impl FnOnce(&E) -> Option<Fault>,
) -> Fault
where
    E: ProvideErrorMetadata + ProvideErrorKind,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let status = ctx.raw().status();
            if let Some(fault) = specific(e) {
                return fault;
            }
            let code = ProvideErrorMetadata::code(e).unwrap_or_default();
            if REFUSED_CREDENTIALS.contains(&code) {
                return Fault::CredentialsRefused;
            }
            if ACCESS_DENIED.contains(&code) {
                return Fault::AccessDenied;
            }
            match e.retryable_error_kind() {
                Some(ErrorKind::ThrottlingError) => return Fault::Throttled,
                Some(ErrorKind::TransientError | ErrorKind::ServerError) => {
                    return Fault::Transient
                }
                _ => {}
            }
            if THROTTLING_ERRORS.contains(&code) {
                return Fault::Throttled;
            }
            if TRANSIENT_ERRORS.contains(&code) || status.is_server_error() {
                return Fault::Transient;
            }
            if status.as_u16() == 429 {
                return Fault::Throttled;
            }
            Fault::Rejected
        }
        // No status code was generated for the error kinds below: they have no answer.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Fault::Unreachable,
        SdkError::ResponseError(_) => Fault::Transient,
        SdkError::ConstructionFailure(_) => Fault::Local,
        _ => Fault::Transient,
    }
}

/// An SDK error for an operator: the AWS error code and message when there is one, the
/// transport problem otherwise. Never includes request or response bodies.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            match (ProvideErrorMetadata::code(e), e.message()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn raw(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    fn generic_ecs(code: &str, status: u16) -> SdkError<DescribeServicesError, HttpResponse> {
        SdkError::service_error(
            DescribeServicesError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("AWS said so")
                    .build(),
            ),
            raw(status),
        )
    }

    fn ecs(err: SdkError<DescribeServicesError, HttpResponse>) -> AwsError {
        AwsError::from_sdk("DescribeServices", "DescribeServices", err, |e| {
            e.is_cluster_not_found_exception()
                .then_some(Fault::NotFound)
        })
    }

    #[test]
    fn generated_checks_decide_not_found() {
        let nf = aws_sdk_secretsmanager::types::error::ResourceNotFoundException::builder()
            .message("Secrets Manager can't find the specified secret.")
            .meta(
                ErrorMetadata::builder()
                    .code("ResourceNotFoundException")
                    .message("Secrets Manager can't find the specified secret.")
                    .build(),
            )
            .build();
        let err =
            SdkError::service_error(DescribeSecretError::ResourceNotFoundException(nf), raw(400));
        let e = AwsError::from_sdk("DescribeSecret", "DescribeSecret", err, |e| {
            e.is_resource_not_found_exception()
                .then_some(Fault::NotFound)
        });
        assert_eq!(e.fault, Fault::NotFound);
        assert_eq!(e.code.as_deref(), Some("ResourceNotFoundException"));
        assert_eq!(
            e.detail,
            "ResourceNotFoundException: Secrets Manager can't find the specified secret."
        );
        assert!(!e.fault.may_heal());

        let cnf = aws_sdk_ecs::types::error::ClusterNotFoundException::builder()
            .message("Cluster not found.")
            .build();
        let e = ecs(SdkError::service_error(
            DescribeServicesError::ClusterNotFoundException(cnf),
            raw(400),
        ));
        assert_eq!(e.fault, Fault::NotFound);
    }

    #[test]
    fn codes_decide_credentials_and_access() {
        for code in [
            "ExpiredTokenException",
            "UnrecognizedClientException",
            "InvalidSignatureException",
        ] {
            let e = ecs(generic_ecs(code, 400));
            assert_eq!(e.fault, Fault::CredentialsRefused, "{code}");
            let err = e.into_error("DescribeServices failed", "rerun");
            assert_eq!(err.kind, Kind::Credentials, "{code}");
            assert!(err.message.contains(code), "{}", err.message);
        }
        let e = ecs(generic_ecs("AccessDeniedException", 400));
        assert_eq!(e.fault, Fault::AccessDenied);
        let e = ecs(generic_ecs("InvalidParameterException", 400));
        assert_eq!(e.fault, Fault::Rejected);
        assert_eq!(e.into_error("x", "y").kind, Kind::Aws);
    }

    #[test]
    fn throttling_and_server_errors_may_heal() {
        let e = ecs(generic_ecs("ThrottlingException", 400));
        assert!(e.is_throttling() && e.fault.may_heal());
        let e = ecs(generic_ecs("TooManyRequestsException", 400));
        assert!(e.is_throttling());
        let server = aws_sdk_ecs::types::error::ServerException::builder()
            .message("boom")
            .build();
        let e = ecs(SdkError::service_error(
            DescribeServicesError::ServerException(server),
            raw(500),
        ));
        assert_eq!(e.fault, Fault::Transient);
        let e = ecs(generic_ecs("SomethingNew", 503));
        assert_eq!(e.fault, Fault::Transient);
        let e = ecs(SdkError::timeout_error("too slow"));
        assert_eq!(e.fault, Fault::Unreachable);
        assert!(e.fault.may_heal());
        assert_eq!(e.detail, "the request timed out");
        let err = e.into_error("DescribeServices failed", "rerun");
        assert_eq!(err.kind, Kind::Aws);
        assert!(err.hint.unwrap().contains("--endpoint-url"));
    }

    #[test]
    fn the_sdk_error_is_the_source_and_its_debug_never_shows() {
        let e = ecs(generic_ecs("InvalidParameterException", 400));
        let err = e.into_error("DescribeServices failed in cluster c", "rerun");
        let causes = err.causes();
        assert_eq!(
            causes[0],
            "DescribeServices: InvalidParameterException: AWS said so"
        );
        // Then the SDK's own chain: the SdkError, its service error, ...
        assert!(causes.len() >= 2, "{causes:?}");
        assert!(
            causes[1..].iter().any(|c| c.contains("AWS said so")),
            "{causes:?}"
        );

        // A GetSecretValue answer that could not be read holds the value in its raw body:
        // neither our Debug nor the cause chain may show it.
        let body = r#"{"SecretString":"hunter2-VALUE-MUST-NOT-LEAK""#;
        let sdk: SdkError<GetSecretValueError, HttpResponse> = SdkError::response_error(
            "unexpected end of input",
            HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::from(body)),
        );
        assert!(
            format!("{sdk:?}").contains("hunter2"),
            "the raw body is in the SDK's Debug"
        );
        let e = AwsError::from_sdk("GetSecretValue", "GetSecretValue", sdk, |_| None);
        assert_eq!(e.fault, Fault::Transient);
        let err = e.clone().into_error("could not read secret x", "rerun");
        for text in [
            format!("{e:?}"),
            format!("{err:?}"),
            err.render_verbose(true),
            err.causes().join("\n"),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
