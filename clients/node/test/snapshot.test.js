'use strict';

/* Snapshots: saveSnapshot and readSnapshot against a real server. */

const test = require('node:test');
const assert = require('node:assert/strict');
const es = require('..');
const { createTestDatabase, collect, recordingClient } = require('./support/db');

let db;
let pool;

test.before(async () => {
  db = await createTestDatabase();
  pool = db.pool();
});

test.after(async () => {
  await db.drop();
});


/* Append n counter events, each adding its own amount. */
async function appendCounts(stream, expected, amounts) {
  return es.appendToStream(pool, stream, expected, amounts.map((by) => ({ type: 'Added', data: { by } })));
}

/* The counter's fold: a total and the number of events folded. */
function evolve(state, event) {
  return { total: state.total + event.data.by, count: state.count + 1 };
}

test('a snapshot saved is read back with its version, state and time', async () => {
  const s = 'snap-1';
  await appendCounts(s, es.NO_STREAM, [1, 2, 3]);
  const state = { total: 6, items: ['a', 'b'], nested: { ok: true, n: null } };
  assert.equal(await es.saveSnapshot(pool, s, 3, state), 3);
  const snap = await es.readSnapshot(pool, s);
  assert.equal(snap.version, 3);
  assert.equal(typeof snap.version, 'number');
  assert.deepEqual(snap.state, state);
  assert.ok(snap.createdAt instanceof Date);
  assert.deepEqual(Object.keys(snap).sort(), ['createdAt', 'state', 'version']);
  // Any JSON value is a state, JSON null included; a BigInt version works too.
  assert.equal(await es.saveSnapshot(pool, s, 1n, null), 1);
  assert.equal((await es.readSnapshot(pool, s, { maxVersion: 1 })).state, null);
  assert.equal(await es.saveSnapshot(pool, s, 2, [1, 'two']), 2);
  assert.deepEqual((await es.readSnapshot(pool, s, { maxVersion: 2n })).state, [1, 'two']);
});

test('the latest snapshot, or the latest at or below maxVersion', async () => {
  const s = 'snap-2';
  await appendCounts(s, es.NO_STREAM, [1, 1, 1, 1, 1, 1]);
  await es.saveSnapshot(pool, s, 2, { at: 2 });
  await es.saveSnapshot(pool, s, 5, { at: 5 });
  await es.saveSnapshot(pool, s, 4, { at: 4 });
  assert.equal((await es.readSnapshot(pool, s)).version, 5, 'the highest version, not the last saved');
  assert.equal((await es.readSnapshot(pool, s, {})).version, 5);
  assert.equal((await es.readSnapshot(pool, s, { maxVersion: null })).version, 5);
  assert.equal((await es.readSnapshot(pool, s, { maxVersion: 6 })).version, 5);
  assert.equal((await es.readSnapshot(pool, s, { maxVersion: 5 })).version, 5);
  assert.deepEqual((await es.readSnapshot(pool, s, { maxVersion: 4 })).state, { at: 4 });
  assert.equal((await es.readSnapshot(pool, s, { maxVersion: 3 })).version, 2);
  assert.equal(await es.readSnapshot(pool, s, { maxVersion: 1 }), null);
  assert.equal(await es.readSnapshot(pool, s, { maxVersion: 0 }), null);
});

test('null when a stream has no snapshot, or does not exist', async () => {
  await appendCounts('snap-3', es.NO_STREAM, [1]);
  assert.equal(await es.readSnapshot(pool, 'snap-3'), null);
  assert.equal(await es.readSnapshot(pool, 'snap-none'), null);
});

test('saving a version again replaces its snapshot', async () => {
  const s = 'snap-4';
  await appendCounts(s, es.NO_STREAM, [1, 2]);
  await es.saveSnapshot(pool, s, 2, { v: 'first' });
  const before = await es.readSnapshot(pool, s);
  assert.equal(await es.saveSnapshot(pool, s, 2, { v: 'second' }), 2);
  const after = await es.readSnapshot(pool, s);
  assert.deepEqual(after.state, { v: 'second' });
  assert.ok(after.createdAt >= before.createdAt);
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM event_store.snapshots WHERE stream_id = $1', [s]);
  assert.equal(rows[0].n, 1);
});

test('a version the stream does not have: 22023 as an EventStoreError, nothing saved', async () => {
  const s = 'snap-5';
  await appendCounts(s, es.NO_STREAM, [1, 2]);
  const err = await es.saveSnapshot(pool, s, 3, { total: 3 }).then(() => null, (e) => e);
  assert.ok(err instanceof es.EventStoreError, String(err));
  assert.equal(err.code, '22023');
  assert.equal(err.streamId, s);
  assert.equal(err.detail, 'The stream is at version 2.');
  assert.equal(err.cause.code, '22023');
  assert.equal(es.isTransient(err), false);
  assert.equal(await es.readSnapshot(pool, s), null);
  // A stream with no events has no version at all.
  const none = await es.saveSnapshot(pool, 'snap-empty', 1, {}).then(() => null, (e) => e);
  assert.equal(none.code, '22023');
  assert.equal(await es.readSnapshot(pool, 'snap-empty'), null);
  // Far beyond the head, as a BigInt.
  const far = await es.saveSnapshot(pool, s, 9007199254740993n, {}).then(() => null, (e) => e);
  assert.equal(far.code, '22023');
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM event_store.snapshots WHERE stream_id = $1', [s]);
  assert.equal(rows[0].n, 0);
});

test('bad arguments throw before any query', async () => {
  const client = recordingClient();
  const fn = () => 1;
  for (const bad of [undefined, null, '', 5, {}]) {
    await assert.rejects(es.saveSnapshot(client, bad, 1, {}), TypeError, `streamId ${String(bad)}`);
    await assert.rejects(es.readSnapshot(client, bad), TypeError, `streamId ${String(bad)}`);
  }
  await assert.rejects(es.saveSnapshot(client, 'a\uD800', 1, {}), TypeError);
  await assert.rejects(es.readSnapshot(client, 'a\uDC00'), TypeError);
  for (const bad of [undefined, null, NaN, 1.5, Infinity, '3', 2 ** 53, {}, true]) {
    await assert.rejects(es.saveSnapshot(client, 's-1', bad, {}), TypeError, `version ${String(bad)}`);
  }
  for (const bad of [0, -1, 0n, -5n]) {
    await assert.rejects(es.saveSnapshot(client, 's-1', bad, {}), RangeError, `version ${String(bad)}`);
  }
  await assert.rejects(es.saveSnapshot(client, 's-1', 2n ** 63n, {}), RangeError);
  await assert.rejects(es.saveSnapshot(client, 's-1', 1), { name: 'TypeError', message: /state is missing/ });
  await assert.rejects(es.saveSnapshot(client, 's-1', 1, undefined), TypeError);
  await assert.rejects(es.saveSnapshot(client, 's-1', 1, fn), TypeError);
  await assert.rejects(es.saveSnapshot(client, 's-1', 1, Symbol('x')), TypeError);
  await assert.rejects(es.saveSnapshot(client, 's-1', 1, { n: 1n }), TypeError);
  // JSON.stringify would store these as null, a different state.
  for (const bad of [NaN, Infinity, { balance: -Infinity }, [1, NaN]]) {
    await assert.rejects(es.saveSnapshot(client, 's-1', 1, bad), TypeError, `state ${String(bad)}`);
  }
  for (const bad of [NaN, 1.5, '3', 2 ** 53, {}]) {
    await assert.rejects(es.readSnapshot(client, 's-1', { maxVersion: bad }), TypeError, `maxVersion ${String(bad)}`);
  }
  await assert.rejects(es.readSnapshot(client, 's-1', { maxVersion: -1 }), RangeError);
  assert.equal(client.queries.length, 0);
});

test('the queries: one statement each, the state as one JSON text, int8 values as text', async () => {
  const client = recordingClient();
  client.query = (config) => {
    client.queries.push(config);
    return Promise.resolve({ rows: config.text.includes('save_snapshot') ? [{ version: '9007199254740993' }] : [] });
  };
  assert.equal(await es.saveSnapshot(client, 's-1', 9007199254740993n, { a: [1, 2] }), 9007199254740993n);
  assert.deepEqual(client.queries[0].values, ['s-1', '9007199254740993', '{"a":[1,2]}']);
  assert.match(client.queries[0].text, /\$3::jsonb/);
  assert.equal(await es.readSnapshot(client, 's-1', { maxVersion: 7 }), null);
  assert.deepEqual(client.queries[1].values, ['s-1', '7']);
  await es.readSnapshot(client, 's-1');
  assert.deepEqual(client.queries[2].values, ['s-1', null]);
});

test('saveSnapshot waits for an append holding the stream lock, and sees its version', async () => {
  const s = 'snap-6';
  await appendCounts(s, es.NO_STREAM, [1]);
  const writer = await pool.connect();
  try {
    await writer.query('BEGIN');
    await es.appendToStream(writer, s, 1, [{ type: 'Added', data: { by: 1 } }]);
    // Version 2 exists only once the writer commits: the save waits for
    // the lock, then checks the head as the commit left it.
    let settled = false;
    const save = es.saveSnapshot(pool, s, 2, { total: 2 }).finally(() => { settled = true; });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(settled, false, 'the save waits for the lock');
    await writer.query('COMMIT');
    assert.equal(await save, 2);
  } finally {
    writer.release();
  }
  assert.deepEqual((await es.readSnapshot(pool, s)).state, { total: 2 });
});

test('loading from the latest snapshot and the events after it equals the full fold', async () => {
  const s = 'snap-7';
  const initial = { total: 0, count: 0 };
  let version = await appendCounts(s, es.NO_STREAM, [3, 1, 4, 1, 5]);
  // Fold the stream up to a version and save it, as an application would.
  let state = initial;
  for await (const e of es.readStream(pool, s)) state = evolve(state, e);
  await es.saveSnapshot(pool, s, version, state);
  version = await appendCounts(s, version, [9, 2, 6]);
  await es.saveSnapshot(pool, s, 7, (await collect(es.readStream(pool, s, { maxCount: 7 }))).reduce(evolve, initial));
  version = await appendCounts(s, version, [5, 3]);

  async function load(maxVersion) {
    const snap = await es.readSnapshot(pool, s, { maxVersion });
    let loaded = snap ? snap.state : initial;
    let at = snap ? snap.version : 0;
    const read = [];
    for await (const e of es.readStream(pool, s, { fromVersion: at + 1 })) {
      loaded = evolve(loaded, e);
      at = e.version;
      read.push(e.version);
    }
    return { loaded, at, read };
  }

  const full = (await collect(es.readStream(pool, s))).reduce(evolve, initial);
  assert.deepEqual(full, { total: 39, count: 10 });
  const fromLatest = await load(undefined);
  assert.deepEqual(fromLatest.loaded, full);
  assert.equal(fromLatest.at, version);
  assert.deepEqual(fromLatest.read, [8, 9, 10], 'only the events after the snapshot are read');
  const fromOlder = await load(6);
  assert.deepEqual(fromOlder.loaded, full);
  assert.deepEqual(fromOlder.read, [6, 7, 8, 9, 10]);
  const fromNothing = await load(4);
  assert.deepEqual(fromNothing.loaded, full);
  assert.equal(fromNothing.read.length, 10);
});
