#!/usr/bin/env node
// The gallery over the wire: the Node example (examples/node/backend.js) with one realistic bug.
//
//     pytest --backend-command="node testbed/wire/node/broken.js read-then-write-put"
//
// Each variant is the example's MemoryEngine with only the methods its bug lives in overridden,
// served by the example's own bridge. The kit must fail every one, naming the clause in `breaks`.
'use strict';

const { MemoryEngine, serve } = require('../../../examples/node/backend.js');

/** One round trip to the engine: the event loop turns, and other requests run meanwhile. */
const roundTrip = (operation) => new Promise(setImmediate).then(operation);

class ReadThenWritePut extends MemoryEngine {
  static breaks = 'BK-18 (races: CC-4)';

  // GET the version, then SET version + 1 in a second round trip: concurrent puts to one key
  // read the same version and hand it out twice.
  async put(key, data) {
    this.checkSize(data);
    const current = await roundTrip(() => this.records.get(key));
    const version = current === undefined ? 1 : current.version + 1;
    await roundTrip(() => this.records.set(key, { data, version }));
    return version;
  }
}

class GlobListing extends MemoryEngine {
  static breaks = 'BK-12 (also SEC-1)';

  // Redis SCAN MATCH style: the prefix becomes the glob `prefix*`, so * and ? in an owner's
  // prefix are wildcards (everything else is escaped, which is why it looked safe).
  async listByPrefix(prefix) {
    const escaped = prefix.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
    const glob = new RegExp(`^${escaped.replace(/\*/g, '.*').replace(/\?/g, '.')}`, 'su');
    const listed = [];
    for (const [key, record] of this.records) if (glob.test(key)) listed.push([key, record]);
    return listed;
  }
}

class RegexListing extends MemoryEngine {
  static breaks = 'SEC-1 (also BK-12)';

  // Filters keys with new RegExp('^' + prefix), unescaped: . + * ? ( [ | in an owner's prefix
  // are regex syntax. A prefix that is no valid pattern falls back to a plain prefix test.
  async listByPrefix(prefix) {
    let pattern;
    try { pattern = new RegExp(`^${prefix}`); } catch { return super.listByPrefix(prefix); }
    const listed = [];
    for (const [key, record] of this.records) if (pattern.test(key)) listed.push([key, record]);
    return listed;
  }
}

/** How long the indexer lingers to batch changes that pile up (Nagle's algorithm, Kafka's linger.ms).
 *  10 ms: at 2 ms the kit still caught it in each of 4 runs, but by one test each time. */
const BATCH_LINGER_MS = 10;

class LaggingIndex extends MemoryEngine {
  static breaks = 'TS-6 (also CC-1, CC-2, SEC-9)';

  // Listings come from a secondary index of keys, kept by a background indexer that applies the
  // change feed after each write is acknowledged. A lone change is applied at once, so the index
  // is current before the next request is even read; when changes pile up the indexer lingers a
  // moment to apply them as one batch, and a listing sent after a put's reply misses the key.
  constructor(options) {
    super(options);
    this.index = new Set();
    this.changes = [];
    this.indexing = false;
  }

  async put(key, data) {
    const version = await super.put(key, data);
    this.changed(key, true);
    return version;
  }

  async delete(key) {
    const existed = await super.delete(key);
    this.changed(key, false);
    return existed;
  }

  changed(key, present) {
    this.changes.push([key, present]);
    if (!this.indexing) this.indexer();
  }

  async indexer() {
    this.indexing = true;
    while (this.changes.length > 0) {
      if (this.changes.length > 1) await new Promise((resolve) => setTimeout(resolve, BATCH_LINGER_MS));
      const batch = this.changes.splice(0);
      await roundTrip(() => { for (const [key, present] of batch) if (present) this.index.add(key); else this.index.delete(key); });
    }
    this.indexing = false;
  }

  async listByPrefix(prefix) {
    const listed = [];
    for (const key of this.index) {
      const record = this.records.get(key); // the index holds keys; records come from the table
      if (record !== undefined && key.startsWith(prefix)) listed.push([key, record]);
    }
    return listed;
  }
}

const VARIANTS = {
  'read-then-write-put': ReadThenWritePut,
  'glob-listing': GlobListing,
  'regex-listing': RegexListing,
  'lagging-index': LaggingIndex,
};

const variant = process.argv[2];
if (!Object.hasOwn(VARIANTS, variant)) {
  process.stderr.write(`usage: node broken.js ${Object.keys(VARIANTS).join('|')}\n`);
  process.exit(2);
}
process.stderr.write(`node-example broken: ${variant}, breaks ${VARIANTS[variant].breaks}\n`);
serve(VARIANTS[variant], { name: `node-example broken:${variant}` });
