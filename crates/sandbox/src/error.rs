//! Errors in AWS's own shape.
//!
//! JSON 1.1 services (Secrets Manager, ECS) answer `{"__type": NAME, "message": TEXT}` with
//! an HTTP status; the query protocol (STS) answers an `<ErrorResponse>` XML document. The
//! SDKs pick the error variant from `__type` / `<Code>`, so the names must be AWS's exactly.

use serde_json::json;

/// An error as an AWS service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// AWS's error name (`ResourceNotFoundException`, `ThrottlingException`, ...).
    pub code: String,
    /// Human-readable message, as AWS words it where we know the wording.
    pub message: String,
    /// HTTP status code (400 for client errors, 5xx for server faults).
    pub status: u16,
}

impl AwsError {
    /// A client error (HTTP 400).
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
            status: 400,
        }
    }

    /// An error with an explicit HTTP status.
    pub fn with_status(code: &str, message: impl Into<String>, status: u16) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
            status,
        }
    }

    /// `InvalidParameterException` (both Secrets Manager and ECS use this name).
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    /// Secrets Manager's `ResourceNotFoundException`.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", message)
    }

    /// Secrets Manager's `InvalidRequestException`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("InvalidRequestException", message)
    }

    /// A missing required request field, worded as the JSON services word it.
    pub fn missing_field(field: &str) -> Self {
        Self::invalid_parameter(format!(
            "Invalid request: the required parameter '{field}' is missing."
        ))
    }

    /// The JSON 1.1 body.
    pub fn json_body(&self) -> serde_json::Value {
        json!({ "__type": self.code, "message": self.message })
    }

    /// The query-protocol (STS) XML body.
    pub fn xml_body(&self, request_id: &str) -> String {
        let kind = if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
<Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
<RequestId>{request_id}</RequestId></ErrorResponse>",
            xml_escape(&self.code),
            xml_escape(&self.message)
        )
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

/// Escapes text for an XML element body.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Result of a sandbox operation.
pub type OpResult = Result<serde_json::Value, AwsError>;
