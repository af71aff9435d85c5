//! The timeline of a phase (issue 19): one row per service, a bar scaled to the width from
//! the moment the version became current (the write, or the move back) to the last
//! completion, marking when the deployment started (`S`), when all traffic was on new
//! tasks (`T`) and when it completed (`C`), with the times from the write beside it; the
//! slowest service is marked.
//!
//! One clock: every moment is AWS's, never the tool's. The write is the version's
//! `CreatedDate` (or the label's move back) in Secrets Manager; the deployment's start is
//! its `createdAt` in ECS; traffic and completion are the latest `updatedAt` of the
//! service's deployments at the poll that first saw them (see
//! `secret_rollout_core::rollout::Milestones`). For a rolling deployment, "all traffic on
//! new tasks" is when every old task was told to stop; for blue/green, linear and canary,
//! when production traffic moved to the new revision. A moment no poll saw shows `?`.
//!
//! [`rows_of_phase`] and [`rows_of_journal`] gather the rows; [`render`] draws them.
//! Any command that rolls something out (`replace`, `redeploy`, `rollback`, `resume`, a
//! future `sync`) reaches it through [`super::output::report_text`], or calls
//! [`render`] itself.

use secret_rollout_core::journal::{moment_epoch, PhaseTimes};
use secret_rollout_core::rotation::PhaseReport;
use secret_rollout_core::verdict::Stage;

use super::render::hms;
use super::width;

/// One service on the timeline: moments in epoch seconds, AWS's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The service's name.
    pub service: String,
    /// The deployment was created.
    pub started: Option<f64>,
    /// All traffic on new tasks.
    pub traffic: Option<f64>,
    /// Completed.
    pub completed: Option<f64>,
    /// How it ended when not complete (`failed`, `in progress`).
    pub note: Option<String>,
}

/// A phase's timeline: when its version became current, and its services.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// `rollout` or `restore`.
    pub phase: &'static str,
    /// The write (or move back), if known; else the first deployment's start.
    pub since: Option<f64>,
    /// Per service, in the phase's order.
    pub rows: Vec<Row>,
}

/// The timeline of a phase of a report.
pub fn rows_of_phase(phase: &'static str, p: &PhaseReport) -> Timeline {
    let since = p
        .secrets
        .iter()
        .filter_map(|s| s.holding.since())
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.min(s))));
    Timeline {
        phase,
        since,
        rows: p
            .services
            .iter()
            .map(|s| Row {
                service: s.service.clone(),
                started: s.times.started,
                traffic: s.times.traffic,
                completed: s.times.completed,
                note: match &s.stage {
                    Stage::Completed => None,
                    Stage::Failed { .. } => Some("failed".into()),
                    Stage::Starting | Stage::Draining => Some("not complete".into()),
                },
            })
            .collect(),
    }
}

/// The timeline of a phase as the journal recorded it.
pub fn rows_of_journal(phase: &'static str, t: &PhaseTimes) -> Timeline {
    Timeline {
        phase,
        since: t.since.map(moment_epoch),
        rows: t
            .services
            .iter()
            .map(|s| Row {
                service: s.service.clone(),
                started: s.started.map(moment_epoch),
                traffic: s.traffic.map(moment_epoch),
                completed: s.completed.map(moment_epoch),
                note: None,
            })
            .collect(),
    }
}

/// Seconds as `+35s`, `+1m10s`, `+2h03m`.
pub fn offset(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        s if s < 60 => format!("+{s}s"),
        s if s < 3600 => format!("+{}m{:02}s", s / 60, s % 60),
        s => format!("+{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Bar columns when there is no width (output that is not a terminal).
const BAR: usize = 40;
/// The narrowest bar drawn.
const MIN_BAR: usize = 10;

/// The timeline as lines, fitted to `width` (none: a bar of [`BAR`] columns). Nothing
/// when no service has a known moment.
pub fn render(t: &Timeline, width: Option<usize>) -> Vec<String> {
    let known = |r: &Row| [r.started, r.traffic, r.completed];
    let all: Vec<f64> = t.rows.iter().flat_map(known).flatten().collect();
    if all.is_empty() {
        return Vec::new();
    }
    let first = all.iter().copied().fold(f64::INFINITY, f64::min);
    let origin = t.since.map_or(first, |s| s.min(first));
    let end = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (end - origin).max(1.0);
    let slowest = t
        .rows
        .iter()
        .filter_map(|r| r.completed)
        .fold(f64::NEG_INFINITY, f64::max);
    // Marked only when some service was quicker (or did not complete).
    let all_tie = t.rows.iter().all(|r| r.completed == Some(slowest));

    // The numbers beside each bar, aligned: `S +0s  T +35s  C +1m10s`.
    let show = |v: Option<f64>| v.map_or_else(|| "?".to_string(), |v| offset(v - origin));
    let cells: Vec<[String; 3]> = t
        .rows
        .iter()
        .map(|r| {
            [
                show(r.started),
                show(r.traffic),
                match (&r.note, r.completed) {
                    (Some(n), None) => n.clone(),
                    (_, c) => show(c),
                },
            ]
        })
        .collect();
    let w = |i: usize| cells.iter().map(|c| c[i].len()).max().unwrap_or(0);
    let (w0, w1, w2) = (w(0), w(1), w(2));
    let name_w = t.rows.iter().map(|r| r.service.len()).max().unwrap_or(0);
    let tail_w = "  S ".len() + w0 + "  T ".len() + w1 + "  C ".len() + w2;
    let slow_mark = "  slowest";
    let fixed = 2 + name_w + 2 + 2 + tail_w + slow_mark.len();
    let bar_w = match width {
        Some(total) => total.saturating_sub(fixed).max(MIN_BAR),
        None => BAR,
    };
    let col = |v: f64| -> usize {
        let x = ((v - origin) / span * (bar_w - 1) as f64).round();
        (x.max(0.0) as usize).min(bar_w - 1)
    };

    let mut lines = Vec::new();
    lines.extend(width::wrap(
        &format!(
            "timeline of the {} (AWS's clock, from the write at {} to the last completion at {}):",
            t.phase,
            hms(origin),
            hms(end)
        ),
        width,
    ));
    for (r, c) in t.rows.iter().zip(&cells) {
        let mut bar = vec![' '; bar_w];
        let s = r.started.map(col);
        let tr = r.traffic.map(col);
        let done = r.completed.map(col);
        // New tasks starting (=) until traffic moves, old ones draining (-) until done.
        if let Some(s) = s {
            let to = tr.or(done).unwrap_or(bar_w - 1);
            for b in bar.iter_mut().take(to + 1).skip(s) {
                *b = '=';
            }
        }
        if let Some(tr) = tr {
            let to = done.unwrap_or(bar_w - 1);
            for b in bar.iter_mut().take(to + 1).skip(tr) {
                *b = '-';
            }
        }
        for (at, mark) in [(s, 'S'), (tr, 'T'), (done, 'C')] {
            if let Some(i) = at {
                bar[i] = mark;
            }
        }
        let bar: String = bar.into_iter().collect();
        let slow = r.completed == Some(slowest) && !all_tie;
        let line = format!(
            "  {:<name_w$}  |{bar}|  S {:>w0$}  T {:>w1$}  C {:>w2$}{}",
            r.service,
            c[0],
            c[1],
            c[2],
            if slow { slow_mark } else { "" }
        );
        lines.push(width::cut(line.trim_end(), width));
    }
    for l in width::wrap(
        "  S deployment started, = new tasks starting, T all traffic on new tasks, - old tasks draining, C complete; times from the write",
        width,
    ) {
        lines.push(l);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(service: &str, s: f64, t: Option<f64>, c: Option<f64>) -> Row {
        Row {
            service: service.into(),
            started: Some(s),
            traffic: t,
            completed: c,
            note: None,
        }
    }

    /// Bars scaled from the write to the last completion, the marks where the moments
    /// fall, the numbers from the write, the slowest marked; every line within the width.
    #[test]
    fn bars_scale_to_the_width_and_mark_the_slowest() {
        let t = Timeline {
            phase: "rollout",
            since: Some(1000.0),
            rows: vec![
                row("front", 1000.0, Some(1035.0), Some(1070.0)),
                row("api", 1001.0, Some(1100.0), Some(1140.0)),
                row("admin", 1002.0, None, None),
            ],
        };
        for w in [80, 120] {
            let lines = render(&t, Some(w));
            assert!(lines.iter().all(|l| width::shown(l) <= w), "{lines:#?}");
            assert!(
                lines[0].contains("from the write at 00:16:40 UTC"),
                "{lines:#?}"
            );
            let api = lines
                .iter()
                .find(|l| l.starts_with("  api"))
                .expect("api row");
            assert!(api.ends_with("C +2m20s  slowest"), "{api}");
            let bar = &api[api.find('|').unwrap() + 1..api.rfind('|').unwrap()];
            // api started a second after the write: its S is at most one column in.
            assert!(
                bar.trim_start().starts_with('S') && bar.ends_with('C'),
                "{bar}"
            );
            assert!(bar.len() - bar.trim_start().len() <= 1, "{bar}");
            assert!(bar.find('T').unwrap() > bar.len() / 2, "{bar}");
            let front = lines.iter().find(|l| l.starts_with("  front")).unwrap();
            assert!(front.contains("T   +35s  C +1m10s"), "{front}");
            assert!(!front.contains("slowest"), "{front}");
            let admin = lines.iter().find(|l| l.starts_with("  admin")).unwrap();
            assert!(admin.contains("T      ?  C      ?"), "{admin}");
        }
        // Without a width, bars of 40 columns.
        let lines = render(&t, None);
        let api = lines.iter().find(|l| l.starts_with("  api")).unwrap();
        assert_eq!(api.rfind('|').unwrap() - api.find('|').unwrap() - 1, BAR);
    }

    #[test]
    fn nothing_known_draws_nothing() {
        let t = Timeline {
            phase: "rollout",
            since: Some(5.0),
            rows: vec![Row {
                service: "api".into(),
                started: None,
                traffic: None,
                completed: None,
                note: Some("failed".into()),
            }],
        };
        assert!(render(&t, Some(80)).is_empty());
    }

    #[test]
    fn offsets_read_as_durations() {
        assert_eq!(offset(0.4), "+0s");
        assert_eq!(offset(70.0), "+1m10s");
        assert_eq!(offset(7380.0), "+2h03m");
        assert_eq!(offset(-3.0), "+0s");
    }
}
