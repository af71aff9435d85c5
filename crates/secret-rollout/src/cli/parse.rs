//! Parsers of the numbers a user types: durations, lengths, speeds. Each checks its range
//! before anything else runs, names the accepted range in one line (clap prints it as
//! `error: invalid value ... for '--timeout <DURATION>': ...`, exit 2), and cannot panic
//! whatever it is given.

use std::time::Duration;

/// `--timeout`: from 10 seconds (less cannot see a single deployment through) to 7 days
/// (longer than any deployment ECS runs, and than any credentials last).
pub const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(7 * 24 * 3600));

/// `--max-poll` (hidden; tests and demos poll faster): 10 ms to 1 minute.
pub const MAX_POLL_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(60));

/// `--consistency-margin`: none at all (a test against a consistent emulator) to 5 minutes.
pub const MARGIN_RANGE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(300));

/// `sync --interval`: 10 ms (tests at sandbox speed) to a day.
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(24 * 3600));

/// `--length` of a generated value.
pub const LENGTH_RANGE: (usize, usize) = (1, 4096);

/// `--speed` of the sandbox's virtual clock.
pub const SPEED_RANGE: (f64, f64) = (0.001, 1_000_000.0);

/// A duration: `90s`, `30m`, `1h30m`, `500ms`, `2d`, or plain seconds. The units are
/// humantime's, a well-kept parser that reports overflow instead of panicking.
fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        // Too many seconds for a u64 is simply out of range.
        return Ok(s.parse::<u64>().map_or(Duration::MAX, Duration::from_secs));
    }
    match humantime::parse_duration(s) {
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => Ok(Duration::MAX),
        Err(_) => Err(format!(
            "{s:?} is not a duration: use e.g. 90s, 30m, 1h, 1h30m"
        )),
    }
}

fn in_range(s: &str, (min, max): (Duration, Duration), what: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < min || d > max {
        return Err(format!(
            "{what} must be from {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// `--timeout`.
pub fn timeout(s: &str) -> Result<Duration, String> {
    in_range(s, TIMEOUT_RANGE, "the timeout")
}

/// `sync --interval`.
pub fn interval(s: &str) -> Result<Duration, String> {
    in_range(s, INTERVAL_RANGE, "the watch interval")
}

/// `--max-poll`.
pub fn max_poll(s: &str) -> Result<Duration, String> {
    in_range(s, MAX_POLL_RANGE, "the poll interval")
}

/// `--consistency-margin`.
pub fn consistency_margin(s: &str) -> Result<Duration, String> {
    in_range(s, MARGIN_RANGE, "the consistency margin")
}

/// `--max-task-failures`.
pub fn max_task_failures(s: &str) -> Result<u32, String> {
    let range = secret_rollout_core::rollout::strategy::MAX_TASK_FAILURES_RANGE;
    match s.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "the task failure threshold must be a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// `--length`.
pub fn length(s: &str) -> Result<usize, String> {
    let (min, max) = LENGTH_RANGE;
    match s.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "the length must be a whole number from {min} to {max}"
        )),
    }
}

/// `--speed`: a finite factor; 1e308 would make the virtual clock overflow.
pub fn speed(s: &str) -> Result<f64, String> {
    let (min, max) = SPEED_RANGE;
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && (min..=max).contains(&f) => Ok(f),
        _ => Err(format!("the speed must be a number from {min} to {max}")),
    }
}

/// One name of `--services A,B`: not blank (`--services ""` or `a,,b` would otherwise
/// name a service called "").
pub fn service_name(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.is_empty() {
        return Err(
            "a service name is empty: give names separated by commas, e.g. --services api,front"
                .into(),
        );
    }
    if name.chars().any(char::is_whitespace) {
        return Err(format!(
            "{name:?} is not a service name: names have no spaces"
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timeouts_in_range_parse() {
        for (text, secs) in [
            ("10s", 10),
            ("90s", 90),
            ("30m", 1800),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("7d", 7 * 86400),
            ("600", 600),
        ] {
            assert_eq!(timeout(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(max_poll("50ms"), Ok(Duration::from_millis(50)));
    }

    #[test]
    fn out_of_range_and_garbage_are_one_line_errors() {
        for text in [
            "0s",
            "0",
            "0.0s",
            "9s",
            "8d",
            "18446744073709551616s",
            "99999999999999999999h",
        ] {
            let e = timeout(text).unwrap_err();
            assert_eq!(e, "the timeout must be from 10s to 7days", "{text}");
        }
        for text in ["", "abc", "1x", "-5s", "s"] {
            let e = timeout(text).unwrap_err();
            assert!(e.contains("is not a duration"), "{text}: {e}");
            assert!(!e.contains('\n'));
        }
        assert_eq!(
            max_poll("5ms").unwrap_err(),
            "the poll interval must be from 10ms to 1m"
        );
        for text in ["0", "4097", "-1", "x", "18446744073709551616"] {
            assert_eq!(
                length(text).unwrap_err(),
                "the length must be a whole number from 1 to 4096"
            );
        }
        assert_eq!(length("32"), Ok(32));
        for text in ["0", "201", "-1", "x", "2.5", ""] {
            assert_eq!(
                max_task_failures(text).unwrap_err(),
                "the task failure threshold must be a whole number from 1 to 200"
            );
        }
        assert_eq!(max_task_failures("3"), Ok(3));
        assert_eq!(max_task_failures("200"), Ok(200));
        for text in ["1e308", "inf", "NaN", "0", "-1", "x"] {
            assert!(speed(text).is_err(), "{text}");
        }
        assert_eq!(speed("20"), Ok(20.0));
    }

    #[test]
    fn service_names_are_not_blank() {
        assert_eq!(service_name(" api "), Ok("api".to_string()));
        for blank in ["", " ", "\t"] {
            assert!(service_name(blank)
                .unwrap_err()
                .contains("a service name is empty"));
        }
        assert!(service_name("a b").is_err());
    }

    proptest! {
        /// Whatever is typed, the parsers answer: a value in range or an error line.
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            if let Ok(d) = timeout(&s) {
                prop_assert!(d >= TIMEOUT_RANGE.0 && d <= TIMEOUT_RANGE.1);
            }
            if let Ok(d) = max_poll(&s) {
                prop_assert!(d >= MAX_POLL_RANGE.0 && d <= MAX_POLL_RANGE.1);
            }
            let _ = length(&s);
            if let Ok(f) = speed(&s) {
                prop_assert!(f.is_finite());
            }
        }

        /// Numbers with units, in or out of range, never panic either.
        #[test]
        fn durations_with_units(n in any::<u64>(), unit in prop::sample::select(vec!["ms", "s", "m", "h", "d", ""])) {
            let text = format!("{n}{unit}");
            match timeout(&text) {
                Ok(d) => prop_assert!(d >= TIMEOUT_RANGE.0 && d <= TIMEOUT_RANGE.1),
                Err(e) => prop_assert!(!e.contains('\n')),
            }
        }
    }
}
