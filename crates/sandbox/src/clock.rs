//! The virtual clock.
//!
//! Virtual time runs at `speed` times real time from an epoch chosen at start, so what takes
//! minutes on ECS takes seconds in the demo and milliseconds in tests. Changing the speed
//! rebases the clock so virtual time never jumps backwards. All sandbox timestamps are
//! virtual epoch seconds (`f64`, millisecond precision on the wire).

use std::time::Instant;

use crate::limits::SPEED;

/// A speed within [`SPEED`] (0 for one that is not finite), so `now` stays finite.
fn sane(speed: f64) -> f64 {
    if speed.is_finite() {
        speed.clamp(SPEED.min, SPEED.max)
    } else {
        0.0
    }
}

/// A clock whose time is `base_virtual + (now - base_real) * speed`.
#[derive(Debug, Clone)]
pub struct Clock {
    base_real: Instant,
    base_virtual: f64,
    speed: f64,
    /// Extra virtual seconds added by `advance` (tests jump the clock forward).
    offset: f64,
}

impl Clock {
    /// A clock starting at `start_epoch` (seconds since 1970) running at `speed`.
    pub fn new(start_epoch: f64, speed: f64) -> Self {
        Self {
            base_real: Instant::now(),
            base_virtual: if start_epoch.is_finite() {
                start_epoch
            } else {
                0.0
            },
            speed: sane(speed),
            offset: 0.0,
        }
    }

    /// A clock starting at the real current time.
    pub fn real_start(speed: f64) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self::new(now, speed)
    }

    /// Current virtual time, epoch seconds rounded to the millisecond.
    pub fn now(&self) -> f64 {
        let t =
            self.base_virtual + self.base_real.elapsed().as_secs_f64() * self.speed + self.offset;
        (t * 1000.0).floor() / 1000.0
    }

    /// The speed factor.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Changes the speed from now on (clamped to [`SPEED`]; callers refuse others first).
    pub fn set_speed(&mut self, speed: f64) {
        let now = self.now() - self.offset;
        self.base_real = Instant::now();
        self.base_virtual = now;
        self.speed = sane(speed);
    }

    /// Jumps virtual time forward by `seconds` (a negative or non-finite jump is ignored).
    pub fn advance(&mut self, seconds: f64) {
        if seconds.is_finite() {
            self.offset += seconds.max(0.0);
        }
    }

    /// Real seconds until virtual time reaches `t` (None if the clock is stopped).
    pub fn real_secs_until(&self, t: f64) -> Option<f64> {
        if self.speed <= 0.0 {
            return None;
        }
        Some(((t - self.now()) / self.speed).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_and_jumps_that_would_break_now_are_clamped() {
        let mut c = Clock::new(1_700_000_000.0, 1e308);
        assert_eq!(c.speed(), SPEED.max);
        c.set_speed(f64::NAN);
        assert_eq!(c.speed(), 0.0);
        c.set_speed(f64::INFINITY);
        assert_eq!(c.speed(), 0.0, "not a usable number: stopped");
        c.set_speed(0.0);
        let t = c.now();
        assert!(t.is_finite());
        c.advance(f64::INFINITY);
        c.advance(f64::NAN);
        c.advance(-5.0);
        assert_eq!(c.now(), t);
        assert_eq!(Clock::new(f64::NAN, 0.0).now(), 0.0);
    }
}
