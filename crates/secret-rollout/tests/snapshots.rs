//! Snapshot tests of the text output of `plan`, `replace`, `status` and `history` on the
//! sample sandbox, so that any change of what an operator reads shows up in review as a
//! diff of `tests/snapshots/*.snap`.
//!
//! Reviewing and accepting a change of output:
//!
//! - A mismatch fails the test. Outside CI, insta also writes the new output beside the
//!   old one as `tests/snapshots/NAME.snap.new`.
//! - `cargo insta review` (from `cargo install cargo-insta`) shows each diff and accepts or
//!   rejects it; without cargo-insta, rerun with `INSTA_UPDATE=always` to overwrite the
//!   `.snap` files, then read `git diff crates/secret-rollout/tests/snapshots` before
//!   committing them.
//! - In CI (`CI` set) insta behaves as `INSTA_UPDATE=no`: it writes nothing and fails on
//!   any mismatch or missing snapshot, so an unreviewed change of output cannot land.
//!
//! Determinism, so that a snapshot changes only when the output does:
//!
//! - The sample scenario with the harness's fixed seed (7), so the sandbox's ids (ARN
//!   suffixes, task ids, deployment ids, the sample's version ids) are the same every run.
//! - The virtual clock pinned to 2026-01-05T09:00:00Z and stopped (speed 0): virtual
//!   times the tool prints (ECS event times, task creation times, version dates) are
//!   exact. During a `replace` a [`Stepper`] moves it 5 s at a time in lock-step with the
//!   tool's polls, so the tool sees every intermediate state of every deployment exactly
//!   once, whatever the machine's load.
//! - What still varies is redacted, never dropped: ids that the tool or the SDK draws at
//!   random (new version ids, rotation ids) and ids whose assignment depends on the order
//!   of concurrent requests (deployment and task ids) become numbered placeholders
//!   (`[VERSION-2]`, `[ROTATION-1]`, `[DEPLOYMENT-4]`, `[TASK-7]`), so a reviewer still sees
//!   that the report names the version the progress lines wrote; wall-clock times, ages,
//!   elapsed times and call counts (which depend on how often the tool polled) become
//!   fixed placeholders (`[TIME]`, `[AGE]`, ...). See [`redact`] and [`snapshot`].
//!
//! Every snapshot is also checked to hold no secret value.

mod common;

use std::collections::HashMap;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{start_with, TestEnv, CLUSTER, SHARED};
use sandbox::scenario::StartTime;
use sandbox::Scenario;

/// The virtual instant the sample starts at (its secrets were written an hour before).
const START: &str = "2026-01-05T09:00:00Z";
/// Virtual seconds the [`Stepper`] moves the clock per step.
const STEP: f64 = 5.0;
/// The value of [`SHARED`] in the sample scenario.
const SAMPLE_VALUE: &str = "ops-alerts@example.com,lpa-team@example.com";

/// The sample on a stopped clock pinned to [`START`], with the harness's fixed seed.
async fn start_pinned() -> TestEnv {
    let mut scenario = Scenario::sample();
    scenario.start = Some(StartTime::Text(START.into()));
    start_with(scenario, 0.0).await
}

/// How many calls of `operation` the sandbox has recorded.
fn recorded(w: &sandbox::World, operation: &str) -> usize {
    w.calls.iter().filter(|c| c.operation == operation).count()
}

/// Moves the stopped virtual clock in lock-step with the tool's polls while it follows
/// its deployments.
///
/// It waits until the tool has called UpdateService `updates` times, then advances the
/// clock by [`STEP`] each time a second DescribeServices (the follow loop's poll, one per
/// cluster) has been recorded since the last advance. A call recorded after an advance is
/// answered after it, and the tool sends its next poll only once the previous one was
/// answered: so every state is seen by at least one poll and none is skipped, however
/// slow the machine. Within one poll the tool reports a service's counts only when they
/// change, so its progress lines are the same on every run.
struct Stepper {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<u32>,
}

impl Stepper {
    fn start(env: &TestEnv, updates: usize) -> Stepper {
        let world = env.sandbox.world();
        let base = recorded(&world.lock().unwrap(), "UpdateService");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            // DescribeServices calls recorded when the clock last moved (or, before the
            // first step, before the last redeploy).
            let mut mark: Option<usize> = None;
            let mut steps = 0;
            while !flag.load(Ordering::SeqCst) {
                {
                    let mut w = world.lock().unwrap();
                    match mark {
                        None if recorded(&w, "UpdateService") >= base + updates => {
                            let last = w
                                .calls
                                .iter()
                                .rposition(|c| c.operation == "UpdateService")
                                .expect("an UpdateService call");
                            mark = Some(
                                w.calls[..last]
                                    .iter()
                                    .filter(|c| c.operation == "DescribeServices")
                                    .count(),
                            );
                        }
                        None => {}
                        Some(m) => {
                            let polls = recorded(&w, "DescribeServices");
                            if polls >= m + 2 {
                                w.advance_clock(STEP).expect("clock advances");
                                mark = Some(polls);
                                steps += 1;
                            }
                        }
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            steps
        });
        Stepper { stop, handle }
    }

    /// Stops stepping; the number of steps taken.
    async fn finish(self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.expect("stepper joins")
    }
}

/// The three readers of [`SHARED`] in the sample: front, api, admin.
const READERS: usize = 3;

/// `replace SHARED` with `args` after the common ones, the clock stepped while it runs.
async fn replace(env: &TestEnv, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut all = vec!["replace", SHARED, "--cluster", CLUSTER, "--yes"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--max-poll", "50ms"]);
    let stepper = Stepper::start(env, READERS);
    let out = env.run(&all, stdin).await;
    let steps = stepper.finish().await;
    // Every deployment in the sample completes 70 virtual seconds after it starts (5 s
    // provisioning, 20 s pending, 10 s health check, 30 s draining, 5 s stopping).
    assert_eq!(steps, 14, "clock steps during the replace: {}", raw(&out));
    out
}

/// Exit code, stdout and stderr in one text: what a snapshot holds.
fn raw(o: &Output) -> String {
    format!(
        "exit code {}\n--- stdout\n{}--- stderr\n{}",
        o.status
            .code()
            .map_or_else(|| "none (signal)".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Replaces ids with numbered placeholders, numbered consistently across every text of
/// one test, so relations between outputs survive redaction.
#[derive(Default)]
struct Ids {
    /// Version ids of [`SHARED`], oldest first, from the sandbox's ground truth:
    /// `[VERSION-1]` is the sample's, the next one the first written after it...
    versions: Vec<String>,
    /// Rotation ids in order of first appearance.
    rotations: Vec<String>,
    /// Other ids by kind, in order of first appearance.
    seen: HashMap<&'static str, Vec<String>>,
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
}

fn is_deployment(s: &str) -> bool {
    s.strip_prefix("ecs-svc/")
        .is_some_and(|d| d.len() == 19 && d.bytes().all(|b| b.is_ascii_digit()))
}

impl Ids {
    fn numbered(&mut self, kind: &'static str, id: &str) -> String {
        let list = self.seen.entry(kind).or_default();
        let n = match list.iter().position(|x| x == id) {
            Some(i) => i + 1,
            None => {
                list.push(id.to_string());
                list.len()
            }
        };
        format!("[{kind}-{n}]")
    }

    /// Learns [`SHARED`]'s versions from the sandbox (they are only ever appended).
    fn learn_versions(&mut self, env: &TestEnv) {
        for v in env.secret(SHARED)["versions"].as_array().expect("versions") {
            let id = v["id"].as_str().expect("version id").to_string();
            if !self.versions.contains(&id) {
                self.versions.push(id);
            }
        }
    }

    /// Rotation ids are the ones the text names as such.
    fn learn_rotations(&mut self, text: &str) {
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                let named = i > 0 && ["rotation", "id"].contains(&words[i - 1]);
                // `history`: "STARTED  KIND  OUTCOME  ROTATION-ID".
                let history = i == 3 && words.len() == 4 && words[0].ends_with('Z');
                if is_uuid(w) && (named || history) && !self.rotations.iter().any(|r| r == w) {
                    self.rotations.push(w.to_string());
                }
            }
        }
    }

    fn token(&mut self, t: &str) -> Option<String> {
        if is_uuid(t) {
            if let Some(i) = self.versions.iter().position(|v| v == t) {
                return Some(format!("[VERSION-{}]", i + 1));
            }
            if let Some(i) = self.rotations.iter().position(|r| r == t) {
                return Some(format!("[ROTATION-{}]", i + 1));
            }
            return Some(self.numbered("UUID", t));
        }
        if is_deployment(t) {
            return Some(self.numbered("DEPLOYMENT", t));
        }
        if t.len() == 32 && is_hex(t) {
            return Some(self.numbered("TASK", t));
        }
        // The 8-character short form of a version id (status, progress lines).
        if t.len() == 8 && is_hex(t) {
            if let Some(i) = self.versions.iter().position(|v| v.starts_with(t)) {
                return Some(format!("[VERSION-{}]", i + 1));
            }
        }
        None
    }

    /// The text with every id replaced; ids are whole words of `[A-Za-z0-9/_-]`.
    ///
    /// Placeholders are shorter (or longer) than the ids they stand for, which would pull
    /// the columns of the tool's tables out of line: each gap of two or more spaces inside
    /// a line (a column gap) gives back what the cells before it lost or gained since the
    /// previous gap, keeping at least two spaces, so tables read as the tool aligned them.
    /// Prose has no such gaps and keeps its spacing.
    fn apply(&mut self, text: &str) -> String {
        self.learn_rotations(text);
        let word = |c: char| c.is_ascii_alphanumeric() || "-/_".contains(c);
        let mut out = String::with_capacity(text.len());
        let mut drift: isize = 0; // placeholder minus id lengths since the last gap
        let mut rest = text;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            let (w, tail) = rest.split_at(end);
            match self.token(w) {
                Some(p) => {
                    drift += p.len() as isize - w.len() as isize;
                    out.push_str(&p);
                }
                None => out.push_str(w),
            }
            let after = tail.trim_start_matches(' ');
            let spaces = (tail.len() - after.len()) as isize;
            if spaces >= 2 && !after.is_empty() && !after.starts_with('\n') {
                let have = (spaces - drift).max(2);
                drift = have - (spaces - drift);
                out.push_str(&" ".repeat(have as usize));
                rest = after;
                continue;
            }
            let sep = tail.chars().next().map_or(0, char::len_utf8);
            if tail.starts_with('\n') {
                drift = 0;
            }
            out.push_str(&tail[..sep]);
            rest = &tail[sep..];
        }
        out
    }
}

/// A test's redaction state: the numbering of ids and the values that must never show.
struct Redactor<'a> {
    env: &'a TestEnv,
    ids: Ids,
    values: Vec<String>,
}

impl<'a> Redactor<'a> {
    fn new(env: &'a TestEnv) -> Self {
        Self {
            env,
            ids: Ids::default(),
            values: vec![SAMPLE_VALUE.to_string()],
        }
    }

    /// A value that must appear in no output.
    fn secret_value(&mut self, v: &str) {
        self.values.push(v.to_string());
    }

    /// The run's output with this machine's paths and port and the numbered ids
    /// replaced (the fixed placeholders are insta filters, in [`snapshot`]).
    fn redact(&mut self, o: &Output) -> String {
        let text = raw(o);
        for v in &self.values {
            assert!(!text.contains(v.as_str()), "a secret value in the output");
        }
        self.ids.learn_versions(self.env);
        let dir = self.env.dir.path().display().to_string();
        let text = text
            .replace(&dir, "[TEMP-DIR]")
            .replace(&self.env.sandbox.endpoint(), "[ENDPOINT]");
        self.ids.apply(&plan_order_redeploys(&text))
    }

    /// Redacts and compares with the snapshot `name`.
    fn snapshot(&mut self, name: &str, description: &str, o: &Output) {
        let text = self.redact(o);
        snapshot(name, description, &text);
        for v in &self.values {
            assert!(!text.contains(v.as_str()), "a secret value in {name}");
        }
    }
}

/// The readers of [`SHARED`] in the order the plan lists them.
const PLAN_ORDER: [&str; 3] = ["front", "api", "admin"];

/// The tool starts the deployments concurrently and prints "SERVICE: deployment ID
/// started in CLUSTER" in the order ECS happens to answer: a run of such lines is put in
/// plan order, so that the order of the answers (which carries no information) does not
/// make the snapshot flicker. Every other line keeps its place.
fn plan_order_redeploys(text: &str) -> String {
    let rank = |l: &str| -> Option<usize> {
        let (_, rest) = l.split_once(' ')?; // the wall-clock stamp, `HH:MM:SS UTC`
        let rest = rest.strip_prefix("UTC ").unwrap_or(rest);
        let (name, rest) = rest.split_once(": deployment ")?;
        rest.contains(" started in").then(|| {
            PLAN_ORDER
                .iter()
                .position(|s| *s == name)
                .unwrap_or(PLAN_ORDER.len())
        })
    };
    // A line and the lines it wrapped onto (within a width they start with spaces).
    let mut entries: Vec<String> = Vec::new();
    for l in text.split_inclusive('\n') {
        match entries.last_mut() {
            Some(e) if l.starts_with("  ") && rank(e).is_some() => e.push_str(l),
            _ => entries.push(l.to_string()),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < entries.len() {
        let mut run = Vec::new();
        while let Some(r) = entries.get(i).and_then(|l| rank(l)) {
            run.push((r, entries[i].as_str()));
            i += 1;
        }
        if run.is_empty() {
            out.push_str(&entries[i]);
            i += 1;
        } else {
            run.sort_by_key(|(r, _)| *r);
            out.extend(run.into_iter().map(|(_, l)| l));
        }
    }
    out
}

/// `assert_snapshot!` with the fixed placeholders. Settings are thread-local: they are
/// bound here, synchronously, never across an `.await`.
fn snapshot(name: &str, description: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(description);
    settings.set_omit_expression(true);
    for (pattern, replacement) in [
        // Progress lines are stamped with the wall clock (virtual times elsewhere stay).
        (r"(?m)^\d{2}:\d{2}:\d{2} ", "[TIME] "),
        // The plan's age of the current version: the wall clock minus a virtual date.
        (r"\(\d+[smhd] old\)", "([AGE] old)"),
        // How many polls the tool made, and how long it took, depend on the machine.
        (r"\d+ AWS calls in \d+\.\ds", "[N] AWS calls in [ELAPSED]"),
        // The journal's start and end of a rotation are wall-clock times.
        (
            r"(?m)^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC  ",
            "[STARTED]  ",
        ),
        (
            r"finished \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC",
            "finished [FINISHED]",
        ),
        // Belt and braces, should a future output name them another way.
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    ] {
        settings.add_filter(pattern, replacement);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_of_the_shared_secret() {
    let env = start_pinned().await;
    let mut r = Redactor::new(&env);
    let out = env.run(&["plan", SHARED, "--cluster", CLUSTER], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    r.snapshot(
        "plan",
        "plan of the sample's shared secret: front, api and admin read it",
        &out,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_with_a_known_value() {
    let env = start_pinned().await;
    let mut r = Redactor::new(&env);
    let value = "known-value-never-printed-Zq81";
    r.secret_value(value);
    let out = replace(&env, &["--value-stdin"], Some(value.as_bytes())).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    // The snapshot's story is the ground truth's: every reader runs the new version.
    let new = env.current_version(SHARED);
    for service in ["front", "api", "admin"] {
        assert_eq!(env.versions_read(service, SHARED), [new.clone()].into());
    }
    r.snapshot(
        "replace",
        "replace --value-stdin --yes of the shared secret, stderr not a terminal: the plan and \
         timestamped progress lines on stderr, the report on stdout",
        &out,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_before_when_stale_and_after_replace() {
    let env = start_pinned().await;
    let mut r = Redactor::new(&env);
    let status = ["status", "--cluster", CLUSTER, SHARED];

    let out = env.run(&status, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    r.snapshot(
        "status_before",
        "status of the shared secret on the untouched sample: nothing stale",
        &out,
    );

    // A new version written behind the tool's back: every reader's task is now stale.
    let behind = "written-behind-the-back-Vv3";
    r.secret_value(behind);
    env.clients
        .sm
        .put_secret_value()
        .secret_id(SHARED)
        .secret_string(behind)
        .send()
        .await
        .expect("put behind the tool's back");
    let out = env.run(&status, None).await;
    assert_eq!(out.status.code(), Some(1), "{}", raw(&out));
    r.snapshot(
        "status_stale",
        "status after a version was written with the SDK and nothing redeployed: all 7 tasks \
         of front, api and admin stale",
        &out,
    );

    let value = "status-test-value-Kp20";
    r.secret_value(value);
    let out = replace(&env, &["--value-stdin"], Some(value.as_bytes())).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    let _ = r.redact(&out); // numbers the replace's ids in the order a reader meets them
    let out = env.run(&status, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    r.snapshot(
        "status_after",
        "status after replace: nothing stale, the new deployments and version",
        &out,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_after_a_generated_replace() {
    let env = start_pinned().await;
    let mut r = Redactor::new(&env);
    let out = replace(&env, &["--generate"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    let generated = env
        .clients
        .sm
        .get_secret_value()
        .secret_id(SHARED)
        .send()
        .await
        .expect("read the generated value")
        .secret_string()
        .expect("a string")
        .to_string();
    r.secret_value(&generated);
    let _ = r.redact(&out);

    let out = env
        .run(&["history", SHARED, "--cluster", CLUSTER], None)
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    r.snapshot(
        "history_secret",
        "history of the shared secret after one replace --generate: the rotation from the \
         journal, then the versions in Secrets Manager",
        &out,
    );

    let out = env.run(&["history"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    r.snapshot(
        "history_all",
        "history without a secret: every rotation in the journal, no AWS call",
        &out,
    );
}

// ---- Within a width (issue 19) -----------------------------------------------------------

/// Runs the binary with `COLUMNS` set to `columns`, as [`TestEnv::run`] does otherwise.
async fn run_in(env: &TestEnv, columns: usize, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = env.cli();
    cmd.args(args).env("COLUMNS", columns.to_string());
    let input = stdin.map(<[u8]>::to_vec);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::process::Stdio;
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("binary starts");
        if let Some(bytes) = input {
            let mut stdin = child.stdin.take().expect("stdin");
            let _ = stdin.write_all(&bytes);
        }
        child.wait_with_output().expect("binary finishes")
    })
    .await
    .expect("join")
}

/// What issue 19 asks of every text within `columns`, checked on the output as printed
/// (before redaction, whose placeholders are wider or narrower than the ids):
/// - no line of stdout or stderr is wider than `columns`;
/// - every line naming the shared secret holds its name whole, or its beginning and `…`
///   (a name is never broken over two lines).
fn assert_fits(o: &Output, columns: usize) {
    let short = SHARED.trim_start_matches("production/");
    for stream in [&o.stdout, &o.stderr] {
        let text = String::from_utf8_lossy(stream);
        for l in text.lines() {
            assert!(
                l.chars().count() <= columns,
                "{} columns, more than {columns}: {l:?}\n{}",
                l.chars().count(),
                raw(o)
            );
            // Where a line shows the name (or, without the prefix, its rest), all of it
            // or its beginning up to an ellipsis.
            let Some(at) = l.find("opg_lpa_") else {
                continue;
            };
            let from = l[..at].strip_suffix("production/").map_or(at, |p| p.len());
            let shown = &l[from..];
            let whole = shown.starts_with(SHARED) || shown.starts_with(short);
            let cut = shown
                .split_once('…')
                .is_some_and(|(head, _)| SHARED.starts_with(head) || short.starts_with(head));
            assert!(whole || cut, "the secret's name broken: {l:?}\n{}", raw(o));
        }
    }
}

/// In `status`, each secret row's VERSION, TASKS and STALE start where the table's header
/// puts them (the column is not broken).
fn assert_status_columns(o: &Output) {
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with("SECRET") && l.contains("VERSION"))
        .unwrap_or_else(|| panic!("the secrets header\n{}", raw(o)));
    let header = lines[start];
    let version = header.find("VERSION").expect("VERSION");
    // The table runs to the first empty line; its rows are the indented lines naming
    // the secret (the others are service lines wrapped onto a second line).
    let rows: Vec<&&str> = lines[start + 1..]
        .iter()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && l.contains("opg_lpa_"))
        .collect();
    assert_eq!(rows.len(), READERS, "one row per reader\n{}", raw(o));
    // Columns in characters (an ellipsis is one column, three bytes).
    let version = header[..version].chars().count();
    for r in rows {
        let chars: Vec<char> = r.chars().collect();
        let cell: String = chars[version..].iter().take(8).collect();
        assert!(
            chars[version - 1] == ' '
                && cell.len() == 8
                && cell.bytes().all(|b| b.is_ascii_hexdigit()),
            "VERSION out of its column: {r:?}\n{}",
            raw(o)
        );
    }
}

/// The timeline of a replace of the shared secret: one row per reader, S, T and C where
/// the sample's rolling deployments put them on ECS's clock (write 09:00:00, every old
/// task told to stop at 09:00:35, complete at 09:01:10), the times from the write beside.
fn assert_timeline(text: &str, columns: usize) {
    let at = text
        .find("timeline of the rollout (AWS's clock, from the write at 09:00:00 UTC to the")
        .unwrap_or_else(|| panic!("a timeline\n{text}"));
    let rows: Vec<&str> = text[at..]
        .lines()
        .filter(|l| PLAN_ORDER.iter().any(|s| l.starts_with(&format!("  {s} "))))
        .collect();
    assert_eq!(rows.len(), READERS, "{text}");
    for r in rows {
        assert!(r.ends_with("S +0s  T +35s  C +1m10s"), "{r}");
        let bar = &r[r.find('|').expect("bar") + 1..r.rfind('|').expect("bar")];
        assert!(bar.starts_with('S') && bar.ends_with('C'), "{bar}");
        // 35 of 70 seconds: T half-way along the bar, a column either way.
        let t = bar.find('T').expect("T") as f64 / (bar.len() - 1) as f64;
        assert!((0.45..=0.55).contains(&t), "{bar}");
        assert!(r.chars().count() <= columns, "{r}");
    }
}

/// `plan`, `status` (stale), `replace` (progress, report and timeline), `status` after,
/// `history SECRET` and `history ROTATION_ID` at `columns`.
async fn within(columns: usize) {
    let env = start_pinned().await;
    let mut r = Redactor::new(&env);
    let name = |what: &str| format!("{what}_{columns}");

    let out = run_in(&env, columns, &["plan", SHARED, "--cluster", CLUSTER], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    assert_fits(&out, columns);
    r.snapshot(
        &name("plan"),
        &format!("plan of the shared secret at COLUMNS={columns}"),
        &out,
    );

    let behind = "written-behind-the-back-Ww4";
    r.secret_value(behind);
    env.clients
        .sm
        .put_secret_value()
        .secret_id(SHARED)
        .secret_string(behind)
        .send()
        .await
        .expect("put behind the tool's back");
    let status = ["status", "--cluster", CLUSTER, SHARED];
    let out = run_in(&env, columns, &status, None).await;
    assert_eq!(out.status.code(), Some(1), "{}", raw(&out));
    assert_fits(&out, columns);
    assert_status_columns(&out);
    r.snapshot(
        &name("status_stale"),
        &format!("status at COLUMNS={columns} with all 7 tasks of front, api and admin stale: grouped by service"),
        &out,
    );

    let value = "width-test-value-Qa51";
    r.secret_value(value);
    let all = [
        "replace",
        SHARED,
        "--cluster",
        CLUSTER,
        "--yes",
        "--value-stdin",
        "--max-poll",
        "50ms",
    ];
    let stepper = Stepper::start(&env, READERS);
    let out = run_in(&env, columns, &all, Some(value.as_bytes())).await;
    let steps = stepper.finish().await;
    assert_eq!(steps, 14, "clock steps during the replace: {}", raw(&out));
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    let new = env.current_version(SHARED);
    for service in PLAN_ORDER {
        assert_eq!(env.versions_read(service, SHARED), [new.clone()].into());
    }
    assert_fits(&out, columns);
    assert_timeline(&String::from_utf8_lossy(&out.stdout), columns);
    r.snapshot(
        &name("replace"),
        &format!("replace --value-stdin --yes at COLUMNS={columns}: the plan and progress lines on stderr, the report and its timeline on stdout"),
        &out,
    );
    let id = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.len() == 36 && w.chars().filter(|c| *c == '-').count() == 4)
        .expect("the rotation id in the report")
        .to_string();

    let out = run_in(&env, columns, &status, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    assert_fits(&out, columns);
    assert_status_columns(&out);
    r.snapshot(
        &name("status_after"),
        &format!("status after the replace at COLUMNS={columns}"),
        &out,
    );

    let out = run_in(
        &env,
        columns,
        &["history", SHARED, "--cluster", CLUSTER],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    assert_fits(&out, columns);
    r.snapshot(
        &name("history_secret"),
        &format!("history of the shared secret at COLUMNS={columns}"),
        &out,
    );

    let out = run_in(&env, columns, &["history", &id], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", raw(&out));
    assert_fits(&out, columns);
    // The journal's timeline is the report's: the same moments, on ECS's clock.
    assert_timeline(&String::from_utf8_lossy(&out.stdout), columns);
    // A UUID that names no rotation: refused in one line, without asking AWS anything.
    let calls = env.sandbox.world().lock().unwrap().calls.len();
    let bad = run_in(
        &env,
        columns,
        &["history", "00000000-0000-4000-8000-000000000000"],
        None,
    )
    .await;
    assert_eq!(bad.status.code(), Some(2), "{}", raw(&bad));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).lines().next(),
        Some("error: no rotation 00000000-0000-4000-8000-000000000000 in the journal of this machine"),
        "{}",
        raw(&bad)
    );
    assert_eq!(env.sandbox.world().lock().unwrap().calls.len(), calls);
    r.snapshot(
        &name("history_rotation"),
        &format!("history ROTATION_ID at COLUMNS={columns}: the rotation and its timeline from the journal"),
        &out,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_80_columns() {
    within(80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_120_columns() {
    within(120).await;
}
