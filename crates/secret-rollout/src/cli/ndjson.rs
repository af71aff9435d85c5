//! `--output ndjson`: one JSON object per line on stdout, for CI pipelines and log shippers.
//!
//! Every line is `{"v": 1, "at": "<RFC 3339 UTC>", "type": "...", ...}`. Commands that follow
//! deployments write each progress event as it happens (its `type` is the event's kind, see
//! [`Event`]) and their report last (`"type": "report"`, the fields of `--output json`).
//! Other commands write their one document as one line (`"type": "status"`, ...). `at` is
//! the tool's own clock. An [`Event`] carries no secret value, so no line can.

use std::io::Write;

use secret_rollout_core::error::Error;
use secret_rollout_core::progress::{Event, Reporter};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The line format's version: bumped only by a change that breaks readers.
pub const VERSION: u32 = 1;

/// RFC 3339 in UTC, to the millisecond.
pub fn timestamp(at: OffsetDateTime) -> String {
    let t = at.to_offset(time::UtcOffset::UTC);
    let t = t.replace_millisecond(t.millisecond()).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[derive(Serialize)]
struct Line<'a, T: Serialize + ?Sized> {
    v: u32,
    at: String,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Serialize)]
struct Typed<'a, T: Serialize + ?Sized> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    doc: &'a T,
}

fn line<T: Serialize + ?Sized>(at: OffsetDateTime, body: &T) -> String {
    serde_json::to_string(&Line {
        v: VERSION,
        at: timestamp(at),
        body,
    })
    .unwrap_or_default()
}

/// The line of one event (its `type` is the event's kind).
pub fn event_line(at: OffsetDateTime, event: &Event) -> String {
    line(at, event)
}

/// The line of one document (a struct or a JSON object) under `kind`.
pub fn document_line<T: Serialize + ?Sized>(kind: &str, at: OffsetDateTime, doc: &T) -> String {
    line(at, &Typed { kind, doc })
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Prints one document as one line, stamped now.
pub fn print_document<T: Serialize + ?Sized>(kind: &str, doc: &T) {
    print(&document_line(kind, OffsetDateTime::now_utc(), doc));
}

/// The line for an error that ended the command (`"type": "error"`): a reader of the
/// stream sees why there is no report. Errors never contain a secret value.
pub fn error_line(at: OffsetDateTime, e: &Error) -> String {
    document_line(
        "error",
        at,
        &serde_json::json!({
            "outcome": e.kind.name(),
            "error": e.message,
            "message": e.message,
            "hint": e.hint,
            "details": e.details,
            "exit_code": e.exit_code(),
        }),
    )
}

/// Prints the error line, stamped now.
pub fn print_error(e: &Error) {
    print(&error_line(OffsetDateTime::now_utc(), e));
}

/// Progress events as JSON lines on stdout, each flushed as it happens.
pub struct Ndjson;

impl Reporter for Ndjson {
    fn report_at(&self, at: OffsetDateTime, event: &Event) {
        print(&event_line(at, event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secret_rollout_core::progress::Phase;
    use serde_json::{json, Value};

    fn noon() -> OffsetDateTime {
        time::macros::datetime!(2025-03-01 12:00:07.250 UTC)
    }

    #[test]
    fn event_line_has_version_type_time_and_the_fields() {
        let l = event_line(
            noon(),
            &Event::Redeployed {
                phase: Phase::Rollout,
                cluster: "c".into(),
                service: "api".into(),
                deployment_id: "ecs-svc/1".into(),
            },
        );
        assert!(!l.contains('\n'));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(
            v,
            json!({"v": 1, "at": "2025-03-01T12:00:07.25Z", "type": "deployment_started",
                   "phase": "rollout", "cluster": "c", "service": "api", "deployment_id": "ecs-svc/1"})
        );
    }

    #[test]
    fn timestamps_are_utc_whatever_the_offset() {
        let t = noon().to_offset(time::macros::offset!(+2));
        assert_eq!(timestamp(t), "2025-03-01T12:00:07.25Z");
        let parsed = OffsetDateTime::parse(&timestamp(t), &Rfc3339).unwrap();
        assert_eq!(parsed, noon());
    }

    #[test]
    fn document_line_adds_version_type_and_time() {
        let l = document_line("whoami", noon(), &json!({"account": "1", "arn": "a"}));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(
            v,
            json!({"v": 1, "at": "2025-03-01T12:00:07.25Z", "type": "whoami", "account": "1", "arn": "a"})
        );
    }

    #[test]
    fn error_line_says_why_and_the_exit_code() {
        let e = Error::refused("not confirmed").hint("pass --yes");
        let v: Value = serde_json::from_str(&error_line(noon(), &e)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["message"], "not confirmed");
        assert_eq!(v["hint"], "pass --yes");
        assert_eq!(v["exit_code"], 4);
    }
}
