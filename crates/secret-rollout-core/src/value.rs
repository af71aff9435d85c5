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

use crate::error::{Error, Reach, Result};

/// Secrets Manager's limit for `SecretString`, in bytes.
pub const MAX_BYTES: usize = 65_536;

/// Default `--generate` length: 32 random bytes (43 characters of URL-safe base64).
pub const DEFAULT_GENERATE_LENGTH: usize = 32;

/// The least randomness a generated value may hold, in bits, unless the operator says
/// `--allow-weak-value`: 128 bits cannot be guessed, fewer may be (`--length 2 --charset
/// hex` is 8 bits, 256 guesses).
pub const MIN_GENERATED_BITS: u32 = 128;

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

impl Charset {
    /// Its `--charset` name.
    pub fn name(self) -> &'static str {
        match self {
            Charset::Base64Url => "base64url",
            Charset::Alphanumeric => "alphanumeric",
            Charset::Hex => "hex",
        }
    }

    /// Bits of randomness per unit of `--length`: a random byte for base64url,
    /// log2(alphabet size) per character otherwise.
    pub fn bits_per_unit(self) -> f64 {
        match self {
            Charset::Base64Url => 8.0,
            Charset::Alphanumeric => 62f64.log2(),
            Charset::Hex => 4.0,
        }
    }

    /// Bits of randomness in a value of `length` (length x log2(charset size)).
    pub fn bits(self, length: usize) -> f64 {
        length as f64 * self.bits_per_unit()
    }

    /// The least `--length` that reaches [`MIN_GENERATED_BITS`].
    pub fn min_length(self) -> usize {
        (f64::from(MIN_GENERATED_BITS) / self.bits_per_unit()).ceil() as usize
    }
}

/// Refuses a generated value with less than [`MIN_GENERATED_BITS`] of randomness unless
/// `allow_weak` (`--allow-weak-value`): one line naming the bits, and the fix. Checked
/// before any AWS call.
pub fn check_generated_strength(length: usize, charset: Charset, allow_weak: bool) -> Result<()> {
    let bits = charset.bits(length);
    if allow_weak || bits >= f64::from(MIN_GENERATED_BITS) {
        return Ok(());
    }
    Err(Error::bad_input(format!(
        "--generate --length {length} --charset {} gives {} bits of randomness, under the floor of {MIN_GENERATED_BITS}",
        charset.name(),
        bits.floor() as u64
    ))
    .hint(format!(
        "use --length {} or more with --charset {}, or pass --allow-weak-value if what reads the secret cannot take a longer value",
        charset.min_length(),
        charset.name()
    )))
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
        /// What to do with a trailing newline.
        newline: Newline,
    },
    /// A file's whole content.
    File {
        /// The file.
        path: PathBuf,
        /// What to do with a trailing newline.
        newline: Newline,
    },
    /// Random, from the operating system's generator.
    Generate {
        /// Bytes for base64url, characters for the others.
        length: usize,
        /// Character set.
        charset: Charset,
    },
}

/// What to do with a value (from stdin or a file) that ends in a newline, as `echo` and
/// most editors leave one. Never silently: a password with a stray `\n` fails to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Newline {
    /// Refuse the value and ask which is meant (the default).
    #[default]
    Refuse,
    /// Drop one trailing `\n` (or `\r\n`): `--trim-newline`.
    Trim,
    /// Store it as given: `--keep-newline`.
    Keep,
}

impl Newline {
    /// Applies the policy to what was read from `what` (stdin, the value file ...).
    fn apply(self, buf: &mut Zeroizing<Vec<u8>>, what: &str) -> Result<()> {
        match self {
            Newline::Trim => trim_one_newline(buf),
            Newline::Keep => {}
            Newline::Refuse if buf.ends_with(b"\n") && buf.len() <= MAX_BYTES + 1 => {
                return Err(Error::bad_input(format!("{what} ends with a newline")).hint(
                    "add --trim-newline to drop it (echo and most editors add one), or --keep-newline to store it as is",
                ))
            }
            Newline::Refuse => {}
        }
        Ok(())
    }
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
            Source::Stdin { newline } => {
                let mut text = read_limited(stdin).map_err(|e| {
                    Error::bad_input(format!("could not read the value from stdin: {}", e.kind()))
                        .hint(SOURCES_HINT)
                })?;
                newline.apply(&mut text, "the value on stdin")?;
                let text = utf8(text, "stdin")?;
                if text.is_empty() {
                    return Err(Error::bad_input("no value on stdin: it was closed or empty")
                        .hint("pipe the value in, e.g. `pass show x | secret-rollout replace ... --value-stdin`"));
                }
                Ok(SecretValue::new(text.to_string()))
            }
            Source::File { path, newline } => {
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
                let mut text = text;
                newline.apply(&mut text, &format!("the value file {}", path.display()))?;
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

/// The value is larger than Secrets Manager stores.
fn too_large() -> Error {
    // No byte count: reading stops just past the limit, so it would understate.
    Error::bad_input("the new value is over the 65536-byte limit of secrets manager")
        .hint("store a smaller value (or a reference to where the large one is kept)")
}

fn utf8(buf: Zeroizing<Vec<u8>>, what: &str) -> Result<Zeroizing<String>> {
    // Size first: reading stops just past the limit, which can cut a multi-byte character
    // in two, and a large valid text must not be called "not utf-8".
    if buf.len() > MAX_BYTES {
        return Err(too_large());
    }
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

/// A secret's current value, with what the refusal to write it again suggests: the
/// secret's name and the options that reach its environment, for the `redeploy` that
/// restarts its consumers instead.
#[derive(Clone, Copy)]
pub struct Current<'a> {
    /// The value of its AWSCURRENT version.
    pub value: &'a SecretValue,
    /// The secret's name (as Secrets Manager knows it).
    pub secret: &'a str,
    /// The options the command was given that reach the environment.
    pub reach: &'a Reach,
}

/// The refusal of a new value equal to the current one (`what`: "the new value", or the
/// `--json-key` member), naming the redeploy that restarts the consumers instead.
fn unchanged(what: &str, current: Current<'_>) -> Error {
    Error::bad_input(format!("{what} equals the current one")).hint(format!(
        "nothing to rotate: give a different value, or restart its consumers with `{}`",
        current
            .reach
            .command(&format!("redeploy --secret {}", current.secret))
    ))
}

/// Refuses an empty value, one over 65,536 bytes, one with a NUL byte (ECS passes secrets
/// as environment variables), and one equal to the current value.
pub fn validate(new: &SecretValue, current: Option<Current<'_>>) -> Result<()> {
    if new.is_empty() {
        return Err(Error::bad_input("the new value is empty").hint(
            "give a non-empty value; to delete a secret use `aws secretsmanager delete-secret`",
        ));
    }
    if new.len() > MAX_BYTES {
        return Err(too_large());
    }
    if new.expose().contains('\0') {
        return Err(Error::bad_input("the new value contains a NUL byte").hint(
            "ECS hands secrets to containers as environment variables, which cannot hold NUL: base64-encode binary data",
        ));
    }
    if let Some(current) = current.filter(|c| c.value.same_as(new)) {
        return Err(unchanged("the new value", current));
    }
    Ok(())
}

/// The top level of a JSON object, in its own order, each member's value as written.
///
/// `serde_json::Value` would sort the keys and normalise numbers (`5432.0`, `1e3`, big
/// integers); raw values leave every member but the replaced one exactly as it was, without
/// turning on `arbitrary_precision` for the whole workspace (which changes how every other
/// `Value` in the tool and the sandbox deserialises numbers).
type RawObject = indexmap::IndexMap<String, Box<serde_json::value::RawValue>>;

/// Wipes the keys and raw values of a parsed object.
fn scrub_raw(object: RawObject) {
    for (mut k, v) in object {
        k.zeroize();
        let mut text: Box<str> = v.into();
        text.zeroize();
    }
}

/// The JSON type a member holds, for messages (never the value).
fn json_type(raw: &serde_json::value::RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'"') => "string",
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// `new` as a member of the type `old` holds: a string stays a string (escaped), a number
/// must be a JSON number, a boolean `true`/`false`, an object or array the same kind of
/// JSON; null takes a string. `None` when `new` cannot be that type.
fn as_member_of_type(
    old: &'static str,
    new: &SecretValue,
) -> Option<Box<serde_json::value::RawValue>> {
    let text = new.expose().trim();
    let raw_of = |s: String| serde_json::value::RawValue::from_string(s).ok();
    match old {
        "string" | "null" => {
            raw_of(serde_json::Value::String(new.expose().to_string()).to_string())
        }
        "number" => serde_json::from_str::<serde_json::Number>(text)
            .ok()
            .and_then(|_| raw_of(text.to_string())),
        "boolean" => matches!(text, "true" | "false").then(|| raw_of(text.to_string()))?,
        kind => {
            let parsed = serde_json::from_str::<Box<serde_json::value::RawValue>>(text).ok()?;
            (json_type(&parsed) == kind).then_some(parsed)
        }
    }
}

/// Replaces `key` of the JSON object in `current` with `new` and keeps every other member
/// exactly as it was (order and number formatting included). The member keeps its JSON
/// type: a string gets `new` as a string, a number, boolean, object or array must be given
/// as one (`--json-key port` with `5433` writes the number 5433). Refuses when `current`
/// is not a JSON object, when it has no such key (a typo would otherwise add a key and
/// leave the real one unchanged), when `new` cannot be the member's type, and when the key
/// already holds `new`.
pub fn merge_json_key(current: Current<'_>, key: &str, new: &SecretValue) -> Result<SecretValue> {
    let mut map = object_with_key(current.value, key)?;
    let Some(old) = map.get(key) else {
        scrub_raw(map);
        return Err(Error::bad_input(format!(
            "--json-key {key}: the current json object has no such key"
        )));
    };
    let kind = json_type(old);
    let Some(member) = as_member_of_type(kind, new) else {
        scrub_raw(map);
        let article = if kind == "object" || kind == "array" {
            "an"
        } else {
            "a"
        };
        return Err(Error::bad_input(format!(
            "--json-key {key}: the key holds {article} {kind} and the new value is not {article} {kind}"
        ))
        .hint(format!("give {article} {kind} in json, or drop --json-key to replace the whole value")));
    };
    let same = match kind {
        "string" => serde_json::from_str::<String>(old.get()).is_ok_and(|mut s| {
            let same = s == new.expose();
            s.zeroize();
            same
        }),
        _ => old.get().trim() == member.get(),
    };
    if same {
        scrub_raw(map);
        let mut text: Box<str> = member.into();
        text.zeroize();
        return Err(unchanged(
            &format!("--json-key {key}: the new value"),
            current,
        ));
    }
    if let Some(old) = map.insert(key.to_string(), member) {
        let mut text: Box<str> = old.into();
        text.zeroize();
    }
    let merged = Zeroizing::new(serde_json::to_string(&map).map_err(|_| {
        Error::bad_input(format!(
            "--json-key {key}: the merged object cannot be written as json"
        ))
        .hint("drop --json-key to replace the whole value")
    })?);
    scrub_raw(map);
    Ok(SecretValue::new(merged.to_string()))
}

/// The JSON object in `current`, when it is one and has `key`: the refusals of
/// [`merge_json_key`] that need no new value (not a JSON object, no such key).
fn object_with_key(current: &SecretValue, key: &str) -> Result<RawObject> {
    let Ok(map) = serde_json::from_str::<RawObject>(current.expose()) else {
        return Err(Error::bad_input(format!(
            "--json-key {key}: the current value is not a json object"
        ))
        .hint("drop --json-key to replace the whole value"));
    };
    if !map.contains_key(key) {
        let mut keys: Vec<String> = map.keys().cloned().collect();
        keys.sort();
        scrub_raw(map);
        return Err(Error::bad_input(format!(
            "--json-key {key}: the current json object has no such key"
        ))
        .hint(format!("its keys are: {}", keys.join(", "))));
    }
    Ok(map)
}

/// Whether `--json-key key` can replace a member of `current`, before the new value is
/// known (`plan`, `replace --dry-run` without a value): the same refusals, word for word,
/// as [`merge_json_key`] gives for them.
pub fn check_json_key(current: &SecretValue, key: &str) -> Result<()> {
    scrub_raw(object_with_key(current, key)?);
    Ok(())
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

    /// `value` as the current value of `production/db`, reached with a config file at a
    /// path with a space and an environment.
    fn at(value: &SecretValue) -> Current<'_> {
        let reach: &'static Reach = Box::leak(Box::new(Reach::new(
            ["--config", "my conf.toml", "--env", "production"]
                .map(String::from)
                .to_vec(),
        )));
        Current {
            value,
            secret: "production/db",
            reach,
        }
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
                newline: if *trim { Newline::Trim } else { Newline::Keep },
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
            let e = Source::Stdin {
                newline: if trim { Newline::Trim } else { Newline::Keep },
            }
            .read_with("x", &mut r, None)
            .unwrap_err();
            assert_eq!(e.kind, Kind::BadInput);
            assert!(e.message.contains(message), "{}", e.message);
            assert!(e.hint.is_some());
        }
    }

    #[test]
    fn oversized_stdin_is_refused_at_the_limit() {
        let big = vec![b'a'; MAX_BYTES + 100];
        let mut r: &[u8] = &big;
        let e = Source::Stdin {
            newline: Newline::Keep,
        }
        .read_with("x", &mut r, None)
        .unwrap_err();
        assert!(e.message.contains("65536"), "{}", e.message);
        // Exactly the limit is fine, also with a trailing newline trimmed.
        let exact = v(&"a".repeat(MAX_BYTES));
        validate(&exact, None).unwrap();
        let mut line = vec![b'a'; MAX_BYTES];
        line.push(b'\n');
        let value = Source::Stdin {
            newline: Newline::Trim,
        }
        .read_with("x", &mut &line[..], None)
        .unwrap();
        assert_eq!(value.len(), MAX_BYTES);
    }

    #[test]
    fn file_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("value");
        std::fs::write(&path, format!("{KNOWN}\n")).unwrap();
        let got = Source::File {
            path: path.clone(),
            newline: Newline::Keep,
        }
        .read_with("x", &mut &b""[..], None)
        .unwrap();
        assert_eq!(
            got.expose(),
            format!("{KNOWN}\n"),
            "files are taken as they are"
        );

        let missing = dir.path().join("missing");
        let e = Source::File {
            path: missing,
            newline: Newline::Keep,
        }
        .read_with("x", &mut &b""[..], None)
        .unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert!(e.message.contains("missing"), "{}", e.message);

        // A directory is unreadable as a value; the message names it, never content.
        let e = Source::File {
            path: dir.path().to_path_buf(),
            newline: Newline::Keep,
        }
        .read_with("x", &mut &b""[..], None)
        .unwrap_err();
        assert!(e.message.contains(&dir.path().display().to_string()));
        assert_no_leak(&e);
    }

    #[test]
    fn a_trailing_newline_is_never_taken_silently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw.txt");
        std::fs::write(&path, format!("{KNOWN}\r\n")).unwrap();
        let file = |newline| {
            Source::File {
                path: path.clone(),
                newline,
            }
            .read_with("x", &mut &b""[..], None)
        };
        let e = file(Newline::Refuse).unwrap_err();
        assert_eq!(
            e.message,
            format!("the value file {} ends with a newline", path.display())
        );
        assert!(e.hint.as_deref().unwrap().contains("--trim-newline"));
        assert!(e.hint.as_deref().unwrap().contains("--keep-newline"));
        assert_no_leak(&e);
        assert_eq!(file(Newline::Trim).unwrap().expose(), KNOWN);
        assert_eq!(
            file(Newline::Keep).unwrap().expose(),
            format!("{KNOWN}\r\n")
        );
        let stdin =
            |input: &[u8], newline| Source::Stdin { newline }.read_with("x", &mut &input[..], None);
        let e = stdin(b"abc\n", Newline::Refuse).unwrap_err();
        assert_eq!(e.message, "the value on stdin ends with a newline");
        assert_eq!(stdin(b"abc", Newline::Refuse).unwrap().expose(), "abc");
        // A newline inside the value is the value's own.
        assert_eq!(stdin(b"a\nb", Newline::Refuse).unwrap().expose(), "a\nb");
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

    /// Item 7 of issue 21: every charset's floor, by length x log2(charset size).
    #[test]
    fn generated_values_have_a_floor_of_128_bits() {
        let table: &[(usize, Charset, bool, u64)] = &[
            // length, charset, accepted, bits
            (2, Charset::Hex, false, 8),
            (31, Charset::Hex, false, 124),
            (32, Charset::Hex, true, 128),
            (21, Charset::Alphanumeric, false, 125),
            (22, Charset::Alphanumeric, true, 130),
            (15, Charset::Base64Url, false, 120),
            (16, Charset::Base64Url, true, 128),
            (DEFAULT_GENERATE_LENGTH, Charset::Base64Url, true, 256),
        ];
        for (length, charset, ok, bits) in table.iter().copied() {
            assert_eq!(
                charset.bits(length).floor() as u64,
                bits,
                "{length} {charset:?}"
            );
            let r = check_generated_strength(length, charset, false);
            assert_eq!(r.is_ok(), ok, "{length} {charset:?}");
            if let Err(e) = r {
                assert_eq!(e.kind, Kind::BadInput);
                assert!(
                    e.message.contains(&format!("gives {bits} bits")),
                    "{}",
                    e.message
                );
                assert!(!e.message.contains('\n'));
                let hint = e.hint.unwrap();
                assert!(hint.contains("--allow-weak-value"), "{hint}");
                assert!(
                    hint.contains(&format!("--length {}", charset.min_length())),
                    "{hint}"
                );
            }
            check_generated_strength(length, charset, true).unwrap();
        }
        assert_eq!(Charset::Hex.min_length(), 32);
        assert_eq!(Charset::Alphanumeric.min_length(), 22);
        assert_eq!(Charset::Base64Url.min_length(), 16);
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
        let e = validate(&v(KNOWN), Some(at(&v(KNOWN)))).unwrap_err();
        assert_eq!(e.message, "the new value equals the current one");
        // The redeploy it suggests names the secret and carries the options typed.
        assert_eq!(
            e.hint.as_deref(),
            Some("nothing to rotate: give a different value, or restart its consumers with `secret-rollout redeploy --secret production/db --config 'my conf.toml' --env production`")
        );
        assert_no_leak(&e);
        validate(&v("new"), Some(at(&v("old")))).unwrap();
        validate(&v("new"), None).unwrap();
        assert!(v("ab").same_as(&v("ab")));
        assert!(!v("ab").same_as(&v("abc")));
        assert!(!v("ab").same_as(&v("ac")));
    }

    #[test]
    fn json_key_replaces_one_key() {
        let current = v(r#"{"username":"app","password":"old","port":5432}"#);
        let merged = merge_json_key(at(&current), "password", &v(KNOWN)).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(merged.expose()).unwrap();
        assert_eq!(parsed["password"], KNOWN);
        assert_eq!(parsed["username"], "app");
        assert_eq!(parsed["port"], 5432);
        // The same value for the key is refused here: re-serialising reorders keys, so
        // comparing whole documents afterwards would not notice.
        let e = merge_json_key(at(&current), "password", &v("old")).unwrap_err();
        assert!(
            e.message.contains("equals the current one"),
            "{}",
            e.message
        );
    }

    #[test]
    fn json_key_keeps_every_other_member_as_written_and_the_member_type() {
        let current = v(
            r#"{"username":"app","port":5432,"ratio":1.50,"big":123456789012345678901234567890,"tls":true,"password":"old"}"#,
        );
        let merged = merge_json_key(at(&current), "password", &v(KNOWN)).unwrap();
        assert_eq!(
            merged.expose(),
            format!(
                r#"{{"username":"app","port":5432,"ratio":1.50,"big":123456789012345678901234567890,"tls":true,"password":"{KNOWN}"}}"#
            )
        );
        // A number stays a number, a boolean a boolean, an object an object.
        let cases: &[(&str, &str, &str)] = &[
            ("port", "5433", r#""port":5433"#),
            ("port", " 5433\n", r#""port":5433"#),
            ("ratio", "2.50", r#""ratio":2.50"#),
            ("tls", "false", r#""tls":false"#),
        ];
        for (key, new, expect) in cases {
            let new = new.replace("\\n", "\n");
            let merged = merge_json_key(at(&current), key, &v(&new)).unwrap();
            assert!(
                merged.expose().contains(expect),
                "{key}: {}",
                merged.expose()
            );
            assert!(merged.expose().starts_with(r#"{"username":"app","#));
        }
        let nested = v(r#"{"db":{"host":"h"},"tags":["a"],"note":null}"#);
        let merged = merge_json_key(at(&nested), "db", &v(r#"{"host": "h2"}"#)).unwrap();
        assert_eq!(
            merged.expose(),
            r#"{"db":{"host": "h2"},"tags":["a"],"note":null}"#
        );
        let merged = merge_json_key(at(&nested), "note", &v("text")).unwrap();
        assert_eq!(
            merged.expose(),
            r#"{"db":{"host":"h"},"tags":["a"],"note":"text"}"#
        );
        // A string member takes any text, escaped.
        let merged = merge_json_key(at(&current), "username", &v("a\"b")).unwrap();
        assert!(merged.expose().starts_with(r#"{"username":"a\"b","port""#));
    }

    #[test]
    fn json_key_refuses_a_value_of_another_type_without_showing_it() {
        let current = v(
            r#"{"port":5432,"tls":true,"db":{"host":"h"},"tags":[],"password":"hunter2-very-secret"}"#,
        );
        for (key, new, kind) in [
            ("port", KNOWN, "a number"),
            ("port", "5432x", "a number"),
            ("tls", "yes", "a boolean"),
            ("db", "[1]", "an object"),
            ("tags", "{}", "an array"),
        ] {
            let e = merge_json_key(at(&current), key, &v(new)).unwrap_err();
            assert_eq!(e.kind, Kind::BadInput);
            assert_eq!(
                e.message,
                format!("--json-key {key}: the key holds {kind} and the new value is not {kind}")
            );
            assert_no_leak(&e);
        }
        for (key, same) in [("port", "5432"), ("tls", "true"), ("password", KNOWN)] {
            let e = merge_json_key(at(&current), key, &v(same)).unwrap_err();
            assert_eq!(
                e.message,
                format!("--json-key {key}: the new value equals the current one")
            );
            assert_eq!(
                e.hint.as_deref(),
                Some("nothing to rotate: give a different value, or restart its consumers with `secret-rollout redeploy --secret production/db --config 'my conf.toml' --env production`")
            );
            assert_no_leak(&e);
        }
    }

    #[test]
    fn large_utf8_is_refused_for_its_size_and_nul_for_itself() {
        // 80 KB of a two-byte character: reading stops mid-character past the limit.
        let big = "é".repeat(40_000);
        let e = Source::Stdin {
            newline: Newline::Keep,
        }
        .read_with("x", &mut big.as_bytes(), None)
        .unwrap_err();
        assert!(e.message.contains("65536-byte limit"), "{}", e.message);
        let e = validate(&v("a\0b"), None).unwrap_err();
        assert_eq!(e.message, "the new value contains a NUL byte");
        assert!(e.hint.unwrap().contains("environment variables"));
        // Exactly at the limit is fine.
        validate(&v(&"é".repeat(32_768)), None).unwrap();
    }

    #[test]
    fn json_key_refusals_never_show_the_value() {
        for current in [KNOWN, "[1,2]", "\"hunter2-very-secret\"", "{\"a\":"] {
            let e = merge_json_key(at(&v(current)), "password", &v("x")).unwrap_err();
            assert_eq!(e.kind, Kind::BadInput);
            assert!(e.message.contains("not a json object"), "{}", e.message);
            assert_eq!(
                e.hint.as_deref(),
                Some("drop --json-key to replace the whole value")
            );
            assert_no_leak(&e);
        }
        let current = v(&format!(r#"{{"username":"app","password":"{KNOWN}"}}"#));
        let e = merge_json_key(at(&current), "pasword", &v("x")).unwrap_err();
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
