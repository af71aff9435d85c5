//! Scenario files (TOML): the world a sandbox starts with.

use serde::{Deserialize, Serialize};

use crate::World;

/// A scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scenario {}

impl Scenario {
    /// The built-in sample scenario (mirrors `shared/reference/sample-environment.md`).
    pub fn sample() -> Scenario {
        Scenario::default()
    }
}

/// Builds a world from a scenario; `speed` and `seed` override the scenario's.
pub fn build_world(
    _scenario: &Scenario,
    speed: Option<f64>,
    seed: Option<u64>,
) -> Result<World, String> {
    Ok(World::new(
        "eu-west-1",
        "123456789012",
        speed.unwrap_or(1.0),
        seed.unwrap_or(0),
    ))
}
