//! A StorageBackend in Rust under the task-storage conformance kit, over wire protocol v1.
//!
//! Three parts, so you replace only the first:
//!
//! - [`engine`]: the storage. [`engine::Engine`] is the contract (get, put, put_if_version,
//!   delete, list_by_prefix, cleanup_expired, per instance); [`engine::InMemoryEngine`] is a
//!   correct in-memory implementation to compare yours with.
//! - [`expiry`]: reading a record's `expiresAt` exactly as the kit does.
//! - [`bridge`]: JSON lines on stdin and stdout, one thread per request.
//!
//! To adapt it: implement [`engine::Engine`] over your engine (map each instance handle to a
//! key prefix, database or table of yours), pass it to [`bridge::serve`] in `main.rs`, and
//! declare your choices in the capabilities there (`expired_records: "hidden"` if your engine
//! drops expired records itself, `max_record_bytes` if it cannot store 4 MiB). Then:
//!
//! ```text
//! cargo build --offline --release
//! pytest --backend-command="examples/rust/target/release/conformance-rust-example"
//! ```

pub mod bridge;
pub mod engine;
pub mod expiry;
