//! Injected faults: errors, latency and dropped connections, by probability or by script.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use crate::{AwsError, Service};

/// What to do to one request.
#[derive(Debug, Clone)]
pub enum FaultAction {
    /// Answer with this error instead of running the operation.
    Error(AwsError),
    /// Wait this long (real time), then run the operation.
    Latency(Duration),
    /// Close the connection without answering.
    Drop,
}

/// The fault table.
#[derive(Debug, Default)]
pub struct Faults {}

impl Faults {
    /// Decides the fault, if any, for this call (counts calls per operation for scripts).
    pub fn check(
        &mut self,
        _service: Service,
        _operation: &str,
        _rng: &mut ChaCha8Rng,
    ) -> Option<FaultAction> {
        None
    }
}
