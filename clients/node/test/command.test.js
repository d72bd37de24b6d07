'use strict';

/* handleCommand: the re-read / decide / retry loop. */

const test = require('node:test');
const assert = require('node:assert/strict');
const es = require('..');
const { createTestDatabase, collect } = require('./support/db');

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
    let lost = 0;
    const flaky = {
      async query(config, values) {
        const res = await pool.query(config, values);
        if (lost === 0 && config.text.includes('append_events')) {
          lost++;
          // The append committed, but the client never hears of it.
          throw new Error('Connection terminated unexpectedly');
        }
        return res;
      },
    };
    const cache = withCache ? es.createStateCache() : undefined;
    if (cache) await es.handleCommand(pool, s, counter, { cache });
    const before = await es.streamVersion(pool, s);
    const r = await es.handleCommand(flaky, s, counter, { cache, baseDelayMs: 1 });
    assert.equal(lost, 1);
    assert.equal(r.alreadyDone, true);
    assert.equal(r.attempts, 2);
    assert.equal(r.version, before + 1);
    assert.equal(await es.streamVersion(pool, s), before + 1, 'written once');
    const events = await collect(es.readStream(pool, s));
    assert.equal(events.reduce(counter.evolve, 0), before + 1);
  }
});

test('an append still in flight when its answer is lost: the retry is an idempotent repeat', async () => {
  const s = 'lost-ack-in-flight';
  await es.handleCommand(pool, s, counter);
  let slow = null;
  // The first append runs in a transaction that commits 300 ms later; the
  // client gives up at once (as on a client-side timeout), so the retry
  // reloads before the commit, decides the same, and its append waits for
  // the stream's lock and then finds its own ids stored where it expects.
  const flaky = {
    async query(config) {
      if (slow === null && config.text.includes('append_events')) {
        slow = await pool.connect();
        await slow.query('BEGIN');
        await slow.query(config);
        setTimeout(() => slow.query('COMMIT').finally(() => slow.release()), 300);
        throw new Error('Query read timeout');
      }
      return pool.query(config);
    },
  };
  const r = await es.handleCommand(flaky, s, counter, { baseDelayMs: 1 });
  assert.equal(r.attempts, 2);
  assert.equal(r.version, 2);
  assert.equal(await es.streamVersion(pool, s), 2, 'written once');
  const events = await collect(es.readStream(pool, s));
  assert.equal(events[1].id, r.events[0].id);
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
  const p = countingPool(pool);
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
