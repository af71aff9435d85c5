//! Drawing progress for people: indicatif bars on a terminal, timestamped lines otherwise.
//! Both go to stderr, so stdout carries only the result (the third renderer, JSON lines on
//! stdout, is [`super::ndjson`]). Whether to draw bars is a plain function of the terminal
//! and CI, tested below.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use secret_rollout_core::progress::{Event, Phase, Reporter};
use time::OffsetDateTime;

/// Bars only on an interactive terminal, never in CI or on a dumb terminal.
pub fn use_bars(stderr_is_terminal: bool, ci: bool, term: Option<&str>) -> bool {
    stderr_is_terminal && !ci && term != Some("dumb")
}

/// Colour only on a terminal, and never when NO_COLOR is set (to anything non-empty).
pub fn use_color(is_terminal: bool, no_color: Option<&str>) -> bool {
    is_terminal && no_color.is_none_or(str::is_empty)
}

fn phase_tag(phase: Phase) -> &'static str {
    match phase {
        Phase::Rollout => "",
        Phase::Restore => " [restore]",
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

// Times for people, one format everywhere (issue 21): UTC, always marked as UTC. A time of
// the run (progress lines, ECS events, proofs) is `12:09:14 UTC`; a time that may be of
// another day (status, history) is `2026-01-05 12:09:14 UTC`. JSON has RFC 3339 strings.

fn utc(epoch: f64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(epoch.floor() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn clock(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// Epoch seconds as the time of day: `12:09:14 UTC`.
pub fn hms(epoch: f64) -> String {
    format!("{} UTC", clock(utc(epoch)))
}

/// A range of epoch seconds: `12:09:14-12:10:02 UTC`, or once when both ends print the
/// same: `12:09:14 UTC`.
pub fn hms_range(from: f64, to: f64) -> String {
    let (a, b) = (clock(utc(from)), clock(utc(to)));
    if a == b {
        format!("{a} UTC")
    } else {
        format!("{a}-{b} UTC")
    }
}

/// Epoch seconds as a date and time: `2026-01-05 12:09:14 UTC`.
pub fn datetime(epoch: f64) -> String {
    datetime_of(utc(epoch))
}

/// A moment as a date and time: `2026-01-05 12:09:14 UTC`.
pub fn datetime_of(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        clock(t)
    )
}

/// An RFC 3339 time (the journal's) as [`datetime_of`] prints it; as given if unreadable.
pub fn datetime_rfc3339(text: &str) -> String {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(datetime_of)
        .unwrap_or_else(|_| text.to_string())
}

/// One line of text for an event (None: nothing worth a line).
pub fn line(event: &Event) -> Option<String> {
    Some(match event {
        Event::SecretWritten {
            secret,
            version_id,
            already: false,
        } => {
            format!("{secret}: wrote version {version_id} (now AWSCURRENT)")
        }
        Event::SecretWritten {
            secret,
            version_id,
            already: true,
        } => {
            format!("{secret}: version {version_id} was already written")
        }
        Event::SecretRestored { secret, version_id } => {
            format!("{secret}: AWSCURRENT moved back to version {version_id}")
        }
        Event::Redeployed {
            phase,
            cluster,
            service,
            deployment_id,
        } => {
            format!(
                "{service}{}: deployment {deployment_id} started in {cluster}",
                phase_tag(*phase)
            )
        }
        Event::Progress {
            phase,
            service,
            desired,
            running,
            pending,
            old,
            failed,
        } => {
            let mut s = format!(
                "{service}{}: new {running}/{desired} running",
                phase_tag(*phase)
            );
            if *pending > 0 {
                s.push_str(&format!(", {pending} pending"));
            }
            s.push_str(&format!(", {old} old"));
            if *failed > 0 {
                s.push_str(&format!(", {failed} failed"));
            }
            s
        }
        Event::ServiceEvent {
            service,
            at,
            message,
        } => format!("{service}: [ecs {}] {message}", hms(*at)),
        Event::DeploymentStarting { .. } => return None,
        Event::TrafficOnNew { phase, service } => format!(
            "{service}{}: every old task told to stop: all traffic on new tasks",
            phase_tag(*phase)
        ),
        Event::DeploymentComplete { phase, service } => format!(
            "{service}{}: rollout complete: old tasks gone",
            phase_tag(*phase)
        ),
        Event::DeploymentFailed {
            phase,
            service,
            reason,
        } => format!("{service}{}: FAILED: {reason}", phase_tag(*phase)),
        Event::Verified {
            phase,
            service,
            version_id,
            proof,
        } => {
            let range = proof
                .started
                .map(|(a, b)| format!(" (started {})", hms_range(a, b)))
                .unwrap_or_default();
            if proof.nothing_to_prove {
                return Some(format!(
                    "{service}{}: nothing to prove: desired 0, no task runs",
                    phase_tag(*phase)
                ));
            }
            let mut s = format!(
                "{service}{}: {}/{} tasks on version {}{range}",
                phase_tag(*phase),
                proof.fresh,
                proof.total,
                short(version_id)
            );
            for st in &proof.stale {
                s.push_str(&format!("\n  stale task {}: {}", st.task, st.reason));
            }
            s
        }
        Event::SecretChanged {
            phase,
            secret,
            expected,
            current,
            ..
        } => match current.as_deref() {
            Some(c) if c != expected => format!(
                "{secret}{}: AWSCURRENT is now {c}, not {}: someone else changed the secret",
                phase_tag(*phase),
                short(expected)
            ),
            _ => format!(
                "{secret}{}: the secret changed while {} stayed current: cannot prove what tasks hold",
                phase_tag(*phase),
                short(expected)
            ),
        },
        Event::WaitingForDeployment {
            cluster,
            service,
            deployment_id,
            state,
            since,
        } => format!(
            "waiting before writing: {}",
            secret_rollout_core::rotation::decide::busy_line(
                &secret_rollout_core::rotation::decide::Busy {
                    cluster: cluster.clone(),
                    service: service.clone(),
                    deployment: deployment_id.clone(),
                    state: state.clone(),
                    since: *since,
                    updated: 0.0,
                }
            )
        ),
        Event::Retrying { what, error } => format!("retrying {what}: {error}"),
        Event::VerifyError { phase, error } => {
            format!(
                "verification{} could not finish: {error}",
                phase_tag(*phase)
            )
        }
        Event::Warning { text } => format!("warning: {text}"),
        Event::Note { text } => text.clone(),
    })
}

fn time_of_day(at: OffsetDateTime) -> String {
    format!("{} UTC", clock(at))
}

/// The lines of an event, each prefixed with the moment it happened (`HH:MM:SS UTC`).
pub fn stamped(at: OffsetDateTime, event: &Event) -> Vec<String> {
    line(event)
        .map(|text| {
            text.lines()
                .map(|l| format!("{} {l}", time_of_day(at)))
                .collect()
        })
        .unwrap_or_default()
}

/// Timestamped lines on stderr, each wrapped to `width` (see [`super::width`]): the time
/// at the left is this machine's clock when the tool saw the event; an ECS event's own time
/// (ECS's clock) is in its `[ecs ...]` tag.
pub struct Lines {
    /// Columns to wrap to, if any.
    pub width: Option<usize>,
}

impl Reporter for Lines {
    fn report_at(&self, at: OffsetDateTime, event: &Event) {
        let mut err = std::io::stderr().lock();
        for l in stamped(at, event) {
            for l in super::width::wrap(&l, self.width) {
                let _ = writeln!(err, "{l}");
            }
        }
    }
}

/// One bar per service; other events printed above the bars.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Bars {
    fn bar(&self, service: &str, desired: u64) -> ProgressBar {
        let mut bars = self.bars.lock().expect("bars lock");
        bars.entry(service.to_string())
            .or_insert_with(|| {
                let pb = self.multi.add(ProgressBar::new(desired.max(1)));
                pb.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>10.bold} [{bar:24.cyan/blue}] {pos}/{len} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                pb.set_prefix(service.to_string());
                pb
            })
            .clone()
    }
}

impl Reporter for Bars {
    fn report_at(&self, _: OffsetDateTime, event: &Event) {
        match event {
            Event::Progress {
                service,
                desired,
                running,
                pending,
                old,
                failed,
                ..
            } => {
                let pb = self.bar(service, *desired as u64);
                pb.set_length((*desired).max(1) as u64);
                pb.set_position((*running).max(0) as u64);
                let mut msg = format!("pending {pending}, old {old}");
                if *failed > 0 {
                    msg.push_str(&format!(", failed {failed}"));
                }
                pb.set_message(msg);
                return;
            }
            Event::TrafficOnNew { service, .. } => {
                self.bar(service, 1).set_message("old tasks draining")
            }
            Event::DeploymentComplete { service, .. } => {
                self.bar(service, 1).finish_with_message("complete")
            }
            Event::DeploymentFailed {
                service, reason, ..
            } => self
                .bar(service, 1)
                .abandon_with_message(format!("FAILED: {reason}")),
            Event::DeploymentStarting { service, .. } => {
                self.bar(service, 1);
            }
            _ => {}
        }
        if let Some(text) = line(event) {
            let _ = self
                .multi
                .println(super::width::wrap_text(&text, super::width::stderr()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secret_rollout_core::verdict::{Proof, StaleTask};

    #[test]
    fn bars_only_on_an_interactive_terminal() {
        assert!(use_bars(true, false, Some("xterm-256color")));
        assert!(!use_bars(false, false, Some("xterm")));
        assert!(!use_bars(true, true, Some("xterm")));
        assert!(!use_bars(true, false, Some("dumb")));
    }

    #[test]
    fn colour_respects_no_color() {
        assert!(use_color(true, None));
        assert!(!use_color(true, Some("1")));
        assert!(use_color(true, Some("")));
        assert!(!use_color(false, None));
    }

    #[test]
    fn proof_line_names_version_and_times() {
        let e = Event::Verified {
            phase: Phase::Rollout,
            service: "api".into(),
            version_id: "6a1f0000-1111-2222-3333-444455556666".into(),
            proof: Proof {
                nothing_to_prove: false,
                fresh: 3,
                total: 3,
                started: Some((43267.0, 43360.0)),
                stale: vec![],
            },
        };
        assert_eq!(
            line(&e).unwrap(),
            "api: 3/3 tasks on version 6a1f0000 (started 12:01:07-12:02:40 UTC)"
        );
    }

    /// Item 12 of issue 21: one format for people, UTC marked as UTC; a range whose ends
    /// print the same prints once.
    #[test]
    fn times_for_people_are_utc_and_say_so() {
        assert_eq!(hms(43267.0), "12:01:07 UTC");
        assert_eq!(hms_range(43267.0, 43360.0), "12:01:07-12:02:40 UTC");
        assert_eq!(hms_range(43267.0, 43267.0), "12:01:07 UTC");
        assert_eq!(hms_range(43267.2, 43267.9), "12:01:07 UTC");
        assert_eq!(datetime(1_767_603_600.5), "2026-01-05 09:00:00 UTC");
        assert_eq!(
            datetime_rfc3339("2026-01-05T10:00:00+01:00"),
            "2026-01-05 09:00:00 UTC"
        );
        assert_eq!(datetime_rfc3339("not a time"), "not a time");
        let e = Event::Verified {
            phase: Phase::Rollout,
            service: "api".into(),
            version_id: "6a1f0000".into(),
            proof: Proof {
                nothing_to_prove: false,
                fresh: 3,
                total: 3,
                started: Some((43267.0, 43267.4)),
                stale: vec![],
            },
        };
        assert_eq!(
            line(&e).unwrap(),
            "api: 3/3 tasks on version 6a1f0000 (started 12:01:07 UTC)"
        );
    }

    /// One row per kind of event: the event and the line it prints (None: silent).
    #[test]
    fn every_event_has_its_line() {
        let restore = Phase::Restore;
        let rollout = Phase::Rollout;
        let rows: Vec<(Event, Option<&str>)> = vec![
            (
                Event::SecretWritten {
                    secret: "db".into(),
                    version_id: "v2".into(),
                    already: false,
                },
                Some("db: wrote version v2 (now AWSCURRENT)"),
            ),
            (
                Event::SecretWritten {
                    secret: "db".into(),
                    version_id: "v2".into(),
                    already: true,
                },
                Some("db: version v2 was already written"),
            ),
            (
                Event::SecretRestored {
                    secret: "db".into(),
                    version_id: "v1".into(),
                },
                Some("db: AWSCURRENT moved back to version v1"),
            ),
            (
                Event::Redeployed {
                    phase: restore,
                    cluster: "c".into(),
                    service: "api".into(),
                    deployment_id: "ecs-svc/9".into(),
                },
                Some("api [restore]: deployment ecs-svc/9 started in c"),
            ),
            (
                Event::Progress {
                    phase: rollout,
                    service: "api".into(),
                    desired: 3,
                    running: 1,
                    pending: 2,
                    old: 3,
                    failed: 1,
                },
                Some("api: new 1/3 running, 2 pending, 3 old, 1 failed"),
            ),
            (
                Event::Progress {
                    phase: rollout,
                    service: "api".into(),
                    desired: 3,
                    running: 3,
                    pending: 0,
                    old: 0,
                    failed: 0,
                },
                Some("api: new 3/3 running, 0 old"),
            ),
            (
                Event::ServiceEvent {
                    service: "api".into(),
                    at: 43267.0,
                    message: "(service api) has reached a steady state.".into(),
                },
                Some("api: [ecs 12:01:07 UTC] (service api) has reached a steady state."),
            ),
            (
                Event::DeploymentStarting {
                    phase: rollout,
                    service: "api".into(),
                },
                None,
            ),
            (
                Event::TrafficOnNew {
                    phase: rollout,
                    service: "api".into(),
                },
                Some("api: every old task told to stop: all traffic on new tasks"),
            ),
            (
                Event::DeploymentComplete {
                    phase: restore,
                    service: "api".into(),
                },
                Some("api [restore]: rollout complete: old tasks gone"),
            ),
            (
                Event::DeploymentFailed {
                    phase: rollout,
                    service: "api".into(),
                    reason: "circuit breaker".into(),
                },
                Some("api: FAILED: circuit breaker"),
            ),
            (
                Event::Verified {
                    phase: restore,
                    service: "api".into(),
                    version_id: "v1".into(),
                    proof: Proof {
                        nothing_to_prove: false,
                        fresh: 1,
                        total: 2,
                        started: None,
                        stale: vec![StaleTask {
                            task: "t1".into(),
                            reason: "started before the version existed".into(),
                        }],
                    },
                },
                Some("api [restore]: 1/2 tasks on version v1\n  stale task t1: started before the version existed"),
            ),
            (
                Event::Retrying {
                    what: "following services in c".into(),
                    error: "throttled".into(),
                },
                Some("retrying following services in c: throttled"),
            ),
            (
                Event::Note {
                    text: "resuming rotation x".into(),
                },
                Some("resuming rotation x"),
            ),
        ];
        for (event, want) in rows {
            assert_eq!(line(&event).as_deref(), want, "{event:?}");
        }
    }

    #[test]
    fn lines_are_stamped_with_the_events_moment_in_utc() {
        let at = time::macros::datetime!(2025-03-01 12:00:07.9 +02:00);
        let e = Event::Verified {
            phase: Phase::Rollout,
            service: "api".into(),
            version_id: "v2".into(),
            proof: Proof {
                nothing_to_prove: false,
                fresh: 1,
                total: 2,
                started: None,
                stale: vec![StaleTask {
                    task: "t1".into(),
                    reason: "old".into(),
                }],
            },
        };
        assert_eq!(
            stamped(at, &e),
            [
                "10:00:07 UTC api: 1/2 tasks on version v2",
                "10:00:07 UTC   stale task t1: old"
            ]
        );
        let silent = Event::DeploymentStarting {
            phase: Phase::Rollout,
            service: "api".into(),
        };
        assert!(stamped(at, &silent).is_empty());
    }
}
