'use strict';

/*
 * Parked events (extension 0.5.0) against a real server: a runner with
 * onEventError: 'park' parks the event its handler fails on and goes on;
 * replayParked applies it later and unparks it; parkEvent, readParked,
 * unparkEvent. Run directly and through pgbouncer alike.
 */

const test = require('node:test');
const assert = require('node:assert/strict');
const es = require('..');
const { createTestDatabase, waitFor, requireServerFunction, newCategory } = require('./support/db');

let db;
let pool;

test.before(async () => {
  db = await createTestDatabase();
  pool = db.pool({ max: 12 });
  await requireServerFunction(pool, 'event_store.park_event(text,bigint,text)');
});

test.after(async () => {
  await db.drop();
});

async function append(streamId, ...types) {
  return es.appendToStream(pool, streamId, es.ANY, types.map((type, i) => ({ type, data: { i } })));
}

test('parking: the event the handler fails on is parked with its error, the others applied once, the checkpoint moves; replay applies it once', async () => {
  const cat = newCategory('park');
  const subscriber = `park-${cat}`;
  await pool.query(`CREATE TABLE applied_${cat} (global_position bigint PRIMARY KEY, stream_id text NOT NULL)`);
  for (let i = 1; i <= 6; i++) await append(`${cat}-${i}`, i === 4 ? 'Poison' : 'Good');
  const head = await es.headPosition(pool);
  let poison;
  const calls = [];
  const parkedReports = [];
  const errors = [];
  const suffix = (e) => Number(e.streamId.slice(cat.length + 1));
  const handler = async (client, events) => {
    calls.push(events.map(suffix));
    for (const e of events) {
      await client.query({
        text: `INSERT INTO applied_${cat} VALUES ($1, $2)`,
        values: [String(e.globalPosition), e.streamId],
      });
      if (e.type === 'Poison') {
        poison = e;
        throw new Error(`cannot apply ${e.streamId}`);
      }
    }
  };
  const handle = es.subscribe(pool, {
    subscriber,
    category: cat,
    batchSize: 4,
    pollIntervalMs: 50,
    onEventError: 'park',
    onParked: (event, err, attempts) => parkedReports.push({ event, err, attempts }),
    onError: (err) => errors.push(err),
    handler,
  });
  try {
    await waitFor(async () => (await es.getCheckpoint(pool, subscriber)) === head, { what: 'the checkpoint past the poison' });
  } finally {
    await handle.stop();
  }
  assert.deepEqual(errors, []);
  // The first batch failed as a whole and was applied again one event at a
  // time; the second applied as a whole.
  assert.deepEqual(calls, [[1, 2, 3, 4], [1], [2], [3], [4], [5, 6]]);
  // The poison's insert was rolled back with its savepoint; the others stand.
  const applied = await pool.query(`SELECT stream_id FROM applied_${cat} ORDER BY global_position`);
  assert.deepEqual(applied.rows.map((r) => r.stream_id), [1, 2, 3, 5, 6].map((i) => `${cat}-${i}`));
  // Parked, with its error, reported once.
  const parked = await es.readParked(pool, subscriber);
  assert.equal(parked.length, 1);
  assert.equal(parked[0].globalPosition, poison.globalPosition);
  assert.equal(parked[0].error, `Error: cannot apply ${cat}-4`);
  assert.equal(parked[0].attempts, 1);
  assert.ok(parked[0].parkedAt instanceof Date);
  assert.equal(parked[0].event.type, 'Poison');
  assert.equal(parked[0].event.streamId, `${cat}-4`);
  assert.equal(parkedReports.length, 1);
  assert.equal(parkedReports[0].event.globalPosition, poison.globalPosition);
  assert.equal(parkedReports[0].err.message, `cannot apply ${cat}-4`);
  assert.equal(parkedReports[0].attempts, 1);

  // A replay that fails again parks it again: attempts 2, the new error.
  const failing = await es.replayParked(pool, subscriber, async () => {
    throw new TypeError('still broken');
  });
  assert.equal(failing.failed, 1);
  assert.equal(failing.replayed, 0);
  assert.equal(failing.errors[0].globalPosition, poison.globalPosition);
  const again = await es.readParked(pool, subscriber);
  assert.equal(again.length, 1);
  assert.equal(again[0].attempts, 2);
  assert.equal(again[0].error, 'TypeError: still broken');

  // The fix: the replay applies it once and unparks it, in one transaction.
  const replayedWith = [];
  const fixed = await es.replayParked(pool, subscriber, async (client, events, info) => {
    replayedWith.push(info);
    for (const e of events) {
      await client.query({ text: `INSERT INTO applied_${cat} VALUES ($1, $2)`, values: [String(e.globalPosition), e.streamId] });
    }
  });
  assert.deepEqual({ ...fixed, errors: undefined },
    { replayed: 1, failed: 0, missing: 0, skipped: 0, errors: undefined });
  assert.equal(replayedWith.length, 1);
  assert.equal(replayedWith[0].attempts, 2);
  assert.deepEqual(await es.readParked(pool, subscriber), []);
  const count = await pool.query(`SELECT count(*)::int AS n FROM applied_${cat}`);
  assert.equal(count.rows[0].n, 6);
  // Nothing left to replay.
  const empty = await es.replayParked(pool, subscriber, async () => { throw new Error('not called'); });
  assert.deepEqual({ ...empty, errors: empty.errors.length }, { replayed: 0, failed: 0, missing: 0, skipped: 0, errors: 0 });
});

test('parking: a transient error is not parked, the batch is retried; a handler that swallowed a server error is parked', async () => {
  const cat = newCategory('tpark');
  const subscriber = `tpark-${cat}`;
  await append(`${cat}-1`, 'A');
  await append(`${cat}-2`, 'B');
  await append(`${cat}-3`, 'C');
  const head = await es.headPosition(pool);
  const calls = [];
  const errors = [];
  let failedOnce = false;
  const handle = es.subscribe(pool, {
    subscriber,
    category: cat,
    pollIntervalMs: 50,
    retryDelayMs: 20,
    onEventError: 'park',
    onError: (err) => errors.push(err),
    async handler(client, events) {
      for (const e of events) {
        calls.push(e.type);
        if (e.type === 'A' && !failedOnce) {
          failedOnce = true;
          await client.query("DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '40001'; END $$");
        }
        if (e.type === 'B') {
          // An error the handler catches, leaving the transaction aborted.
          await client.query('SELECT 1/0').catch(() => {});
        }
      }
    },
  });
  try {
    await waitFor(async () => (await es.getCheckpoint(pool, subscriber)) === head, { what: 'catch-up' });
  } finally {
    await handle.stop();
  }
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, '40001');
  // The 40001 failed the batch, which was retried; the retry failed as a
  // whole (B left the transaction aborted), and then event by event.
  assert.deepEqual(calls, ['A', 'A', 'B', 'C', 'A', 'B', 'C']);
  const parked = await es.readParked(pool, subscriber);
  assert.deepEqual(parked.map((p) => p.event.type), ['B']);
  assert.match(parked[0].error, /current transaction is aborted/);
});

test('replayParked: an event gone since it was parked is unparked without the handler; parkEvent, unparkEvent', async () => {
  const cat = newCategory('gone');
  const subscriber = `gone-${cat}`;
  await append(`${cat}-1`, 'A', 'B');
  const [a, b] = await es.readStreamPage(pool, `${cat}-1`);
  assert.equal(await es.parkEvent(pool, subscriber, a.globalPosition, 'first'), 1);
  assert.equal(await es.parkEvent(pool, subscriber, a.globalPosition, 'second'), 2);
  assert.equal(await es.parkEvent(pool, subscriber, b.globalPosition, 'b failed'), 1);
  const page = await es.readParked(pool, subscriber, { maxCount: 1 });
  assert.deepEqual(page.map((p) => [p.globalPosition, p.error, p.attempts]), [[a.globalPosition, 'second', 2]]);
  const after = await es.readParked(pool, subscriber, { after: a.globalPosition });
  assert.deepEqual(after.map((p) => p.globalPosition), [b.globalPosition]);
  // No such event: P0002.
  await assert.rejects(es.parkEvent(pool, subscriber, 999999999, 'x'),
    (err) => err instanceof es.EventStoreError && err.code === 'P0002');
  await assert.rejects(es.parkEvent(pool, subscriber, a.globalPosition, null), TypeError);
  await assert.rejects(es.parkEvent(pool, '', a.globalPosition, 'x'), TypeError);
  await assert.rejects(es.replayParked(pool, subscriber, 'handler'), TypeError);

  // The stream is deleted: the parked events are gone from the log.
  await es.deleteStream(pool, `${cat}-1`, es.ANY);
  const hidden = await es.readParked(pool, subscriber);
  assert.deepEqual(hidden.map((p) => p.event), [null, null]);
  let called = 0;
  const result = await es.replayParked(pool, subscriber, async () => { called++; }, { pageSize: 1 });
  assert.equal(called, 0);
  assert.equal(result.missing, 2);
  assert.deepEqual(await es.readParked(pool, subscriber), []);
  assert.equal(await es.unparkEvent(pool, subscriber, a.globalPosition), false);
});
