//! The accepted range of every number the control API and scenario files take.
//!
//! A value outside its range could break the clock (a speed of `1e308` makes `now`
//! infinite, for good) or the model (a negative phase, a probability of 7), so it is
//! refused with a one-line message naming the key and the range; the control API answers
//! it with 400, the scenario loader with an error. Counts and percentages of AWS requests
//! (`desiredCount`, `minimumHealthyPercent`, ...) are checked by the operations themselves,
//! with AWS's messages.

/// An inclusive range of accepted values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
}

/// Clock speed, virtual seconds per real second (0 stops the clock). The CLI's `--speed`
/// accepts at most the same maximum.
pub const SPEED: Range = Range {
    min: 0.0,
    max: 1_000_000.0,
};
/// One `clock/advance` jump: up to 366 days.
pub const ADVANCE_SECONDS: Range = Range {
    min: 0.0,
    max: 31_622_400.0,
};
/// Virtual time itself (scenario `start`, the clock after an advance): 1970 to 3000.
pub const EPOCH_SECONDS: Range = Range {
    min: 0.0,
    max: 32_503_680_000.0,
};
/// One task phase of `timing` (provisioning, pending, ...): up to a day.
pub const PHASE_SECONDS: Range = Range {
    min: 0.0,
    max: 86_400.0,
};
/// A probability.
pub const PROBABILITY: Range = Range { min: 0.0, max: 1.0 };
/// A hook rule's `after_seconds`: up to 14 days, the longest lifecycle hook timeout.
pub const HOOK_ANSWER_SECONDS: Range = Range {
    min: 0.0,
    max: 1_209_600.0,
};
/// A latency fault's `latency_ms` (real time): up to 1 hour. Tests hold a call "forever"
/// with 10 minutes (a process killed mid-call), so the bound only stops an overflow.
pub const LATENCY_MS: Range = Range {
    min: 0.0,
    max: 3_600_000.0,
};
/// STS `min_session_seconds` and a role's `max_session_seconds`: up to 12 hours (AWS's
/// largest MaxSessionDuration).
pub const SESSION_SECONDS: Range = Range {
    min: 1.0,
    max: 43_200.0,
};

/// A role's `max_mfa_age_seconds` (`aws:MultiFactorAuthAge`): 0 to 36 hours, the longest
/// MFA session GetSessionToken gives.
pub const MFA_AGE_SECONDS: Range = Range {
    min: 0.0,
    max: 129_600.0,
};

/// A throttling bucket's refill (`[limits.groups]`), requests per second: one per thousand
/// seconds to a million.
pub const SUSTAINED_RATE: Range = Range {
    min: 0.001,
    max: 1_000_000.0,
};

impl Range {
    /// `Ok` when `value` is a finite number within the range; otherwise one line naming
    /// `key` and the range.
    pub fn check(&self, key: &str, value: f64) -> Result<(), String> {
        if value.is_finite() && (self.min..=self.max).contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "{key} must be a number from {} to {}, not {value}",
                self.min, self.max
            ))
        }
    }

    /// [`Range::check`] for an optional value (absent is accepted).
    pub fn check_opt(&self, key: &str, value: Option<f64>) -> Result<(), String> {
        value.map_or(Ok(()), |v| self.check(key, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_the_key_and_range() {
        assert!(SPEED.check("speed", 0.0).is_ok());
        assert!(SPEED.check("speed", 1_000_000.0).is_ok());
        for bad in [-1.0, 1e308, f64::INFINITY, f64::NAN, 1_000_000.5] {
            let e = SPEED.check("speed", bad).unwrap_err();
            assert!(
                e.starts_with("speed must be a number from 0 to 1000000, not "),
                "{e}"
            );
            assert!(!e.contains('\n'));
        }
        assert!(PROBABILITY.check_opt("probability", None).is_ok());
        assert!(PROBABILITY.check_opt("probability", Some(1.5)).is_err());
    }
}
