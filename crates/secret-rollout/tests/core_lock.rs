//! The rotation lock across processes: held by a live process, released by the OS when
//! that process is killed with SIGKILL (no cleanup code runs), so a crash never leaves a
//! secret locked.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use secret_rollout_core::error::Kind;
use secret_rollout_core::lock::Lock;

const CHILD_ENV: &str = "CORE_LOCK_TEST_CHILD_STATE_DIR";
/// Printed by the child once it holds the lock (libtest may put it after the test name).
const MARKER: &str = "child-holds-the-lock";
const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbCdEf";

#[test]
fn a_killed_holder_releases_the_lock() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        // Child role: hold the lock until killed.
        let _lock = Lock::acquire(std::path::Path::new(&dir), "production", ARN).unwrap();
        println!("{MARKER}");
        let mut sink = Vec::new();
        // The parent never closes our stdin: this blocks until SIGKILL.
        let _ = std::io::stdin().read_to_end(&mut sink);
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_holder_releases_the_lock",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let locked = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.ends_with(MARKER));
    assert!(locked, "the child never took the lock");

    let e = Lock::acquire(dir.path(), "production", ARN).unwrap_err();
    assert_eq!(e.kind, Kind::Refused);
    assert!(
        e.message.ends_with(&format!("(pid {})", child.id())),
        "{}",
        e.message
    );

    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    Lock::acquire(dir.path(), "production", ARN).expect("the lock outlived its holder");
}
