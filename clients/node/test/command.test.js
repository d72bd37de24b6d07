'use strict';

/* handleCommand: the re-read / decide / retry loop. */

const test = require('node:test');
const assert = require('node:assert/strict');
const pg = require('pg');
const es = require('..');
const { createTestDatabase, collect, waitFor } = require('./support/db');

let db;
let pool;

test.before(async () => {
  db = await createTestDatabase();
  pool = db.pool({ max: 16 });
});

test.after(async () => {
  await db.drop();
});

/* A counter: each Incremented event carries the count it makes. */
const counter = {
  initialState: 0,
  evolve(state, event) {
    if (event.type !== 'Incremented') return state;
    if (event.data.count !== state + 1) {
      throw new Error(`event ${event.version} of ${event.streamId} says ${event.data.count}, state is ${state}`);
    }
    return event.data.count;
  },
  decide(state) {
    return [{ type: 'Incremented', data: { count: state + 1 } }];
  },
};

/* A pool that counts the queries of each kind it runs. */
function countingPool(inner) {
  const counts = { append: 0, read: 0 };
  return {
    counts,
    query(config, values) {
      const text = typeof config === 'string' ? config : config.text;
      if (text.includes('append_events')) counts.append++;
      if (text.includes('read_stream')) counts.read++;
      return inner.query(config, values);
    },
  };
}

/*
 * A pool whose first append commits, but whose answer is lost: the caller
 * hears of a lost connection. lost counts the answers lost.
 */
function losingFirstAnswer() {
  const fake = {
    lost: 0,
    async query(config, values) {
      const res = await pool.query(config, values);
      if (fake.lost === 0 && config.text.includes('append_events')) {
        fake.lost++;
        // The append committed, but the client never hears of it.
        throw new Error('Connection terminated unexpectedly');
      }
      return res;
    },
  };
  return fake;
}

/*
 * A pool whose first append is still running on the server when the caller
 * hears of a lost connection: it runs in a transaction that commits 300 ms
 * later.
 */
function firstAppendInFlight() {
  let slow = null;
  return {
    async query(config) {
      if (slow === null && config.text.includes('append_events')) {
        slow = await pool.connect();
        await slow.query('BEGIN');
        await slow.query(config);
        setTimeout(() => slow.query('COMMIT').finally(() => slow.release()), 300);
        throw new Error('Connection terminated unexpectedly');
      }
      return pool.query(config);
    },
  };
}

test('handleCommand loads, decides and appends at the version read', async () => {
  const s = 'counter-basic';
  const r1 = await es.handleCommand(pool, s, counter);
  assert.equal(r1.version, 1);
  assert.equal(r1.attempts, 1);
  assert.equal(r1.alreadyDone, false);
  assert.equal(r1.events.length, 1);
  assert.equal(r1.events[0].version, 1);
  assert.match(r1.events[0].id, /^[0-9a-f-]{36}$/);
  const r2 = await es.handleCommand(pool, s, counter);
  assert.equal(r2.version, 2);
  assert.equal(r2.state, 1);
  const stored = await collect(es.readStream(pool, s));
  assert.deepEqual(stored.map((e) => e.data.count), [1, 2]);
  assert.equal(stored[0].id, r1.events[0].id);
});

test('an empty decision appends nothing', async () => {
  const s = 'counter-empty';
  const r = await es.handleCommand(pool, s, { ...counter, decide: () => [] });
  assert.deepEqual(r, { version: 0, events: [], attempts: 1, alreadyDone: false, state: 0 });
  assert.equal(await es.streamVersion(pool, s), 0);
});

test('a conflict is retried against the new state', async () => {
  const s = 'counter-conflict';
  await es.handleCommand(pool, s, counter);
  let first = true;
  const r = await es.handleCommand(pool, s, {
    ...counter,
    async decide(state) {
      if (first) {
        first = false;
        // Another writer moves the stream between our read and our append.
        await es.appendToStream(pool, s, es.ANY, [{ type: 'Incremented', data: { count: state + 1 } }]);
      }
      return counter.decide(state);
    },
  });
  assert.equal(r.attempts, 2);
  assert.equal(r.version, 3);
  assert.equal(r.state, 2);
});

test('bounded attempts: the last WrongExpectedVersionError is thrown', async () => {
  const s = 'counter-bounded';
  const err = await es
    .handleCommand(pool, s, {
      ...counter,
      async decide(state) {
        await es.appendToStream(pool, s, es.ANY, [{ type: 'Incremented', data: { count: state + 1 } }]);
        return counter.decide(state);
      },
    }, { maxAttempts: 3, baseDelayMs: 1 })
    .then(() => null, (e) => e);
  assert.ok(err instanceof es.WrongExpectedVersionError, String(err));
  assert.equal(err.attempts, 3);
  assert.equal(await es.streamVersion(pool, s), 3);
});

test('errors that are not transient are not retried', async () => {
  const s = 'counter-bad';
  const err = await es
    .handleCommand(pool, s, { ...counter, decide: () => [{ type: '', data: 1 }] })
    .then(() => null, (e) => e);
  assert.ok(err instanceof TypeError);
  const boom = new Error('decide failed');
  await assert.rejects(es.handleCommand(pool, s, { ...counter, decide: () => { throw boom; } }), boom);
});

test('16 concurrent writers on 3 hot streams: no lost update, gapless versions', async () => {
  const streams = ['hot-a', 'hot-b', 'hot-c'];
  const perWriter = 25;
  const cache = es.createStateCache();
  const successes = Object.fromEntries(streams.map((s) => [s, 0]));
  let retried = 0;
  const writers = Array.from({ length: 16 }, async (_, w) => {
    for (let i = 0; i < perWriter; i++) {
      const s = streams[(w + i) % streams.length];
      const r = await es.handleCommand(pool, s, counter, {
        maxAttempts: 1000,
        baseDelayMs: 2,
        maxDelayMs: 50,
        // Half the writers share a state cache; the others read whole streams.
        cache: w % 2 === 0 ? cache : undefined,
      });
      assert.equal(r.alreadyDone, false);
      assert.equal(r.events.length, 1);
      successes[s]++;
      if (r.attempts > 1) retried++;
    }
  });
  await Promise.all(writers);
  assert.ok(retried > 0, 'the writers did conflict');
  let total = 0;
  for (const s of streams) {
    const events = await collect(es.readStream(pool, s));
    const n = successes[s];
    total += n;
    assert.deepEqual(events.map((e) => e.version), Array.from({ length: n }, (_, i) => i + 1));
    const state = events.reduce(counter.evolve, 0);
    assert.equal(state, n);
    assert.equal(await es.streamVersion(pool, s), n);
  }
  assert.equal(total, 16 * perWriter);
});

test('a lost acknowledgement: the retry reports already done and writes nothing twice', async () => {
  for (const withCache of [false, true]) {
    const s = `lost-ack-${withCache}`;
    await es.handleCommand(pool, s, counter);
    const flaky = losingFirstAnswer();
    const cache = withCache ? es.createStateCache() : undefined;
    if (cache) await es.handleCommand(pool, s, counter, { cache });
    const before = await es.streamVersion(pool, s);
    const r = await es.handleCommand(flaky, s, counter, { cache, baseDelayMs: 1 });
    assert.equal(flaky.lost, 1);
    assert.equal(r.alreadyDone, true);
    assert.equal(r.attempts, 2);
    assert.equal(r.version, before + 1);
    assert.equal(await es.streamVersion(pool, s), before + 1, 'written once');
    const events = await collect(es.readStream(pool, s));
    assert.equal(events.reduce(counter.evolve, 0), before + 1);
  }
});

test('an append still in flight when its answer is lost: the retry waits for it, then finds it done', async () => {
  const s = 'lost-ack-in-flight';
  await es.handleCommand(pool, s, counter);
  // The first append runs in a transaction that commits 300 ms later; the
  // client hears of a lost connection at once. The retry first
  // waits for the stream's lock, so it reloads after the commit and finds
  // its own ids stored.
  const r = await es.handleCommand(firstAppendInFlight(), s, counter, { baseDelayMs: 1 });
  assert.equal(r.attempts, 2);
  assert.equal(r.version, 2);
  assert.equal(r.alreadyDone, true);
  assert.deepEqual(r.events, []);
  assert.equal(await es.streamVersion(pool, s), 2, 'written once');
});

test('the same ids at a stale expectation: VE002, already done', async () => {
  const s = 'stale-ids';
  const r1 = await es.handleCommand(pool, s, counter);
  await es.handleCommand(pool, s, counter);
  // A re-decision that reuses the ids of a command already carried out.
  const again = r1.events.map(({ type, data, id }) => ({ type, data, id }));
  const err = await es.appendToStream(pool, s, 2, again).then(() => null, (e) => e);
  assert.ok(err instanceof es.EventAlreadyStoredError);
  assert.equal(err.eventId, r1.events[0].id);
  assert.equal(err.version, 1);
  const r = await es.handleCommand(pool, s, { ...counter, decide: () => again });
  assert.equal(r.alreadyDone, true);
  assert.equal(r.version, 1);
  assert.equal(await es.streamVersion(pool, s), 2);
});

test('ids fixed by the command (say, from a command id) that are already stored: already done', async () => {
  const s = 'cmd-id';
  const id = es.newEventId();
  const once = { ...counter, decide: (state) => [{ type: 'Incremented', data: { count: state + 1 }, id }] };
  const r1 = await es.handleCommand(pool, s, once);
  assert.equal(r1.alreadyDone, false);
  await es.handleCommand(pool, s, counter);
  // The same command delivered again after the stream moved on.
  const r2 = await es.handleCommand(pool, s, once);
  assert.equal(r2.alreadyDone, true);
  assert.equal(r2.version, 1);
  assert.equal(await es.streamVersion(pool, s), 2);
});

test('the state cache reads only the events after the last known version', async () => {
  const s = 'cached-1';
  const cache = es.createStateCache();
  // A pool of its own whose connections count reads: handleCommand fills
  // the cache only from reads it knows were made outside any transaction.
  const p = db.pool({ max: 4 });
  p.counts = { read: 0 };
  p.on('connect', (client) => {
    const query = client.query.bind(client);
    client.query = (config, ...rest) => {
      if (config && typeof config.text === 'string' && config.text.includes('read_stream')) p.counts.read++;
      return query(config, ...rest);
    };
  });
  for (let i = 0; i < 30; i++) await es.handleCommand(p, s, counter, { cache, pageSize: 10 });
  assert.equal(cache.get(s).version, 29);
  const reads = p.counts.read;
  // With the cache, each command reads one short page; without, 30 events
  // would take several pages.
  await es.handleCommand(p, s, counter, { cache, pageSize: 10 });
  assert.equal(p.counts.read - reads, 1);
  const uncached = countingPool(pool);
  await es.handleCommand(uncached, s, counter, { pageSize: 10 });
  assert.equal(uncached.counts.read, 4);
  // Another writer appended; the cached command picks it up and goes on.
  const r = await es.handleCommand(p, s, counter, { cache });
  assert.equal(r.version, 33);
  assert.equal(r.attempts, 1);
  const events = await collect(es.readStream(pool, s));
  assert.equal(events.reduce(counter.evolve, 0), 33);
});

test('initialState as a function gives each command a fresh state', async () => {
  const s = 'fresh-1';
  const list = {
    initialState: () => [],
    evolve: (state, e) => (state.push(e.data), state),
    decide: (state) => [{ type: 'Added', data: state.length }],
  };
  await es.handleCommand(pool, s, list);
  await es.handleCommand(pool, s, list);
  const r = await es.handleCommand(pool, s, list);
  assert.deepEqual(r.state, [0, 1]);
});

test('what decide or evolve throws ends the command at once, unretried', async () => {
  const s = 'refused';
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'StockChanged', data: { stock: 0 } }]);
  let decides = 0;
  let evolves = 0;
  const started = Date.now();
  const refused = await es.handleCommand(pool, s, {
    initialState: { stock: 0 },
    evolve: (st, e) => (evolves++, { stock: e.data.stock }),
    decide: (st) => {
      decides++;
      if (st.stock < 1) throw new Error('out of stock');
      return [];
    },
  }, { baseDelayMs: 200 }).then(() => null, (e) => e);
  assert.equal(refused.message, 'out of stock');
  assert.equal(refused.attempts, 1);
  assert.equal(decides, 1);
  assert.equal(evolves, 1);
  assert.ok(Date.now() - started < 200, 'no backoff');
  const bad = await es.handleCommand(pool, s, {
    initialState: {},
    evolve: () => { evolves++; throw new Error('bad event'); },
    decide: () => [],
  }, { baseDelayMs: 200 }).then(() => null, (e) => e);
  assert.equal(bad.message, 'bad event');
  assert.equal(bad.attempts, 1);
  assert.equal(evolves, 2);
});

test('a caller transaction that rolls back leaves nothing in the state cache', async () => {
  const s = 'rolled-back';
  const cache = es.createStateCache();
  const evolve = (st, e) => ({ stock: st.stock + e.data.delta });
  const add = { initialState: { stock: 0 }, evolve, decide: () => [{ type: 'Added', data: { delta: 1 } }] };
  const sell = {
    initialState: { stock: 0 },
    evolve,
    decide: (st) => {
      if (st.stock < 1) throw new Error('out of stock');
      return [{ type: 'Sold', data: { delta: -1 } }];
    },
  };
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'Added', data: { delta: 1 } }]);
  const client = new pg.Client(db.poolConfig);
  await client.connect();
  try {
    await client.query('BEGIN');
    const r = await es.handleCommand(client, s, add, { cache });
    assert.equal(r.version, 2);
    // Its own reads inside the transaction see version 2.
    await es.handleCommand(client, s, { ...add, decide: () => [] }, { cache });
    await client.query('ROLLBACK');
    assert.equal(cache.get(s), undefined, 'nothing read inside the transaction is cached');
    // Outside a transaction the same client fills the cache.
    await es.handleCommand(client, s, { ...add, decide: () => [] }, { cache });
    assert.equal(cache.get(s).version, 1);
  } finally {
    await client.end();
  }
  // Another writer sells the one item; the cached command must see that.
  await es.handleCommand(pool, s, sell);
  const err = await es.handleCommand(pool, s, sell, { cache }).then(() => null, (e) => e);
  assert.equal(err && err.message, 'out of stock');
  const events = await collect(es.readStream(pool, s));
  assert.equal(events.reduce(evolve, { stock: 0 }).stock, 0);
});

test('reads through an object that is not a pool, whose transaction is unknown, are not cached', async () => {
  const s = 'opaque';
  const cache = es.createStateCache();
  const wrapper = { query: (config) => pool.query(config) };
  const r = await es.handleCommand(wrapper, s, counter, { cache });
  assert.equal(r.version, 1);
  assert.equal(cache.get(s), undefined);
  await es.handleCommand(pool, s, counter, { cache });
  assert.equal(cache.get(s).version, 1, 'the read before the append, through a pool');
});

test('a cached version ahead of the stream: the conflict drops it and the command re-reads', async () => {
  const s = 'cache-ahead';
  await es.handleCommand(pool, s, counter);
  const cache = es.createStateCache();
  // A state the stream never reached (say, from a transaction rolled back).
  cache.set(s, { version: 5, state: 5 });
  const r = await es.handleCommand(pool, s, counter, { cache, baseDelayMs: 1 });
  assert.equal(r.attempts, 2);
  assert.equal(r.version, 2);
  assert.equal(r.state, 1);
  const events = await collect(es.readStream(pool, s));
  assert.equal(events.reduce(counter.evolve, 0), 2);
});

test("inside the caller's transaction a conflict is retried in a savepoint", async () => {
  const s = 'in-tx';
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'A', data: {} }]);
  const client = new pg.Client(db.poolConfig);
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('CREATE TEMP TABLE caller_work (x int) ON COMMIT DROP');
    await client.query('INSERT INTO caller_work VALUES (1)');
    const r = await es.handleCommand(client, s, {
      initialState: 0,
      evolve: (n) => n + 1,
      decide: async (n, { attempt }) => {
        // Another writer moves the stream between the read and the append.
        if (attempt === 1) await es.appendToStream(pool, s, 1, [{ type: 'Other', data: {} }]);
        return [{ type: 'B', data: { seen: n } }];
      },
    }, { baseDelayMs: 1 });
    assert.equal(r.attempts, 2);
    assert.equal(r.version, 3);
    const work = await client.query('SELECT count(*)::int AS n FROM caller_work');
    assert.equal(work.rows[0].n, 1, "the caller's transaction goes on, its work intact");
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  const events = await collect(es.readStream(pool, s));
  assert.deepEqual(events.map((e) => e.type), ['A', 'Other', 'B']);
  assert.equal(events[2].data.seen, 2);
});

test('inside a REPEATABLE READ or SERIALIZABLE transaction a conflict is thrown at once', async () => {
  for (const level of ['REPEATABLE READ', 'SERIALIZABLE']) {
    const s = `in-tx-${level.replace(' ', '-').toLowerCase()}`;
    await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'A', data: {} }]);
    const client = new pg.Client(db.poolConfig);
    await client.connect();
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${level}`);
      await client.query('SELECT 1');
      let decides = 0;
      const err = await es.handleCommand(client, s, {
        initialState: 0,
        evolve: (n) => n + 1,
        decide: async (n, { attempt }) => {
          decides++;
          if (attempt === 1) await es.appendToStream(pool, s, 1, [{ type: 'Other', data: {} }]);
          return [{ type: 'B', data: {} }];
        },
      }, { baseDelayMs: 1 }).then(() => null, (e) => e);
      assert.ok(err instanceof es.EventStoreError, String(err));
      assert.ok(['VE001', '40001'].includes(err.code), err.code);
      assert.equal(err.attempts, 1, level);
      assert.equal(decides, 1);
      // Rolled back to the savepoint: the transaction can still be used.
      assert.equal((await client.query('SELECT 1 AS x')).rows[0].x, 1);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  }
});

test('an object initialState is copied for each command', async () => {
  const handlers = {
    initialState: { stock: 0 },
    // A mutating evolve: documented as wrong, but it must not leak state.
    evolve: (st, e) => {
      st.stock += e.data.delta;
      return st;
    },
    decide: (st) => (st.stock < 1 ? [] : [{ type: 'Sold', data: { delta: -1 } }]),
  };
  await es.appendToStream(pool, 'copy-a', es.NO_STREAM, [{ type: 'Added', data: { delta: 5 } }]);
  await es.appendToStream(pool, 'copy-b', es.NO_STREAM, [{ type: 'Created', data: { delta: 0 } }]);
  const a = await es.handleCommand(pool, 'copy-a', handlers);
  assert.equal(a.events.length, 1);
  const b = await es.handleCommand(pool, 'copy-b', handlers);
  assert.equal(b.events.length, 0, 'stream b has no stock');
  assert.deepEqual(b.state, { stock: 0 });
  assert.deepEqual(handlers.initialState, { stock: 0 });
  class Account {}
  await assert.rejects(
    es.handleCommand(pool, 'copy-c', { ...handlers, initialState: new Account() }),
    TypeError,
  );
  await assert.rejects(
    es.handleCommand(pool, 'copy-c', { ...handlers, initialState: { f() {} } }),
    TypeError,
  );
});

test('a lost acknowledgement of an id given in upper case: already done', async () => {
  for (const form of [(id) => id.toUpperCase(), (id) => `{${id}}`]) {
    const s = `upper-${form('a').length}`;
    const id = form(es.newEventId());
    const r = await es.handleCommand(losingFirstAnswer(), s, {
      initialState: 0,
      evolve: (n) => n + 1,
      decide: () => [{ type: 'Placed', data: {}, id }],
    }, { baseDelayMs: 1 });
    assert.equal(r.alreadyDone, true, id);
    assert.equal(r.version, 1);
    assert.equal(await es.streamVersion(pool, s), 1);
  }
  await assert.rejects(
    es.handleCommand(pool, 'upper-bad', { initialState: 0, evolve: (n) => n, decide: () => [{ type: 'T', data: {}, id: 'nope' }] }),
    TypeError,
  );
});

/* An attempt whose decision depends on the attempt number: 2 events, then 1. */
const shrinking = {
  initialState: 0,
  evolve: (n) => n + 1,
  decide: (n, { attempt }) => Array.from({ length: attempt === 1 ? 2 : 1 }, (_, i) => ({ type: `att${attempt}-${i}`, data: {} })),
};

test('an append still in flight that decided more: the retry waits for it and reports it done', async () => {
  const s = 'in-flight-shrinking';
  // Attempt 1 runs on the server and commits 300 ms later; the client hears
  // of a lost connection now.
  const r = await es.handleCommand(firstAppendInFlight(), s, shrinking, { baseDelayMs: 1 });
  const stored = await collect(es.readStream(pool, s));
  assert.deepEqual(stored.map((e) => e.type), ['att1-0', 'att1-1']);
  assert.equal(r.alreadyDone, true);
  assert.equal(r.version, 2);
  assert.deepEqual(r.events, []);
});

test('an earlier attempt that takes the lock after the wait: the retry reads on and reports it done', async () => {
  const s = 'in-flight-late';
  let first = null;
  let slow = null;
  const flaky = {
    async query(config) {
      if (first === null && config.text.includes('append_events')) {
        // Attempt 1 has not reached the server yet when the client gives up.
        first = config;
        throw new Error('Connection terminated unexpectedly');
      }
      const res = await pool.query(config);
      if (first !== null && slow === null && config.text.includes("'[]'")) {
        // Attempt 1 arrives just after the retry's wait, takes the stream's
        // lock and commits 300 ms later, while the retry reads and appends.
        slow = await pool.connect();
        await slow.query('BEGIN');
        await slow.query(first);
        setTimeout(() => slow.query('COMMIT').finally(() => slow.release()), 300);
      }
      return res;
    },
  };
  const r = await es.handleCommand(flaky, s, shrinking, { baseDelayMs: 1 });
  assert.ok(slow !== null, 'the retry waited for in-flight appends');
  const stored = await collect(es.readStream(pool, s));
  assert.deepEqual(stored.map((e) => e.type), ['att1-0', 'att1-1']);
  assert.equal(r.alreadyDone, true);
  assert.equal(r.version, 2);
  assert.deepEqual(r.events, []);
});

/* Hold a stream's lock in an open transaction; returns the holding client. */
async function holdStreamLock(s) {
  const holder = new pg.Client(db.directConfig);
  await holder.connect();
  await holder.query('BEGIN');
  await es.appendToStream(holder, s, es.ANY, []);
  return holder;
}

/* The backends of this database waiting for a lock, besides those given. */
async function lockWaiters() {
  const res = await pool.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
  return res.rows[0].n;
}

test('a client-side timeout is not retried: the statement is cancelled and nothing is stored', async () => {
  const s = 'query-timeout-pool';
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'A', data: {} }]);
  const timed = db.pool({ max: 2, query_timeout: 200 });
  const holder = await holdStreamLock(s);
  let err;
  try {
    err = await es.handleCommand(timed, s, {
      initialState: 0, evolve: (n) => n + 1, decide: () => [{ type: 'Mine', data: {} }],
    }, { baseDelayMs: 1 }).then(() => null, (e) => e);
    assert.ok(err instanceof Error, 'the command fails');
    assert.equal(err.message, 'Query read timeout');
    assert.equal(err.attempts, 1, 'not retried');
    assert.equal(err.outcomeUnknown, false, 'the cancel was seen to end the append');
    assert.equal(err.cause && err.cause.code, '57014');
    assert.equal(await lockWaiters(), 0, 'no backend still waits for the stream');
  } finally {
    await holder.query('COMMIT');
    await holder.end();
  }
  await new Promise((r) => setTimeout(r, 200));
  const stored = await collect(es.readStream(pool, s));
  assert.deepEqual(stored.map((e) => e.type), ['A'], 'the failed command stored nothing');
  // The connection went back to the pool in working order.
  assert.equal(await es.streamVersion(timed, s), 1);
});

test("a client-side timeout in the caller's transaction leaves nothing for its COMMIT to store", async () => {
  const s = 'query-timeout-in-tx';
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'A', data: {} }]);
  const holder = await holdStreamLock(s);
  const client = new pg.Client({ ...db.poolConfig, query_timeout: 200 });
  await client.connect();
  let err;
  try {
    await client.query('BEGIN');
    await client.query('CREATE TEMP TABLE timed_work (x int) ON COMMIT DROP');
    await client.query('INSERT INTO timed_work VALUES (1)');
    err = await es.handleCommand(client, s, {
      initialState: 0, evolve: (n) => n + 1, decide: () => [{ type: 'Mine', data: {} }],
    }).then(() => null, (e) => e);
    assert.ok(err instanceof Error, 'the command fails');
    // The lock holder lets go only now: an append still queued would go on.
    await holder.query('COMMIT');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await client.query('SELECT count(*)::int AS n FROM timed_work')).rows[0].n, 1);
    await client.query('COMMIT');
  } finally {
    await holder.end();
    await client.end();
  }
  const stored = await collect(es.readStream(pool, s));
  assert.deepEqual(stored.map((e) => e.type), ['A'], "the caller's COMMIT stored no append");
  assert.equal(err.attempts, 1);
  assert.equal(err.outcomeUnknown, false);
  assert.equal(err.rollbackRequired, undefined, 'rolled back to the savepoint');
});

test("inside the caller's transaction every attempt's savepoint is released, under a name of its own", async () => {
  const s = 'savepoints-released';
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'A', data: {} }]);
  const client = new pg.Client(db.poolConfig);
  await client.connect();
  const names = new Set();
  // The client as handleCommand sees it, noting each savepoint name sent.
  const noting = {
    query(config) {
      const m = /SAVEPOINT (\w+)/.exec(config.text);
      if (m) names.add(m[1]);
      return client.query(config);
    },
    getTransactionStatus: () => client.getTransactionStatus(),
  };
  try {
    await client.query('BEGIN');
    await client.query('CREATE TEMP TABLE sp_work (x int) ON COMMIT DROP');
    // The caller's own savepoint, under the name the client once used.
    await client.query('SAVEPOINT event_store_command');
    await client.query('INSERT INTO sp_work VALUES (1)');
    const r = await es.handleCommand(noting, s, {
      initialState: 0,
      evolve: (n) => n + 1,
      decide: async (n, { attempt }) => {
        if (attempt <= 3) await es.appendToStream(pool, s, es.ANY, [{ type: 'Other', data: {} }]);
        return [{ type: 'Mine', data: {} }];
      },
    }, { baseDelayMs: 0 });
    assert.equal(r.attempts, 4);
    assert.ok(names.size > 0 && !names.has('event_store_command'), [...names].join());
    for (const name of names) {
      await client.query('SAVEPOINT probe');
      const left = await client.query(`RELEASE SAVEPOINT ${name}`).then(() => true, () => false);
      await client.query('ROLLBACK TO SAVEPOINT probe');
      await client.query('RELEASE SAVEPOINT probe');
      assert.equal(left, false, `savepoint ${name} left behind`);
    }
    // The caller's savepoint is its own: rolling back to it undoes its work.
    await client.query('ROLLBACK TO SAVEPOINT event_store_command');
    assert.equal((await client.query('SELECT count(*)::int AS n FROM sp_work')).rows[0].n, 0);
    await client.query('RELEASE SAVEPOINT event_store_command');
    assert.equal(await client.query('RELEASE SAVEPOINT event_store_command').then(() => 'released', (e) => e.code), '3B001',
      'exactly one savepoint of that name was on the stack');
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    await client.end();
  }
});

test('a pg Client whose connection is lost is not retried on: the original error is thrown', async () => {
  const s = 'dead-client';
  await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'A', data: {} }]);
  const holder = await holdStreamLock(s);
  const name = `es_node_dead_${process.pid}`;
  const client = new pg.Client({ ...db.directConfig, application_name: name });
  await client.connect();
  client.on('error', () => {});
  const seen = [];
  try {
    const command = es.handleCommand(client, s, {
      initialState: 0, evolve: (n) => n + 1, decide: () => [{ type: 'Mine', data: {} }],
    }, { baseDelayMs: 50, isTransient: (e) => { seen.push(e); return es.isTransient(e); } })
      .then(() => null, (e) => e);
    await waitFor(async () => (await pool.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
      [name])).rows[0].n === 1, { what: 'the append waiting for the lock' });
    await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [name]);
    const err = await command;
    assert.ok(err instanceof es.EventStoreError, String(err));
    assert.equal(err.code, '57P01');
    assert.equal(err.attempts, 1);
    assert.equal(err.outcomeUnknown, true);
    assert.ok(seen.length <= 1, 'asked about the lost connection at most once');
  } finally {
    await holder.query('ROLLBACK');
    await holder.end();
    await client.end().catch(() => {});
  }
});

test('a status that still reads T for a failed transaction gives an error with attempts', async () => {
  const client = new pg.Client(db.poolConfig);
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT 1/0').catch(() => {});
    // As right after a caught error, before pg has read the ReadyForQuery
    // that follows it (through pgbouncer it can come in a later packet).
    const stale = {
      query: (config) => client.query(config),
      getTransactionStatus: () => 'T',
    };
    const err = await es.handleCommand(stale, 'stale-status', {
      initialState: 0, evolve: (n) => n + 1, decide: () => [{ type: 'Mine', data: {} }],
    }).then(() => null, (e) => e);
    assert.ok(err instanceof es.EventStoreError, String(err));
    assert.equal(err.code, '25P02');
    assert.equal(err.attempts, 1);
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    await client.end();
  }
});
