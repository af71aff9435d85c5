//! Drives the sandbox's gate fault from a test: hold the tool's calls at the gate, let them
//! through one at a time, and stop where the journal or the sandbox shows a condition,
//! instead of counting calls. The child process is checked between polls, so a tool that
//! exits early fails the test at once with what it was waiting for.

use std::process::Child;
use std::time::{Duration, Instant};

use sandbox::faults::{FaultRule, HeldCall, Release, Which};

use super::TestEnv;

/// How long a wait may take before the test gives up: a hang guard, never an assertion on
/// timing (every step waited for takes milliseconds).
const HANG: Duration = Duration::from_secs(60);

impl TestEnv {
    /// Replaces the fault rules with `rules` (gate rules, and any others).
    pub fn gate(&self, rules: Vec<FaultRule>) {
        self.sandbox
            .world()
            .lock()
            .expect("world")
            .set_faults(rules)
            .expect("valid fault rules");
    }

    /// Removes every fault rule; anything still held goes on and runs.
    pub fn open_gate(&self) {
        self.sandbox.world().lock().expect("world").clear_faults();
    }

    /// The calls held now, oldest first.
    pub fn held(&self) -> Vec<HeldCall> {
        self.sandbox.world().lock().expect("world").held_calls()
    }

    /// Lets `which` held calls go, to run or to be dropped unrun; panics if they are not
    /// held (a test that releases what is not there has lost track of the tool).
    pub fn release(&self, which: Which, how: Release) -> Vec<HeldCall> {
        self.sandbox
            .world()
            .lock()
            .expect("world")
            .release_calls(which, how)
            .unwrap_or_else(|e| panic!("release {which:?}: {e}"))
    }

    /// Releases the one held call for which `pick` holds, to run; panics unless exactly
    /// one does.
    pub fn release_where(&self, pick: impl Fn(&HeldCall) -> bool) -> HeldCall {
        let held = self.held();
        let chosen: Vec<&HeldCall> = held.iter().filter(|c| pick(c)).collect();
        assert_eq!(chosen.len(), 1, "one held call to release: {held:?}");
        self.release(Which::Id(chosen[0].id), Release::Run)
            .pop()
            .expect("released")
    }

    /// Waits until at least `n` calls are held; panics if `child` exits first.
    pub async fn wait_held(&self, child: &mut Child, what: &str, n: usize) -> Vec<HeldCall> {
        let t0 = Instant::now();
        loop {
            let held = self.held();
            if held.len() >= n {
                return held;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("the tool ended ({status}) before {what}: {n} held calls wanted, {held:?}");
            }
            assert!(t0.elapsed() < HANG, "never reached: {what}: {held:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets held calls through one at a time, oldest first, until `stop` holds, and returns
    /// the calls held then. `stop` is asked each time a call waits at the gate: the tool
    /// has then done everything it does before that call (journal records included). Exact
    /// where the tool makes one call at a time; where it makes calls at once, another held
    /// call may be released before the tool has reacted to the last answer, so wait there
    /// with [`TestEnv::wait_held`] and release by [`TestEnv::release_where`].
    pub async fn advance_until(
        &self,
        child: &mut Child,
        what: &str,
        mut stop: impl FnMut(&TestEnv, &[HeldCall]) -> bool,
    ) -> Vec<HeldCall> {
        loop {
            let held = self.wait_held(child, what, 1).await;
            if stop(self, &held) {
                return held;
            }
            self.release(Which::Oldest(1), Release::Run);
        }
    }
}

/// Polls `done` until it holds; panics after [`HANG`] (a hang guard, not a timing check).
pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < HANG, "never reached: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The ECS service a held call names (`service`, or the first of `services`).
pub fn service_of(call: &HeldCall) -> &str {
    call.subject["service"]
        .as_str()
        .or_else(|| call.subject["services"][0].as_str())
        .unwrap_or_default()
}
