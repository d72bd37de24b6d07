'use strict';

/* Appends, reads and errors against a real server. */

const test = require('node:test');
const assert = require('node:assert/strict');
const pg = require('pg');
const es = require('..');
const { createTestDatabase, collect, waitFor } = require('./support/db');

let db;
let pool;

test.before(async () => {
  db = await createTestDatabase();
  pool = db.pool();
});

test.after(async () => {
  await db.drop();
});

test('Alice and Bob: both read version 5, Bob appends, Alice re-reads and succeeds', async () => {
  const stream = 'prod-123';
  await es.appendToStream(pool, stream, es.NO_STREAM, [
    { type: 'ProductCreated', data: { name: 'Espresso machine', price: 249, stock: 10 } },
  ]);
  const v5 = await es.appendToStream(pool, stream, 1, [
    { type: 'PriceChanged', data: { price: 239 } },
    { type: 'StockChanged', data: { stock: 8 } },
    { type: 'DescriptionChanged', data: { text: '15 bar pump' } },
    { type: 'StockChanged', data: { stock: 9 } },
  ]);
  assert.equal(v5, 5);

  const alice = await es.streamVersion(pool, stream);
  const bob = await es.streamVersion(pool, stream);
  assert.equal(alice, 5);
  assert.equal(bob, 5);

  const bobVersion = await es.appendToStream(pool, stream, bob, [
    { type: 'StockChanged', data: { stock: 4 }, metadata: { user: 'bob' } },
  ]);
  assert.equal(bobVersion, 6);

  const err = await es
    .appendToStream(pool, stream, alice, [{ type: 'PriceChanged', data: { price: 199 }, metadata: { user: 'alice' } }])
    .then(() => null, (e) => e);
  assert.ok(err instanceof es.WrongExpectedVersionError, String(err));
  assert.equal(err.code, 'VE001');
  assert.equal(err.streamId, stream);
  assert.equal(err.expected, 5);
  assert.equal(err.actual, 6);
  assert.equal(err.cause.code, 'VE001');
  assert.equal(await es.streamVersion(pool, stream), 6, 'nothing was written');

  const since = await collect(es.readStream(pool, stream, { fromVersion: alice + 1 }));
  assert.deepEqual(since.map((e) => e.version), [6]);
  const aliceVersion = await es.appendToStream(pool, stream, since[since.length - 1].version, [
    { type: 'PriceChanged', data: { price: 199 }, metadata: { user: 'alice' } },
  ]);
  assert.equal(aliceVersion, 7);

  const all = await collect(es.readStream(pool, stream));
  assert.deepEqual(all.map((e) => e.version), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(all[6].metadata, { user: 'alice' });
  assert.deepEqual(all[5].data, { stock: 4 });
});

test('expected versions: NO_STREAM, STREAM_EXISTS, ANY, exact', async () => {
  const s = 'exp-1';
  await assert.rejects(es.appendToStream(pool, s, es.STREAM_EXISTS, [{ type: 'T', data: 1 }]), (e) =>
    e instanceof es.WrongExpectedVersionError && e.expected === -1 && e.actual === 0);
  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'T', data: 1 }]), 1);
  await assert.rejects(es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'T', data: 1 }]), (e) =>
    e instanceof es.WrongExpectedVersionError && e.expected === 0 && e.actual === 1);
  assert.equal(await es.appendToStream(pool, s, es.STREAM_EXISTS, [{ type: 'T', data: 2 }]), 2);
  assert.equal(await es.appendToStream(pool, s, es.ANY, [{ type: 'T', data: 3 }]), 3);
  assert.equal(await es.appendToStream(pool, s, 3n, [{ type: 'T', data: 4 }]), 4);
  assert.equal(await es.appendToStream(pool, s, 4, []), 4, 'an empty batch returns the current version');
  await assert.rejects(es.appendToStream(pool, s, 3, []), es.WrongExpectedVersionError);
  assert.equal(await es.streamVersion(pool, 'exp-none'), 0);
});

test('arrays and odd JSON round-trip as JSON', async () => {
  const s = 'json-1';
  const events = [
    { type: 'Array', data: [1, 2, [3, 4], { a: [] }] },
    { type: 'Literal', data: '{1,2,3}' },
    { type: 'Null', data: null },
    { type: 'Scalar', data: 42.5, metadata: { tags: ['x', 'y'] } },
    { type: 'Unicode', data: { s: 'caf\u00e9 \u{1F600} "quoted" \\ back' } },
  ];
  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, events), 5);
  const read = await collect(es.readStream(pool, s));
  assert.deepEqual(read.map((e) => e.data), events.map((e) => e.data));
  assert.deepEqual(read[3].metadata, { tags: ['x', 'y'] });
  assert.equal(read[0].metadata, null);
  assert.equal(read[0].streamId, s);
  assert.ok(read[0].createdAt instanceof Date);
  assert.equal(typeof read[0].globalPosition, 'number');
});

test('idempotent repeat with client ids, VE002 and 23505 mapping', async () => {
  const s = 'idem-1';
  const ids = [es.newEventId(), es.newEventId()];
  const batch = ids.map((id, i) => ({ type: 'T', data: i, id }));
  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, batch), 2);
  // The same call again: written nothing, same version.
  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, batch), 2);
  assert.equal(await es.streamVersion(pool, s), 2);
  // The same ids at a stale expectation: already carried out.
  const err = await es.appendToStream(pool, s, 2, [batch[0]]).then(() => null, (e) => e);
  assert.ok(err instanceof es.EventAlreadyStoredError, String(err));
  assert.equal(err.code, 'VE002');
  assert.equal(err.eventId, ids[0]);
  assert.equal(err.version, 1);
  assert.equal(err.streamId, s);
  // An id of another stream.
  const dup = await es.appendToStream(pool, 'idem-2', es.ANY, [batch[1]]).then(() => null, (e) => e);
  assert.ok(dup instanceof es.EventStoreError);
  assert.equal(dup.code, '23505');
  assert.equal(dup.eventId, ids[1]);
  // The same id twice in one call.
  const id = es.newEventId();
  const twice = await es
    .appendToStream(pool, 'idem-3', es.ANY, [{ type: 'T', data: 1, id }, { type: 'T', data: 2, id }])
    .then(() => null, (e) => e);
  assert.equal(twice.code, '23505');
});

test('server-side input errors map by SQLSTATE', async () => {
  const bad = await es.appendToStream(pool, 's-bad', es.ANY, [{ type: 'T'.repeat(256), data: 1 }])
    .then(() => null, (e) => e);
  assert.ok(bad instanceof es.EventStoreError);
  assert.equal(bad.code, '22001');
  const long = await es.appendToStream(pool, 'x'.repeat(1001), es.ANY, [{ type: 'T', data: 1 }])
    .then(() => null, (e) => e);
  assert.equal(long.code, '22001');
  const neg = await collect(es.readStream(pool, 's-bad', { maxCount: 0 }));
  assert.deepEqual(neg, []);
  const readErr = await es.readStreamPage(pool, 's-bad', { maxCount: -1 }).then(() => null, (e) => e);
  assert.ok(readErr instanceof RangeError, 'negative counts are refused before the query');
  const ro = await pool.connect();
  try {
    await ro.query('BEGIN READ ONLY');
    const e = await es.appendToStream(ro, 's-ro', es.ANY, [{ type: 'T', data: 1 }]).then(() => null, (x) => x);
    assert.equal(e.code, '25006');
  } finally {
    await ro.query('ROLLBACK');
    ro.release();
  }
});

test('REPEATABLE READ append to a stream that moved: 40001', async () => {
  const s = 'rr-1';
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'T', data: 1 }]);
  const c = await pool.connect();
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await es.streamVersion(c, s);
    await es.appendToStream(pool, s, 1, [{ type: 'T', data: 2 }]);
    const e = await es.appendToStream(c, s, 2, [{ type: 'T', data: 3 }]).then(() => null, (x) => x);
    assert.ok(e instanceof es.EventStoreError);
    assert.equal(e.code, '40001');
    assert.ok(es.isTransient(e));
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
});

test('readStream pages forward and backward, with maxCount', async () => {
  const s = 'page-1';
  const events = Array.from({ length: 23 }, (_, i) => ({ type: 'N', data: i + 1 }));
  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, events), 23);
  const queries = [];
  const counting = { query: (c) => (queries.push(c), pool.query(c)) };
  const forward = await collect(es.readStream(counting, s, { pageSize: 5 }));
  assert.deepEqual(forward.map((e) => e.version), Array.from({ length: 23 }, (_, i) => i + 1));
  assert.equal(queries.length, 5);
  const from10 = await collect(es.readStream(pool, s, { fromVersion: 10, pageSize: 4, maxCount: 6 }));
  assert.deepEqual(from10.map((e) => e.version), [10, 11, 12, 13, 14, 15]);
  const back = await collect(es.readStream(pool, s, { backward: true, pageSize: 7 }));
  assert.deepEqual(back.map((e) => e.version), Array.from({ length: 23 }, (_, i) => 23 - i));
  const back5 = await collect(es.readStream(pool, s, { backward: true, fromVersion: 5, pageSize: 2 }));
  assert.deepEqual(back5.map((e) => e.version), [5, 4, 3, 2, 1]);
  const last2 = await collect(es.readStream(pool, s, { backward: true, maxCount: 2 }));
  assert.deepEqual(last2.map((e) => e.data), [23, 22]);
  const none = await collect(es.readStream(pool, 'page-none'));
  assert.deepEqual(none, []);
  // Exactly a page: one more query finds nothing.
  const exact = await collect(es.readStream(pool, s, { fromVersion: 14, pageSize: 10 }));
  assert.equal(exact.length, 10);
});

test('readAll, readCategory with consumer groups, checkpoints', async () => {
  const c = await es.readAll(pool, { after: 0, maxCount: 100000 });
  const base = c.length ? c[c.length - 1].globalPosition : 0;
  await es.appendToStream(pool, 'cat-1', es.ANY, [{ type: 'A', data: 1 }]);
  await es.appendToStream(pool, 'dog-1', es.ANY, [{ type: 'A', data: 2 }]);
  await es.appendToStream(pool, 'cat-2', es.ANY, [{ type: 'A', data: 3 }, { type: 'A', data: 4 }]);
  const all = await es.readAll(pool, { after: base });
  assert.deepEqual(all.map((e) => e.data), [1, 2, 3, 4]);
  for (let i = 1; i < all.length; i++) assert.ok(all[i].globalPosition > all[i - 1].globalPosition);
  const cats = await es.readCategory(pool, 'cat', { after: base });
  assert.deepEqual(cats.map((e) => e.data), [1, 3, 4]);
  const page = await es.readCategory(pool, 'cat', { after: cats[0].globalPosition, maxCount: 1 });
  assert.deepEqual(page.map((e) => e.data), [3]);
  const m0 = await es.readCategory(pool, 'cat', { after: base, consumerGroup: { member: 0, size: 2 } });
  const m1 = await es.readCategory(pool, 'cat', { after: base, consumerGroup: { member: 1, size: 2 } });
  assert.equal(m0.length + m1.length, 3);
  await assert.rejects(es.readCategory(pool, 'cat', { consumerGroup: { member: 2, size: 2 } }), TypeError);

  assert.equal(await es.getCheckpoint(pool, 'sub-a'), 0);
  assert.equal(await es.saveCheckpoint(pool, 'sub-a', 10), 10);
  assert.equal(await es.saveCheckpoint(pool, 'sub-a', 5), 10);
  assert.equal(await es.saveCheckpoint(pool, 'sub-a', 5, { allowBackwards: true }), 5);
  assert.equal(await es.getCheckpoint(pool, 'sub-a'), 5);
});

test('notify: an append with options.notify wakes a LISTEN connection', async () => {
  const listener = new pg.Client(db.directConfig);
  await listener.connect();
  try {
    const got = [];
    listener.on('notification', (n) => got.push(n));
    await listener.query('LISTEN event_store');
    await es.appendToStream(pool, 'note-1', es.ANY, [{ type: 'T', data: 1 }]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got.length, 0, 'no notification without notify');
    await es.appendToStream(pool, 'note-1', es.ANY, [{ type: 'T', data: 2 }], { notify: true });
    await waitFor(() => got.length === 1, { timeoutMs: 5000, what: 'notification' });
    assert.equal(got[0].channel, 'event_store');
    assert.equal(got[0].payload, '');
    // The setting was local to the append's transaction.
    await es.appendToStream(pool, 'note-1', es.ANY, [{ type: 'T', data: 3 }]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got.length, 1);
  } finally {
    await listener.end();
  }
});

test('a pg.Client works as well as a pool', async () => {
  const client = new pg.Client(db.poolConfig);
  await client.connect();
  try {
    assert.equal(await es.appendToStream(client, 'cli-1', es.NO_STREAM, [{ type: 'T', data: [1] }]), 1);
    const [e] = await collect(es.readStream(client, 'cli-1'));
    assert.deepEqual(e.data, [1]);
  } finally {
    await client.end();
  }
});

/* A pool that counts the connections it opens. */
function countingConnects(p) {
  const counter = { connects: 0 };
  p.on('connect', () => counter.connects++);
  return counter;
}

test('conflicts through a pool keep the pooled connections: no reconnect per conflict', async () => {
  const p = db.pool({ max: 4 });
  const counter = countingConnects(p);
  const s = 'pool-conflicts';
  await es.appendToStream(p, s, es.NO_STREAM, [{ type: 'T', data: 0 }]);
  // Open every connection the pool may hold, then count from there.
  await Promise.all(Array.from({ length: 4 }, () => es.streamVersion(p, s)));
  await Promise.all(Array.from({ length: 4 }, async () => {
    const c = await p.connect();
    c.release();
  }));
  const before = counter.connects;
  let conflicts = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let i = 0; i < 25; i++) {
      const err = await es.appendToStream(p, s, es.NO_STREAM, [{ type: 'T', data: 1 }]).then(() => null, (e) => e);
      assert.ok(err instanceof es.WrongExpectedVersionError, String(err));
      conflicts++;
    }
  }));
  // A conflict through handleCommand too, and other server errors.
  const r = await es.handleCommand(p, s, {
    initialState: 0,
    evolve: (n) => n + 1,
    decide: async (n, { attempt }) => {
      if (attempt === 1) await es.appendToStream(p, s, es.ANY, [{ type: 'T', data: 2 }]);
      return [{ type: 'T', data: n }];
    },
  }, { baseDelayMs: 1 });
  assert.equal(r.attempts, 2);
  const long = await es.appendToStream(p, 'x'.repeat(1001), es.ANY, [{ type: 'T', data: 1 }]).then(() => null, (e) => e);
  assert.equal(long.code, '22001');
  assert.equal(conflicts, 100);
  assert.ok(counter.connects - before <= 4, `${counter.connects - before} connections opened for ${conflicts + 2} errors`);
  assert.ok(p.totalCount <= 4);
});

test('a pooled connection the server ends during a call is dropped, and the next call reconnects', async (t) => {
  // Direct: through pgbouncer the server side of a connection is not the client's own.
  const name = `es_node_terminated_${process.pid}`;
  const p = new pg.Pool({ ...db.directConfig, max: 1, application_name: name });
  p.on('error', () => {});
  t.after(() => p.end());
  const counter = countingConnects(p);
  const s = 'pool-terminated';
  assert.equal(await es.appendToStream(p, s, es.NO_STREAM, [{ type: 'T', data: 1 }]), 1);
  assert.equal(counter.connects, 1);
  // Hold the stream's lock, so that the next append waits on the server.
  const holder = new pg.Client(db.directConfig);
  await holder.connect();
  t.after(() => holder.end());
  await holder.query('BEGIN');
  await holder.query("SELECT event_store.append_events($1, -2, '[]')", [s]);
  const pending = es.appendToStream(p, s, 1, [{ type: 'T', data: 2 }]).then(() => null, (e) => e);
  await waitFor(async () => (await pool.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
    [name])).rows[0].n === 1, { what: 'the append to wait for the lock' });
  await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [name]);
  const err = await pending;
  assert.ok(err instanceof Error, 'the call on the ended connection fails');
  assert.ok(es.isTransient(err), String(err));
  assert.equal(p.totalCount, 0, 'the ended connection left the pool');
  await holder.query('ROLLBACK');
  assert.equal(await es.appendToStream(p, s, 1, [{ type: 'T', data: 2 }]), 2);
  assert.equal(counter.connects, 2);
});
