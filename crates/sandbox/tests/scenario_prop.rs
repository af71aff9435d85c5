//! Property tests: no scenario text panics the parser or the loader. Random TOML-ish
//! input and random mutations of the sample scenario either load or give an error.

use proptest::prelude::*;
use sandbox::scenario::{build_world, SAMPLE_BLUE_GREEN_TOML, SAMPLE_TOML};
use sandbox::Scenario;

/// Parses, and when that works builds the world (the loader's whole path). Returns
/// whether it loaded; any error must be a non-empty message.
fn load(text: &str) -> bool {
    match Scenario::from_toml(text) {
        Err(e) => {
            assert!(!e.is_empty());
            false
        }
        Ok(s) => match build_world(&s, None, None) {
            Ok(w) => {
                assert!(
                    w.clock.now().is_finite(),
                    "a loaded world has a usable clock"
                );
                true
            }
            Err(e) => {
                assert!(!e.is_empty());
                false
            }
        },
    }
}

/// Values that are valid TOML but wrong or extreme for most keys.
const VALUES: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e308",
    "-1e308",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "0.5",
    "\"\"",
    "\"x\"",
    "true",
    "[]",
    "{}",
    "[1, 2]",
    "{ a = 1 }",
    "\"-1\"",
    "\"1e308\"",
    "100000",
];

/// Fragments that break or bend the TOML structure.
const FRAGMENTS: &[&str] = &[
    "[[services]]\n",
    "[[secrets]]\n",
    "[timing]\n",
    "[[health_rules]]\n",
    "[[faults]]\n",
    "[[hook_rules]]\n",
    "[sts]\n",
    "=",
    "\"",
    "[",
    "]",
    "\n",
    "{",
    "}",
    ",",
    "#",
    "'''",
    "desiredCount = 1e308\n",
    "speed = 1e308\n",
    "effect = \"fail_to_start\"\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value of the n-th `key = value` line.
    Value(usize, usize),
    /// Insert a fragment at a byte position (rounded to a char boundary).
    Insert(usize, usize),
    /// Delete a byte range.
    Delete(usize, usize),
    /// Delete the n-th line.
    DropLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..VALUES.len()).prop_map(|(l, v)| Mutation::Value(l, v)),
        2 => (any::<usize>(), 0..FRAGMENTS.len()).prop_map(|(p, f)| Mutation::Insert(p, f)),
        1 => (any::<usize>(), 0usize..40).prop_map(|(p, n)| Mutation::Delete(p, n)),
        2 => any::<usize>().prop_map(Mutation::DropLine),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, m: &Mutation) -> String {
    match *m {
        Mutation::Value(line, value) => {
            let assignments: Vec<usize> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(" = ") && !l.trim_start().starts_with('#'))
                .map(|(i, _)| i)
                .collect();
            if assignments.is_empty() {
                return text.to_string();
            }
            let target = assignments[line % assignments.len()];
            let lines: Vec<String> = text
                .lines()
                .enumerate()
                .map(|(i, l)| match l.split_once(" = ") {
                    Some((key, _)) if i == target => format!("{key} = {}", VALUES[value]),
                    _ => l.to_string(),
                })
                .collect();
            lines.join("\n")
        }
        Mutation::Insert(at, fragment) => {
            let at = boundary(text, at);
            format!("{}{}{}", &text[..at], FRAGMENTS[fragment], &text[at..])
        }
        Mutation::Delete(at, n) => {
            let from = boundary(text, at);
            let to = boundary(text, (from + n).min(text.len()));
            let to = to.max(from);
            format!("{}{}", &text[..from], &text[to..])
        }
        Mutation::DropLine(line) => {
            let lines: Vec<&str> = text.lines().collect();
            let drop = line % lines.len().max(1);
            let kept: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != drop)
                .map(|(_, l)| *l)
                .collect();
            kept.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_toml_ish_text_never_panics(
        text in "([a-z_]{1,12} = ([0-9eE.+-]{1,8}|nan|inf|\"[a-z/]{0,8}\"|true|\\[\\]|\\{\\})\n|\\[\\[?[a-z_.]{1,12}\\]\\]?\n|[ -~\n]{0,12}){0,12}"
    ) {
        load(&text);
    }
}

proptest! {
    // Each case that parses builds the sample world (an hour of simulation); about one in
    // five mutated samples still loads.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_sample_never_panics(
        mutations in prop::collection::vec(mutation(), 1..4),
        blue_green in any::<bool>(),
    ) {
        let mut text = if blue_green {
            format!("{SAMPLE_TOML}\n{SAMPLE_BLUE_GREEN_TOML}")
        } else {
            SAMPLE_TOML.to_string()
        };
        for m in &mutations {
            text = apply(&text, m);
        }
        load(&text);
    }
}

#[test]
fn the_unmutated_samples_load() {
    assert!(load(SAMPLE_TOML));
    // An out-of-range value is an error, not a panic, and names its key.
    let bad = SAMPLE_TOML.replacen("speed = 1.0", "speed = 1e308", 1);
    assert_ne!(bad, SAMPLE_TOML);
    let e = Scenario::from_toml(&bad).unwrap_err();
    assert!(
        e.starts_with("speed must be a number from 0 to 1000000"),
        "{e}"
    );
}
