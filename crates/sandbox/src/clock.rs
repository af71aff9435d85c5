//! The virtual clock.
//!
//! Virtual time runs at `speed` times real time from an epoch chosen at start, so what takes
//! minutes on ECS takes seconds in the demo and milliseconds in tests. Changing the speed
//! rebases the clock so virtual time never jumps backwards. All sandbox timestamps are
//! virtual epoch seconds (`f64`, millisecond precision on the wire).

use std::time::Instant;

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
            base_virtual: start_epoch,
            speed: speed.max(0.0),
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

    /// Changes the speed from now on.
    pub fn set_speed(&mut self, speed: f64) {
        let now = self.now() - self.offset;
        self.base_real = Instant::now();
        self.base_virtual = now;
        self.speed = speed.max(0.0);
    }

    /// Jumps virtual time forward by `seconds`.
    pub fn advance(&mut self, seconds: f64) {
        self.offset += seconds.max(0.0);
    }

    /// Real seconds until virtual time reaches `t` (None if the clock is stopped).
    pub fn real_secs_until(&self, t: f64) -> Option<f64> {
        if self.speed <= 0.0 {
            return None;
        }
        Some(((t - self.now()) / self.speed).max(0.0))
    }
}
