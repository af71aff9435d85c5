//! The new secret value: where it comes from (never argv), how it is checked, and how a
//! JSON key is replaced inside a JSON secret.
//!
//! A value lives in a [`SecretValue`] (a `secrecy::SecretString`: zeroized on drop, redacted
//! in `Debug`). Intermediate buffers are `Zeroizing` and allocated up front at the largest
//! size accepted, so reading never reallocates and leaves stray copies behind.

use std::ffi::OsString;
use std::fmt;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::str::FromStr;

use base64::Engine as _;
use rand::TryRngCore as _;
use secrecy::{ExposeSecret, SecretString};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Secrets Manager's limit for `SecretString`, in bytes.
pub const MAX_BYTES: usize = 65_536;

/// Default `--generate` length: 32 random bytes (43 characters of URL-safe base64).
pub const DEFAULT_GENERATE_LENGTH: usize = 32;

const SOURCES_HINT: &str = "use --value-stdin, --value-file PATH or --generate";

/// A secret value. Never printed: `Debug` is redacted, there is no `Display`.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Wraps a value; the `String` is moved, not copied.
    pub fn new(value: String) -> Self {
        // `SecretString::from(String)` boxes the string, which may reallocate to shrink it;
        // copying from a `&str` into an exact-size box and zeroizing the original leaves no
        // stray copy instead.
        let value = Zeroizing::new(value);
        SecretValue(SecretString::from(value.as_str()))
    }

    /// The value, for the one place that sends it (PutSecretValue).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// Whether both hold the same value (compared without an early exit on the first
    /// differing byte, so timing says nothing about where they differ).
    pub fn same_as(&self, other: &SecretValue) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.len())
    }
}

/// Character set for `--generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    /// URL-safe base64 without padding of `length` random bytes (the default).
    #[default]
    Base64Url,
    /// `length` characters from `A-Za-z0-9`.
    Alphanumeric,
    /// `length` lowercase hexadecimal characters.
    Hex,
}

impl FromStr for Charset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "base64url" => Ok(Charset::Base64Url),
            "alphanumeric" => Ok(Charset::Alphanumeric),
            "hex" => Ok(Charset::Hex),
            other => Err(Error::bad_input(format!("unknown charset {other}"))
                .hint("use --charset base64url, alphanumeric or hex")),
        }
    }
}

/// Where the new value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A hidden prompt on the terminal, asked twice.
    Prompt,
    /// All of stdin.
    Stdin {
        /// Drop one trailing `\n` (or `\r\n`).
        trim_newline: bool,
    },
    /// A file's whole content, as is.
    File(PathBuf),
    /// Random, from the operating system's generator.
    Generate {
        /// Bytes for base64url, characters for the others.
        length: usize,
        /// Character set.
        charset: Charset,
    },
}

/// Prompts for a hidden line; `None` when there is no terminal to prompt on.
pub type Prompter<'a> = Option<&'a mut dyn FnMut(&str) -> std::io::Result<String>>;

impl Source {
    /// Reads the value for the secret called `label` (used in the prompt only). `stdin` is
    /// the process's stdin in production, a byte slice in tests.
    pub fn read(&self, label: &str, stdin: &mut dyn Read) -> Result<SecretValue> {
        let mut prompt = |p: &str| rpassword::prompt_password(p);
        let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        self.read_with(
            label,
            stdin,
            if terminal { Some(&mut prompt) } else { None },
        )
    }

    /// [`Source::read`] with the prompt supplied (tests).
    pub fn read_with(
        &self,
        label: &str,
        stdin: &mut dyn Read,
        prompter: Prompter<'_>,
    ) -> Result<SecretValue> {
        match self {
            Source::Prompt => {
                let Some(prompt) = prompter else {
                    return Err(Error::bad_input(
                        "no value given: stdin is not a terminal to prompt on",
                    )
                    .hint(SOURCES_HINT));
                };
                let read = |prompt: &mut dyn FnMut(&str) -> std::io::Result<String>, p: &str| {
                    prompt(p).map(Zeroizing::new).map_err(|e| {
                        Error::bad_input(format!(
                            "could not read the value from the terminal: {}",
                            e.kind()
                        ))
                        .hint(SOURCES_HINT)
                    })
                };
                let first = read(prompt, &format!("new value for {label}: "))?;
                let second = read(prompt, &format!("new value for {label} (again): "))?;
                if first.as_str() != second.as_str() {
                    return Err(Error::bad_input("the two values typed differ")
                        .hint("run the command again and type the same value twice"));
                }
                Ok(SecretValue::new(first.to_string()))
            }
            Source::Stdin { trim_newline } => {
                let mut text = read_limited(stdin).map_err(|e| {
                    Error::bad_input(format!("could not read the value from stdin: {}", e.kind()))
                        .hint(SOURCES_HINT)
                })?;
                if *trim_newline {
                    trim_one_newline(&mut text);
                }
                let text = utf8(text, "stdin")?;
                if text.is_empty() {
                    return Err(Error::bad_input("no value on stdin: it was closed or empty")
                        .hint("pipe the value in, e.g. `pass show x | secret-rollout replace ... --value-stdin`"));
                }
                Ok(SecretValue::new(text.to_string()))
            }
            Source::File(path) => {
                let mut file = std::fs::File::open(path).map_err(|e| {
                    Error::bad_input(format!(
                        "cannot read the value file {}: {}",
                        path.display(),
                        e.kind()
                    ))
                    .hint("check the path and its permissions")
                })?;
                let text = read_limited(&mut file).map_err(|e| {
                    Error::bad_input(format!(
                        "cannot read the value file {}: {}",
                        path.display(),
                        e.kind()
                    ))
                    .hint("check the path and its permissions")
                })?;
                let text = utf8(text, &format!("the value file {}", path.display()))?;
                Ok(SecretValue::new(text.to_string()))
            }
            Source::Generate { length, charset } => generate(*length, *charset),
        }
    }
}

/// Reads at most `MAX_BYTES` + 3 bytes (enough to see a trailing `\r\n` and to know it is
/// too large) into a buffer allocated once.
fn read_limited(r: &mut dyn Read) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let limit = MAX_BYTES + 3;
    let mut buf = Zeroizing::new(vec![0u8; limit]);
    let mut len = 0;
    while len < limit {
        match r.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    // Truncating keeps the allocation (and Zeroizing wipes all of it on drop).
    buf.truncate(len);
    Ok(buf)
}

fn trim_one_newline(buf: &mut Zeroizing<Vec<u8>>) {
    if buf.ends_with(b"\r\n") {
        let n = buf.len() - 2;
        buf[n..].zeroize();
        buf.truncate(n);
    } else if buf.ends_with(b"\n") {
        let n = buf.len() - 1;
        buf[n] = 0;
        buf.truncate(n);
    }
}

fn utf8(buf: Zeroizing<Vec<u8>>, what: &str) -> Result<Zeroizing<String>> {
    if std::str::from_utf8(&buf).is_err() {
        return Err(Error::bad_input(format!("{what} is not utf-8 text")).hint(
            "secret-rollout writes SecretString values: give text, e.g. base64 of binary data",
        ));
    }
    let mut buf = buf;
    let bytes = std::mem::take(&mut *buf);
    // Checked above; `from_utf8` reuses the allocation, so no copy is made.
    let text = String::from_utf8(bytes).unwrap_or_default();
    Ok(Zeroizing::new(text))
}

/// Generates a random value from the operating system's generator.
pub fn generate(length: usize, charset: Charset) -> Result<SecretValue> {
    if length == 0 || length > 4096 {
        return Err(
            Error::bad_input(format!("--length {length} is out of range"))
                .hint("use a length from 1 to 4096 (default 32)"),
        );
    }
    let fill = |buf: &mut [u8]| {
        rand::rngs::OsRng.try_fill_bytes(buf).map_err(|_| {
            Error::bad_input("the operating system's random generator failed")
                .hint("retry; if it persists, give the value with --value-stdin or --value-file")
        })
    };
    let mut out = Zeroizing::new(String::with_capacity(length * 2));
    match charset {
        Charset::Base64Url => {
            let mut bytes = Zeroizing::new(vec![0u8; length]);
            fill(&mut bytes)?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&*bytes, &mut out);
        }
        Charset::Hex => {
            let mut bytes = Zeroizing::new(vec![0u8; length.div_ceil(2)]);
            fill(&mut bytes)?;
            for b in bytes.iter() {
                out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
            }
            out.truncate(length);
        }
        Charset::Alphanumeric => {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            // Rejection sampling: bytes >= 248 (= 4 * 62) would bias the modulo.
            let mut bytes = Zeroizing::new(vec![0u8; 64]);
            while out.len() < length {
                fill(&mut bytes)?;
                for b in bytes.iter().filter(|b| **b < 248) {
                    if out.len() == length {
                        break;
                    }
                    out.push(char::from(ALPHABET[usize::from(*b) % 62]));
                }
            }
        }
    }
    Ok(SecretValue::new(out.to_string()))
}

/// Refuses an empty value, one over 65,536 bytes, and one equal to the current value.
pub fn validate(new: &SecretValue, current: Option<&SecretValue>) -> Result<()> {
    if new.is_empty() {
        return Err(Error::bad_input("the new value is empty").hint(
            "give a non-empty value; to delete a secret use `aws secretsmanager delete-secret`",
        ));
    }
    if new.len() > MAX_BYTES {
        // No byte count: reading stops just past the limit, so it would understate.
        return Err(Error::bad_input(
            "the new value is over the 65536-byte limit of secrets manager",
        )
        .hint("store a smaller value (or a reference to where the large one is kept)"));
    }
    if current.is_some_and(|c| c.same_as(new)) {
        return Err(Error::bad_input("the new value equals the current one")
            .hint("nothing to rotate: give a different value, or use `secret-rollout redeploy` to restart the services"));
    }
    Ok(())
}

/// Wipes every string of a parsed JSON document (keys too).
fn scrub(value: serde_json::Value) {
    match value {
        serde_json::Value::String(mut s) => s.zeroize(),
        serde_json::Value::Array(items) => items.into_iter().for_each(scrub),
        serde_json::Value::Object(map) => {
            for (mut k, v) in map {
                k.zeroize();
                scrub(v);
            }
        }
        _ => {}
    }
}

/// Replaces `key` of the JSON object in `current` with the string `new` and keeps the
/// other keys. Refuses when `current` is not a JSON object, when it has no such key (a
/// typo would otherwise add a key and leave the real one unchanged), and when the key
/// already holds `new`. Keys come out sorted (serde_json's map), which Secrets Manager
/// consumers do not depend on.
pub fn merge_json_key(current: &SecretValue, key: &str, new: &SecretValue) -> Result<SecretValue> {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> =
        match serde_json::from_str::<serde_json::Value>(current.expose()) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            Ok(other) => {
                scrub(other);
                None
            }
            Err(_) => None,
        };
    let Some(mut map) = parsed else {
        return Err(Error::bad_input(format!(
            "--json-key {key}: the current value is not a json object"
        ))
        .hint("drop --json-key to replace the whole value"));
    };
    if !map.contains_key(key) {
        let keys: Vec<String> = map.keys().cloned().collect();
        scrub(serde_json::Value::Object(map));
        return Err(Error::bad_input(format!(
            "--json-key {key}: the current json object has no such key"
        ))
        .hint(format!("its keys are: {}", keys.join(", "))));
    }
    if map.get(key).and_then(|v| v.as_str()) == Some(new.expose()) {
        scrub(serde_json::Value::Object(map));
        return Err(Error::bad_input(format!(
            "--json-key {key}: the new value equals the current one"
        ))
        .hint("nothing to rotate: give a different value, or use `secret-rollout redeploy` to restart the services"));
    }
    if let Some(old) = map.insert(
        key.to_string(),
        serde_json::Value::String(new.expose().to_string()),
    ) {
        scrub(old);
    }
    let object = serde_json::Value::Object(map);
    let merged = Zeroizing::new(object.to_string());
    scrub(object);
    Ok(SecretValue::new(merged.to_string()))
}

/// Flags that would carry a value on the command line.
const VALUE_FLAGS: &[&str] = &[
    "--value",
    "--secret-string",
    "--secret-value",
    "--secret-binary",
    "--new-value",
    "--password",
    "--string",
];

/// Refuses a command line that tries to give the value as an argument (`--value X`,
/// `--value=X`, `--secret-string ...`): it would end up in shell history and the process
/// list. The error names the flag, never what follows it.
pub fn reject_value_flags(args: &[OsString]) -> Result<()> {
    for arg in args {
        if arg == "--" {
            break;
        }
        let Some(arg) = arg.to_str() else { continue };
        let flag = arg.split_once('=').map_or(arg, |(flag, _)| flag);
        if VALUE_FLAGS.contains(&flag) {
            return Err(Error::bad_input(format!("{flag} is not accepted")).hint(
                "values are never taken from the command line: they end up in shell history and the process list; use --value-stdin, --value-file or --generate",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    const KNOWN: &str = "hunter2-very-secret";

    fn v(s: &str) -> SecretValue {
        SecretValue::new(s.to_string())
    }

    fn assert_no_leak(e: &Error) {
        let all = format!("{} {:?} {}", e.render(), e, e);
        assert!(!all.contains(KNOWN), "{all}");
    }

    #[test]
    fn debug_is_redacted() {
        let s = v(KNOWN);
        let debug = format!("{s:?} {:?}", Some(&s));
        assert!(!debug.contains(KNOWN));
        assert!(!debug.contains("hunter"));
        assert!(debug.contains("redacted"));
        assert_eq!(s.expose(), KNOWN);
    }

    #[test]
    fn stdin_reads_everything_and_trims_one_newline_on_request() {
        let cases: &[(&[u8], bool, &str)] = &[
            (b"abc", false, "abc"),
            (b"abc\n", false, "abc\n"),
            (b"abc\n", true, "abc"),
            (b"abc\r\n", true, "abc"),
            (b"abc\n\n", true, "abc\n"),
            (b"line1\nline2", true, "line1\nline2"),
        ];
        for (input, trim, expected) in cases {
            let mut r: &[u8] = input;
            let got = Source::Stdin {
                trim_newline: *trim,
            }
            .read_with("x", &mut r, None)
            .unwrap();
            assert_eq!(got.expose(), *expected);
        }
    }

    #[test]
    fn stdin_errors() {
        for (input, trim, message) in [
            (&b""[..], false, "no value on stdin"),
            (&b"\n"[..], true, "no value on stdin"),
            (&[0xff, 0xfe][..], false, "not utf-8"),
        ] {
            let mut r: &[u8] = input;
            let e = Source::Stdin { trim_newline: trim }
                .read_with("x", &mut r, None)
                .unwrap_err();
            assert_eq!(e.kind, Kind::BadInput);
            assert!(e.message.contains(message), "{}", e.message);
            assert!(e.hint.is_some());
        }
    }

    #[test]
    fn oversized_stdin_is_read_to_the_limit_and_refused_by_validate() {
        let big = vec![b'a'; MAX_BYTES + 100];
        let mut r: &[u8] = &big;
        let value = Source::Stdin {
            trim_newline: false,
        }
        .read_with("x", &mut r, None)
        .unwrap();
        assert_eq!(value.len(), MAX_BYTES + 3);
        let e = validate(&value, None).unwrap_err();
        assert!(e.message.contains("65536"), "{}", e.message);
        // Exactly the limit is fine.
        let exact = v(&"a".repeat(MAX_BYTES));
        validate(&exact, None).unwrap();
    }

    #[test]
    fn file_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("value");
        std::fs::write(&path, format!("{KNOWN}\n")).unwrap();
        let got = Source::File(path.clone())
            .read_with("x", &mut &b""[..], None)
            .unwrap();
        assert_eq!(
            got.expose(),
            format!("{KNOWN}\n"),
            "files are taken as they are"
        );

        let missing = dir.path().join("missing");
        let e = Source::File(missing)
            .read_with("x", &mut &b""[..], None)
            .unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert!(e.message.contains("missing"), "{}", e.message);

        // A directory is unreadable as a value; the message names it, never content.
        let e = Source::File(dir.path().to_path_buf())
            .read_with("x", &mut &b""[..], None)
            .unwrap_err();
        assert!(e.message.contains(&dir.path().display().to_string()));
        assert_no_leak(&e);
    }

    #[test]
    fn prompt_asks_twice() {
        let mut asked = Vec::new();
        let mut answers = vec![KNOWN.to_string(), KNOWN.to_string()];
        let mut prompt = |p: &str| {
            asked.push(p.to_string());
            Ok(answers.remove(0))
        };
        let got = Source::Prompt
            .read_with("production/x", &mut &b""[..], Some(&mut prompt))
            .unwrap();
        assert_eq!(got.expose(), KNOWN);
        assert_eq!(
            asked,
            [
                "new value for production/x: ",
                "new value for production/x (again): "
            ]
        );

        let mut answers = vec![KNOWN.to_string(), "other".to_string()];
        let mut prompt = |_: &str| Ok(answers.remove(0));
        let e = Source::Prompt
            .read_with("x", &mut &b""[..], Some(&mut prompt))
            .unwrap_err();
        assert_eq!(e.message, "the two values typed differ");
        assert_no_leak(&e);
    }

    #[test]
    fn prompt_without_terminal_is_bad_input() {
        let e = Source::Prompt
            .read_with("x", &mut &b""[..], None)
            .unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert!(e.message.starts_with("no value given"));
        assert_eq!(e.hint.as_deref(), Some(SOURCES_HINT));
    }

    #[test]
    fn generated_values() {
        let default = generate(DEFAULT_GENERATE_LENGTH, Charset::Base64Url).unwrap();
        assert_eq!(default.len(), 43);
        assert!(default
            .expose()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(default.expose())
            .unwrap();
        assert_eq!(decoded.len(), 32);

        let alnum = generate(40, Charset::Alphanumeric).unwrap();
        assert_eq!(alnum.len(), 40);
        assert!(alnum.expose().bytes().all(|b| b.is_ascii_alphanumeric()));

        for n in [1, 7, 64] {
            let hex = generate(n, Charset::Hex).unwrap();
            assert_eq!(hex.len(), n);
            assert!(hex
                .expose()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        // Two draws differ (probability of collision 2^-256).
        let a = generate(32, Charset::Base64Url).unwrap();
        let b = generate(32, Charset::Base64Url).unwrap();
        assert!(!a.same_as(&b));

        assert_eq!(generate(0, Charset::Hex).unwrap_err().kind, Kind::BadInput);
        assert_eq!(
            generate(5000, Charset::Hex).unwrap_err().kind,
            Kind::BadInput
        );
        let source = Source::Generate {
            length: 16,
            charset: Charset::Hex,
        };
        assert_eq!(
            source.read_with("x", &mut &b""[..], None).unwrap().len(),
            16
        );
    }

    #[test]
    fn charset_names() {
        assert_eq!("base64url".parse::<Charset>().unwrap(), Charset::Base64Url);
        assert_eq!(
            "alphanumeric".parse::<Charset>().unwrap(),
            Charset::Alphanumeric
        );
        assert_eq!("hex".parse::<Charset>().unwrap(), Charset::Hex);
        let e = "base32".parse::<Charset>().unwrap_err();
        assert!(e.hint.unwrap().contains("alphanumeric"));
    }

    #[test]
    fn validation() {
        let e = validate(&v(""), None).unwrap_err();
        assert_eq!(e.message, "the new value is empty");
        let e = validate(&v(KNOWN), Some(&v(KNOWN))).unwrap_err();
        assert_eq!(e.message, "the new value equals the current one");
        assert_no_leak(&e);
        validate(&v("new"), Some(&v("old"))).unwrap();
        validate(&v("new"), None).unwrap();
        assert!(v("ab").same_as(&v("ab")));
        assert!(!v("ab").same_as(&v("abc")));
        assert!(!v("ab").same_as(&v("ac")));
    }

    #[test]
    fn json_key_replaces_one_key() {
        let current = v(r#"{"username":"app","password":"old","port":5432}"#);
        let merged = merge_json_key(&current, "password", &v(KNOWN)).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(merged.expose()).unwrap();
        assert_eq!(parsed["password"], KNOWN);
        assert_eq!(parsed["username"], "app");
        assert_eq!(parsed["port"], 5432);
        // The same value for the key is refused here: re-serialising reorders keys, so
        // comparing whole documents afterwards would not notice.
        let e = merge_json_key(&current, "password", &v("old")).unwrap_err();
        assert!(
            e.message.contains("equals the current one"),
            "{}",
            e.message
        );
    }

    #[test]
    fn json_key_refusals_never_show_the_value() {
        for current in [KNOWN, "[1,2]", "\"hunter2-very-secret\"", "{\"a\":"] {
            let e = merge_json_key(&v(current), "password", &v("x")).unwrap_err();
            assert_eq!(e.kind, Kind::BadInput);
            assert!(e.message.contains("not a json object"), "{}", e.message);
            assert_eq!(
                e.hint.as_deref(),
                Some("drop --json-key to replace the whole value")
            );
            assert_no_leak(&e);
        }
        let current = v(&format!(r#"{{"username":"app","password":"{KNOWN}"}}"#));
        let e = merge_json_key(&current, "pasword", &v("x")).unwrap_err();
        assert!(e.message.contains("no such key"));
        assert_eq!(e.hint.as_deref(), Some("its keys are: password, username"));
        assert_no_leak(&e);
    }

    #[test]
    fn value_flags_are_refused() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        for bad in [
            &["secret-rollout", "replace", "x", "--value", KNOWN][..],
            &[
                "secret-rollout",
                "replace",
                "x",
                &format!("--value={KNOWN}"),
            ],
            &["secret-rollout", "replace", "--secret-string", KNOWN, "x"],
            &["secret-rollout", "replace", "x", "--password=p"],
        ] {
            let e = reject_value_flags(&args(bad)).unwrap_err();
            assert_eq!(e.kind, Kind::BadInput);
            assert!(e.hint.as_deref().unwrap().contains("shell history"));
            assert_no_leak(&e);
        }
        for good in [
            &["secret-rollout", "replace", "x", "--value-stdin"][..],
            &["secret-rollout", "replace", "x", "--value-file", "/tmp/v"],
            &[
                "secret-rollout",
                "replace",
                "x",
                "--value-file=/tmp/v",
                "--generate",
            ],
            &["secret-rollout", "replace", "--", "--value"],
        ] {
            reject_value_flags(&args(good)).unwrap();
        }
        let e = reject_value_flags(&args(&["x", "--value=abc"])).unwrap_err();
        assert_eq!(e.message, "--value is not accepted");
    }
}
