//! Text for people laid out to the terminal's width (issue 19).
//!
//! The width is `COLUMNS` when it is set to a number (snapshot tests set it), else the
//! terminal's when the stream is one, else none: output piped to a file or a program keeps
//! its full lines. Within a width:
//!
//! - tables are laid out by `comfy-table`: short columns (ids, counts) keep their width and
//!   long cells (secret names, deployments) are cut to their beginning and `…`, so every
//!   cell stays on one line in its own column;
//! - prose wraps at spaces, later lines indented;
//! - a command to paste breaks at spaces with a ` \` continuation, so it still runs;
//! - a line that cannot break (a word longer than the width) is cut with `…`.

use std::io::IsTerminal;

use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Row, Table};

/// No layout narrower than this: below it, lines are cut at this width.
pub const MIN: usize = 40;

/// The width to lay out in: `COLUMNS` when it holds a positive number, else the terminal's
/// (`terminal`: its columns when the stream is a terminal), else none.
pub fn decide(columns: Option<&str>, terminal: Option<u16>) -> Option<usize> {
    let from_env = columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    from_env
        .or(terminal.map(usize::from).filter(|&c| c > 0))
        .map(|c| c.max(MIN))
}

fn of(term: &console::Term, is_terminal: bool) -> Option<usize> {
    let terminal = if is_terminal {
        term.size_checked().map(|(_, w)| w)
    } else {
        None
    };
    decide(std::env::var("COLUMNS").ok().as_deref(), terminal)
}

/// The width of stdout (the report, `status`, `plan`, `history`).
pub fn stdout() -> Option<usize> {
    of(&console::Term::stdout(), std::io::stdout().is_terminal())
}

/// The width of stderr (progress lines).
pub fn stderr() -> Option<usize> {
    of(&console::Term::stderr(), std::io::stderr().is_terminal())
}

/// How wide `text` shows (escape codes count nothing).
pub fn shown(text: &str) -> usize {
    console::measure_text_width(text)
}

/// `line` cut to `width` with `…` when it is longer; as it is without a width.
pub fn cut(line: &str, width: Option<usize>) -> String {
    match width {
        Some(w) if shown(line) > w => console::truncate_str(line, w, "…").into_owned(),
        _ => line.to_string(),
    }
}

/// Prose wrapped at spaces to `width`, later lines indented two more than the first; a
/// word too long for a line is cut with `…`, never split.
pub fn wrap(line: &str, width: Option<usize>) -> Vec<String> {
    let Some(w) = width.filter(|&w| shown(line) > w) else {
        return vec![line.to_string()];
    };
    let lead = line.len() - line.trim_start_matches(' ').len();
    let indent = " ".repeat((lead + 2).min(w / 2));
    let options = textwrap::Options::new(w)
        .initial_indent(&line[..lead])
        .subsequent_indent(&indent)
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .word_separator(textwrap::WordSeparator::AsciiSpace);
    textwrap::wrap(line[lead..].trim_end(), options)
        .into_iter()
        .map(|l| cut(&l, Some(w)))
        .collect()
}

/// Every line of `text` wrapped as [`wrap`] does (a trailing newline kept).
pub fn wrap_text(text: &str, width: Option<usize>) -> String {
    if width.is_none() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for l in text.lines() {
        for w in wrap(l, width) {
            out.push_str(&w);
            out.push('\n');
        }
    }
    if !text.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

/// A line holding a shell command (`prefix` before it, such as `next: `), broken at spaces
/// with ` \` so that it still runs when pasted, later lines indented four more.
pub fn command(prefix: &str, cmd: &str, width: Option<usize>) -> Vec<String> {
    let whole = format!("{prefix}{cmd}");
    let Some(w) = width.filter(|&w| shown(&whole) > w) else {
        return vec![whole];
    };
    let indent = " ".repeat(prefix.len() - prefix.trim_start().len() + 4);
    let mut lines = Vec::new();
    let mut current = prefix.to_string();
    let mut fresh = true; // nothing but the prefix or the indent yet
    for word in cmd.split(' ') {
        // Room for " word \" on this line?
        let need = shown(&current) + usize::from(!fresh) + shown(word) + 2;
        if !fresh && need > w {
            current.push_str(" \\");
            lines.push(current);
            current = indent.clone();
            fresh = true;
        }
        if !fresh {
            current.push(' ');
        }
        current.push_str(word);
        fresh = false;
    }
    lines.push(current);
    lines.into_iter().map(|l| cut(&l, Some(w))).collect()
}

/// A column of a [`table`].
#[derive(Clone, Copy)]
pub struct Col<'a> {
    /// Its header.
    pub header: &'a str,
    /// Cut (with `…`) when the table is too wide; otherwise always shown whole.
    pub cut: bool,
}

impl<'a> Col<'a> {
    /// A column that is always shown whole.
    pub const fn whole(header: &'a str) -> Self {
        Col { header, cut: false }
    }

    /// A column whose cells are cut when the table is too wide.
    pub const fn cut(header: &'a str) -> Self {
        Col { header, cut: true }
    }
}

/// Rows in columns two spaces apart, the header first, to `width` (see the module's
/// notes); `paint` colours a cell (column, text), if at all.
pub fn table(
    cols: &[Col],
    rows: &[Vec<String>],
    width: Option<usize>,
    paint: &dyn Fn(usize, &str) -> Option<comfy_table::Color>,
) -> Vec<String> {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING)
        .set_truncation_indicator("…");
    let colored = rows
        .iter()
        .any(|r| r.iter().enumerate().any(|(i, c)| paint(i, c).is_some()));
    if colored {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    match width {
        Some(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(u16::try_from(w).unwrap_or(u16::MAX));
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    let mut header = Row::from(cols.iter().map(|c| Cell::new(c.header)));
    header.max_height(1);
    t.set_header(header);
    for r in rows {
        let mut row = Row::from(r.iter().enumerate().map(|(i, c)| {
            let cell = Cell::new(c).set_alignment(CellAlignment::Left);
            match paint(i, c) {
                Some(color) => cell.fg(color),
                None => cell,
            }
        }));
        row.max_height(1);
        t.add_row(row);
    }
    let last = cols.len().saturating_sub(1);
    for (i, c) in cols.iter().enumerate() {
        if let Some(column) = t.column_mut(i) {
            column.set_padding((0, if i == last { 0 } else { 2 }));
            if !c.cut {
                column.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
    }
    // Whole columns wider than the width together: the ends of the lines go, not their
    // alignment.
    t.lines().map(|l| cut(l.trim_end(), width)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_overrides_the_terminal_and_a_pipe_has_no_width() {
        assert_eq!(decide(Some("80"), Some(200)), Some(80));
        assert_eq!(decide(None, Some(132)), Some(132));
        assert_eq!(decide(None, None), None);
        assert_eq!(decide(Some("wide"), None), None);
        assert_eq!(decide(Some("0"), Some(100)), Some(100));
        assert_eq!(decide(Some("12"), None), Some(MIN));
    }

    #[test]
    fn a_cut_line_ends_in_an_ellipsis_and_fits() {
        assert_eq!(cut("abcdefgh", Some(5)), "abcd…");
        assert_eq!(cut("abcdefgh", Some(8)), "abcdefgh");
        assert_eq!(cut("abcdefgh", None), "abcdefgh");
    }

    #[test]
    fn prose_wraps_at_spaces_with_an_indent() {
        let l = "  one two three four five six seven";
        let w = wrap(l, Some(16));
        assert_eq!(w, ["  one two three", "    four five", "    six seven"]);
        assert!(w.iter().all(|l| shown(l) <= 16));
        // A word longer than a line is cut, never split over two.
        let w = wrap("see production/a_very_long_secret_name_indeed", Some(20));
        assert_eq!(w, ["see", "  production/a_very…"]);
    }

    #[test]
    fn a_command_breaks_with_continuations() {
        let c =
            "secret-rollout redeploy --services front,api,admin --cluster production-online-lpa";
        let lines = command("next: ", c, Some(40));
        assert!(lines.iter().all(|l| shown(l) <= 40), "{lines:?}");
        assert!(lines[..lines.len() - 1].iter().all(|l| l.ends_with(" \\")));
        let joined: Vec<&str> = lines
            .iter()
            .map(|l| l.trim_end_matches(" \\").trim())
            .collect();
        assert_eq!(joined.join(" "), format!("next: {c}"));
        assert_eq!(command("next: ", "x y", None), ["next: x y"]);
    }

    #[test]
    fn a_table_fits_and_cuts_only_the_long_column() {
        let rows = vec![
            vec![
                "production/a_long_secret_name_of_many_words".to_string(),
                "4b29525b".into(),
                "3".into(),
            ],
            vec!["short".to_string(), "deadbeef".into(), "12".into()],
        ];
        let cols = [
            Col::cut("SECRET"),
            Col::whole("VERSION"),
            Col::whole("TASKS"),
        ];
        let lines = table(&cols, &rows, Some(40), &|_, _| None);
        assert!(lines.iter().all(|l| shown(l) <= 40), "{lines:#?}");
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[1].contains("production/a_long") && lines[1].contains('…'));
        assert!(lines[1].contains("4b29525b  3"), "{lines:#?}");
        let full = table(&cols, &rows, None, &|_, _| None);
        assert!(full[1].starts_with("production/a_long_secret_name_of_many_words  4b29525b"));
        assert_eq!(
            full[0],
            "SECRET                                       VERSION   TASKS"
        );
    }
}
