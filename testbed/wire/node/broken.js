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

/** How long the listing index trails the records: an indexer's refresh (Elasticsearch refreshes
 *  every second by default, a DynamoDB GSI within about one). Kept short so the kit stays fast. */
const INDEX_LAG_MS = 2;

class LaggingIndex extends MemoryEngine {
  static breaks = 'CC-1 (also BK-12, TS-6, SEC-9)';

  // Listings come from a secondary index of keys that an indexer updates shortly after each
  // write is acknowledged: a listing just after a put misses the new key.
  constructor(options) {
    super(options);
    this.index = new Set();
  }

  async put(key, data) {
    const version = await super.put(key, data);
    setTimeout(() => this.index.add(key), INDEX_LAG_MS); // the indexer, after the reply
    return version;
  }

  async delete(key) {
    const existed = await super.delete(key);
    setTimeout(() => this.index.delete(key), INDEX_LAG_MS);
    return existed;
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
