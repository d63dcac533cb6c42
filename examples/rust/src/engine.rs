//! The storage engine: what you replace with your own.
//!
//! [`Engine`] is the StorageBackend contract (SPEC BK-1..BK-20) as the bridge calls it, with
//! instances: the kit opens a fresh, empty instance per test and per Hypothesis example. To
//! put your engine under the kit, implement [`Engine`] over it (an instance is a key prefix,
//! a database or a table of yours) and hand it to [`crate::bridge::serve`].
//!
//! [`InMemoryEngine`] is the reference semantics in Rust: a sorted map per instance behind a
//! mutex, every operation one critical section (BK-18), expired records kept until
//! `cleanup_expired` (BK-17, `kept_until_cleanup`). Its pieces are public ([`InMemoryEngine::with`],
//! [`Instance`], [`Record`]) so a wrapper can replace one operation and keep the rest.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{Included, Unbounded};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::expiry;

/// A contract failure; the bridge sends each as the error `type` of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No record at `key` (BK-4, BK-9).
    NotFound { key: String },
    /// A compare-and-swap named `expected` but the record is at `actual` (BK-8). `expected`
    /// is the kit's number as sent, which can lie beyond 64 bits.
    VersionConflict { key: String, expected: i128, actual: i64 },
    /// The record is larger than the engine stores (declare `max_record_bytes`, BK-14).
    CapacityExceeded(String),
    /// Anything your engine or driver raises: say what, never retry (BK-3).
    Backend(String),
    /// The request was not understood (a bad field, an unknown instance handle).
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A stored record: the bytes exactly as written (BK-11) and the version they were handed.
#[derive(Debug, Clone)]
pub struct Record {
    pub data: Arc<[u8]>,
    pub version: i64,
    /// `expiresAt` in POSIX microseconds, read once when the record is written.
    pub deadline_us: Option<i64>,
}

impl Record {
    /// Read the expiry here, before taking any lock: the bytes never change afterwards.
    pub fn new(data: Vec<u8>, version: i64) -> Record {
        Record { deadline_us: expiry::deadline_us(&data), data: data.into(), version }
    }
}

/// The six StorageBackend operations, per instance, plus opening, closing and the clock.
/// Each must be atomic against concurrent calls on the same instance (BK-18, CC-1).
pub trait Engine: Send + Sync {
    /// A fresh, empty instance whose clock starts at `now_ms` (`None`: the wall clock).
    fn open(&self, now_ms: Option<i64>) -> String;
    fn close(&self, instance: &str) -> Result<()>;
    /// The kit's clock for the request being served; it never goes backwards.
    fn set_clock(&self, instance: &str, now_ms: i64) -> Result<()>;
    fn get(&self, instance: &str, key: &str) -> Result<Record>;
    /// Store `data` at `key` and return the new version (1 for a new key, BK-5/BK-6).
    fn put(&self, instance: &str, key: &str, data: Vec<u8>) -> Result<i64>;
    fn put_if_version(&self, instance: &str, key: &str, data: Vec<u8>, expected: i64) -> Result<i64>;
    /// Whether a record was there (BK-10).
    fn delete(&self, instance: &str, key: &str) -> Result<bool>;
    /// Every record whose key starts with `prefix`, literally, by code point (BK-12).
    fn list_by_prefix(&self, instance: &str, prefix: &str) -> Result<Vec<(String, Record)>>;
    /// Remove the records expired at the instance's clock; how many (BK-16).
    fn cleanup_expired(&self, instance: &str) -> Result<u64>;
}

/// One instance's state. `String` orders by UTF-8 bytes, which is code point order.
#[derive(Debug, Default)]
pub struct Instance {
    pub records: BTreeMap<String, Record>,
    pub clock_ms: Option<i64>,
}

impl Instance {
    pub fn now_ms(&self) -> i64 {
        self.clock_ms.unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
        })
    }

    pub fn version_of(&self, key: &str) -> Option<i64> {
        self.records.get(key).map(|r| r.version)
    }
}

/// Instances by handle; each instance has its own lock, so instances never wait on each other.
#[derive(Default)]
pub struct InMemoryEngine {
    instances: Mutex<HashMap<String, Arc<Mutex<Instance>>>>,
    opened: AtomicU64,
}

/// A lock whose holder panicked still guards consistent data here (every write is one insert).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InMemoryEngine {
    /// Run `f` on the instance under its lock: one call of `with` is one atomic operation.
    pub fn with<R>(&self, instance: &str, f: impl FnOnce(&mut Instance) -> R) -> Result<R> {
        let state = lock(&self.instances).get(instance).cloned();
        let state = state.ok_or_else(|| Error::Protocol(format!("no open instance {instance:?}")))?;
        let mut guard = lock(&state);
        Ok(f(&mut guard))
    }
}

impl Engine for InMemoryEngine {
    fn open(&self, now_ms: Option<i64>) -> String {
        let handle = format!("i{}", self.opened.fetch_add(1, Ordering::Relaxed) + 1);
        let instance = Instance { clock_ms: now_ms, ..Instance::default() };
        lock(&self.instances).insert(handle.clone(), Arc::new(Mutex::new(instance)));
        handle
    }

    fn close(&self, instance: &str) -> Result<()> {
        match lock(&self.instances).remove(instance) {
            Some(_) => Ok(()),
            None => Err(Error::Protocol(format!("no open instance {instance:?}"))),
        }
    }

    fn set_clock(&self, instance: &str, now_ms: i64) -> Result<()> {
        self.with(instance, |i| i.clock_ms = Some(i.clock_ms.map_or(now_ms, |c| c.max(now_ms))))
    }

    fn get(&self, instance: &str, key: &str) -> Result<Record> {
        self.with(instance, |i| i.records.get(key).cloned())?
            .ok_or_else(|| Error::NotFound { key: key.to_owned() })
    }

    fn put(&self, instance: &str, key: &str, data: Vec<u8>) -> Result<i64> {
        let mut record = Record::new(data, 0);
        self.with(instance, |i| {
            record.version = i.version_of(key).map_or(1, |v| v + 1);
            let version = record.version;
            i.records.insert(key.to_owned(), record);
            version
        })
    }

    fn put_if_version(&self, instance: &str, key: &str, data: Vec<u8>, expected: i64) -> Result<i64> {
        let mut record = Record::new(data, 0);
        self.with(instance, |i| match i.version_of(key) {
            None => Err(Error::NotFound { key: key.to_owned() }),
            Some(actual) if actual != expected => Err(Error::VersionConflict { key: key.to_owned(), expected: expected.into(), actual }),
            Some(actual) => {
                record.version = actual + 1;
                i.records.insert(key.to_owned(), record);
                Ok(actual + 1)
            }
        })?
    }

    fn delete(&self, instance: &str, key: &str) -> Result<bool> {
        self.with(instance, |i| i.records.remove(key).is_some())
    }

    fn list_by_prefix(&self, instance: &str, prefix: &str) -> Result<Vec<(String, Record)>> {
        // Keys sort by bytes, so those starting with `prefix` are one run from `prefix` on.
        self.with(instance, |i| {
            let run = i.records.range::<str, _>((Included(prefix), Unbounded)).take_while(|(k, _)| k.starts_with(prefix));
            run.map(|(k, r)| (k.clone(), r.clone())).collect()
        })
    }

    fn cleanup_expired(&self, instance: &str) -> Result<u64> {
        // Decide and remove under one lock: a record rewritten meanwhile cannot be removed.
        self.with(instance, |i| {
            let now = i.now_ms();
            let before = i.records.len();
            i.records.retain(|_, r| !expiry::is_expired(r.deadline_us, now));
            (before - i.records.len()) as u64
        })
    }
}
