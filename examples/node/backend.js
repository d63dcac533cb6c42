#!/usr/bin/env node
// A StorageBackend for the conformance kit, in Node.js with nothing beyond its standard library.
//
//     pytest --backend-command="node examples/node/backend.js"
//
// The file has two halves. MemoryEngine is the storage: one Map per instance, standing for your
// engine. The bridge below it speaks the wire protocol (WIRE-PROTOCOL.md): JSON lines on stdin,
// replies on stdout, typed errors, one engine instance per `open`. To adapt it:
//   1. Replace MemoryEngine's bodies with calls to your engine; keep the six async methods, the
//      values they return and the errors they throw. One instance is one isolated namespace
//      (a key prefix, a table, a database): `open` makes one, `close` drops it (BK-1).
//   2. Make each method one atomic step on the engine (a conditional UPDATE, a Lua script, a
//      transaction), never a read and a write in two round trips: the kit sends up to 64
//      requests at once and checks that they behave as if they ran one at a time (BK-18, CC).
//   3. Declare what you chose in `static capabilities` (SPEC "How a backend meets the kit").
//   4. Leave the bridge alone, or copy it into your project's code base and run it from there.
// Anything for humans goes to stderr; stdout carries replies only.
'use strict';

const log = (...parts) => process.stderr.write(`node-example: ${parts.join(' ')}\n`);

// --- Errors: each becomes {"type": ..., "message": ..., figures} on the wire ------------------

class WireError extends Error {
  constructor(type, message, figures = {}) {
    super(message);
    this.type = type;
    this.figures = figures;
  }
  toWire() { return { type: this.type, message: this.message, ...this.figures }; }
}
class NotFound extends WireError {
  constructor(key) { super('NotFound', `no record at key ${JSON.stringify(key)}`, { key }); }
}
class VersionConflict extends WireError {
  constructor(key, expected, actual) {
    super('VersionConflict', `key ${JSON.stringify(key)} is at version ${actual}, not ${expected}`, { key, expected, actual });
  }
}
class CapacityExceeded extends WireError { constructor(message) { super('CapacityExceeded', message); } }
class BackendError extends WireError { constructor(message) { super('Backend', message); } }
class ProtocolError extends WireError { constructor(message) { super('Protocol', message); } }

// --- Expiry (BK-15, BK-16): the one thing a backend reads inside a record ----------------------

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$/;
// fatal: bytes that are not UTF-8 make the record unreadable; ignoreBOM: a BOM stays in the text and
// JSON.parse refuses it, as the kit's own is_expired does, instead of the decoder dropping it.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The record's top-level expiresAt in POSIX microseconds (a BigInt), or null: it never expires. */
function expiresAtMicros(data) {
  let doc;
  try { doc = JSON.parse(UTF8.decode(data)); } catch { return null; } // unreadable: never expires
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return null;
  const m = typeof doc.expiresAt === 'string' ? TIMESTAMP.exec(doc.expiresAt) : null;
  if (!m) return null; // null, absent, not a string or not the record form: never expires
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (year < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // not Date.UTC, which reads years 0-99 as 1900-1999
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null; // 2027-02-30
  const seconds = date.getTime() / 1000 + hour * 3600 + minute * 60 + second;
  return BigInt(seconds) * 1000000n + BigInt((m[7] || '').padEnd(6, '0'));
}

/** Expired strictly after expiresAt (at the instant itself a record is live). Exact integers, not
 *  Date.parse: it keeps only milliseconds, and a deadline can be .0005 s (1 ms > 0.5 ms: expired). */
function isExpired(data, nowMs) {
  const deadline = expiresAtMicros(data);
  return deadline !== null && BigInt(nowMs) * 1000n > deadline;
}

// --- The storage engine: replace this class with your own ----------------------------------------

class MemoryEngine {
  static capabilities = { clock: true, expired_records: 'kept_until_cleanup', max_record_bytes: null };

  /** clock() is the instance's time in POSIX milliseconds: the kit's, or Date.now without one. */
  constructor({ clock = Date.now } = {}) {
    this.clock = clock;
    this.records = new Map(); // key -> { data: Buffer, version: number }
  }

  // Each method is async because a real engine is awaited: `return await db.query(...)` goes where
  // the Map is read or written here. Each does its work in ONE synchronous section, with no await
  // between reading a version and writing the next: Node runs one piece of JavaScript at a time, so
  // no other request can run inside it, which is what makes the call atomic (BK-18). On a real
  // engine that section is one atomic round trip; an await in the middle would let concurrent
  // calls read the same version and hand it out twice.

  async get(key) {
    const record = this.records.get(key);
    if (record === undefined) throw new NotFound(key);
    return record;
  }

  async put(key, data) {
    this.checkSize(data);
    const current = this.records.get(key);
    const version = current === undefined ? 1 : current.version + 1;
    this.records.set(key, { data, version });
    return version;
  }

  /** expected is a BigInt: the kit sends versions up to 2^63 - 1, beyond a double's exact range. */
  async putIfVersion(key, data, expected) {
    this.checkSize(data);
    const current = this.records.get(key);
    if (current === undefined) throw new NotFound(key); // a CAS never creates (BK-9)
    if (BigInt(current.version) !== expected) throw new VersionConflict(key, expected, current.version);
    const version = current.version + 1;
    this.records.set(key, { data, version });
    return version;
  }

  async delete(key) {
    return this.records.delete(key); // whether a record was there
  }

  async listByPrefix(prefix) {
    // Literal: JS strings are UTF-16, and a prefix of whole code points is a code-unit prefix of
    // a key exactly when it is a code-point prefix, so startsWith is exact. Never a glob or RegExp.
    const listed = [];
    for (const [key, record] of this.records) if (key.startsWith(prefix)) listed.push([key, record]);
    return listed;
  }

  async cleanupExpired() {
    // Deciding and deleting in the same synchronous section: a record rewritten in between cannot
    // be deleted for the expiry of the data it replaced (BK-16).
    const now = this.clock();
    let removed = 0;
    for (const [key, record] of this.records) {
      if (isExpired(record.data, now)) { this.records.delete(key); removed += 1; }
    }
    return removed;
  }

  async close() { this.records.clear(); }

  checkSize(data) {
    const limit = this.constructor.capabilities.max_record_bytes;
    if (limit !== null && data.length > limit) throw new CapacityExceeded(`${data.length} B is over the ${limit} B limit`);
  }
}

// --- The bridge: the wire protocol, the same for every engine -------------------------------------

/** JSON text of a reply; unlike JSON.stringify it writes a BigInt as an exact integer. */
function encode(value) {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return `[${value.map(encode).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${encode(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function field(request, name, type) {
  const value = request[name];
  const ok = type === 'string' ? typeof value === 'string' : Number.isSafeInteger(value);
  if (!ok) throw new ProtocolError(`${request.op}: ${name} must be ${type === 'string' ? 'a string' : 'an integer'}`);
  return value;
}

function bytes(request) {
  const text = field(request, 'data', 'string');
  const data = Buffer.from(text, 'base64'); // lenient: it skips what is not base64, hence the check
  if (data.toString('base64') !== text) throw new ProtocolError(`${request.op}: data is not standard padded base64`);
  return data;
}

/** JSON.parse reads numbers as doubles, exact only up to 2^53, but VersionConflict must echo
 *  the kit's expected_version exactly (it sends 2^63 - 1), so read it from the line's text. Only
 *  a member name can match: inside a string value every quote is escaped. */
function exactInteger(line, request, name) {
  const m = new RegExp(`"${name}"\\s*:\\s*(-?\\d+)\\s*[,}]`).exec(line);
  if (!m || Number(m[1]) !== request[name]) throw new ProtocolError(`${request.op}: ${name} must be an integer`);
  return BigInt(m[1]);
}

const INSTANCE_OPS = new Set(['close', 'get', 'put', 'put_if_version', 'delete', 'list_by_prefix', 'cleanup_expired']);
const wireRecord = (record) => ({ data: record.data.toString('base64'), version: record.version });

/** Serve the protocol on stdin/stdout with a fresh `new Engine({clock})` per instance. */
function serve(Engine, { name = 'node-example', input = process.stdin, output = process.stdout } = {}) {
  const instances = new Map(); // handle -> { engine, nowMs }
  const inFlight = new Set();
  let opened = 0;

  async function answer(request, line) {
    const op = request.op;
    if (op === 'hello') {
      if (request.protocol !== 1 || request.contract !== 'backend') log(`hello asks for ${line}; this is protocol 1, contract backend`);
      return { protocol: 1, contract: 'backend', name, capabilities: Engine.capabilities };
    }
    const clocked = Engine.capabilities.clock;
    if (op === 'open') {
      const instance = { nowMs: clocked ? field(request, 'now_ms', 'integer') : null };
      instance.engine = new Engine(clocked ? { clock: () => instance.nowMs } : {});
      const handle = `i${++opened}`;
      instances.set(handle, instance);
      return { instance: handle };
    }
    if (!INSTANCE_OPS.has(op)) throw new ProtocolError(`unknown op ${JSON.stringify(op)}`);
    const handle = field(request, 'instance', 'string');
    const instance = instances.get(handle);
    if (instance === undefined) throw new ProtocolError(`${op}: no open instance ${JSON.stringify(handle)}`);
    // The kit's clock for this request; it never goes backwards, even if requests overtake each other.
    if (clocked && op !== 'close') instance.nowMs = Math.max(instance.nowMs, field(request, 'now_ms', 'integer'));
    const engine = instance.engine;
    switch (op) {
      case 'close': instances.delete(handle); await engine.close(); return null;
      case 'get': return wireRecord(await engine.get(field(request, 'key', 'string')));
      case 'put': return await engine.put(field(request, 'key', 'string'), bytes(request));
      case 'put_if_version':
        return await engine.putIfVersion(field(request, 'key', 'string'), bytes(request), exactInteger(line, request, 'expected_version'));
      case 'delete': return await engine.delete(field(request, 'key', 'string'));
      case 'list_by_prefix': return (await engine.listByPrefix(field(request, 'prefix', 'string'))).map(([key, record]) => [key, wireRecord(record)]);
      case 'cleanup_expired': return await engine.cleanupExpired();
    }
  }

  function onLine(line) {
    let request = null;
    let problem = null;
    try { request = JSON.parse(line); } catch (error) { problem = `not JSON: ${error.message}`; }
    if (!problem && (request === null || typeof request !== 'object' || Array.isArray(request))) problem = 'not a JSON object';
    const id = problem ? Number((/^\s*\{\s*"id"\s*:\s*(\d+)/.exec(line) || [])[1]) : request.id; // the kit writes id first
    if (!Number.isSafeInteger(id) || id < 0) { log('a line without an id, left unanswered:', line.slice(0, 200)); return; }
    // Not awaited: the next line is read while this request is served, as concurrent callers are.
    const reply = (problem ? Promise.reject(new ProtocolError(problem)) : answer(request, line)).then((ok) => ({ id, ok }), (error) => {
      if (error instanceof WireError) return { id, error: error.toWire() };
      log(`request ${id} failed:`, error && error.stack ? error.stack : error); // a driver error: Backend
      return { id, error: new BackendError(String(error && error.message ? error.message : error)).toWire() };
    }).then((message) => { output.write(`${encode(message)}\n`); }); // one write per reply
    inFlight.add(reply);
    reply.finally(() => inFlight.delete(reply));
  }

  // Lines are split on "\n" only, with no length limit (a 4 MiB record is 5.6 MB of base64);
  // a line's chunks are kept apart and joined once its end arrives.
  let pending = [];
  input.on('data', (chunk) => {
    let start = 0;
    for (let end = chunk.indexOf(10); end !== -1; end = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, end));
      const line = Buffer.concat(pending).toString('utf8');
      pending = [];
      start = end + 1;
      if (line.trim() !== '') onLine(line);
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  });
  input.on('end', async () => { // the kit closed stdin: finish what is in flight, then exit
    await Promise.allSettled([...inFlight]);
    for (const instance of instances.values()) await instance.engine.close();
    instances.clear();
    log('stdin closed, exiting');
  });
  output.on('error', (error) => { log('stdout failed:', error.message); process.exit(1); });
}

module.exports = {
  MemoryEngine, serve, isExpired, expiresAtMicros,
  WireError, NotFound, VersionConflict, CapacityExceeded, BackendError, ProtocolError,
};

if (require.main === module) serve(MemoryEngine);
