//! The bridge: wire protocol v1 (WIRE-PROTOCOL.md) over stdin and stdout.
//!
//! One JSON request per stdin line, read without a length limit (a 4 MiB record is about
//! 5.6 MB of base64). Each request is served on its own thread, so concurrent requests meet
//! in the engine exactly as concurrent callers would: a bridge serving one request at a time
//! would hide every race the kit looks for. Each reply is one line, written whole under the
//! stdout lock and flushed; replies go out in whatever order they finish (the kit matches
//! them by `id`). Anything for humans goes to stderr. When stdin closes, the requests still
//! in flight are answered and [`serve`] returns.
//!
//! You should not need to change this file: implement [`Engine`] and call [`serve`].

use std::io::{self, BufRead, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;

use serde_json::{json, Value};

use crate::engine::{Engine, Error, Record, Result};

/// Serve `engine` until stdin closes. `capabilities` is the hello reply's declaration, e.g.
/// `{"clock":true,"expired_records":"kept_until_cleanup","max_record_bytes":null}`.
pub fn serve<E: Engine + ?Sized>(engine: &E, name: &str, capabilities: &Value) {
    let hello = json!({"protocol": 1, "contract": "backend", "name": name, "capabilities": capabilities});
    let mut input = io::stdin().lock();
    // A scope joins its threads when it ends: no reply is lost when stdin closes.
    thread::scope(|scope| loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(_) => {}
            Err(error) => {
                eprintln!("{name}: cannot read stdin: {error}");
                break;
            }
        }
        let hello = &hello;
        scope.spawn(move || {
            if let Some(reply) = answer(engine, hello, &line) {
                let mut out = io::stdout().lock(); // the stdout mutex: one whole line at a time
                if let Err(error) = out.write_all(reply.as_bytes()).and_then(|()| out.flush()) {
                    eprintln!("{name}: cannot write a reply: {error}");
                }
            }
        });
    });
}

/// The reply line to one request line, `None` if it carries no id to answer.
fn answer<E: Engine + ?Sized>(engine: &E, hello: &Value, line: &[u8]) -> Option<String> {
    let (id, result) = match serde_json::from_slice::<Value>(line) {
        Ok(request) => match request.get("id").and_then(Value::as_u64) {
            Some(id) => {
                let served = catch_unwind(AssertUnwindSafe(|| dispatch(engine, hello, &request)));
                (Some(id), served.unwrap_or_else(|_| Err(Error::Backend("the engine panicked (see stderr)".into()))))
            }
            None => (leading_id(line), Err(Error::Protocol("no id, or not a non-negative integer".into()))),
        },
        // The kit writes `id` first, so a line that is not JSON can still be answered.
        Err(error) => (leading_id(line), Err(Error::Protocol(format!("not a JSON request: {error}")))),
    };
    let id = match id {
        Some(id) => id,
        None => {
            eprintln!("a line without an id to answer: {result:?}");
            return None;
        }
    };
    Some(match result {
        Ok(ok) => format!("{{\"id\":{id},\"ok\":{ok}}}\n"),
        Err(error) => {
            if matches!(error, Error::Protocol(_) | Error::Backend(_)) {
                eprintln!("request {id}: {error:?}");
            }
            format!("{{\"id\":{id},\"error\":{}}}\n", error_json(error))
        }
    })
}

fn leading_id(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"id\":")?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn dispatch<E: Engine + ?Sized>(engine: &E, hello: &Value, request: &Value) -> Result<Value> {
    let op = text(request, "op")?;
    let now_ms = match request.get("now_ms") {
        None => None,
        Some(now) => Some(now.as_i64().ok_or_else(|| bad("now_ms"))?),
    };
    match op {
        "hello" => return Ok(hello.clone()),
        "open" => return Ok(json!({"instance": engine.open(now_ms)})),
        _ => {}
    }
    let instance = text(request, "instance")?;
    if op == "close" {
        return engine.close(instance).map(|()| Value::Null);
    }
    if let Some(now_ms) = now_ms {
        engine.set_clock(instance, now_ms)?;
    }
    let key = || text(request, "key");
    let data = || base64::decode(text(request, "data")?).map_err(|e| Error::Protocol(format!("data is not base64: {e}")));
    Ok(match op {
        "get" => record_json(&engine.get(instance, key()?)?),
        "put" => json!(engine.put(instance, key()?, data()?)?),
        "put_if_version" => {
            let (key, data) = (key()?, data()?);
            let expected: i128 = match request.get("expected_version") {
                Some(Value::Number(number)) => number.to_string().parse().map_err(|_| bad("expected_version"))?,
                _ => return Err(bad("expected_version")),
            };
            match i64::try_from(expected) {
                Ok(expected) => json!(engine.put_if_version(instance, key, data, expected)?),
                // No record is at a version beyond 64 bits: refused as any other wrong version.
                Err(_) => {
                    let actual = engine.get(instance, key)?.version;
                    return Err(Error::VersionConflict { key: key.to_owned(), expected, actual });
                }
            }
        }
        "delete" => json!(engine.delete(instance, key()?)?),
        "list_by_prefix" => {
            let listed = engine.list_by_prefix(instance, text(request, "prefix")?)?;
            listed.into_iter().map(|(key, record)| json!([key, record_json(&record)])).collect()
        }
        "cleanup_expired" => json!(engine.cleanup_expired(instance)?),
        other => return Err(Error::Protocol(format!("unknown op {other:?}"))),
    })
}

fn text<'a>(request: &'a Value, field: &str) -> Result<&'a str> {
    request.get(field).and_then(Value::as_str).ok_or_else(|| bad(field))
}

fn bad(field: &str) -> Error {
    Error::Protocol(format!("missing or malformed field {field:?}"))
}

fn record_json(record: &Record) -> Value {
    json!({"data": base64::encode(&record.data), "version": record.version})
}

fn error_json(error: Error) -> Value {
    match error {
        Error::NotFound { key } => json!({"type": "NotFound", "message": format!("no record at key {key:?}"), "key": key}),
        Error::VersionConflict { key, expected, actual } => json!({
            "type": "VersionConflict", "key": key, "expected": expected, "actual": actual,
            "message": format!("key {key:?} is at version {actual}, not {expected}"),
        }),
        Error::CapacityExceeded(message) => json!({"type": "CapacityExceeded", "message": message}),
        Error::Backend(message) => json!({"type": "Backend", "message": message}),
        Error::Protocol(message) => json!({"type": "Protocol", "message": message}),
    }
}
