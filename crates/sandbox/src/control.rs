//! The HTTP control API under [`PREFIX`]: load scenarios, set rules, faults and clock speed,
//! read the whole state.

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::Shared;

/// Path prefix reserved for the control API.
pub const PREFIX: &str = "/_sandbox/";

/// Answers one control request.
pub fn handle(
    world: &Shared,
    method: &Method,
    path: &str,
    _query: &str,
    _body: &[u8],
) -> (StatusCode, Value) {
    match (method, path) {
        (&Method::GET, "/_sandbox/state") => (
            StatusCode::OK,
            world.lock().expect("sandbox state lock").snapshot(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            json!({"error": format!("no control endpoint {method} {path}")}),
        ),
    }
}
