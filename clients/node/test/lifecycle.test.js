'use strict';

/* Stream lifecycle (extension 0.4.0) against a real server. */

const crypto = require('crypto');
const test = require('node:test');
const assert = require('node:assert/strict');
const es = require('..');
const { createTestDatabase, collect } = require('./support/db');

let db;
let pool;

test.before(async () => {
  db = await createTestDatabase();
  pool = db.pool();
  // A server without the lifecycle functions fails these tests rather than
  // skipping them, so that a run against the wrong build cannot pass.
  const { rows } = await pool.query(
    "SELECT extversion, to_regprocedure('event_store.delete_stream(text,bigint)') IS NOT NULL AS has_lifecycle " +
      "FROM pg_extension WHERE extname = 'event_store'",
  );
  const [major, minor] = rows[0].extversion.split('.').map(Number);
  if (major === 0 && minor < 4) {
    throw new Error(`stream lifecycle needs event_store 0.4.0 or later, not ${rows[0].extversion}`);
  }
  if (!rows[0].has_lifecycle) {
    throw new Error(`the installed event_store ${rows[0].extversion} has no event_store.delete_stream`);
  }
});

test.after(async () => {
  await db.drop();
});

/* A stream id of its own for each test. */
const sid = (category = 'lc') => `${category}-${crypto.randomBytes(6).toString('hex')}`;

/* Append n events of type T, data {n: 1..}, each with an id of the client's. */
async function appendN(stream, expected, n, from = 1) {
  const events = Array.from({ length: n }, (_, i) => ({ type: 'T', data: { n: from + i }, id: es.newEventId() }));
  const version = await es.appendToStream(pool, stream, expected, events);
  return { version, events };
}

const versions = async (stream) => (await collect(es.readStream(pool, stream))).map((e) => e.version);

/* The highest global position stored now. */
async function lastPosition() {
  const { rows } = await pool.query('SELECT coalesce(max(global_position), 0)::text AS p FROM event_store.events');
  return es.fromInt8(rows[0].p);
}

/* The global log after a position, to its end, as readAll pages it. */
async function readAllAfter(after) {
  const out = [];
  for (;;) {
    const page = await es.readAll(pool, { after, maxCount: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    after = page[page.length - 1].globalPosition;
  }
}

/* The number of rows a stream has in event_store.events. */
async function storedRows(stream) {
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM event_store.events WHERE stream_id = $1', [stream]);
  return rows[0].n;
}

/* Run fn and return what it rejects with (null when it resolves). */
const failure = (promise) => promise.then(() => null, (e) => e);

test('deleteStream: the stream reads as empty; an append expecting 0 or the head continues at head + 1', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 3);
  assert.equal(await es.deleteStream(pool, s, 3), 3, 'resolves to the head');
  assert.deepEqual(await versions(s), []);
  assert.equal(await es.streamVersion(pool, s), 3, 'the head stays: versions are never reused');

  // "exists" fails: the stream reads as empty.
  const exists = await failure(es.appendToStream(pool, s, es.STREAM_EXISTS, [{ type: 'T', data: 0 }]));
  assert.ok(exists instanceof es.WrongExpectedVersionError, String(exists));

  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'New', data: { n: 4 } }]), 4);
  assert.equal(await es.appendToStream(pool, s, 4, [{ type: 'New', data: { n: 5 } }]), 5);
  const read = await collect(es.readStream(pool, s));
  assert.deepEqual(read.map((e) => [e.version, e.type]), [[4, 'New'], [5, 'New']]);
  // Backward too, and a read from version 1 asked for explicitly.
  assert.deepEqual((await collect(es.readStream(pool, s, { backward: true }))).map((e) => e.version), [5, 4]);
  assert.deepEqual((await es.readStreamPage(pool, s, { fromVersion: 1 })).map((e) => e.version), [4, 5]);

  const info = await es.streamInfo(pool, s);
  assert.equal(info.version, 5);
  assert.equal(info.firstVisibleVersion, 4);
  assert.equal(info.tombstoned, false);
});

test('deleteStream: the head also works as the expected version after a delete; deleting again changes nothing', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 2);
  assert.equal(await es.deleteStream(pool, s, es.ANY), 2);
  assert.equal(await es.deleteStream(pool, s, es.ANY), 2, 'already deleted: the head');
  assert.equal(await es.appendToStream(pool, s, 2, [{ type: 'T', data: 3 }]), 3);
  assert.deepEqual(await versions(s), [3]);
  // A stream with no events: nothing to delete, head 0.
  const none = sid();
  assert.equal(await es.deleteStream(pool, none, es.NO_STREAM), 0);
  assert.equal(await es.appendToStream(pool, none, es.NO_STREAM, [{ type: 'T', data: 1 }]), 1);
});

test('deleteStream: a wrong expected version is a WrongExpectedVersionError and deletes nothing', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 3);
  const err = await failure(es.deleteStream(pool, s, 2));
  assert.ok(err instanceof es.WrongExpectedVersionError, String(err));
  assert.equal(err.code, 'VE001');
  assert.equal(err.streamId, s);
  assert.equal(err.expected, 2);
  assert.equal(err.actual, 3);
  assert.deepEqual(await versions(s), [1, 2, 3]);
  const noStream = await failure(es.deleteStream(pool, s, es.NO_STREAM));
  assert.ok(noStream instanceof es.WrongExpectedVersionError);
  assert.equal(noStream.actual, 3);
  const exists = await failure(es.deleteStream(pool, sid(), es.STREAM_EXISTS));
  assert.ok(exists instanceof es.WrongExpectedVersionError);
  assert.equal(exists.actual, 0);
  assert.equal(await es.deleteStream(pool, s, es.STREAM_EXISTS), 3);
});

test('deleteStream: a retry of an append stored before the delete is still recognised as a repeat', async () => {
  const s = sid();
  const { events } = await appendN(s, es.NO_STREAM, 2);
  await es.deleteStream(pool, s, 2);
  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, events), 2, 'the first call\'s version');
  assert.deepEqual(await versions(s), [], 'nothing stored again');
  assert.equal(await es.streamVersion(pool, s), 2);
});

test('deleteStream deletes the stream\'s snapshots', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 2);
  await es.saveSnapshot(pool, s, 2, { total: 2 });
  await es.deleteStream(pool, s, 2);
  assert.equal(await es.readSnapshot(pool, s), null);
});

test('tombstoneStream: events removed; every later append is a StreamTombstonedError, idempotent retries included', async () => {
  const s = sid();
  const { events } = await appendN(s, es.NO_STREAM, 3);
  assert.equal(await storedRows(s), 3);
  const before = await lastPosition();
  assert.equal(await es.tombstoneStream(pool, s, 3), 3, 'resolves to the events removed');
  assert.equal(await storedRows(s), 0);
  assert.deepEqual(await versions(s), []);
  const [tombstoned] = (await readAllAfter(before)).filter(es.isLifecycleEvent);
  assert.equal(tombstoned.type, '$tombstoned');
  assert.deepEqual(tombstoned.data, { stream_id: s, version: 3, events_removed: 3 });

  for (const expected of [es.NO_STREAM, 3, es.ANY, es.STREAM_EXISTS]) {
    const err = await failure(es.appendToStream(pool, s, expected, [{ type: 'T', data: 4 }]));
    assert.ok(err instanceof es.StreamTombstonedError, `expected ${expected}: ${err}`);
    assert.ok(err instanceof es.EventStoreError);
    assert.equal(err.code, 'VE003');
    assert.equal(err.streamId, s);
    assert.equal(err.cause.code, 'VE003');
    assert.equal(es.isTransient(err), false);
  }
  // A repeat of the append stored before the tombstone, with the same ids:
  // never a silent success.
  const retry = await failure(es.appendToStream(pool, s, es.NO_STREAM, events));
  assert.ok(retry instanceof es.StreamTombstonedError, String(retry));
  // An empty batch too, and a snapshot.
  assert.ok((await failure(es.appendToStream(pool, s, es.ANY, []))) instanceof es.StreamTombstonedError);
  assert.ok((await failure(es.saveSnapshot(pool, s, 3, {}))) instanceof es.StreamTombstonedError);
  // Delete, truncate and retention of a tombstoned stream.
  assert.ok((await failure(es.deleteStream(pool, s, es.ANY))) instanceof es.StreamTombstonedError);
  assert.ok((await failure(es.truncateStream(pool, s, 2))) instanceof es.StreamTombstonedError);
  assert.ok((await failure(es.setStreamRetention(pool, s, { maxCount: 1 }))) instanceof es.StreamTombstonedError);
  // Tombstoning again changes nothing.
  assert.equal(await es.tombstoneStream(pool, s, es.ANY), 0);
  const info = await es.streamInfo(pool, s);
  assert.equal(info.tombstoned, true);
  assert.equal(info.version, 3);
});

test('tombstoneStream: an append stored before the tombstone, retried with the same ids, gets VE003', async () => {
  // The retry that meets the tombstone is the one whose first answer was lost.
  const s = sid();
  const events = [{ type: 'Paid', data: { amount: 10 }, id: es.newEventId() }];
  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, events), 1);
  assert.equal(await es.appendToStream(pool, s, es.NO_STREAM, events), 1, 'before the tombstone: an idempotent repeat');
  await es.tombstoneStream(pool, s, 1);
  const err = await failure(es.appendToStream(pool, s, es.NO_STREAM, events));
  assert.ok(err instanceof es.StreamTombstonedError, String(err));
  assert.equal(err.streamId, s);
});

test('mapError on an error of your own SQL: VE003 with the stream the server names', async () => {
  const s = sid();
  await es.tombstoneStream(pool, s, es.NO_STREAM);
  const raw = await failure(pool.query("SELECT event_store.append_event($1, -2, 'T', '{}')", [s]));
  assert.equal(raw && raw.code, 'VE003');
  const err = es.mapError(raw);
  assert.ok(err instanceof es.StreamTombstonedError, String(err));
  assert.equal(err.streamId, s);
  assert.equal(err.detail, raw.detail);
});

test('tombstoneStream: a stream with no events can be tombstoned; its id is reserved', async () => {
  const s = sid();
  assert.equal(await es.tombstoneStream(pool, s, es.NO_STREAM), 0);
  const err = await failure(es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'T', data: 1 }]));
  assert.ok(err instanceof es.StreamTombstonedError, String(err));
  // A wrong expected version is checked first: nothing is tombstoned.
  const other = sid();
  await appendN(other, es.NO_STREAM, 2);
  assert.ok((await failure(es.tombstoneStream(pool, other, 1))) instanceof es.WrongExpectedVersionError);
  assert.equal((await es.streamInfo(pool, other)).tombstoned, false);
  assert.deepEqual(await versions(other), [1, 2]);
});

test('handleCommand on a tombstoned stream: StreamTombstonedError after one attempt', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 1);
  await es.tombstoneStream(pool, s, es.ANY);
  let decides = 0;
  const err = await failure(es.handleCommand(pool, s, {
    initialState: 0,
    evolve: (n) => n + 1,
    decide: () => { decides++; return [{ type: 'T', data: 1 }]; },
  }, { maxAttempts: 5, baseDelayMs: 0 }));
  assert.ok(err instanceof es.StreamTombstonedError, String(err));
  assert.equal(err.attempts, 1);
  assert.equal(decides, 1);
});

test('truncateStream and streamInfo', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 10);
  const fresh = await es.streamInfo(pool, s);
  assert.equal(fresh.version, 10);
  assert.equal(fresh.firstVisibleVersion, 1);
  assert.equal(fresh.maxCount, null);
  assert.equal(fresh.maxAge, null);
  assert.equal(fresh.tombstoned, false);
  assert.deepEqual(Object.keys(fresh).sort(),
    ['firstVisibleVersion', 'maxAge', 'maxCount', 'tombstoned', 'truncateBefore', 'version']);

  assert.equal(await es.truncateStream(pool, s, 4), 4);
  assert.deepEqual(await versions(s), [4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual((await collect(es.readStream(pool, s, { backward: true }))).map((e) => e.version), [10, 9, 8, 7, 6, 5, 4]);
  const info = await es.streamInfo(pool, s);
  assert.equal(info.version, 10);
  assert.equal(info.firstVisibleVersion, 4);
  assert.equal(info.truncateBefore, 4);
  assert.equal(await es.streamVersion(pool, s), 10);

  // Lowering the bound is refused, and so is one beyond head + 1.
  const lower = await failure(es.truncateStream(pool, s, 3));
  assert.ok(lower instanceof es.EventStoreError, String(lower));
  assert.equal(lower.code, '22023');
  assert.equal(lower.streamId, s);
  const beyond = await failure(es.truncateStream(pool, s, 12));
  assert.equal(beyond && beyond.code, '22023');
  assert.equal((await es.streamInfo(pool, s)).firstVisibleVersion, 4);

  // Truncating at head + 1 hides everything; appends continue at head + 1.
  assert.equal(await es.truncateStream(pool, s, 11), 11);
  assert.deepEqual(await versions(s), []);
  assert.equal(await es.appendToStream(pool, s, 10, [{ type: 'T', data: 11 }]), 11);
  assert.deepEqual(await versions(s), [11]);
});

test('streamInfo of a stream that does not exist', async () => {
  const info = await es.streamInfo(pool, sid());
  assert.equal(info.version, 0);
  assert.equal(info.firstVisibleVersion, 1);
  assert.equal(info.maxCount, null);
  assert.equal(info.maxAge, null);
  assert.equal(info.tombstoned, false);
});

test('setStreamRetention: maxCount hides old events from readStream; raising it shows them again', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 10);
  assert.equal(await es.setStreamRetention(pool, s, { maxCount: 3 }), undefined);
  assert.deepEqual(await versions(s), [8, 9, 10]);
  let info = await es.streamInfo(pool, s);
  assert.equal(info.maxCount, 3);
  assert.equal(info.maxAge, null);
  assert.equal(info.firstVisibleVersion, 8);
  // The window moves with the head.
  await es.appendToStream(pool, s, 10, [{ type: 'T', data: 11 }]);
  assert.deepEqual(await versions(s), [9, 10, 11]);
  // Raised before any purge: the hidden events show again.
  await es.setStreamRetention(pool, s, { maxCount: 5n });
  assert.deepEqual(await versions(s), [7, 8, 9, 10, 11]);
  await es.setStreamRetention(pool, s, {});
  assert.equal((await versions(s)).length, 11);
  info = await es.streamInfo(pool, s);
  assert.equal(info.maxCount, null);
  assert.equal(info.firstVisibleVersion, 1);
});

test('setStreamRetention: maxAge as an interval string or seconds', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 3);
  await es.setStreamRetention(pool, s, { maxAge: '90 days' });
  let info = await es.streamInfo(pool, s);
  assert.equal(info.maxAge, '90 days');
  assert.equal(info.maxCount, null);
  assert.deepEqual(await versions(s), [1, 2, 3], 'nothing is that old');
  await es.setStreamRetention(pool, s, { maxAge: 3600, maxCount: 2 });
  info = await es.streamInfo(pool, s);
  assert.equal(info.maxAge, '01:00:00');
  assert.equal(info.maxCount, 2);
  assert.deepEqual(await versions(s), [2, 3]);
  // What streamInfo reports can be given back as it is.
  await es.setStreamRetention(pool, s, { maxAge: info.maxAge });
  assert.equal((await es.streamInfo(pool, s)).maxAge, '01:00:00');
  // A few milliseconds: everything appended before is older than that.
  await es.setStreamRetention(pool, s, { maxAge: 0.005 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(await versions(s), []);
  assert.equal((await es.streamInfo(pool, s)).maxAge, '00:00:00.005');
  // Not positive: refused by the server.
  const zero = await failure(es.setStreamRetention(pool, s, { maxAge: '0 seconds' }));
  assert.equal(zero && zero.code, '22023');
  const bad = await failure(es.setStreamRetention(pool, s, { maxAge: 'ninety days' }));
  assert.ok(bad instanceof es.EventStoreError, String(bad));
  assert.equal(bad.code.slice(0, 2), '22');
});

test('purge removes hidden events and resolves to the count', async () => {
  const kept = sid();
  await appendN(kept, es.NO_STREAM, 10);
  await es.setStreamRetention(pool, kept, { maxCount: 4 });
  const deleted = sid();
  await appendN(deleted, es.NO_STREAM, 5);
  await es.deleteStream(pool, deleted, 5);
  assert.equal(await storedRows(kept), 10, 'hidden, not yet removed');
  assert.equal(await storedRows(deleted), 5);

  // Bounded batches: at most maxEvents per call.
  assert.equal(await es.purge(pool, 2), 2);
  let removed = 2;
  for (;;) {
    const n = await es.purge(pool, 1000);
    assert.equal(typeof n, 'number');
    if (n === 0) break;
    removed += n;
  }
  assert.ok(removed >= 11, `removed ${removed}`);
  assert.equal(await storedRows(kept), 4);
  assert.equal(await storedRows(deleted), 0);
  assert.equal(await es.purge(pool), 0, 'nothing left to remove');
  // Purged events do not come back when the limit is raised.
  await es.setStreamRetention(pool, kept, { maxCount: 100 });
  assert.deepEqual(await versions(kept), [7, 8, 9, 10]);
});

test('purge: a second purge while one is running resolves to 0 at once', async () => {
  // Nothing hidden but this test's stream.
  while (await es.purge(pool, 10000) > 0);
  const s = sid();
  await appendN(s, es.NO_STREAM, 6);
  await es.deleteStream(pool, s, 6);
  const holder = await pool.connect();
  try {
    await holder.query('BEGIN');
    // The first purge holds its lock until its transaction ends.
    assert.equal(await es.purge(holder, 1), 1);
    const second = es.purge(pool, 1000);
    const timeout = new Promise((resolve) => setTimeout(() => resolve('waited'), 5000));
    assert.equal(await Promise.race([second, timeout]), 0, 'does not wait for the first');
    assert.equal(await storedRows(s), 6, 'the first purge has not committed');
    await holder.query('COMMIT');
  } finally {
    await holder.query('ROLLBACK').catch(() => {});
    holder.release();
  }
  assert.equal(await storedRows(s), 5);
  assert.equal(await es.purge(pool, 1000), 5);
  assert.equal(await storedRows(s), 0);
});

test('eraseStream removes events and snapshots, with an audit row and an $erased event', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 3);
  await es.saveSnapshot(pool, s, 3, { total: 3 });
  const before = await lastPosition();
  assert.equal(await es.eraseStream(pool, s, 'subject request 42'), 3);
  assert.equal(await storedRows(s), 0);
  assert.deepEqual(await versions(s), []);
  assert.equal(await es.readSnapshot(pool, s), null);
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM event_store.snapshots WHERE stream_id = $1', [s]);
  assert.equal(rows[0].n, 0);
  const audit = await pool.query(
    'SELECT operation, event_count::int AS n, reason FROM event_store.erasures WHERE stream_id = $1', [s]);
  assert.equal(audit.rows.length, 1);
  assert.equal(audit.rows[0].n, 3);
  assert.equal(audit.rows[0].reason, 'subject request 42');
  // Erased is tombstoned.
  assert.equal((await es.streamInfo(pool, s)).tombstoned, true);
  assert.ok((await failure(es.appendToStream(pool, s, es.ANY, [{ type: 'T', data: 1 }]))) instanceof es.StreamTombstonedError);
  const erased = (await readAllAfter(before)).filter((e) => es.isLifecycleEvent(e) && e.type === '$erased');
  assert.equal(erased.length, 1);
  assert.equal(erased[0].data.stream_id, s);
  assert.equal(erased[0].data.events_removed, 3);
  // An empty reason is the server's to refuse too; the client refuses it first.
  await assert.rejects(es.eraseStream(pool, sid(), ''), TypeError);
});

test('redactEvent keeps position, version, type and id, and replaces data and metadata', async () => {
  const s = sid();
  await es.appendToStream(pool, s, es.NO_STREAM, [
    { type: 'CustomerRegistered', data: { name: 'Ann', email: 'ann@example.com' }, metadata: { ip: '10.0.0.1' } },
    { type: 'CustomerMoved', data: { city: 'Oslo' }, metadata: { ip: '10.0.0.2' } },
  ]);
  const [first, second] = await collect(es.readStream(pool, s));
  const before = await lastPosition();
  const position = await es.redactEvent(pool, first.id.toUpperCase(), 'subject request 7', {
    data: { name: '[redacted]' },
    metadata: { redacted: true },
  });
  assert.equal(position, first.globalPosition);
  const [after, untouched] = await collect(es.readStream(pool, s));
  assert.equal(after.globalPosition, first.globalPosition);
  assert.equal(after.version, 1);
  assert.equal(after.type, 'CustomerRegistered');
  assert.equal(after.id, first.id);
  assert.deepEqual(after.data, { name: '[redacted]' });
  assert.deepEqual(after.metadata, { redacted: true });
  assert.deepEqual(untouched, second);
  const [redacted] = (await readAllAfter(before)).filter(es.isLifecycleEvent);
  assert.equal(redacted.type, '$redacted');
  assert.equal(redacted.data.stream_id, s);
  assert.equal(redacted.data.event_id, first.id);
  assert.equal(redacted.data.version, 1);
  assert.equal(redacted.data.global_position, first.globalPosition);
  assert.equal(typeof redacted.data.erasure_id, 'number');
  // Without data: {} and no metadata.
  assert.equal(await es.redactEvent(pool, second.id, 'subject request 7'), second.globalPosition);
  const [, bare] = await collect(es.readStream(pool, s));
  assert.deepEqual(bare.data, {});
  assert.equal(bare.metadata, null);
  assert.equal(bare.type, 'CustomerMoved');
  assert.equal(await es.streamVersion(pool, s), 2);
  const audit = await pool.query(
    "SELECT count(*)::int AS n FROM event_store.erasures WHERE stream_id = $1 AND reason = 'subject request 7'", [s]);
  assert.equal(audit.rows[0].n, 2);

  // An unknown id: P0002.
  const unknown = await failure(es.redactEvent(pool, es.newEventId(), 'x'));
  assert.ok(unknown instanceof es.EventStoreError, String(unknown));
  assert.equal(unknown.code, 'P0002');
});

test('an event of $lifecycle cannot be redacted, and $ streams are refused', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 1);
  const before = await lastPosition();
  await es.deleteStream(pool, s, 1);
  const [deleted] = (await readAllAfter(before)).filter(es.isLifecycleEvent);
  assert.ok(deleted, 'a lifecycle event');
  const err = await failure(es.redactEvent(pool, deleted.id, 'x'));
  assert.equal(err && err.code, '22023');
  for (const call of [
    () => es.deleteStream(pool, '$lifecycle', es.ANY),
    () => es.tombstoneStream(pool, '$lifecycle', es.ANY),
    () => es.truncateStream(pool, '$lifecycle', 1),
    () => es.setStreamRetention(pool, '$lifecycle', { maxCount: 1 }),
    () => es.eraseStream(pool, '$lifecycle', 'x'),
    () => es.appendToStream(pool, '$lifecycle', es.ANY, [{ type: '$deleted', data: {} }]),
    () => es.appendToStream(pool, '$mine', es.ANY, [{ type: 'T', data: {} }]),
    () => es.appendToStream(pool, s, es.ANY, [{ type: '$deleted', data: {} }]),
  ]) {
    const e = await failure(call());
    assert.ok(e instanceof es.EventStoreError, `${call}: ${e}`);
    assert.equal(e.code, '22023', String(call));
  }
});

test('isLifecycleEvent finds the $deleted event in readAll, in commit order', async () => {
  const s = sid();
  await appendN(s, es.NO_STREAM, 2);
  const before = await lastPosition();
  await es.deleteStream(pool, s, 2);
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'T', data: { n: 3 } }]);
  const log = await readAllAfter(before);
  const lifecycle = log.filter(es.isLifecycleEvent);
  assert.equal(lifecycle.length, 1);
  const [deleted] = lifecycle;
  assert.equal(deleted.streamId, '$lifecycle');
  assert.equal(deleted.type, '$deleted');
  assert.deepEqual(
    { stream: deleted.data.stream_id, version: deleted.data.version, first: deleted.data.first_visible_version },
    { stream: s, version: 2, first: 3 },
  );
  // The delete's event comes before the append that followed it.
  const appended = log.find((e) => e.streamId === s);
  assert.ok(appended && appended.globalPosition > deleted.globalPosition);
  assert.equal(es.isLifecycleEvent(appended), false);
  // Also as the category $lifecycle.
  const category = await es.readCategory(pool, '$lifecycle', { after: before });
  assert.deepEqual(category.map((e) => e.id), [deleted.id]);
  // Truncation and retention leave events of their own.
  await es.truncateStream(pool, s, 4);
  await es.setStreamRetention(pool, s, { maxCount: 5, maxAge: '1 day' });
  const more = (await readAllAfter(appended.globalPosition)).filter(es.isLifecycleEvent);
  assert.deepEqual(more.map((e) => e.type), ['$truncated', '$retention']);
  assert.equal(more[0].data.stream_id, s);
  assert.equal(more[0].data.first_visible_version, 4);
  assert.equal(more[1].data.max_count, 5);
  assert.equal(typeof more[1].data.max_age, 'string');
});

test('a role without DELETE on event_store.events gets 42501 from deleteStream', async () => {
  const role = `es_lc_${crypto.randomBytes(5).toString('hex')}`;
  const s = sid();
  await appendN(s, es.NO_STREAM, 2);
  await pool.query(`CREATE ROLE ${role} NOLOGIN`);
  const client = await pool.connect();
  try {
    // EXECUTE on the function and the rights of a writer, not DELETE.
    await pool.query(`GRANT USAGE ON SCHEMA event_store TO ${role}`);
    await pool.query(`GRANT SELECT ON ALL TABLES IN SCHEMA event_store TO ${role}`);
    await pool.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA event_store TO ${role}`);
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${role}`);
    const err = await failure(es.deleteStream(client, s, es.ANY));
    await client.query('ROLLBACK');
    assert.ok(err instanceof es.EventStoreError, String(err));
    assert.equal(err.code, '42501');
    assert.equal(err.streamId, s);
    assert.equal(es.isTransient(err), false);
    assert.deepEqual(await versions(s), [1, 2], 'nothing was deleted');

    // Without EXECUTE (PUBLIC has none): 42501 as well.
    await pool.query(`REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA event_store FROM ${role}`);
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${role}`);
    const noExecute = await failure(es.tombstoneStream(client, s, es.ANY));
    await client.query('ROLLBACK');
    assert.equal(noExecute && noExecute.code, '42501');

    // With DELETE on event_store.events and EXECUTE, the delete goes through.
    await pool.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA event_store TO ${role}`);
    await pool.query(`GRANT DELETE ON event_store.events TO ${role}`);
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${role}`);
    assert.equal(await es.deleteStream(client, s, 2), 2);
    await client.query('COMMIT');
    assert.deepEqual(await versions(s), []);
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
    await pool.query(`DROP OWNED BY ${role}`);
    await pool.query(`DROP ROLE ${role}`);
  }
});
