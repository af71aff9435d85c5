//! The one rule for "this task holds this version", used by every command that proves
//! anything (`replace`, `resume`, `rollback`, `redeploy`, and `status`).
//!
//! A task holds version V when it was launched after V became `AWSCURRENT` and
//! `AWSCURRENT` did not leave V in between. The deployment that launched it does not
//! matter. No AWS API says when a staging label moved, so the tool watches the secret
//! (`DescribeSecret`: `VersionIdsToStages` and `LastChangedDate`) at every follow poll,
//! during verification, and once more a margin after the last task launch, and judges
//! those looks here:
//!
//! - V has been current without a break since `max(V's CreatedDate, LastChangedDate at
//!   the first look that shows V current)`: that first look saw V current *after* the
//!   last change made before it, whatever it was (our write, our stage move, or a change
//!   made while the tool was not running). Call that moment `since` (AWS's clock).
//! - Every later look must show V current and the same `LastChangedDate`. A look with
//!   another version current makes the result [`Holding::Superseded`] when the last look
//!   still shows it (exit 11), else [`Holding::NotProven`]. A `LastChangedDate` that moved
//!   while V stays current is a change the tool cannot explain (a move away and back, a
//!   rotation function's `AWSPENDING`, a tag or description edit: the documentation says
//!   "modified in any way"): [`Holding::NotProven`] (exit 6).
//! - Secrets Manager is eventually consistent: the last look counts only when it was made
//!   at least the consistency margin after the tasks were listed (every listed task had
//!   been launched by then). Without such a look, a window was not seen: not proven.
//!
//! Clocks: `since`, `LastChangedDate`, CreatedDate and task `createdAt` are AWS's clock;
//! [`Look::at`] and [`Question::listed_at`] are the tool's own monotonic clock. The rule
//! never compares one clock with the other.

use serde::Serialize;

/// One `DescribeSecret` of the watched secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Look {
    /// When the answer arrived, seconds on the tool's monotonic clock.
    pub at: f64,
    /// The version carrying `AWSCURRENT`.
    pub current: Option<String>,
    /// The version carrying `AWSPENDING`, if any (a rotation function at work).
    pub pending: Option<String>,
    /// `LastChangedDate`, epoch seconds on AWS's clock.
    pub last_changed: Option<f64>,
}

/// What the rule is asked about one secret.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The version the tasks must hold.
    pub version: &'a str,
    /// That version's CreatedDate (AWS's clock), when known.
    pub created: Option<f64>,
    /// Every look, oldest first.
    pub looks: &'a [Look],
    /// When the tasks were listed for verification (tool's clock); `None`: they were not.
    pub listed_at: Option<f64>,
    /// The consistency margin, seconds.
    pub margin: f64,
}

/// The rule's answer for one secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "holding", rename_all = "snake_case")]
pub enum Holding {
    /// The version was current without a break from `since` until after the last task
    /// launch: a task holds it exactly when created at or after `since`.
    Holds {
        /// When the version was current from, at the latest (AWS's clock).
        #[serde(serialize_with = "crate::history::ser_epoch")]
        since: f64,
    },
    /// Nothing can be said for tasks created at or after `since`.
    NotProven {
        /// As in [`Holding::Holds`], when known.
        #[serde(serialize_with = "crate::history::ser_opt_epoch")]
        since: Option<f64>,
        /// Why, in words for the operator.
        why: String,
    },
    /// Another version is current now.
    Superseded {
        /// As in [`Holding::Holds`], when known.
        #[serde(serialize_with = "crate::history::ser_opt_epoch")]
        since: Option<f64>,
        /// The version current now.
        by: String,
        /// From when (AWS's clock) the other version has been current without a break, at
        /// the latest, when the looks show it.
        #[serde(serialize_with = "crate::history::ser_opt_epoch")]
        by_since: Option<f64>,
    },
}

impl Holding {
    /// Every task that must hold the version does, if created at or after `since`.
    pub fn proven(&self) -> bool {
        matches!(self, Holding::Holds { .. })
    }

    /// When the version was current from (at the latest), when known.
    pub fn since(&self) -> Option<f64> {
        match self {
            Holding::Holds { since } => Some(*since),
            Holding::NotProven { since, .. } | Holding::Superseded { since, .. } => *since,
        }
    }
}

/// What one task holds, by the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskHolds {
    /// The version asked about.
    Ours,
    /// Launched before the version was (provably) current: an earlier value, or one that
    /// cannot be told.
    Before,
    /// The version that superseded ours.
    Other,
    /// Cannot be told (a change the tool cannot place in time).
    Unknown,
}

/// Whether a look shows the version current with the baseline `LastChangedDate`.
fn unchanged(look: &Look, version: &str, baseline: Option<f64>) -> bool {
    look.current.as_deref() == Some(version) && look.last_changed == baseline
}

/// Judges one secret's looks: see the module documentation.
pub fn judge(q: &Question<'_>) -> Holding {
    let Some(first) = q.looks.first() else {
        return Holding::NotProven {
            since: None,
            why: "the secret was never read during the run".into(),
        };
    };
    let last = q.looks.last().unwrap_or(first);
    let since = match (first.current.as_deref(), first.last_changed) {
        (Some(c), Some(l)) if c == q.version => Some(q.created.map_or(l, |c| c.max(l))),
        _ => None,
    };
    match last.current.as_deref() {
        Some(c) if c != q.version => {
            return Holding::Superseded {
                since,
                by: c.to_string(),
                by_since: by_since(q.looks, c),
            }
        }
        None => {
            return Holding::NotProven {
                since,
                why: "the secret has no AWSCURRENT version now".into(),
            }
        }
        Some(_) => {}
    }
    let Some(since) = since else {
        return Holding::NotProven {
            since: None,
            why: format!(
                "the first read of the secret showed {} current (and no LastChangedDate, or another version)",
                first.current.as_deref().unwrap_or("no version")
            ),
        };
    };
    let baseline = first.last_changed;
    if let Some(moved) = q.looks.iter().find(|l| !unchanged(l, q.version, baseline)) {
        return Holding::NotProven {
            since: Some(since),
            why: unexplained(moved, q.version),
        };
    }
    match q.listed_at {
        Some(listed) if last.at >= listed + q.margin => Holding::Holds { since },
        Some(_) => Holding::NotProven {
            since: Some(since),
            why: format!(
                "no read of the secret {}s after the tasks were listed (Secrets Manager is eventually consistent)",
                q.margin
            ),
        },
        None => Holding::NotProven {
            since: Some(since),
            why: "the tasks were never listed".into(),
        },
    }
}

/// Why a look that moved cannot be explained.
fn unexplained(look: &Look, version: &str) -> String {
    match (&look.current, &look.pending) {
        (Some(c), _) if c != version => format!(
            "AWSCURRENT left {version} for {c} during the run and came back: tasks launched meanwhile may hold {c}"
        ),
        (_, Some(p)) if p != version => format!(
            "the secret changed during the run (AWSPENDING is on {p}: a rotation is in progress) while {version} stayed current"
        ),
        _ => format!(
            "the secret changed during the run (LastChangedDate moved to {}) while {version} stayed current: a label moved away and back, or a tag or description edit; the tool cannot tell which",
            look.last_changed.map_or("none".to_string(), |l| format!("{l:.3}"))
        ),
    }
}

/// From when `other` has been current without a break, at the latest: the
/// `LastChangedDate` of the first look in the final run of looks that show `other`
/// current with one same `LastChangedDate`.
fn by_since(looks: &[Look], other: &str) -> Option<f64> {
    let last = looks.last()?;
    let stable = looks
        .iter()
        .rev()
        .take_while(|l| l.current.as_deref() == Some(other) && l.last_changed == last.last_changed)
        .count();
    (stable > 0).then_some(last.last_changed).flatten()
}

/// What a task created at `created` (AWS's clock) holds, by `holding`. `margin` widens
/// the boundary after a change to the other version (eventual consistency).
pub fn task_holds(created: f64, holding: &Holding, margin: f64) -> TaskHolds {
    match holding.since() {
        Some(since) if created < since => return TaskHolds::Before,
        None => return TaskHolds::Unknown,
        Some(_) => {}
    }
    match holding {
        Holding::Holds { .. } => TaskHolds::Ours,
        Holding::NotProven { .. } => TaskHolds::Unknown,
        Holding::Superseded { by_since, .. } => match by_since {
            Some(s) if created > s + margin => TaskHolds::Other,
            _ => TaskHolds::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(at: f64, current: &str, last_changed: f64) -> Look {
        Look {
            at,
            current: (!current.is_empty()).then(|| current.to_string()),
            pending: None,
            last_changed: Some(last_changed),
        }
    }

    fn pending(mut l: Look, p: &str) -> Look {
        l.pending = Some(p.into());
        l
    }

    /// Short names for the answers, so the table reads as one line per case.
    #[derive(Debug, PartialEq)]
    enum A {
        Holds(f64),
        NotProven(&'static str),
        Superseded(&'static str, Option<f64>),
    }

    fn short(h: &Holding) -> A {
        match h {
            Holding::Holds { since } => A::Holds(*since),
            Holding::NotProven { why, .. } => {
                let key = [
                    "never read",
                    "no AWSCURRENT",
                    "first read",
                    "came back",
                    "AWSPENDING",
                    "LastChangedDate moved",
                    "eventually consistent",
                    "never listed",
                ]
                .into_iter()
                .find(|k| why.contains(k))
                .unwrap_or("?");
                A::NotProven(key)
            }
            Holding::Superseded { by, by_since, .. } => {
                A::Superseded(if by == "W" { "W" } else { "other" }, *by_since)
            }
        }
    }

    #[test]
    fn the_rule_as_a_table() {
        // V created at 100 (AWS's clock); looks at tool times 0, 1, 2 ...; tasks listed at
        // tool time 3; margin 0.5.
        let v = |at, l| look(at, "V", l);
        let w = |at, l| look(at, "W", l);
        let table: Vec<(&str, Vec<Look>, Option<f64>, A)> = vec![
            (
                "unchanged from the write to a read after the margin",
                vec![v(0.0, 100.0), v(1.0, 100.0), v(3.5, 100.0)],
                Some(3.0),
                A::Holds(100.0),
            ),
            (
                "first read saw a later change (made while the tool was down): since moves to it",
                vec![v(0.0, 150.0), v(3.6, 150.0)],
                Some(3.0),
                A::Holds(150.0),
            ),
            (
                "the last read is too soon after the tasks were listed",
                vec![v(0.0, 100.0), v(3.2, 100.0)],
                Some(3.0),
                A::NotProven("eventually consistent"),
            ),
            (
                "no read after the tasks were listed at all",
                vec![v(0.0, 100.0)],
                Some(3.0),
                A::NotProven("eventually consistent"),
            ),
            (
                "tasks never listed",
                vec![v(0.0, 100.0), v(3.5, 100.0)],
                None,
                A::NotProven("never listed"),
            ),
            ("never read", vec![], Some(3.0), A::NotProven("never read")),
            (
                "a new version (PutSecretValue) became current mid-run and stays",
                vec![v(0.0, 100.0), w(1.0, 120.0), w(3.5, 120.0)],
                Some(3.0),
                A::Superseded("W", Some(120.0)),
            ),
            (
                "another writer before our first read: superseded from the start",
                vec![w(0.0, 120.0), w(3.5, 120.0)],
                Some(3.0),
                A::Superseded("W", Some(120.0)),
            ),
            (
                "superseded, then the secret changed again: from when W is current is the last change",
                vec![v(0.0, 100.0), w(1.0, 120.0), w(2.0, 130.0)],
                None,
                A::Superseded("W", Some(130.0)),
            ),
            (
                "superseded and seen only once: still superseded, never verified",
                vec![v(0.0, 100.0), w(1.0, 120.0)],
                None,
                A::Superseded("W", Some(120.0)),
            ),
            (
                "AWSCURRENT left V and came back",
                vec![v(0.0, 100.0), w(1.0, 120.0), v(3.5, 125.0)],
                Some(3.0),
                A::NotProven("came back"),
            ),
            (
                "LastChangedDate moved while V stayed current (moved away and back between reads, or a tag edit)",
                vec![v(0.0, 100.0), v(1.0, 100.0), v(3.5, 140.0)],
                Some(3.0),
                A::NotProven("LastChangedDate moved"),
            ),
            (
                "a rotation function's AWSPENDING appeared",
                vec![v(0.0, 100.0), pending(v(3.5, 140.0), "P")],
                Some(3.0),
                A::NotProven("AWSPENDING"),
            ),
            (
                "no AWSCURRENT at all at the end",
                vec![v(0.0, 100.0), look(3.5, "", 140.0)],
                Some(3.0),
                A::NotProven("no AWSCURRENT"),
            ),
            (
                "first read without LastChangedDate",
                vec![
                    Look {
                        last_changed: None,
                        ..v(0.0, 0.0)
                    },
                    v(3.5, 100.0),
                ],
                Some(3.0),
                A::NotProven("first read"),
            ),
        ];
        for (case, looks, listed_at, want) in table {
            let q = Question {
                version: "V",
                created: Some(100.0),
                looks: &looks,
                listed_at,
                margin: 0.5,
            };
            assert_eq!(short(&judge(&q)), want, "{case}");
        }
    }

    #[test]
    fn a_restore_is_current_from_the_stage_move_not_from_the_old_creation() {
        // Restoring version P (created long ago) by a stage move at 200.
        let looks = [look(0.0, "P", 200.0), look(5.0, "P", 200.0)];
        let q = Question {
            version: "P",
            created: Some(10.0),
            looks: &looks,
            listed_at: Some(4.0),
            margin: 1.0,
        };
        assert_eq!(judge(&q), Holding::Holds { since: 200.0 });
    }

    #[test]
    fn what_each_task_holds() {
        let holds = Holding::Holds { since: 100.0 };
        let not = Holding::NotProven {
            since: Some(100.0),
            why: String::new(),
        };
        let sup = Holding::Superseded {
            since: Some(100.0),
            by: "W".into(),
            by_since: Some(120.0),
        };
        let blind = Holding::Superseded {
            since: None,
            by: "W".into(),
            by_since: None,
        };
        // (case, created, holding, want); margin 1.
        let table = [
            (
                "launched after V became current",
                110.0,
                &holds,
                TaskHolds::Ours,
            ),
            ("launched exactly then", 100.0, &holds, TaskHolds::Ours),
            ("launched before", 99.0, &holds, TaskHolds::Before),
            ("not proven: cannot tell", 110.0, &not, TaskHolds::Unknown),
            ("not proven, launched before", 90.0, &not, TaskHolds::Before),
            (
                "superseded: before W, after V",
                110.0,
                &sup,
                TaskHolds::Unknown,
            ),
            (
                "superseded: within the margin after W",
                120.5,
                &sup,
                TaskHolds::Unknown,
            ),
            ("superseded: after W", 130.0, &sup, TaskHolds::Other),
            ("superseded: before V", 90.0, &sup, TaskHolds::Before),
            (
                "superseded, V never seen current",
                130.0,
                &blind,
                TaskHolds::Unknown,
            ),
        ];
        for (case, created, h, want) in table {
            assert_eq!(task_holds(created, h, 1.0), want, "{case}");
        }
    }

    #[test]
    fn only_holds_is_proven() {
        assert!(Holding::Holds { since: 1.0 }.proven());
        assert!(!Holding::NotProven {
            since: Some(1.0),
            why: String::new()
        }
        .proven());
        assert!(!Holding::Superseded {
            since: Some(1.0),
            by: "W".into(),
            by_since: None
        }
        .proven());
    }

    /// The first read showed another version current (with a LastChangedDate): no moment
    /// is known from which ours was current, so nothing is proven and no `since` is given,
    /// even when ours is current at every later read.
    #[test]
    fn a_first_read_of_another_version_gives_no_since() {
        let looks = [
            look(0.0, "W", 90.0),
            look(1.0, "V", 100.0),
            look(3.5, "V", 100.0),
        ];
        let h = judge(&Question {
            version: "V",
            created: Some(100.0),
            looks: &looks,
            listed_at: Some(3.0),
            margin: 0.5,
        });
        assert_eq!(short(&h), A::NotProven("first read"), "{h:?}");
        assert_eq!(h.since(), None, "{h:?}");
    }

    /// AWSPENDING on our own version is no rotation of another value: a moved
    /// LastChangedDate is then explained as such, not as a rotation in progress.
    #[test]
    fn pending_on_our_own_version_is_not_called_a_rotation() {
        let looks = [
            look(0.0, "V", 100.0),
            pending(look(1.0, "V", 105.0), "V"),
            look(3.5, "V", 105.0),
        ];
        let h = judge(&Question {
            version: "V",
            created: Some(100.0),
            looks: &looks,
            listed_at: Some(3.0),
            margin: 0.5,
        });
        assert_eq!(short(&h), A::NotProven("LastChangedDate moved"), "{h:?}");
        let moved = pending(look(1.0, "V", 105.0), "W");
        assert!(unexplained(&moved, "V").contains("AWSPENDING is on W"));
    }

    /// `by_since` answers only for the version the last look shows current: asked about
    /// another, it knows nothing.
    #[test]
    fn by_since_only_for_the_version_current_at_the_last_look() {
        let looks = [
            look(0.0, "V", 100.0),
            look(1.0, "W", 110.0),
            look(2.0, "W", 110.0),
        ];
        assert_eq!(by_since(&looks, "W"), Some(110.0));
        assert_eq!(by_since(&looks, "V"), None);
        assert_eq!(by_since(&looks[..1], "W"), None);
        assert_eq!(by_since(&[], "W"), None);
    }

    /// A task created exactly the margin after the other version became current cannot be
    /// told: only one created after that holds the other version for sure.
    #[test]
    fn the_margin_after_a_supersession_is_not_yet_the_other_version() {
        let h = Holding::Superseded {
            since: Some(100.0),
            by: "W".into(),
            by_since: Some(110.0),
        };
        assert_eq!(task_holds(111.0, &h, 1.0), TaskHolds::Unknown);
        assert_eq!(task_holds(111.5, &h, 1.0), TaskHolds::Other);
        assert_eq!(task_holds(99.0, &h, 1.0), TaskHolds::Before);
    }
}
