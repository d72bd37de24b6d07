'use strict';

/*
 * Subscriptions in production (extension 0.5.0) against a real server:
 * filtered reads and how far they got, waitForEvent, the runner waking on
 * wait_for_event, a sparse filtered runner, status. (Parking: parked.test.js.)
 * Run directly and through pgbouncer (ES_PGBOUNCER_HOST/PORT) alike.
 */

const crypto = require('crypto');
const test = require('node:test');
const assert = require('node:assert/strict');
const es = require('..');
const { createTestDatabase, waitFor, requireServerFunction, newCategory } = require('./support/db');

let db;
let pool;

test.before(async () => {
  db = await createTestDatabase();
  pool = db.pool({ max: 12 });
  await requireServerFunction(pool, 'event_store.wait_for_event(bigint,interval,text,text[])');
});

test.after(async () => {
  await db.drop();
});

async function append(streamId, ...types) {
  return es.appendToStream(pool, streamId, es.ANY, types.map((type, i) => ({ type, data: { i } })));
}

test('readAll and readCategory filter by event types and categories; an empty array matches nothing', async () => {
  const a = newCategory('fa');
  const b = newCategory('fb');
  const start = await es.headPosition(pool);
  await append(`${a}-1`, 'Opened', 'Noted', 'Closed');
  await append(`${b}-1`, 'Opened', 'Noted');
  await append(`${a}-2`, 'Noted');

  const byType = await es.readAll(pool, { after: start, eventTypes: ['Opened', 'Closed'] });
  assert.deepEqual(byType.map((e) => [e.streamId, e.type]),
    [[`${a}-1`, 'Opened'], [`${a}-1`, 'Closed'], [`${b}-1`, 'Opened']]);
  const byCategory = await es.readAll(pool, { after: start, categories: [b] });
  assert.deepEqual(byCategory.map((e) => e.type), ['Opened', 'Noted']);
  const both = await es.readAll(pool, { after: start, eventTypes: ['Noted'], categories: [a] });
  assert.deepEqual(both.map((e) => e.streamId), [`${a}-1`, `${a}-2`]);
  assert.deepEqual(await es.readAll(pool, { after: start, eventTypes: [] }), []);
  assert.deepEqual(await es.readAll(pool, { after: start, categories: [] }), []);

  const inCategory = await es.readCategory(pool, a, { after: start, eventTypes: ['Noted'] });
  assert.deepEqual(inCategory.map((e) => e.streamId), [`${a}-1`, `${a}-2`]);
  assert.deepEqual(await es.readCategory(pool, a, { after: start, eventTypes: [] }), []);
  // Ascending, and maxCount counts matching events.
  const first = await es.readAll(pool, { after: start, eventTypes: ['Noted'], maxCount: 2 });
  assert.deepEqual(first.map((e) => e.streamId), [`${a}-1`, `${b}-1`]);
  assert.ok(first[0].globalPosition < first[1].globalPosition);
});

test('readAllWithPosition and readCategoryWithPosition: the page and how far the read got, past what the filter left out', async () => {
  const a = newCategory('pa');
  const start = await es.headPosition(pool);
  await append(`${a}-1`, 'Wanted', 'Other', 'Other');
  await append(`${a}-2`, 'Other', 'Other');
  const head = await es.headPosition(pool);

  const page = await es.readAllWithPosition(pool, { after: start, eventTypes: ['Wanted'] });
  assert.deepEqual(page.events.map((e) => e.type), ['Wanted']);
  assert.equal(page.position, head, 'the read went on to the head');

  const nothing = await es.readAllWithPosition(pool, { after: start, eventTypes: ['Absent'] });
  assert.deepEqual(nothing, { events: [], position: head });

  // A full page stops at its last event.
  const full = await es.readAllWithPosition(pool, { after: start, maxCount: 2 });
  assert.equal(full.events.length, 2);
  assert.equal(full.position, full.events[1].globalPosition);

  const cat = await es.readCategoryWithPosition(pool, a, { after: start, eventTypes: ['Other'], maxCount: 10 });
  assert.equal(cat.events.length, 4);
  assert.equal(cat.position, head);
  const none = await es.readCategoryWithPosition(pool, newCategory('none'), { after: start });
  assert.deepEqual(none.events, []);
  assert.ok(none.position >= start);

  // At the head, the position is where the read started.
  assert.deepEqual(await es.readAllWithPosition(pool, { after: head }), { events: [], position: head });
  // Inside a transaction of the caller's, on one client, too.
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const inTx = await es.readAllWithPosition(client, { after: start, categories: [a], eventTypes: ['Wanted'] });
    assert.equal(inTx.events.length, 1);
    assert.equal(inTx.position, head);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
});

test('filtered reads: bad filters throw before any query', async () => {
  await assert.rejects(es.readAll(pool, { eventTypes: 'Opened' }), TypeError);
  await assert.rejects(es.readAll(pool, { eventTypes: ['Opened', ''] }), TypeError);
  await assert.rejects(es.readAll(pool, { categories: [1] }), TypeError);
  await assert.rejects(es.readCategory(pool, 'x', { eventTypes: [null] }), TypeError);
  await assert.rejects(es.readAllWithPosition(pool, { eventTypes: {} }), TypeError);
  await assert.rejects(es.waitForEvent(pool, { timeoutMs: -1 }), TypeError);
  await assert.rejects(es.waitForEvent(pool, { timeoutMs: NaN }), TypeError);
  await assert.rejects(es.waitForEvent(pool, { category: '' }), TypeError);
  await assert.rejects(es.waitForEvent(pool, { signal: {} }), TypeError);
});

test('waitForEvent returns the position of an event appended while it waits', async () => {
  const cat = newCategory('wait');
  const head = await es.headPosition(pool);
  const began = Date.now();
  const waiting = es.waitForEvent(pool, { after: head, timeoutMs: 10000 });
  await new Promise((r) => setTimeout(r, 200));
  await append(`${cat}-1`, 'Arrived');
  const position = await waiting;
  assert.equal(position, await es.headPosition(pool));
  assert.ok(position > head);
  assert.ok(Date.now() - began < 5000, `it took ${Date.now() - began} ms`);
  // Something after the position is there already: at once.
  assert.equal(await es.waitForEvent(pool, { after: head, timeoutMs: 5000 }), position);
});

test('waitForEvent returns null at its timeout, and keeps to its category and types', async () => {
  const cat = newCategory('quiet');
  const head = await es.headPosition(pool);
  let began = Date.now();
  assert.equal(await es.waitForEvent(pool, { after: head, timeoutMs: 300 }), null);
  const took = Date.now() - began;
  assert.ok(took >= 250 && took < 5000, `the wait took ${took} ms`);

  began = Date.now();
  const waiting = es.waitForEvent(pool, { after: head, timeoutMs: 10000, category: cat, eventTypes: ['Wanted'] });
  await new Promise((r) => setTimeout(r, 150));
  await append(`${newCategory('elsewhere')}-1`, 'Wanted');   // another category
  await append(`${cat}-1`, 'Unwanted');                      // another type
  await new Promise((r) => setTimeout(r, 300));
  const wanted = await append(`${cat}-2`, 'Wanted');
  assert.equal(wanted, 1);
  const position = await waiting;
  const [event] = await es.readStreamPage(pool, `${cat}-2`);
  assert.equal(position, event.globalPosition);
});

test('waitForEvent with an AbortSignal: aborting cancels the wait, and the pool goes on working', async () => {
  const small = db.pool({ max: 1 });
  const head = await es.headPosition(small);
  const controller = new AbortController();
  const began = Date.now();
  const waiting = es.waitForEvent(small, { after: head + 1000000, timeoutMs: 20000, signal: controller.signal });
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(waiting, (err) => err.name === 'AbortError');
  assert.ok(Date.now() - began < 3000, `the abort took ${Date.now() - began} ms`);
  // The one connection of the pool went back to it, usable.
  assert.equal(await es.headPosition(small), head);
  assert.equal(await es.waitForEvent(small, { after: head + 1000000, timeoutMs: 50 }), null);
  // Already aborted: rejects before any query.
  await assert.rejects(es.waitForEvent(small, { signal: controller.signal }), (err) => err.name === 'AbortError');
  // On a client of the caller's too.
  const client = await small.connect();
  try {
    const again = new AbortController();
    setTimeout(() => again.abort(), 100);
    await assert.rejects(
      es.waitForEvent(client, { after: head + 1000000, timeoutMs: 20000, signal: again.signal }),
      (err) => err.name === 'AbortError');
    assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
  } finally {
    client.release();
  }
});

test('waitForEvent refuses REPEATABLE READ with 25000', async () => {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await assert.rejects(es.waitForEvent(client, { timeoutMs: 10 }),
      (err) => err instanceof es.EventStoreError && err.code === '25000');
    await client.query('ROLLBACK');
  } finally {
    client.release();
  }
});

test('an idle runner is woken by wait_for_event, without LISTEN or notify, and stop() cancels its wait', async () => {
  const cat = newCategory('wake');
  await append(`${cat}-1`, 'First');
  const seen = [];
  const errors = [];
  const handle = es.subscribe(pool, {
    subscriber: `wake-${cat}`,
    category: cat,
    pollIntervalMs: 60000,       // a minute-long wait: only wait_for_event can wake it
    onError: (err) => errors.push(err),
    async handler(client, events) {
      seen.push(...events);
    },
  });
  try {
    await waitFor(() => seen.length === 1, { what: 'the first event', timeoutMs: 10000 });
    await waitFor(async () => (await waitingSessions()) > 0, { what: 'the runner to wait', timeoutMs: 10000 });
    const began = Date.now();
    await append(`${cat}-2`, 'Second');            // no notify
    await waitFor(() => seen.length === 2, { what: 'the second event', timeoutMs: 10000, intervalMs: 10 });
    assert.ok(Date.now() - began < 5000, `woken after ${Date.now() - began} ms`);
    // The handler has run; the batch commits just after.
    await waitFor(() => handle.position === seen[1].globalPosition, { what: 'the batch to commit', timeoutMs: 5000, intervalMs: 10 });
    await waitFor(async () => (await waitingSessions()) > 0, { what: 'the runner to wait again', timeoutMs: 10000 });
  } finally {
    const stopping = Date.now();
    await handle.stop();
    assert.ok(Date.now() - stopping < 2000, `stop() took ${Date.now() - stopping} ms`);
  }
  await handle.done;
  assert.deepEqual(errors, []);
  await waitFor(async () => (await waitingSessions()) === 0, { what: 'the cancelled wait to end', timeoutMs: 5000 });
  assert.equal(await es.getCheckpoint(pool, `wake-${cat}`), seen[1].globalPosition);
});

/* Sessions of this database in wait_for_event now. */
async function waitingSessions() {
  const { rows } = await pool.query(
    'SELECT count(*)::int AS n FROM pg_stat_activity ' +
      "WHERE datname = current_database() AND query LIKE '%event_store.wait_for_event%' " +
      "AND state = 'active' AND pid <> pg_backend_pid()");
  return rows[0].n;
}

test('a sparse filtered runner applies only its types and checkpoints at the head', async () => {
  const cat = newCategory('sparse');
  const subscriber = `sparse-${cat}`;
  await es.saveCheckpoint(pool, subscriber, await es.headPosition(pool));
  await append(`${cat}-1`, 'Rare');
  for (let i = 0; i < 30; i++) await append(`${cat}-${i % 5}`, 'Common', 'Common', 'Common', 'Common', 'Common');
  const seen = [];
  const handle = es.subscribe(pool, {
    subscriber,
    eventTypes: ['Rare'],
    batchSize: 10,
    pollIntervalMs: 100,
    async handler(client, events) {
      seen.push(...events);
    },
  });
  try {
    let head = await es.headPosition(pool);
    await waitFor(async () => (await es.getCheckpoint(pool, subscriber)) === head, { what: 'the checkpoint at the head' });
    assert.deepEqual(seen.map((e) => e.type), ['Rare']);
    // More of what it does not want: the checkpoint follows the head.
    for (let i = 0; i < 5; i++) await append(`${newCategory('noise')}-1`, 'Common');
    head = await es.headPosition(pool);
    await waitFor(async () => (await es.getCheckpoint(pool, subscriber)) === head, { what: 'the checkpoint at the new head' });
    assert.equal(handle.position, head);
    // And one it wants.
    await append(`${cat}-9`, 'Common', 'Rare');
    head = await es.headPosition(pool);
    await waitFor(() => seen.length === 2, { what: 'the second Rare event' });
    await waitFor(async () => (await es.getCheckpoint(pool, subscriber)) === head, { what: 'the checkpoint after it' });
  } finally {
    await handle.stop();
  }
  await handle.done;
  assert.deepEqual(seen.map((e) => e.type), ['Rare', 'Rare']);
  // The status view agrees: no lag.
  const [status] = await es.subscriptions(pool, { subscriber });
  assert.equal(status.checkpoint, await es.headPosition(pool));
  assert.equal(status.lagPositions, 0);
  assert.equal(status.lagEvents, 0);
});

test('a runner over several categories of the log, with types, reads only those', async () => {
  const a = newCategory('ma');
  const b = newCategory('mb');
  const subscriber = `multi-${a}`;
  await es.saveCheckpoint(pool, subscriber, await es.headPosition(pool));
  await append(`${a}-1`, 'X', 'Y');
  await append(`${newCategory('mc')}-1`, 'X');
  await append(`${b}-1`, 'Y', 'X');
  const seen = [];
  const handle = es.subscribe(pool, {
    subscriber,
    categories: [a, b],
    eventTypes: ['X'],
    pollIntervalMs: 50,
    handler: async (client, events) => { seen.push(...events); },
  });
  try {
    const head = await es.headPosition(pool);
    await waitFor(async () => (await es.getCheckpoint(pool, subscriber)) === head, { what: 'catch-up' });
  } finally {
    await handle.stop();
  }
  assert.deepEqual(seen.map((e) => `${e.streamId}:${e.type}`), [`${a}-1:X`, `${b}-1:X`]);
  assert.throws(() => es.subscribe(pool, { subscriber: 's', category: a, categories: [b], handler() {} }), TypeError);
  assert.throws(() => es.subscribe(pool, { subscriber: 's', eventTypes: 'X', handler() {} }), TypeError);
  assert.throws(() => es.subscribe(pool, { subscriber: 's', onEventError: 'skip', handler() {} }), TypeError);
  assert.throws(() => es.subscribe(pool, { subscriber: 's', onParked: 1, handler() {} }), TypeError);
});

test('status: subscriptions, logHolders, headPosition, watermark, publishWatermark', async () => {
  const cat = newCategory('status');
  const subscriber = `status-${cat}`;
  await append(`${cat}-1`, 'A', 'B', 'C');
  const head = await es.headPosition(pool);
  await es.saveCheckpoint(pool, subscriber, head - 2);
  const [row] = await es.subscriptions(pool, { subscriber });
  assert.equal(row.subscriber, subscriber);
  assert.equal(row.checkpoint, head - 2);
  assert.equal(row.headPosition, head);
  assert.equal(row.lagPositions, 2);
  assert.equal(row.lagEvents, 2);
  assert.equal(typeof row.lagMs, 'number');
  assert.ok(row.lagMs >= 0);
  assert.ok(row.savedAt instanceof Date);
  const all = await es.subscriptions(pool);
  assert.ok(all.some((r) => r.subscriber === subscriber));
  assert.deepEqual(all.map((r) => r.subscriber), [...all.map((r) => r.subscriber)].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
  assert.deepEqual(await es.subscriptions(pool, { subscriber: `${subscriber}-none` }), []);

  // An open appending transaction holds the log back.
  assert.deepEqual(await es.logHolders(pool), []);
  const holder = await pool.connect();
  try {
    await holder.query('BEGIN');
    await es.appendToStream(holder, `${cat}-2`, es.ANY, [{ type: 'Open', data: null }]);
    const { pid } = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0];
    const holders = await es.logHolders(pool);
    assert.equal(holders.length, 1);
    assert.equal(holders[0].position, head + 1);
    assert.equal(holders[0].pid, pid);
    assert.equal(holders[0].state, 'idle in transaction');
    assert.equal(typeof holders[0].xactAgeMs, 'number');
    assert.ok(holders[0].xactStart instanceof Date);
    assert.equal(holders[0].roleName, db.directConfig.user);
    await holder.query('ROLLBACK');
  } finally {
    holder.release();
  }
  assert.deepEqual(await es.logHolders(pool), []);

  const published = await es.publishWatermark(pool);
  assert.ok(published >= head);
  assert.equal(await es.watermark(pool), published);
});

test('a role that may not execute last_read_position or wait_for_event: an unfiltered runner polls and saves the last event, a filtered or parking one fails saying why', async () => {
  const role = `es_sub_${crypto.randomBytes(5).toString('hex')}`;
  const cat = newCategory('old');
  await pool.query(`CREATE ROLE ${role} NOLOGIN`);
  // The grants of a projection before 0.5.0: reads and checkpoints only.
  await pool.query(`GRANT USAGE ON SCHEMA event_store TO ${role}`);
  await pool.query(`GRANT SELECT ON event_store.events, event_store.streams TO ${role}`);
  await pool.query(`GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO ${role}`);
  await pool.query(`GRANT EXECUTE ON FUNCTION event_store.read_all(bigint, bigint, text[], text[]),
    event_store.read_category(text, bigint, bigint, integer, integer, text[]),
    event_store.checkpoint(text), event_store.save_checkpoint(text, bigint, boolean),
    event_store.category(text), event_store.safe_position() TO ${role}`);
  // Its own pool, on direct connections (a session-level SET ROLE must not
  // go through a pooler in transaction mode).
  const rolePool = db.pool({ ...db.directConfig, max: 3 });
  rolePool.on('connect', (client) => client.query(`SET ROLE ${role}`));
  try {
    await append(`${cat}-1`, 'A', 'B');
    const seen = [];
    const handle = es.subscribe(rolePool, {
      subscriber: `old-${cat}`,
      category: cat,
      pollIntervalMs: 50,
      handler: async (client, events) => { seen.push(...events); },
    });
    try {
      await waitFor(() => seen.length === 2, { what: 'the first batch' });
      await append(`${newCategory('other')}-1`, 'X');
      await append(`${cat}-2`, 'C');
      await append(`${newCategory('other')}-1`, 'Y');
      await waitFor(() => seen.length === 3, { what: 'the polled batch' });
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await handle.stop();
    }
    await handle.done;
    // The checkpoint is the last event's position, not the head: no
    // last_read_position without EXECUTE on it.
    assert.equal(await es.getCheckpoint(pool, `old-${cat}`), seen[2].globalPosition);
    assert.ok(seen[2].globalPosition < (await es.headPosition(pool)));

    const filtered = es.subscribe(rolePool, { subscriber: `oldf-${cat}`, eventTypes: ['A'], handler() {} });
    await assert.rejects(filtered.done, /last_read_position/);
    const parking = es.subscribe(rolePool, { subscriber: `oldp-${cat}`, onEventError: 'park', handler() {} });
    await assert.rejects(parking.done, /park_event/);
  } finally {
    await rolePool.end();
    await pool.query(`DROP OWNED BY ${role}`);
    await pool.query(`DROP ROLE ${role}`);
  }
});
