'use strict';

/* Tests that need no database: conversions, validation, ids, error mapping. */

const test = require('node:test');
const assert = require('node:assert/strict');
const es = require('..');
const { serializeEvents } = require('../lib/store');
const { backoffDelay } = require('../lib/command');
const { toInt8Param } = require('../lib/numbers');
const { recordingClient: recordingClientWith } = require('./support/db');

/* A client that records queries; each answers version 1, position 0. */
const recordingClient = () => recordingClientWith([{ version: '1', position: '0' }]);

test('fromInt8 returns numbers while safe and BigInt beyond 2^53 - 1', () => {
  assert.equal(es.fromInt8('0'), 0);
  assert.equal(es.fromInt8('-2'), -2);
  assert.equal(es.fromInt8('123456789012345'), 123456789012345);
  assert.equal(es.fromInt8('9007199254740991'), Number.MAX_SAFE_INTEGER);
  assert.equal(es.fromInt8('9007199254740992'), 9007199254740992n);
  assert.equal(es.fromInt8('9223372036854775807'), 9223372036854775807n);
  assert.equal(es.fromInt8('-9007199254740993'), -9007199254740993n);
  assert.equal(es.fromInt8(null), null);
  assert.equal(es.fromInt8(5n), 5);
});

test('toEvent converts each row: a version and position above 2^53', () => {
  const { toEvent } = require('../lib/store');
  const e = toEvent({
    global_position: '9007199254740993',
    stream_id: 's-1',
    version: '9223372036854775806',
    event_id: '01890000-0000-7000-8000-000000000000',
    event_type: 'T',
    data: { a: 1 },
    metadata: null,
    created_at: new Date(0),
  });
  assert.equal(e.globalPosition, 9007199254740993n);
  assert.equal(e.version, 9223372036854775806n);
  assert.equal(e.type, 'T');
  assert.equal(e.id, '01890000-0000-7000-8000-000000000000');
});

test('an expected version of undefined, null, NaN or a non-integer throws before any query', async () => {
  const client = recordingClient();
  for (const bad of [undefined, null, NaN, 1.5, Infinity, '5', {}, [], true]) {
    await assert.rejects(es.appendToStream(client, 's-1', bad, [{ type: 'T', data: 1 }]), TypeError, String(bad));
  }
  await assert.rejects(es.appendToStream(client, 's-1', 2 ** 53, [{ type: 'T', data: 1 }]), TypeError);
  await assert.rejects(es.appendToStream(client, 's-1', -3, [{ type: 'T', data: 1 }]), RangeError);
  await assert.rejects(es.appendToStream(client, 's-1', -3n, [{ type: 'T', data: 1 }]), RangeError);
  assert.equal(client.queries.length, 0);
});

test('constants and accepted expected versions', async () => {
  assert.equal(es.ANY, -2);
  assert.equal(es.NO_STREAM, 0);
  assert.equal(es.STREAM_EXISTS, -1);
  const client = recordingClient();
  for (const ok of [es.ANY, es.NO_STREAM, es.STREAM_EXISTS, 7, 2n ** 60n]) {
    await es.appendToStream(client, 's-1', ok, [{ type: 'T', data: 1 }]);
  }
  assert.deepEqual(client.queries.map((q) => q.values[1]), ['-2', '0', '-1', '7', String(2n ** 60n)]);
});

test('bad events throw before any query', async () => {
  const client = recordingClient();
  const bad = [
    undefined,
    { type: 'T', data: 1 },
    [null],
    [[{ type: 'T', data: 1 }]],
    [{ data: 1 }],
    [{ type: '', data: 1 }],
    [{ type: 'T' }],
    [{ type: 'T', data: 1, metadata: [1] }],
    [{ type: 'T', data: 1, metadata: 'm' }],
    [{ type: 'T', data: 1, id: 42 }],
    [{ type: 'T', data: 1, id: 'not-a-uuid' }],
    [{ type: 'T', data: 1, id: '01890000-0000-7000-8000-00000000000' }],
    [{ type: 'T', data: 1, id: '{01890000-0000-7000-8000-000000000000' }],
    // JSON.stringify would write these as null: refused instead.
    [{ type: 'T', data: NaN }],
    [{ type: 'T', data: { amount: Infinity } }],
    [{ type: 'T', data: [1, -Infinity] }],
    [{ type: 'T', data: 1, metadata: { score: NaN } }],
  ];
  for (const events of bad) {
    await assert.rejects(es.appendToStream(client, 's-1', 0, events), TypeError, JSON.stringify(events));
  }
  await assert.rejects(es.appendToStream(client, '', 0, []), TypeError);
  await assert.rejects(es.appendToStream(client, undefined, 0, []), TypeError);
  assert.equal(client.queries.length, 0);
});

test('events serialize to one JSON array, never a PostgreSQL array literal', async () => {
  const client = recordingClient();
  const events = [
    { type: 'A', data: [1, 2, [3, 'x']], metadata: { by: 'me' } },
    { type: 'B', data: null, id: '01890000-0000-7000-8000-000000000000', extra: 'left out' },
    { type: 'C', data: '{1,2}' },
  ];
  await es.appendToStream(client, 's-1', 0, events);
  const param = client.queries[0].values[2];
  assert.equal(typeof param, 'string');
  assert.deepEqual(JSON.parse(param), [
    { type: 'A', data: [1, 2, [3, 'x']], metadata: { by: 'me' } },
    { type: 'B', data: null, id: '01890000-0000-7000-8000-000000000000' },
    { type: 'C', data: '{1,2}' },
  ]);
  assert.equal(serializeEvents([]), '[]');
});

test('event ids are checked as uuids and sent in lower-case canonical form', async () => {
  const client = recordingClient();
  const canonical = '0190f0e0-0000-7000-8000-00000000000a';
  const forms = [
    canonical.toUpperCase(),
    `{${canonical}}`,
    canonical.replace(/-/g, ''),
    '0190-f0e0-0000-7000-8000-0000-0000-000A',
  ];
  await es.appendToStream(client, 's-1', 0, forms.map((id) => ({ type: 'T', data: 1, id })));
  const sent = JSON.parse(client.queries[0].values[2]).map((e) => e.id);
  assert.deepEqual(sent, forms.map(() => canonical));
});

test('strings with a lone surrogate are refused before any query', async () => {
  const client = recordingClient();
  const pool = { connect: () => new Promise(() => {}) };
  // U+FFFD is what a lone surrogate turns into on the wire.
  for (const bad of ['a\uD800', 'a\uDC00b', '\uDBFF', 'x\uDC00\uD800y']) {
    await assert.rejects(es.appendToStream(client, bad, 0, []), TypeError, 'stream id');
    await assert.rejects(es.appendToStream(client, 's-1', 0, [{ type: bad, data: 1 }]), TypeError, 'event type');
    await assert.rejects(es.readStreamPage(client, bad), TypeError, 'readStreamPage');
    await assert.rejects(es.streamVersion(client, bad), TypeError, 'streamVersion');
    await assert.rejects(es.readCategory(client, bad), TypeError, 'readCategory');
    await assert.rejects(es.getCheckpoint(client, bad), TypeError, 'getCheckpoint');
    await assert.rejects(es.saveCheckpoint(client, bad, 1), TypeError, 'saveCheckpoint');
    await assert.rejects(
      es.handleCommand(client, bad, { initialState: 0, evolve: (s) => s, decide: () => [] }), TypeError, 'handleCommand');
    assert.throws(() => es.subscribe(pool, { subscriber: bad, handler: () => {} }), TypeError, 'subscriber');
    assert.throws(() => es.subscribe(pool, { subscriber: 'p', category: bad, handler: () => {} }), TypeError, 'category');
  }
  assert.equal(client.queries.length, 0);
  // A well-formed pair is a character like any other.
  await es.appendToStream(client, 's-\uD83D\uDE00', 0, [{ type: 'T\uD83D\uDE00', data: 1 }]);
  assert.equal(client.queries.length, 1);
});

test('toInt8Param', () => {
  assert.equal(toInt8Param(5, 'x'), '5');
  assert.equal(toInt8Param(9223372036854775807n, 'x'), '9223372036854775807');
  assert.throws(() => toInt8Param(9223372036854775808n, 'x'), RangeError);
  assert.throws(() => toInt8Param(0.5, 'x'), TypeError);
});

test('newEventId makes strictly increasing version 7 uuids', () => {
  const ids = [];
  for (let i = 0; i < 20000; i++) ids.push(es.newEventId());
  for (const id of ids) {
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  }
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
  assert.equal(new Set(ids).size, ids.length);
  const ms = parseInt(ids[0].replace(/-/g, '').slice(0, 12), 16);
  assert.ok(Math.abs(ms - Date.now()) < 60000);
});

/* A pg-like server error. */
function pgError(code, message, detail) {
  return Object.assign(new Error(message), { code, detail, severity: 'ERROR' });
}

test('VE001 maps to WrongExpectedVersionError with numbers from DETAIL', () => {
  const cause = pgError('VE001', 'wrong expected version for stream "s-1"', 'Expected version 5, actual version 6.');
  const err = es.mapError(cause, { streamId: 's-1', expected: 5 });
  assert.ok(err instanceof es.WrongExpectedVersionError);
  assert.ok(err instanceof es.EventStoreError);
  assert.equal(err.code, 'VE001');
  assert.equal(err.streamId, 's-1');
  assert.equal(err.expected, 5);
  assert.equal(err.actual, 6);
  assert.equal(err.cause, cause);
  const big = es.mapError(
    pgError('VE001', 'm', 'Expected version -1, actual version 9007199254740993.'),
    { streamId: 's' },
  );
  assert.equal(big.expected, -1);
  assert.equal(big.actual, 9007199254740993n);
  const any = es.mapError(pgError('VE001', 'm', 'Expected version any, actual version 3.'), { expected: -2 });
  assert.equal(any.expected, -2);
});

test('VE002 maps to EventAlreadyStoredError; other SQLSTATEs to EventStoreError', () => {
  const err = es.mapError(
    pgError('VE002', 'event already stored in stream "s-1"', 'Event id 0190F0E0-0000-7000-8000-000000000001 is stored at version 12.'),
    { streamId: 's-1' },
  );
  assert.ok(err instanceof es.EventAlreadyStoredError);
  assert.equal(err.eventId, '0190f0e0-0000-7000-8000-000000000001');
  assert.equal(err.version, 12);
  const dup = es.mapError(pgError('23505', 'event id "0190f0e0-0000-7000-8000-000000000001" already exists in another stream'));
  assert.equal(dup.constructor, es.EventStoreError);
  assert.equal(dup.code, '23505');
  assert.equal(dup.eventId, '0190f0e0-0000-7000-8000-000000000001');
  for (const code of ['22004', '22023', '22001', '2201W', '40001', '40P01', '55P03', '57014', '25006', '42501']) {
    const e = es.mapError(pgError(code, 'x'));
    assert.equal(e.constructor, es.EventStoreError);
    assert.equal(e.code, code);
  }
  const network = new Error('Connection terminated unexpectedly');
  assert.equal(es.mapError(network), network);
});

test('isTransient: conflicts, serialization failures and lost connections', () => {
  assert.ok(es.isTransient(es.mapError(pgError('VE001', 'm', 'Expected version 1, actual version 2.'))));
  assert.ok(es.isTransient(es.mapError(pgError('40001', 'm'))));
  assert.ok(es.isTransient(es.mapError(pgError('40P01', 'm'))));
  assert.ok(es.isTransient(pgError('57P01', 'terminating connection')));
  assert.ok(es.isTransient(new Error('Connection terminated unexpectedly')));
  assert.ok(es.isTransient(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })));
  assert.ok(!es.isTransient(es.mapError(pgError('22023', 'm'))));
  assert.ok(!es.isTransient(es.mapError(pgError('VE002', 'm', 'Event id 0190f0e0-0000-7000-8000-000000000001 is stored at version 1.'))));
  assert.ok(!es.isTransient(new TypeError('bug')));
});

test('isTransient: the SQLSTATEs a retry can fix, lost connections; never a cancel', () => {
  for (const code of ['VE001', '40001', '40P01', '55P03', '08000', '08003', '08006', '57P01', '57P02', '57P03']) {
    assert.ok(es.isTransient(pgError(code, 'm')), code);
    assert.ok(es.isTransient(es.mapError(pgError(code, 'm'))), `${code} mapped`);
  }
  for (const code of ['57014', 'VE002', '23505', '22023', '42501', '25P02', '55000', '53200', '53300', 'XX000']) {
    assert.ok(!es.isTransient(pgError(code, 'm')), code);
    assert.ok(!es.isTransient(es.mapError(pgError(code, 'm'))), `${code} mapped`);
  }
  assert.ok(es.isTransient(new Error('Connection terminated unexpectedly')));
  for (const bug of [new TypeError('x'), new RangeError('x'), new SyntaxError('x'), new ReferenceError('x'), 'a string', null]) {
    assert.ok(!es.isTransient(bug), String(bug));
  }
});

test('handleCommand: what a database call throws is retried, what the application throws is not', async () => {
  const calls = { reads: 0 };
  // A database call that fails without a SQLSTATE (a lost connection) twice.
  const flaky = {
    query(config) {
      if (config.text.includes('read_stream') && ++calls.reads <= 2) {
        return Promise.reject(new Error('Connection terminated unexpectedly'));
      }
      return Promise.resolve({ rows: [] });
    },
  };
  const r = await es.handleCommand(flaky, 's-1', { initialState: 0, evolve: (n) => n, decide: () => [] }, { baseDelayMs: 0 });
  assert.equal(r.attempts, 3);
  // The same error thrown by decide, or a custom isTransient that says yes to
  // everything: decide's error still ends the command at once.
  let decides = 0;
  const err = new Error('Connection terminated unexpectedly');
  await assert.rejects(es.handleCommand(recordingClient(), 's-1', {
    initialState: 0, evolve: (n) => n, decide: () => { decides++; throw err; },
  }, { baseDelayMs: 0, isTransient: () => true }), err);
  assert.equal(decides, 1);
  assert.equal(err.attempts, 1);
  // A decision the client refuses (an event without a type) is no database
  // call's error either.
  decides = 0;
  const refused = await es.handleCommand(recordingClient(), 's-1', {
    initialState: 0, evolve: (n) => n, decide: () => { decides++; return [{ type: '', data: 1 }]; },
  }, { baseDelayMs: 0, isTransient: () => true }).then(() => null, (e) => e);
  assert.ok(refused instanceof TypeError, String(refused));
  assert.equal(decides, 1);
});

test('numeric options are checked: counts are positive integers, delays finite', async () => {
  const client = recordingClient();
  const handlers = { initialState: 0, evolve: (n) => n, decide: () => [] };
  const bad = [
    { maxAttempts: Infinity }, { maxAttempts: 0 }, { maxAttempts: 1.5 }, { maxAttempts: NaN }, { maxAttempts: '3' },
    { maxAttempts: 2 ** 53 },
    { baseDelayMs: Infinity }, { baseDelayMs: -1 }, { baseDelayMs: NaN }, { baseDelayMs: '5' },
    { maxDelayMs: Infinity }, { maxDelayMs: 2 ** 31 },
    { pageSize: 1.5 }, { pageSize: Infinity }, { pageSize: 0 },
    { isTransient: 'yes' }, { cache: {} },
  ];
  for (const options of bad) {
    await assert.rejects(es.handleCommand(client, 's-1', handlers, options), TypeError, JSON.stringify(options));
  }
  assert.equal(client.queries.length, 0);
  await es.handleCommand(client, 's-1', handlers, { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0.5, pageSize: 2 });
  const pool = { connect: () => new Promise(() => {}) };
  for (const options of [
    { pollIntervalMs: Infinity }, { pollIntervalMs: 0 }, { pollIntervalMs: NaN }, { pollIntervalMs: 2 ** 31 },
    { retryDelayMs: Infinity }, { batchSize: 1.5 }, { batchSize: Infinity },
  ]) {
    assert.throws(() => es.subscribe(pool, { subscriber: 'p', handler: () => {}, ...options }), TypeError, JSON.stringify(options));
  }
});

test('backoff has full jitter within an exponential cap', () => {
  for (let attempt = 1; attempt < 40; attempt++) {
    const d = backoffDelay(attempt, 5, 1000);
    assert.ok(d >= 0 && d <= Math.min(1000, 5 * 2 ** (attempt - 1)));
  }
});

test('createStateCache keeps the most recently used streams', () => {
  const cache = es.createStateCache({ max: 2 });
  cache.set('a', { version: 1, state: 1 });
  cache.set('b', { version: 1, state: 2 });
  cache.get('a');
  cache.set('c', { version: 1, state: 3 });
  assert.equal(cache.size, 2);
  assert.ok(cache.get('a'));
  assert.equal(cache.get('b'), undefined);
  assert.ok(cache.get('c'));
});

test('every export is a named export for ESM importers too', async () => {
  const { pathToFileURL } = require('url');
  const ns = await import(pathToFileURL(require.resolve('..')).href);
  for (const name of Object.keys(es)) assert.equal(ns[name], es[name], name);
  assert.equal(ns.default, es);
});

test('subscribe refuses a consumerGroup without a category, before connecting', () => {
  let connects = 0;
  const pool = { connect: () => { connects++; return new Promise(() => {}); } };
  assert.throws(
    () => es.subscribe(pool, { subscriber: 'p', consumerGroup: { member: 0, size: 2 }, handler: () => {} }),
    { name: 'TypeError', message: 'consumerGroup needs a category' },
  );
  assert.equal(connects, 0);
});

test('handleCommand: what initialState, evolve or decide throw ends the command at once', async () => {
  const row = {
    global_position: '1', stream_id: 's-1', version: '1', event_id: '01890000-0000-7000-8000-000000000000',
    event_type: 'T', data: 1, metadata: null, created_at: new Date(0),
  };
  const client = { query: async () => ({ rows: [row] }) };
  const refused = new Error('out of stock');
  const cases = {
    initialState: { initialState: () => { throw refused; }, evolve: (s) => s, decide: () => [] },
    evolve: { initialState: 0, evolve: () => { throw refused; }, decide: () => [] },
    decide: { initialState: 0, evolve: (s) => s, decide: () => { throw refused; } },
    'async decide': { initialState: 0, evolve: (s) => s, decide: async () => { throw refused; } },
  };
  for (const [name, handlers] of Object.entries(cases)) {
    let calls = 0;
    const counted = { ...handlers, decide: (...a) => (calls++, handlers.decide(...a)) };
    delete refused.attempts;
    await assert.rejects(es.handleCommand(client, 's-1', counted, { baseDelayMs: 1 }), refused, name);
    assert.equal(refused.attempts, 1, name);
    assert.ok(calls <= 1, `${name}: decide called ${calls} times`);
  }
});

test('handleCommand recognises its own ids in any case: lost acknowledgement, VE002', async () => {
  // A command whose event id is fixed, in upper case; the store returns ids
  // in lower case. A fake store: one stream, appends of one event.
  const ID = '0190F0E0-0000-7000-8000-0000000000AA';
  function store(events, { loseFirstAnswer }) {
    return {
      async query(config) {
        if (config.text.includes("append_events($1, -2, '[]')")) {
          // The wait after an unknown outcome: nothing is in flight here.
          return { rows: [{ version: String(events.length) }] };
        }
        if (config.text.includes('append_events')) {
          const [e] = JSON.parse(config.values[2]);
          const id = (e.id || `0190f0e0-0000-7000-8000-${String(events.length + 1).padStart(12, '0')}`).toLowerCase();
          const at = events.find((x) => x.event_id === id);
          if (at) throw pgError('VE002', 'event already stored in stream "s-1"', `Event id ${id} is stored at version ${at.version}.`);
          events.push({
            global_position: String(events.length + 1), stream_id: 's-1', version: String(events.length + 1),
            event_id: id, event_type: e.type, data: e.data, metadata: null, created_at: new Date(0),
          });
          if (loseFirstAnswer) {
            loseFirstAnswer = false;
            throw new Error('Connection terminated unexpectedly');
          }
          return { rows: [{ version: String(events.length) }] };
        }
        // read_stream($1, from_version $2, max_count $3, backward $4)
        const from = Number(config.values[1] || 1);
        return { rows: events.filter((x) => Number(x.version) >= from).slice(0, Number(config.values[2] || Infinity)) };
      },
    };
  }
  const command = { initialState: 0, evolve: (s) => s + 1, decide: () => [{ type: 'T', data: 1, id: ID }] };

  // The first append commits and its answer is lost: the retry's reload
  // finds the id.
  const lost = await es.handleCommand(store([], { loseFirstAnswer: true }), 's-1', command, { baseDelayMs: 1 });
  assert.deepEqual([lost.alreadyDone, lost.version, lost.attempts], [true, 1, 2]);

  // Delivered again after the stream moved on: the append meets VE002.
  const events = [];
  await es.handleCommand(store(events, {}), 's-1', command);
  await es.appendToStream(store(events, {}), 's-1', 1, [{ type: 'T', data: 2 }]);
  const again = await es.handleCommand(store(events, {}), 's-1', command);
  assert.deepEqual([again.alreadyDone, again.version, again.attempts], [true, 1, 1]);
});

// ---------------------------------------------------------------------------
// Stream lifecycle, without a server: arguments, queries, results, VE003.

/* A client that records queries and answers each with the one row given for its SQL function. */
function lifecycleClient(rowsByFunction = {}) {
  const queries = [];
  return {
    queries,
    query(config) {
      queries.push(config);
      const fn = /event_store\.(\w+)\(/.exec(config.text)[1];
      return Promise.resolve({ rows: [rowsByFunction[fn] || {}] });
    },
  };
}

test('lifecycle functions: bad arguments throw before any query', async () => {
  const client = lifecycleClient();
  const ID = '0190f0e0-0000-7000-8000-000000000001';
  for (const bad of [undefined, null, '', 5, {}, 'a\uD800']) {
    await assert.rejects(es.deleteStream(client, bad, es.ANY), TypeError, `deleteStream streamId ${String(bad)}`);
    await assert.rejects(es.tombstoneStream(client, bad, es.ANY), TypeError, `tombstoneStream streamId ${String(bad)}`);
    await assert.rejects(es.truncateStream(client, bad, 1), TypeError, `truncateStream streamId ${String(bad)}`);
    await assert.rejects(es.setStreamRetention(client, bad, {}), TypeError, `setStreamRetention streamId ${String(bad)}`);
    await assert.rejects(es.streamInfo(client, bad), TypeError, `streamInfo streamId ${String(bad)}`);
    await assert.rejects(es.eraseStream(client, bad, 'gdpr'), TypeError, `eraseStream streamId ${String(bad)}`);
  }
  // Expected versions as for appends: no default, integers of -2 or more.
  for (const bad of [undefined, null, NaN, 1.5, '3', 2 ** 53, {}, true]) {
    await assert.rejects(es.deleteStream(client, 's-1', bad), TypeError, `deleteStream expected ${String(bad)}`);
    await assert.rejects(es.tombstoneStream(client, 's-1', bad), TypeError, `tombstoneStream expected ${String(bad)}`);
  }
  await assert.rejects(es.deleteStream(client, 's-1'), { name: 'TypeError', message: /NO_STREAM \(0\), STREAM_EXISTS \(-1\) or ANY \(-2\)/ });
  for (const bad of [-3, -3n]) {
    await assert.rejects(es.deleteStream(client, 's-1', bad), RangeError);
    await assert.rejects(es.tombstoneStream(client, 's-1', bad), RangeError);
  }
  for (const bad of [undefined, null, NaN, 1.5, '3', 2 ** 53, true]) {
    await assert.rejects(es.truncateStream(client, 's-1', bad), TypeError, `beforeVersion ${String(bad)}`);
  }
  for (const bad of [0, -1, 0n, 2n ** 63n]) {
    await assert.rejects(es.truncateStream(client, 's-1', bad), RangeError, `beforeVersion ${String(bad)}`);
  }
  // Retention: an object with maxCount and/or maxAge only.
  for (const bad of [undefined, null, 5, 'x', []]) {
    await assert.rejects(es.setStreamRetention(client, 's-1', bad), TypeError, `retention ${String(bad)}`);
  }
  await assert.rejects(es.setStreamRetention(client, 's-1', { max_count: 5 }), { name: 'TypeError', message: /unknown key "max_count"/ });
  await assert.rejects(es.setStreamRetention(client, 's-1', { maxCount: 5, maxAgeDays: 3 }), TypeError);
  for (const bad of [1.5, '5', NaN, true]) {
    await assert.rejects(es.setStreamRetention(client, 's-1', { maxCount: bad }), TypeError, `maxCount ${String(bad)}`);
  }
  for (const bad of [0, -1, 0n]) {
    await assert.rejects(es.setStreamRetention(client, 's-1', { maxCount: bad }), RangeError, `maxCount ${String(bad)}`);
  }
  for (const bad of ['', NaN, Infinity, -Infinity, true, {}, [], 5n, 'x\uDC00']) {
    await assert.rejects(es.setStreamRetention(client, 's-1', { maxAge: bad }), TypeError, `maxAge ${String(bad)}`);
  }
  for (const bad of [0, -1, -0.5, 1e-7]) {
    await assert.rejects(es.setStreamRetention(client, 's-1', { maxAge: bad }), RangeError, `maxAge ${String(bad)}`);
  }
  // Purge: an integer (int4) of 1 or more, or nothing.
  for (const bad of [1.5, '10', NaN, 10n, true, {}]) {
    await assert.rejects(es.purge(client, bad), TypeError, `maxEvents ${String(bad)}`);
  }
  for (const bad of [0, -1, 2 ** 31]) {
    await assert.rejects(es.purge(client, bad), RangeError, `maxEvents ${String(bad)}`);
  }
  // Reasons: non-empty strings.
  for (const bad of [undefined, null, '', 5, {}, 'x\uD800']) {
    await assert.rejects(es.eraseStream(client, 's-1', bad), TypeError, `erase reason ${String(bad)}`);
    await assert.rejects(es.redactEvent(client, ID, bad), TypeError, `redact reason ${String(bad)}`);
  }
  for (const bad of [undefined, null, '', 'not-a-uuid', 5, ID.slice(1), {}]) {
    await assert.rejects(es.redactEvent(client, bad, 'gdpr'), TypeError, `eventId ${String(bad)}`);
  }
  for (const bad of [null, 5, 'x', []]) {
    await assert.rejects(es.redactEvent(client, ID, 'gdpr', bad), TypeError, `redaction ${String(bad)}`);
  }
  await assert.rejects(es.redactEvent(client, ID, 'gdpr', { meta: {} }), { name: 'TypeError', message: /unknown key "meta"/ });
  for (const bad of [() => 1, Symbol('x'), { n: 1n }, NaN, { a: Infinity }]) {
    await assert.rejects(es.redactEvent(client, ID, 'gdpr', { data: bad }), TypeError, `data ${String(bad)}`);
  }
  for (const bad of [5, 'x', [1], { a: NaN }]) {
    await assert.rejects(es.redactEvent(client, ID, 'gdpr', { metadata: bad }), TypeError, `metadata ${String(bad)}`);
  }
  assert.equal(client.queries.length, 0);
});

test('lifecycle functions: one statement each, int8 values as text, results converted', async () => {
  const client = lifecycleClient({
    delete_stream: { version: '7' },
    tombstone_stream: { removed: '9007199254740993' },
    truncate_stream: { first_visible_version: '4' },
    set_stream_retention: { set_stream_retention: '' },
    stream_info: {
      version: '12', first_visible_version: '9', truncate_before: '9', max_count: '3',
      max_age: '90 days', tombstoned: false,
    },
    purge: { removed: '0' },
    erase_stream: { erased: '5' },
    redact_event: { global_position: '9007199254740995' },
  });
  const q = () => client.queries[client.queries.length - 1];

  assert.equal(await es.deleteStream(client, 's-1', 6), 7);
  assert.match(q().text, /event_store\.delete_stream\(/);
  assert.deepEqual(q().values, ['s-1', '6']);
  await es.deleteStream(client, 's-1', es.ANY);
  assert.deepEqual(q().values, ['s-1', '-2']);
  await es.deleteStream(client, 's-1', 9007199254740993n);
  assert.deepEqual(q().values, ['s-1', '9007199254740993']);

  assert.equal(await es.tombstoneStream(client, 's-1', es.NO_STREAM), 9007199254740993n);
  assert.match(q().text, /event_store\.tombstone_stream\(/);
  assert.deepEqual(q().values, ['s-1', '0']);

  assert.equal(await es.truncateStream(client, 's-1', 4), 4);
  assert.deepEqual(q().values, ['s-1', '4']);

  assert.equal(await es.setStreamRetention(client, 's-1', { maxCount: 3, maxAge: '90 days' }), undefined);
  assert.match(q().text, /set_stream_retention\(\$1::text, \$2::bigint, \$3::interval\)/);
  assert.deepEqual(q().values, ['s-1', '3', '90 days']);
  await es.setStreamRetention(client, 's-1', { maxAge: 90 });
  assert.deepEqual(q().values, ['s-1', null, '90.000000 seconds']);
  await es.setStreamRetention(client, 's-1', { maxAge: 1.5, maxCount: null });
  assert.deepEqual(q().values, ['s-1', null, '1.500000 seconds']);
  await es.setStreamRetention(client, 's-1', { maxCount: 10n, maxAge: undefined });
  assert.deepEqual(q().values, ['s-1', '10', null]);
  await es.setStreamRetention(client, 's-1', {});
  assert.deepEqual(q().values, ['s-1', null, null], '{} clears both limits');

  assert.deepEqual(await es.streamInfo(client, 's-1'), {
    version: 12, firstVisibleVersion: 9, truncateBefore: 9, maxCount: 3, maxAge: '90 days', tombstoned: false,
  });
  assert.deepEqual(q().values, ['s-1']);

  assert.equal(await es.purge(client), 0);
  assert.match(q().text, /event_store\.purge\(\)/, 'no argument: the server default');
  assert.deepEqual(q().values, []);
  await es.purge(client, 500);
  assert.match(q().text, /event_store\.purge\(\$1::integer\)/);
  assert.deepEqual(q().values, [500]);

  assert.equal(await es.eraseStream(client, 's-1', 'request 42'), 5);
  assert.deepEqual(q().values, ['s-1', 'request 42']);

  const upper = '0190F0E0-0000-7000-8000-0000000000AA';
  assert.equal(await es.redactEvent(client, upper, 'gdpr'), 9007199254740995n);
  assert.match(q().text, /redact_event\(\$1::uuid, \$2::text, \$3::jsonb, \$4::jsonb\)/);
  assert.deepEqual(q().values, ['0190f0e0-0000-7000-8000-0000000000aa', 'gdpr', '{}', null], 'data defaults to {}');
  await es.redactEvent(client, `{${upper}}`, 'gdpr', { data: { name: null }, metadata: { redacted: true } });
  assert.deepEqual(q().values, ['0190f0e0-0000-7000-8000-0000000000aa', 'gdpr', '{"name":null}', '{"redacted":true}']);
  await es.redactEvent(client, upper, 'gdpr', { data: null, metadata: null });
  assert.deepEqual(q().values.slice(2), ['null', null], 'data null is JSON null');
  await es.redactEvent(client, upper, 'gdpr', {});
  assert.deepEqual(q().values.slice(2), ['{}', null]);
  assert.equal(client.queries.length, 18);
});

test('VE003 maps to StreamTombstonedError, which is not transient', () => {
  const cause = pgError('VE003', 'stream "acct-1" is tombstoned', undefined);
  const err = es.mapError(cause, { streamId: 'acct-1' });
  assert.ok(err instanceof es.StreamTombstonedError);
  assert.ok(err instanceof es.EventStoreError);
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'StreamTombstonedError');
  assert.equal(err.code, 'VE003');
  assert.equal(err.streamId, 'acct-1');
  assert.equal(err.cause, cause);
  assert.equal(err.message, cause.message);
  // Without a call's stream (an error of the caller's own SQL), the one the message names.
  assert.equal(es.mapError(pgError('VE003', 'stream "a "b"\nc" is tombstoned')).streamId, 'a "b"\nc');
  assert.equal(es.mapError(pgError('VE003', 'tombstoned')).streamId, undefined);
  assert.ok(!es.isTransient(err));
  assert.ok(!es.isTransient(cause));
});

test('handleCommand does not retry an append refused with VE003', async () => {
  let appends = 0;
  const client = {
    async query(config) {
      if (config.text.includes('append_events')) {
        appends++;
        throw pgError('VE003', 'stream "s-1" is tombstoned');
      }
      return { rows: [] };
    },
  };
  const command = { initialState: 0, evolve: (s) => s, decide: () => [{ type: 'T', data: 1 }] };
  const err = await es.handleCommand(client, 's-1', command, { baseDelayMs: 0, maxAttempts: 5 }).then(() => null, (e) => e);
  assert.ok(err instanceof es.StreamTombstonedError, String(err));
  assert.equal(err.attempts, 1);
  assert.equal(appends, 1);
});

test('isLifecycleEvent: the $lifecycle stream and a type beginning with $', () => {
  const event = (streamId, type) => ({ streamId, type, version: 1, data: {} });
  assert.equal(es.LIFECYCLE_STREAM, '$lifecycle');
  for (const type of ['$deleted', '$truncated', '$retention', '$tombstoned', '$erased', '$redacted', '$']) {
    assert.equal(es.isLifecycleEvent(event('$lifecycle', type)), true, type);
  }
  assert.equal(es.isLifecycleEvent(event('$lifecycle', 'deleted')), false);
  assert.equal(es.isLifecycleEvent(event('acct-1', '$deleted')), false);
  assert.equal(es.isLifecycleEvent(event('$lifecycle-x', '$deleted')), false);
  assert.equal(es.isLifecycleEvent(event('$Lifecycle', '$deleted')), false);
  assert.equal(es.isLifecycleEvent({ stream_id: '$lifecycle', type: '$deleted' }), false, 'a raw row is not an event');
  for (const bad of [null, undefined, 5, '$lifecycle', {}]) assert.equal(es.isLifecycleEvent(bad), false);
});

test('filtered reads: the unfiltered calls keep their 0.4.0 form; filters go as text arrays', async () => {
  const client = recordingClientWith([]);
  const q = () => client.queries[client.queries.length - 1];
  await es.readAll(client, { after: 5, maxCount: 10 });
  assert.match(q().text, /event_store\.read_all\(\$1, \$2\)/);
  assert.deepEqual(q().values, ['5', '10']);
  const types = ['A', 'B'];
  await es.readAll(client, { eventTypes: types });
  assert.match(q().text, /event_store\.read_all\(\$1, \$2, \$3::text\[\], \$4::text\[\]\)/);
  assert.deepEqual(q().values, ['0', '1000', ['A', 'B'], null]);
  assert.notEqual(q().values[2], types, 'the array is copied');
  await es.readAll(client, { categories: [] });
  assert.deepEqual(q().values, ['0', '1000', null, []]);
  await es.readCategory(client, 'c', { consumerGroup: { member: 1, size: 2 } });
  assert.match(q().text, /event_store\.read_category\(\$1, \$2, \$3, \$4, \$5\)/);
  assert.deepEqual(q().values, ['c', '0', '1000', 1, 2]);
  await es.readCategory(client, 'c', { eventTypes: ['X'], after: 9007199254740993n });
  assert.match(q().text, /event_store\.read_category\(\$1, \$2, \$3, \$4, \$5, \$6::text\[\]\)/);
  assert.deepEqual(q().values, ['c', '9007199254740993', '1000', null, null, ['X']]);
  for (const bad of ['A', [''], [1], [null], {}, ['\uD800']]) {
    await assert.rejects(es.readAll(client, { eventTypes: bad }), TypeError);
    await assert.rejects(es.readAll(client, { categories: bad }), TypeError);
    await assert.rejects(es.readCategory(client, 'c', { eventTypes: bad }), TypeError);
    await assert.rejects(es.readAllWithPosition(client, { eventTypes: bad }), TypeError);
  }
  assert.equal(client.queries.length, 5);
});

test('readAllWithPosition: one statement; the page and the position from its rows', async () => {
  const row = (p) => ({
    read_position: '9007199254740995', global_position: p, stream_id: 's-1', version: '1',
    event_id: '01890000-0000-7000-8000-000000000000', event_type: 'T', data: {}, metadata: null,
    created_at: new Date(0),
  });
  const client = recordingClientWith([row('7'), row('9')]);
  const page = await es.readAllWithPosition(client, { after: 3, eventTypes: ['T'] });
  assert.equal(client.queries.length, 1);
  assert.match(client.queries[0].text, /last_read_position\(\)/);
  assert.deepEqual(client.queries[0].values, ['3', '1000', ['T'], null]);
  assert.deepEqual(page.events.map((e) => e.globalPosition), [7, 9]);
  assert.equal(page.position, 9007199254740995n);
  // An empty page is one row of NULL event columns.
  const empty = await es.readCategoryWithPosition(recordingClientWith([{ ...row(null), read_position: '12' }]), 'c');
  assert.deepEqual(empty, { events: [], position: 12 });
});

test('waitForEvent: its parameters, and null at the timeout', async () => {
  const client = recordingClientWith([{ position: null }]);
  assert.equal(await es.waitForEvent(client, { after: 4, timeoutMs: 1500, category: 'c', eventTypes: ['T'] }), null);
  assert.match(client.queries[0].text, /event_store\.wait_for_event\(\$1, make_interval\(secs => \$2::double precision\), \$3, \$4::text\[\]\)/);
  assert.deepEqual(client.queries[0].values, ['4', '1.5', 'c', ['T']]);
  await es.waitForEvent(client);
  assert.deepEqual(client.queries[1].values, ['0', '30', null, null]);
  const found = await es.waitForEvent(recordingClientWith([{ position: '9007199254740993' }]), { timeoutMs: 0 });
  assert.equal(found, 9007199254740993n);
  for (const timeoutMs of [-1, NaN, Infinity, '10', null]) {
    await assert.rejects(es.waitForEvent(client, { timeoutMs }), TypeError);
  }
  await assert.rejects(es.waitForEvent(client, { after: -1 }), RangeError);
  await assert.rejects(es.waitForEvent(client, { category: '' }), TypeError);
  await assert.rejects(es.waitForEvent(client, { signal: 'abort' }), TypeError);
  const aborted = AbortSignal.abort();
  await assert.rejects(es.waitForEvent(client, { signal: aborted }), { name: 'AbortError' });
  // A signal needs a connection it can cancel a statement on.
  await assert.rejects(es.waitForEvent(client, { signal: new AbortController().signal }), TypeError);
  assert.equal(client.queries.length, 2);
});

test('parking: which errors are parked and which fail the batch', () => {
  const { parkable, errorText } = require('../lib/parked');
  const server = (code) => Object.assign(new Error(code), { code, severity: 'ERROR' });
  assert.equal(parkable(new Error('the handler refused')), true);
  assert.equal(parkable(new TypeError('a bug')), true);
  assert.equal(parkable('a string'), true);
  for (const code of ['23505', '22P02', '42501', '25P02', 'P0001', 'VE003']) assert.equal(parkable(server(code)), true, code);
  for (const code of ['40001', '40P01', '55P03', '57014', '08006', '57P01', 'VE001']) assert.equal(parkable(server(code)), false, code);
  assert.equal(parkable(es.mapError(server('40001'))), false);
  assert.equal(parkable(new Error('Query read timeout')), false);
  assert.equal(errorText(new RangeError('out of range')), 'RangeError: out of range');
  assert.equal(errorText('plain\u0000text'), 'plaintext');
  assert.equal(errorText({ toString() { throw new Error('no'); } }), '[object Object]');
});

test('subscribe and the parking functions refuse bad options before any query', async () => {
  let connects = 0;
  const pool = { connect: () => { connects++; return new Promise(() => {}); } };
  const h = () => {};
  for (const options of [
    { subscriber: 's', handler: h, eventTypes: 'T' },
    { subscriber: 's', handler: h, eventTypes: [''] },
    { subscriber: 's', handler: h, categories: 'c' },
    { subscriber: 's', handler: h, category: 'c', categories: ['d'] },
    { subscriber: 's', handler: h, onEventError: 'skip' },
    { subscriber: 's', handler: h, onEventError: true },
    { subscriber: 's', handler: h, onParked: 'log' },
  ]) {
    assert.throws(() => es.subscribe(pool, options), TypeError, JSON.stringify(options));
  }
  assert.equal(connects, 0);
  const client = recordingClientWith([]);
  await assert.rejects(es.parkEvent(client, 's', 1, 42), TypeError);
  await assert.rejects(es.parkEvent(client, 's', 0, 'e'), RangeError);
  await assert.rejects(es.parkEvent(client, '', 1, 'e'), TypeError);
  await assert.rejects(es.unparkEvent(client, 's', 1.5), TypeError);
  await assert.rejects(es.readParked(client, 's', { maxCount: -1 }), RangeError);
  await assert.rejects(es.replayParked(client, 's', null), TypeError);
  await assert.rejects(es.replayParked(client, 's', h, { pageSize: 0 }), TypeError);
  await assert.rejects(es.subscriptions(client, { subscriber: '' }), TypeError);
  assert.equal(client.queries.length, 0);
});
