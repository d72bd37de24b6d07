'use strict';

/* subscribe: the exactly-once projection runner. */

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { fork } = require('child_process');
const es = require('..');
const { createTestDatabase, waitFor } = require('./support/db');

let db;
let pool;

test.before(async () => {
  db = await createTestDatabase();
  pool = db.pool({ max: 12 });
});

test.after(async () => {
  await db.drop();
});

/* The last global position in the store. */
async function headPosition() {
  const res = await pool.query('SELECT coalesce(max(global_position), 0) AS p FROM event_store.events');
  return Number(res.rows[0].p);
}

test('a runner applies every event once and stops on request', async () => {
  await pool.query('CREATE TABLE seen_a (global_position bigint PRIMARY KEY, stream_id text)');
  for (let i = 0; i < 5; i++) {
    await es.appendToStream(pool, `a-${i}`, es.ANY, [{ type: 'T', data: i }, { type: 'T', data: i }]);
  }
  const batches = [];
  const handle = es.subscribe(pool, {
    subscriber: 'runner-a',
    batchSize: 3,
    pollIntervalMs: 20,
    async handler(client, events) {
      batches.push(events.length);
      await client.query({
        text: 'INSERT INTO seen_a SELECT unnest($1::bigint[]), unnest($2::text[])',
        values: [events.map((e) => String(e.globalPosition)), events.map((e) => e.streamId)],
      });
    },
  });
  await waitFor(async () => handle.position === (await headPosition()), { what: 'catch-up' });
  await es.appendToStream(pool, 'a-9', es.ANY, [{ type: 'T', data: 9 }]);
  await waitFor(async () => handle.position === (await headPosition()), { what: 'the new event' });
  await handle.stop();
  await handle.done;
  assert.ok(batches.every((n) => n <= 3));
  const seen = await pool.query('SELECT count(*)::int AS n FROM seen_a');
  assert.equal(seen.rows[0].n, 11);
  assert.equal(await es.getCheckpoint(pool, 'runner-a'), await headPosition());
});

test('a category runner with LISTEN is woken at once, and a failed batch is rolled back', async () => {
  await pool.query('CREATE TABLE seen_b (global_position bigint PRIMARY KEY)');
  const errors = [];
  let failOnce = true;
  // Appended before the runner starts, so that its first read finds them
  // (appended after, they could land just after that read, and the runner
  // would sleep for its minute-long poll interval).
  await es.appendToStream(pool, 'wasp-1', es.ANY, [{ type: 'T', data: 0 }]);
  await es.appendToStream(pool, 'bee-1', es.ANY, [{ type: 'T', data: 1 }]);
  const handle = es.subscribe(pool, {
    subscriber: 'runner-b',
    category: 'bee',
    batchSize: 100,
    pollIntervalMs: 60000,
    retryDelayMs: 20,
    listen: db.directConfig,
    onError: (err) => errors.push(err),
    async handler(client, events) {
      await client.query({
        text: 'INSERT INTO seen_b SELECT unnest($1::bigint[])',
        values: [events.map((e) => String(e.globalPosition))],
      });
      for (const e of events) assert.ok(e.streamId.startsWith('bee-'));
      if (failOnce) {
        failOnce = false;
        throw new Error('handler failed');
      }
    },
  });
  try {
    // The first batch fails (its insert rolls back) and is retried.
    await waitFor(async () => (await es.getCheckpoint(pool, 'runner-b')) > 0, { what: 'first batch', timeoutMs: 10000 });
    assert.equal(errors.length, 1);
    assert.equal(errors[0].message, 'handler failed');
    // Give the LISTEN connection a moment, then append with a notification:
    // the runner, idle for a minute otherwise, picks it up at once.
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await es.appendToStream(pool, 'bee-2', es.ANY, [{ type: 'T', data: 2 }], { notify: true });
    const target = await headPosition();
    await waitFor(() => handle.position === target, { what: 'notified batch', timeoutMs: 10000, intervalMs: 10 });
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    await handle.stop();
  }
  const seen = await pool.query('SELECT count(*)::int AS n FROM seen_b');
  assert.equal(seen.rows[0].n, 2);
});

test('without onError a failing handler ends the runner and done rejects', async () => {
  await es.appendToStream(pool, 'c-1', es.ANY, [{ type: 'T', data: 1 }]);
  const handle = es.subscribe(pool, {
    subscriber: 'runner-c',
    handler: async () => {
      throw new Error('poison');
    },
  });
  await assert.rejects(handle.done, /poison/);
  assert.equal(await es.getCheckpoint(pool, 'runner-c'), 0);
});

test('two runners of one subscriber never apply a batch twice', async () => {
  await pool.query('CREATE TABLE seen_d (global_position bigint PRIMARY KEY)');
  const start = await headPosition();
  await es.saveCheckpoint(pool, 'runner-d', start);
  const errors = [];
  const runner = () =>
    es.subscribe(pool, {
      subscriber: 'runner-d',
      category: 'dee',
      batchSize: 7,
      pollIntervalMs: 5,
      onError: (err) => errors.push(err),
      async handler(client, events) {
        await client.query({
          text: 'INSERT INTO seen_d SELECT unnest($1::bigint[])',
          values: [events.map((e) => String(e.globalPosition))],
        });
      },
    });
  const handles = [runner(), runner()];
  for (let i = 0; i < 60; i++) {
    await es.appendToStream(pool, `dee-${i % 4}`, es.ANY, [{ type: 'T', data: i }, { type: 'T', data: i }]);
  }
  const target = await headPosition();
  await waitFor(async () => (await es.getCheckpoint(pool, 'runner-d')) === target, { what: 'catch-up' });
  await Promise.all(handles.map((h) => h.stop()));
  assert.deepEqual(errors, []);
  const seen = await pool.query('SELECT count(*)::int AS n FROM seen_d');
  assert.equal(seen.rows[0].n, 120);
});

test('while another session holds the subscriber lock, the runner idles and stop() returns at once', async () => {
  const start = await headPosition();
  await es.saveCheckpoint(pool, 'runner-e', start);
  for (let i = 0; i < 3; i++) await es.appendToStream(pool, `eee-${i}`, es.ANY, [{ type: 'T', data: i }]);
  // Another runner's batch in progress: its transaction holds the lock.
  const holder = await pool.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', ['runner-e']);
  let applied = 0;
  const errors = [];
  const options = {
    subscriber: 'runner-e',
    category: 'eee',
    pollIntervalMs: 50,
    onError: (err) => errors.push(err),
    async handler(client, events) {
      applied += events.length;
    },
  };
  let handle = es.subscribe(pool, options);
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lockWaits = await pool.query(
      'SELECT count(*)::int AS n FROM pg_locks ' +
      "WHERE locktype = 'advisory' AND objsubid = 1 AND NOT granted " +
      'AND database = (SELECT oid FROM pg_database WHERE datname = current_database())');
    assert.equal(lockWaits.rows[0].n, 0, 'no session waits for the lock');
    const stopping = Date.now();
    await handle.stop();
    assert.ok(Date.now() - stopping < 1000, `stop() took ${Date.now() - stopping} ms`);
    assert.equal(applied, 0);
  } finally {
    await holder.query('ROLLBACK');
    holder.release();
  }
  // Once the lock is free, a runner applies the batch.
  handle = es.subscribe(pool, options);
  await waitFor(async () => (await es.getCheckpoint(pool, 'runner-e')) === (await headPosition()), { what: 'catch-up' });
  await handle.stop();
  assert.equal(applied, 3);
  assert.deepEqual(errors, []);
});

/* Start the projector child process; resolves once it runs. */
function startProjector(env) {
  const child = fork(path.join(__dirname, 'support', 'projector.js'), [], {
    env: { ...process.env, ES_PROJECTOR: JSON.stringify(env) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.lastPosition = 0;
  child.batches = 0;
  child.on('message', (m) => {
    if (m.position !== undefined) {
      child.lastPosition = m.position;
      child.batches++;
    }
    if (m.error) child.failure = m.error;
  });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

test('the projector killed and restarted mid-load applies every event exactly once', async (t) => {
  await pool.query(
    'CREATE TABLE rm_counts (stream_id text PRIMARY KEY, events bigint NOT NULL, last_version bigint NOT NULL)',
  );
  await pool.query('CREATE TABLE rm_applied (global_position bigint PRIMARY KEY)');
  const env = { poolConfig: db.poolConfig, subscriber: 'projector', category: 'proj', batchSize: 50 };

  // Writers: 8 concurrent, 3,200 events in batches of 1 to 4 over 40
  // streams of the category, and some events of another category.
  const total = 3200;
  let written = 0;
  let writersDone = false;
  const writers = Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      let i = 0;
      while (written < total) {
        const n = 1 + ((w + i) % 4);
        written += n;
        const events = Array.from({ length: n }, (_, k) => ({ type: 'T', data: { w, i, k } }));
        await es.appendToStream(pool, `proj-${(w * 7 + i) % 40}`, es.ANY, events);
        if (i % 10 === 0) await es.appendToStream(pool, `other-${w}`, es.ANY, [{ type: 'T', data: i }]);
        i++;
        // Pace the writers so that the load spans several projector batches.
        await new Promise((r) => setTimeout(r, 3));
      }
    }),
  ).then(() => {
    writersDone = true;
  });

  let child = startProjector(env);
  const kills = [];
  for (const threshold of [8, 20]) {
    await waitFor(() => child.batches >= threshold || child.failure, { what: 'projector progress', timeoutMs: 60000, intervalMs: 5 });
    assert.equal(child.failure, undefined);
    const before = await es.getCheckpoint(pool, 'projector');
    child.kill('SIGKILL');
    const exit = await child.exited;
    assert.equal(exit.signal, 'SIGKILL');
    kills.push({ checkpoint: before, writersDone });
    t.diagnostic(`SIGKILL at checkpoint ${before}, ${written} events written, writers ${writersDone ? 'done' : 'running'}`);
    child = startProjector(env);
  }
  await writers;
  assert.ok(kills.some((k) => !k.writersDone), 'a kill landed while the writers were running');
  const categoryHead = async () => {
    const r = await pool.query(
      "SELECT coalesce(max(global_position), 0) AS p FROM event_store.events WHERE stream_id LIKE 'proj-%'",
    );
    return Number(r.rows[0].p);
  };
  const target = await categoryHead();
  // The checkpoint is how far the read got (last_read_position, 0.5.0): past
  // the category's last event when other categories' events follow it.
  await waitFor(async () => child.failure || (await es.getCheckpoint(pool, 'projector')) >= target,
    { what: 'the restarted projector to catch up', timeoutMs: 120000 });
  assert.equal(child.failure, undefined);
  child.send('stop');
  assert.equal((await child.exited).code, 0);

  // A fresh fold of all events, compared with the read model.
  const fold = new Map();
  let after = 0;
  for (;;) {
    const page = await es.readAll(pool, { after, maxCount: 1000 });
    if (page.length === 0) break;
    for (const e of page) {
      if (!e.streamId.startsWith('proj-')) continue;
      const s = fold.get(e.streamId) || { events: 0, lastVersion: 0 };
      s.events++;
      s.lastVersion = e.version;
      fold.set(e.streamId, s);
    }
    after = page[page.length - 1].globalPosition;
  }
  const model = await pool.query('SELECT stream_id, events::int, last_version::int FROM rm_counts');
  const byStream = new Map(model.rows.map((r) => [r.stream_id, r]));
  assert.equal(byStream.size, fold.size);
  let sum = 0;
  for (const [streamId, s] of fold) {
    const row = byStream.get(streamId);
    assert.ok(row, streamId);
    assert.equal(row.events, s.events, `events of ${streamId}`);
    assert.equal(row.last_version, s.lastVersion, `last version of ${streamId}`);
    assert.equal(row.events, row.last_version);
    sum += s.events;
  }
  assert.ok(sum >= total);
  const applied = await pool.query('SELECT count(*)::int AS n FROM rm_applied');
  assert.equal(applied.rows[0].n, sum);
});

test('a connection lost while the handler is busy fails the batch: onError hears of it, or done rejects', async () => {
  await pool.query('CREATE TABLE seen_lost (global_position bigint PRIMARY KEY)');
  await es.appendToStream(pool, 'lost-1', es.ANY, [{ type: 'T', data: 1 }]);
  const runnerPool = db.pool({ max: 2 });
  const killed = [];
  /* Terminate the server backend of the batch's connection, then keep the handler busy. */
  async function killDuringHandler(client, events) {
    if (killed.length === 0) {
      const { pid } = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0];
      killed.push(pid);
      await pool.query('SELECT pg_terminate_backend($1)', [pid]);
      // Something other than a query (an HTTP call, say) while the connection dies.
      await new Promise((r) => setTimeout(r, 500));
    }
    await client.query({
      text: 'INSERT INTO seen_lost SELECT unnest($1::bigint[])',
      values: [events.map((e) => String(e.globalPosition))],
    });
  }
  const errors = [];
  const target = (await es.readStreamPage(pool, 'lost-1'))[0].globalPosition;
  const handle = es.subscribe(runnerPool, {
    subscriber: 'runner-lost',
    category: 'lost',
    pollIntervalMs: 20,
    retryDelayMs: 20,
    handler: killDuringHandler,
    onError: (err) => errors.push(err),
  });
  try {
    await waitFor(() => handle.position === target, { what: 'the batch applied after the loss' });
  } finally {
    await handle.stop();
  }
  assert.equal(errors.length, 1, errors.map(String).join());
  assert.doesNotMatch(errors[0].message, /not queryable/, 'the loss itself is reported');
  const seen = await pool.query('SELECT count(*)::int AS n FROM seen_lost');
  assert.equal(seen.rows[0].n, 1);

  // Without onError, the runner ends and done rejects.
  killed.length = 0;
  await es.appendToStream(pool, 'lost-2', es.ANY, [{ type: 'T', data: 2 }]);
  const bare = es.subscribe(runnerPool, { subscriber: 'runner-lost-bare', category: 'lost', handler: killDuringHandler });
  await assert.rejects(bare.done);
  assert.equal(await es.getCheckpoint(pool, 'runner-lost-bare'), 0);
});
