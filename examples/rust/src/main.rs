//! `conformance-rust-example`: the in-memory engine served to the kit on stdin/stdout.

use conformance_rust_example::{bridge, engine::InMemoryEngine};
use serde_json::json;

fn main() {
    // What this backend declares (SPEC, "How a backend meets the kit"): it takes the kit's
    // clock, keeps expired records until cleanup_expired, and stores records of any size.
    let capabilities = json!({"clock": true, "expired_records": "kept_until_cleanup", "max_record_bytes": null});
    eprintln!("rust-example: serving wire protocol v1 on stdin/stdout");
    bridge::serve(&InMemoryEngine::default(), "rust-example", &capabilities);
}
