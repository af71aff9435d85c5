//! Drawing progress: indicatif bars on a terminal, timestamped lines otherwise. Both go to
//! stderr, so stdout carries only the result. Whether to draw bars is a plain function of
//! the terminal and CI, tested below.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use secret_rollout_core::progress::{Event, Phase, Reporter};
use secret_rollout_core::rollout::verdict::Stage;

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

/// Formats epoch seconds as `HH:MM:SS` UTC.
pub fn hms(epoch: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
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
        Event::Stage {
            phase,
            service,
            stage,
        } => match stage {
            Stage::Starting => return None,
            Stage::Draining => {
                format!(
                    "{service}{}: every old task told to stop: all traffic on new tasks",
                    phase_tag(*phase)
                )
            }
            Stage::Completed => format!(
                "{service}{}: rollout complete: old tasks gone",
                phase_tag(*phase)
            ),
            Stage::Failed { reason } => format!("{service}{}: FAILED: {reason}", phase_tag(*phase)),
        },
        Event::Verified {
            phase,
            service,
            version_id,
            proof,
        } => {
            let range = proof
                .started
                .map(|(a, b)| format!(" (started {}-{})", hms(a), hms(b)))
                .unwrap_or_default();
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

fn now_hms() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// Timestamped lines on stderr.
pub struct Lines;

impl Reporter for Lines {
    fn report(&self, event: &Event) {
        if let Some(text) = line(event) {
            let mut err = std::io::stderr().lock();
            for l in text.lines() {
                let _ = writeln!(err, "{} {l}", now_hms());
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
    fn report(&self, event: &Event) {
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
            }
            Event::Stage { service, stage, .. } => {
                let pb = self.bar(service, 1);
                match stage {
                    Stage::Completed => pb.finish_with_message("complete"),
                    Stage::Draining => pb.set_message("old tasks draining"),
                    Stage::Failed { reason } => {
                        pb.abandon_with_message(format!("FAILED: {reason}"))
                    }
                    Stage::Starting => {}
                }
                if let Some(text) = line(event) {
                    let _ = self.multi.println(text);
                }
            }
            other => {
                if let Some(text) = line(other) {
                    let _ = self.multi.println(text);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secret_rollout_core::rollout::verdict::Proof;

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
                fresh: 3,
                total: 3,
                started: Some((43267.0, 43360.0)),
                stale: vec![],
            },
        };
        assert_eq!(
            line(&e).unwrap(),
            "api: 3/3 tasks on version 6a1f0000 (started 12:01:07-12:02:40)"
        );
    }

    #[test]
    fn starting_stage_is_silent() {
        let e = Event::Stage {
            phase: Phase::Rollout,
            service: "api".into(),
            stage: Stage::Starting,
        };
        assert_eq!(line(&e), None);
    }
}
