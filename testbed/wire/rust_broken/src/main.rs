//! `conformance-rust-broken VARIANT`: the Rust example's bridge over its in-memory engine with
//! one operation made wrong, the way real engines get it wrong. The kit must fail each one,
//! naming the clause it breaks:
//!
//! - `read-then-write-put`: put reads the version under the lock, lets go of it to copy the
//!   data (and for a round trip, as a GET then a SET to a remote engine would), and takes it
//!   again to write version + 1: concurrent puts are handed the same version (BK-18, CC-4).
//! - `glob-listing`: list_by_prefix treats `*` and `?` in the prefix as wildcards, as a
//!   `GLOB`/`KEYS` pattern built from the prefix would (BK-12, SEC-1).
//! - `regex-listing`: list_by_prefix matches the prefix as an unescaped regular expression,
//!   so `.` is any character and `*`, `+`, `?` repeat what precedes them (BK-12, SEC-1).
//! - `lagging-index`: list_by_prefix reads a secondary index of keys that an indexer thread
//!   updates after put and delete are acknowledged, batching changes that pile up: a listing
//!   can miss a key whose put was acknowledged, so concurrent creates under the task store
//!   count too few tasks (TS-6; CC-1, CC-2, SEC-9).
//!
//! Build: `cargo build --offline --release`; run under the kit with
//! `--backend-command="testbed/wire/rust_broken/target/release/conformance-rust-broken glob-listing"`.

use std::collections::{BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use conformance_rust_example::bridge;
use conformance_rust_example::engine::{Engine, InMemoryEngine, Record, Result};
use serde_json::json;

const VARIANTS: [&str; 5] = ["read-then-write-put", "read-then-write-put-in-memory", "glob-listing", "regex-listing", "lagging-index"];

/// `read-then-write-put`: the time between its read and its write, a network round trip.
const ROUND_TRIP: Duration = Duration::from_micros(100);

/// `lagging-index`: how long the indexer lingers to batch changes that pile up (as Nagle's
/// algorithm or Kafka's `linger.ms` do). A lone change is applied at once.
const BATCH_LINGER: Duration = Duration::from_millis(10);

/// `lagging-index`: an instance's secondary index of keys, fed by a change feed that one
/// indexer at a time applies, in order, after the writes were acknowledged.
#[derive(Default)]
struct KeyIndex {
    keys: Mutex<BTreeSet<String>>,
    /// The changes not yet applied, and whether an indexer is running.
    feed: Mutex<(Vec<(String, bool)>, bool)>,
}

impl KeyIndex {
    fn changed(self: &Arc<Self>, key: &str, present: bool) {
        let mut feed = self.feed.lock().unwrap();
        feed.0.push((key.to_owned(), present));
        if !feed.1 {
            feed.1 = true;
            let index = Arc::clone(self);
            thread::spawn(move || index.apply());
        }
    }

    fn apply(&self) {
        loop {
            let batch = {
                let mut feed = self.feed.lock().unwrap();
                if feed.0.len() > 1 {
                    drop(feed);
                    thread::sleep(BATCH_LINGER);
                    feed = self.feed.lock().unwrap();
                }
                if feed.0.is_empty() {
                    feed.1 = false;
                    return;
                }
                std::mem::take(&mut feed.0)
            };
            let mut keys = self.keys.lock().unwrap();
            for (key, present) in batch {
                if present { keys.insert(key) } else { keys.remove(&key) };
            }
        }
    }
}

/// The example's engine; every operation but the variant's goes straight to it.
struct Broken {
    inner: InMemoryEngine,
    variant: &'static str,
    /// `lagging-index` only: each instance's key index, which its listings read.
    index: Mutex<HashMap<String, Arc<KeyIndex>>>,
}

impl Broken {
    fn index_of(&self, instance: &str) -> Arc<KeyIndex> {
        self.index.lock().unwrap().entry(instance.to_owned()).or_default().clone()
    }
}

impl Engine for Broken {
    fn open(&self, now_ms: Option<i64>) -> String {
        self.inner.open(now_ms)
    }

    fn close(&self, instance: &str) -> Result<()> {
        self.index.lock().unwrap().remove(instance);
        self.inner.close(instance)
    }

    fn set_clock(&self, instance: &str, now_ms: i64) -> Result<()> {
        self.inner.set_clock(instance, now_ms)
    }

    fn get(&self, instance: &str, key: &str) -> Result<Record> {
        self.inner.get(instance, key)
    }

    fn put(&self, instance: &str, key: &str, data: Vec<u8>) -> Result<i64> {
        match self.variant {
            "read-then-write-put" => {
                let version = self.inner.with(instance, |i| i.version_of(key).map_or(1, |v| v + 1))?;
                // The lock is free meanwhile: the data is copied and, as with a GET and a SET
                // sent to a remote engine, a round trip passes before the write.
                let record = Record::new(data.to_vec(), version);
                thread::sleep(ROUND_TRIP);
                self.inner.with(instance, |i| i.records.insert(key.to_owned(), record))?;
                Ok(version)
            }
            "read-then-write-put-in-memory" => {
                // The same bug with no round trip: only releasing the lock and copying the data lie
                // between the read and the write, as in an in-memory map read and then inserted into.
                let version = self.inner.with(instance, |i| i.version_of(key).map_or(1, |v| v + 1))?;
                let record = Record::new(data.to_vec(), version);
                self.inner.with(instance, |i| i.records.insert(key.to_owned(), record))?;
                Ok(version)
            }
            "lagging-index" => {
                let version = self.inner.put(instance, key, data)?;
                self.index_of(instance).changed(key, true);
                Ok(version)
            }
            _ => self.inner.put(instance, key, data),
        }
    }

    fn put_if_version(&self, instance: &str, key: &str, data: Vec<u8>, expected: i64) -> Result<i64> {
        self.inner.put_if_version(instance, key, data, expected)
    }

    fn delete(&self, instance: &str, key: &str) -> Result<bool> {
        let removed = self.inner.delete(instance, key)?;
        if self.variant == "lagging-index" {
            self.index_of(instance).changed(key, false);
        }
        Ok(removed)
    }

    fn list_by_prefix(&self, instance: &str, prefix: &str) -> Result<Vec<(String, Record)>> {
        let matches: fn(&str, &str) -> bool = match self.variant {
            "glob-listing" => glob_prefix,
            "regex-listing" => regex_prefix,
            "lagging-index" => {
                let index = self.index_of(instance);
                let keys: Vec<String> = index.keys.lock().unwrap().iter().filter(|k| k.starts_with(prefix)).cloned().collect();
                return self.inner.with(instance, |i| {
                    keys.into_iter().filter_map(|k| i.records.get(&k).cloned().map(|r| (k, r))).collect()
                });
            }
            _ => return self.inner.list_by_prefix(instance, prefix),
        };
        self.inner.with(instance, |i| {
            i.records.iter().filter(|(k, _)| matches(prefix, k)).map(|(k, r)| (k.clone(), r.clone())).collect()
        })
    }

    fn cleanup_expired(&self, instance: &str) -> Result<u64> {
        self.inner.cleanup_expired(instance)
    }
}

/// Whether `key` starts with something the glob `pattern` matches (`*` any run, `?` any
/// character): the usual wildcard matcher that backtracks to the last `*`.
fn glob_prefix(pattern: &str, key: &str) -> bool {
    let (p, k): (Vec<char>, Vec<char>) = (pattern.chars().collect(), key.chars().collect());
    let (mut pi, mut ki, mut star): (usize, usize, Option<(usize, usize)>) = (0, 0, None);
    while pi < p.len() {
        if p[pi] == '*' {
            star = Some((pi, ki));
            pi += 1;
        } else if ki < k.len() && (p[pi] == '?' || p[pi] == k[ki]) {
            pi += 1;
            ki += 1;
        } else if let Some((star_pi, star_ki)) = star.filter(|&(_, star_ki)| star_ki < k.len()) {
            star = Some((star_pi, star_ki + 1));
            pi = star_pi + 1;
            ki = star_ki + 1;
        } else {
            return false;
        }
    }
    true
}

/// Whether `key` starts with a match of `pattern` read as an unescaped regular expression, as
/// Python's `re.match(prefix, key)` reads it, for the syntax that needs no brackets: `.` is any
/// character but a newline, and `*`, `+`, `?` repeat what precedes them. Other characters are
/// literal; a repeat with nothing to repeat fails to compile, and the prefix is then tested
/// literally; a lazy or possessive repeat is read as a greedy one. Runs the pattern as a set
/// of positions, so no key makes it backtrack.
fn regex_prefix(pattern: &str, key: &str) -> bool {
    struct Atom {
        char: Option<char>, // None: `.`
        optional: bool,
        repeats: bool,
    }
    let mut atoms: Vec<Atom> = Vec::new();
    let mut repeats_after = 0; // the repeat signs since the last atom
    for c in pattern.chars() {
        match (c, atoms.last_mut(), repeats_after) {
            ('*' | '+' | '?', Some(atom), 0) => {
                atom.optional = c != '+';
                atom.repeats = c != '?';
                repeats_after = 1;
            }
            ('+' | '?', Some(_), 1) => repeats_after = 2, // lazy or possessive: read as greedy
            ('*' | '+' | '?', _, _) => return key.starts_with(pattern), // "nothing to repeat"
            _ => {
                atoms.push(Atom { char: if c == '.' { None } else { Some(c) }, optional: false, repeats: false });
                repeats_after = 0;
            }
        }
    }
    let close = |states: &mut Vec<bool>| {
        for i in 0..atoms.len() {
            if states[i] && atoms[i].optional {
                states[i + 1] = true;
            }
        }
    };
    let mut states = vec![false; atoms.len() + 1];
    states[0] = true;
    close(&mut states);
    for c in key.chars() {
        if states[atoms.len()] {
            return true;
        }
        let mut next = vec![false; atoms.len() + 1];
        for (i, atom) in atoms.iter().enumerate() {
            if states[i] && atom.char.map_or(c != '\n', |want| want == c) {
                next[i + 1] = true;
                next[i] |= atom.repeats;
            }
        }
        close(&mut next);
        states = next;
    }
    states[atoms.len()]
}

fn main() -> ExitCode {
    let variant = std::env::args().nth(1).and_then(|arg| VARIANTS.iter().find(|v| **v == arg).copied());
    let variant = match variant {
        Some(variant) => variant,
        None => {
            eprintln!("usage: conformance-rust-broken {}", VARIANTS.join("|"));
            return ExitCode::from(2);
        }
    };
    let capabilities = json!({"clock": true, "expired_records": "kept_until_cleanup", "max_record_bytes": null});
    let engine = Broken { inner: InMemoryEngine::default(), variant, index: Mutex::default() };
    eprintln!("rust-broken: serving the {variant} variant on stdin/stdout");
    bridge::serve(&engine, &format!("rust-broken-{variant}"), &capabilities);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(glob_prefix("a*", "ab") && glob_prefix("a*", "a*") && glob_prefix("a?c", "abcd") && glob_prefix("*z", "xyz!"));
        assert!(!glob_prefix("a*c", "abd") && !glob_prefix("a?", "a") && !glob_prefix("b", "a"));
        assert!(glob_prefix("", "") && glob_prefix("***", "") && glob_prefix(&"*".repeat(200), "x"));
        assert!(regex_prefix("a.", "ab") && regex_prefix("a.", "a.") && !regex_prefix("a.", "a") && !regex_prefix("a.c", "abd"));
        assert!(regex_prefix("a*", "b") && regex_prefix("ab*c", "ac") && regex_prefix("ab+c", "abbbc!") && !regex_prefix("ab+c", "ac"));
        assert!(regex_prefix("a?b", "b") && regex_prefix("a.*", "a") && !regex_prefix("a.", "a\n") && regex_prefix("*a", "*ab"));
        assert!(!regex_prefix("*a", "ba") && regex_prefix("a**", "a**") && !regex_prefix("a**", "aa") && !regex_prefix("x", ""));
    }
}
