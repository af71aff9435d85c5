//! A moto server (moto.server's entry point) on a free port, for tests that check our
//! Secrets Manager code and the sandbox against a second, independent emulator.
//!
//! Only std: the sandbox crate's tests include this file too (`#[path]`), so one launcher
//! serves both crates. Python comes from `SECRET_ROLLOUT_TEST_PYTHON`, else `python3`;
//! `scripts/test` installs `moto[server]`. A missing moto fails the test with a message
//! saying how to install it: a skipped comparison would pass silently.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's own entry point (`python -m moto.server -H HOST -p PORT`), plus a thread that
/// exits the server when its stdin closes: stdin is a pipe this process holds, so moto goes
/// away even when the test process is killed and never runs `Drop`.
const LAUNCHER: &str = "import os, sys, threading\n\
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n\
from moto.server import main\n\
main(['-H', '127.0.0.1', '-p', sys.argv[1]])\n";

/// A running moto server; killed when dropped.
pub struct Moto {
    child: Child,
    // Dropping it (or this process dying) closes moto's stdin, which ends moto.
    _stdin: Option<ChildStdin>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    // Holds moto's log (it logs every request; a pipe nobody reads would fill and block it).
    _dir: tempfile::TempDir,
}

/// The python interpreter the tests use.
pub fn python() -> String {
    std::env::var("SECRET_ROLLOUT_TEST_PYTHON")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// True once an HTTP request to the port gets any answer.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"HTTP/"))
}

impl Moto {
    /// Starts moto on a free port and waits until it answers (blocking: call it from
    /// `spawn_blocking` or before the runtime matters). Panics with the reason and moto's
    /// log when it does not come up.
    pub fn start() -> Moto {
        let python = python();
        let mut last_log = String::new();
        // The port is free when picked but another process may take it before moto binds:
        // try a few.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let log: PathBuf = dir.path().join("moto.log");
            let out = File::create(&log).expect("moto log");
            let port = free_port();
            let child = Command::new(&python)
                .args(["-c", LAUNCHER, &port.to_string()])
                .stdin(Stdio::piped())
                .stdout(out.try_clone().expect("log handle"))
                .stderr(out)
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) => panic!(
                    "cannot run {python} ({e}): set SECRET_ROLLOUT_TEST_PYTHON to a python with \
                     `pip install 'moto[server]'` (scripts/test installs it)"
                ),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if answers(port) {
                    let stdin = child.stdin.take();
                    return Moto {
                        child,
                        _stdin: stdin,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!(
            "moto server did not start with {python}: install it with `{python} -m pip install \
             'moto[server]'` (scripts/test does) or set SECRET_ROLLOUT_TEST_PYTHON.\n--- moto log\n{last_log}"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
