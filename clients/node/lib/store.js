'use strict';

/*
 * Appends, stream reads, the global log, checkpoints and snapshots: one
 * function per SQL function of the extension, each one round trip.
 *
 * Every function takes a `client`: anything with pg's query(config) method,
 * so a pg.Client, a pg.PoolClient or a pg.Pool. Queries use unnamed
 * statements, which work through pgbouncer in transaction mode.
 *
 * Through a pg.Pool each query checks a connection out and back in itself,
 * rather than through pool.query(): pool.query() hands the connection back
 * with the query's error, and the pool then closes it, so every conflict
 * (VE001) would cost a new connection.
 */

const pg = require('pg');
const { fromInt8, toInt8Param, describe } = require('./numbers');
const { mapError, hasSqlState } = require('./errors');
const { normalizeUuid } = require('./uuid');

/* Expected version: append without a check. */
const ANY = -2;
/* Expected version: the stream must not exist yet. */
const NO_STREAM = 0;
/* Expected version: the stream must exist (have at least one event). */
const STREAM_EXISTS = -1;

const EVENT_COLUMNS =
  'global_position, stream_id, version, event_id, event_type, data, metadata, created_at';

const APPEND_SQL = 'SELECT event_store.append_events($1, $2, $3::jsonb) AS version';
// The materialized CTE runs set_config before the append, in the same
// transaction, so the append's commit sends the notification.
const APPEND_NOTIFY_SQL =
  "WITH n AS MATERIALIZED (SELECT set_config('event_store.notify', 'on', true)) " +
  'SELECT event_store.append_events($1, $2, $3::jsonb) AS version FROM n';
const READ_STREAM_SQL =
  `SELECT ${EVENT_COLUMNS} FROM event_store.read_stream($1, $2, $3, $4)`;
const STREAM_VERSION_SQL = 'SELECT event_store.stream_version($1) AS version';
const READ_ALL_SQL = `SELECT ${EVENT_COLUMNS} FROM event_store.read_all($1, $2)`;
const READ_CATEGORY_SQL =
  `SELECT ${EVENT_COLUMNS} FROM event_store.read_category($1, $2, $3, $4, $5)`;
// The filtered forms (0.5.0). Without filters the calls above are sent, so
// that unfiltered reads still work on a server before 0.5.0.
const READ_ALL_FILTERED_SQL =
  `SELECT ${EVENT_COLUMNS} FROM event_store.read_all($1, $2, $3::text[], $4::text[])`;
const READ_CATEGORY_FILTERED_SQL =
  `SELECT ${EVENT_COLUMNS} FROM event_store.read_category($1, $2, $3, $4, $5, $6::text[])`;
const READ_ALL_POSITION_SQL = withReadPosition(
  'event_store.read_all($1, $2, $3::text[], $4::text[])');
const READ_CATEGORY_POSITION_SQL = withReadPosition(
  'event_store.read_category($1, $2, $3, $4, $5, $6::text[])');
const CHECKPOINT_SQL = 'SELECT event_store.checkpoint($1) AS position';
const SAVE_CHECKPOINT_SQL = 'SELECT event_store.save_checkpoint($1, $2, $3) AS position';
const SAVE_SNAPSHOT_SQL = 'SELECT event_store.save_snapshot($1, $2, $3::jsonb) AS version';
const READ_SNAPSHOT_SQL =
  'SELECT version, state, created_at FROM event_store.read_snapshot($1, $2)';

/*
 * One statement that reads a page with a read_all or read_category call and
 * returns, beside it, event_store.last_read_position(): how far that read
 * got. The page is a materialized CTE, and the position is computed in
 * another whose FROM counts the page's rows, so it is taken after the read
 * has run, in the same transaction (the statement's). The page's rows come
 * out joined to the one row of the position, in order; an empty page gives
 * one row with the position and NULL event columns.
 */
function withReadPosition(readCall) {
  return `WITH page AS MATERIALIZED (SELECT * FROM ${readCall}), ` +
    'reached AS MATERIALIZED (SELECT event_store.last_read_position() AS read_position ' +
    'FROM (SELECT count(*) FROM page) n) ' +
    `SELECT reached.read_position, ${EVENT_COLUMNS} FROM reached LEFT JOIN page ON true ` +
    'ORDER BY page.global_position';
}

/*
 * The events and the position of a page read by a withReadPosition
 * statement: { events, position }.
 */
function toPage(rows) {
  const events = [];
  for (const row of rows) {
    if (row.global_position !== null) events.push(toEvent(row));
  }
  return { events, position: rows.length > 0 ? fromInt8(rows[0].read_position) : null };
}

/* Turn a row of event_store.event into an event object. */
function toEvent(row) {
  return {
    globalPosition: fromInt8(row.global_position),
    streamId: row.stream_id,
    version: fromInt8(row.version),
    id: row.event_id,
    type: row.event_type,
    data: row.data,
    metadata: row.metadata,
    createdAt: row.created_at,
  };
}

/*
 * Whether a query target is a pool (pg.Pool, or pg-pool's Pool from another
 * copy of pg) rather than one connection.
 */
function isPool(client) {
  return client instanceof pg.Pool || (
    client !== null && typeof client === 'object' &&
    typeof client.connect === 'function' && typeof client.release !== 'function' &&
    typeof client.totalCount === 'number' && typeof client.idleCount === 'number');
}

/*
 * Whether a connection is still usable after a query failed with this error:
 * an ERROR from the server ends the statement (and, in autocommit, its
 * transaction) but not the session. FATAL and PANIC end the session, and an
 * error without a SQLSTATE means the connection failed.
 */
function connectionSurvives(err) {
  return err != null && typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) &&
    err.severity === 'ERROR';
}

/*
 * Check a connection out of a pool for fn(client, watch) and give it back.
 * pg-pool listens for errors only on idle connections; without a listener
 * here, a connection lost while checked out would be an uncaught 'error'
 * event. watch.lost holds that error; fn sets watch.broken when the
 * connection must not be reused. Either one closes the connection instead
 * of returning it to the pool.
 */
async function withPooledClient(pool, fn) {
  const client = await pool.connect();
  const watch = { lost: null, broken: null };
  const onError = (err) => {
    watch.lost = err;
  };
  client.on('error', onError);
  try {
    return await fn(client, watch);
  } finally {
    client.removeListener('error', onError);
    client.release(watch.lost || watch.broken || undefined);
  }
}

/*
 * Run one query on a connection checked out of a pool. It goes back to the
 * pool after a server ERROR, and after a client-side timeout whose
 * statement was seen to end (see settleTimeout); it is closed only when the
 * connection failed or the timed-out statement may still be running.
 */
function queryOnPool(pool, config, context) {
  return withPooledClient(pool, async (client, watch) => {
    try {
      return await client.query(config);
    } catch (err) {
      if (isQueryTimeout(err) && !watch.lost) {
        const outcome = await settleTimeout(client, config, err);
        if (outcome.ended && outcome.error === undefined) return outcome.result;
        if (!outcome.ended) watch.broken = err;
        throw timeoutError(err, outcome, context);
      }
      if (!connectionSurvives(err)) watch.broken = err;
      throw mapError(err, context);
    }
  });
}

/*
 * Whether an error is pg's client-side timeout (query_timeout): pg stopped
 * waiting, but the statement was sent and the server may still be running
 * it. pg gives this error no code, only its message.
 */
function isQueryTimeout(err) {
  return err instanceof Error && err.message === 'Query read timeout' && !hasSqlState(err);
}

// The shortest wait for a cancelled statement to end.
const CANCEL_WAIT_MS = 1000;

/*
 * After a client-side timeout: ask the server to cancel the statement and
 * wait for it to end, so that nothing keeps running past the caller's
 * deadline (holding a stream's lock, or committing later an append the
 * caller was told failed). Returns { ended, error, result }: ended is true
 * when the statement was seen to end, with the server error that ended it
 * (57014 when the cancel stopped it) or, when it finished before the
 * cancel arrived, its result; or when it was never sent (pg drops a query
 * that times out in its queue), with the timeout as error. ended is false
 * when the end was not seen: the statement may still run, and commit.
 *
 * This needs pg's Client: the query still in progress (pg keeps it as the
 * active query after a timeout, and drops its answer) and the key the
 * server gave for cancel requests. The wait lasts up to the connection's
 * query_timeout again, and at least CANCEL_WAIT_MS.
 */
async function settleTimeout(client, config, timeoutErr) {
  const same = (q) => q != null && q.text === config.text && q.values === config.values;
  const active = typeof client._getActiveQuery === 'function' ? client._getActiveQuery() : client._activeQuery;
  if (!same(active)) {
    const queue = client._queryQueue;
    if (Array.isArray(queue) && !queue.some(same) && active !== undefined) {
      // Not in progress and no longer queued: pg dropped it unsent.
      return { ended: true, error: timeoutErr };
    }
    return { ended: false };
  }
  if (typeof client.processID !== 'number' || client.secretKey === null || client.secretKey === undefined) {
    return { ended: false };
  }
  const ended = new Promise((resolve) => {
    // pg calls this with the server's error, or with the result at
    // ReadyForQuery; either way the statement is over.
    active.callback = (error, result) => resolve({ ended: true, error: error || undefined, result });
  });
  const params = client.connectionParameters || {};
  const waitMs = Math.max(CANCEL_WAIT_MS, Number(params.query_timeout) || 0);
  let timer;
  const gaveUp = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ ended: false }), waitMs);
  });
  sendCancel(client.host || params.host, client.port || params.port, client.processID, client.secretKey);
  const outcome = await Promise.race([ended, gaveUp]);
  clearTimeout(timer);
  if (!outcome.ended) active.callback = () => {};
  return outcome;
}

/*
 * Send a cancel request for a backend (through pgbouncer: for the server
 * connection it has linked to this client) on a connection of its own.
 * Returns a promise that resolves when that connection has closed; the
 * statement's end is what confirms the cancel.
 */
function sendCancel(host, port, processID, secretKey) {
  return new Promise((resolve) => {
    const con = new pg.Connection();
    // The server closes the connection once it has read the request (and
    // signalled the backend): the promise resolves then, or on an error,
    // or after 10 s.
    const timer = setTimeout(() => {
      con.stream.destroy();
      resolve();
    }, 10000);
    timer.unref();
    con.on('error', () => {
      clearTimeout(timer);
      resolve();
    });
    con.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
    con.once('connect', () => con.cancel(processID, secretKey));
    try {
      if (typeof host === 'string' && host.startsWith('/')) con.connect(`${host}/.s.PGSQL.${port}`);
      else con.connect(port, host);
    } catch (_) {
      clearTimeout(timer);
      resolve();
    }
  });
}

/*
 * The error a timed-out query throws once settleTimeout has run: pg's
 * timeout error, with outcomeUnknown (true unless the statement was seen
 * to end) and, when a server error ended it, that error, mapped, as cause
 * (57014 for the cancel).
 */
function timeoutError(err, outcome, context) {
  err.outcomeUnknown = !outcome.ended;
  if (outcome.ended && outcome.error !== undefined && outcome.error !== err) {
    err.cause = mapError(outcome.error, context);
  }
  return err;
}

/*
 * Run a query, mapping a server error to a typed error. With a name, the
 * statement is prepared once per connection (pg remembers which). After a
 * client-side timeout (query_timeout) the statement is cancelled first
 * (settleTimeout); if it finished before the cancel arrived, its result is
 * returned.
 */
async function run(client, text, values, context, name) {
  const config = name ? { name, text, values } : { text, values };
  if (isPool(client)) return queryOnPool(client, config, context);
  try {
    return await client.query(config);
  } catch (err) {
    if (isQueryTimeout(err)) {
      const outcome = await settleTimeout(client, config, err);
      if (outcome.ended && outcome.error === undefined) return outcome.result;
      throw timeoutError(err, outcome, context);
    }
    throw mapError(err, context);
  }
}

// A lone surrogate (one not part of a pair). pg sends strings as UTF-8,
// where it becomes U+FFFD, so two different strings would name one stream.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/* Whether a string is well-formed UTF-16 (has no lone surrogate). */
function isWellFormed(value) {
  return typeof String.prototype.isWellFormed === 'function'
    ? value.isWellFormed()
    : !LONE_SURROGATE.test(value);
}

/* Check a non-empty, well-formed string argument: a stream id, event type, category or subscriber. */
function checkName(value, name) {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`${name} must be a non-empty string, got ${describe(value)}`);
  }
  if (!isWellFormed(value)) {
    throw new TypeError(`${name} must be well-formed UTF-16: it has a lone surrogate, which cannot be sent as UTF-8`);
  }
}

/* Check the expected version and return it as a bigint parameter. */
function expectedParam(expected) {
  if (expected === undefined || expected === null) {
    throw new TypeError(
      `expected version must be given, got ${describe(expected)}: pass the version you read, ` +
        'NO_STREAM (0), STREAM_EXISTS (-1) or ANY (-2)',
    );
  }
  return toInt8Param(expected, 'expected version', ANY);
}

/*
 * Check a batch and serialize it to the JSON array append_events takes.
 * Only type, data, metadata and id are sent; other keys are left out. Ids
 * are sent in the canonical lower-case form the store returns them in, so
 * that the client can compare them with ids it reads back.
 */
function serializeEvents(events) {
  if (!Array.isArray(events)) {
    throw new TypeError(`events must be an array of {type, data, metadata?, id?}, got ${describe(events)}`);
  }
  const out = new Array(events.length);
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e === null || typeof e !== 'object' || Array.isArray(e)) {
      throw new TypeError(`events[${i}] must be an object, got ${describe(e)}`);
    }
    checkName(e.type, `events[${i}].type`);
    if (e.data === undefined) {
      throw new TypeError(`events[${i}].data is missing (use null for an event without data)`);
    }
    const o = { type: e.type, data: e.data };
    if (e.metadata !== undefined && e.metadata !== null) {
      if (typeof e.metadata !== 'object' || Array.isArray(e.metadata)) {
        throw new TypeError(`events[${i}].metadata must be an object, got ${describe(e.metadata)}`);
      }
      o.metadata = e.metadata;
    }
    if (e.id !== undefined && e.id !== null) {
      const id = normalizeUuid(e.id);
      if (id === undefined) {
        throw new TypeError(`events[${i}].id must be a uuid, got ${describe(e.id)}`);
      }
      o.id = id;
    }
    out[i] = o;
  }
  return toJson(out, 'events');
}

/*
 * JSON.stringify, refusing what it would silently change: NaN and the
 * infinities, which it writes as null (a state or payload stored that way
 * would fold differently when read back). They can only be there when the
 * text has a null, so only then is the value walked again to tell them
 * from real nulls; the usual payload is stringified once, with no replacer.
 */
function toJson(value, what) {
  const text = JSON.stringify(value);
  if (text !== undefined && text.includes('null')) {
    JSON.stringify(value, (key, v) => {
      if (typeof v === 'number' && !Number.isFinite(v)) {
        throw new TypeError(`${what} holds ${v}${key === '' ? '' : ` at key "${key}"`}, which JSON cannot represent`);
      }
      return v;
    });
  }
  return text;
}

/*
 * Append events to a stream if it is at the expected version, all or
 * nothing, in one round trip. Returns the stream's new version (the current
 * version for an empty batch). options.notify sends a NOTIFY on channel
 * event_store when the append commits. options.prepare uses a named
 * prepared statement: a little faster on a direct connection, but not
 * through pgbouncer in transaction mode (before 1.21).
 */
async function appendToStream(client, streamId, expected, events, options = {}) {
  return sendAppend(client, appendParams(streamId, expected, events), options);
}

/*
 * Check an append's arguments and return its query parameters. Throws a
 * TypeError or RangeError, before any query, for what the store would refuse.
 */
function appendParams(streamId, expected, events) {
  checkName(streamId, 'streamId');
  const expectedText = expectedParam(expected);
  return { streamId, expected, values: [streamId, expectedText, serializeEvents(events)] };
}

/* Send an append whose parameters appendParams checked; return the new version. */
async function sendAppend(client, params, options = {}) {
  const sql = options.notify ? APPEND_NOTIFY_SQL : APPEND_SQL;
  const name = options.prepare ? (options.notify ? 'event_store_append_notify' : 'event_store_append') : undefined;
  const { streamId, expected } = params;
  const res = await run(client, sql, params.values, { streamId, expected }, name);
  return fromInt8(res.rows[0].version);
}

/* Return a stream's current version, 0 if it has no events. */
async function streamVersion(client, streamId, options = {}) {
  checkName(streamId, 'streamId');
  const name = options.prepare ? 'event_store_stream_version' : undefined;
  const res = await run(client, STREAM_VERSION_SQL, [streamId], { streamId }, name);
  return fromInt8(res.rows[0].version);
}

/* Check an optional positive count option and return it as a number. */
function countOption(value, name, fallback) {
  if (value === undefined || value === null) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`${name} must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/*
 * Read one page of a stream: up to maxCount events from fromVersion on
 * (backward: down from fromVersion, or from the last event when it is null).
 */
async function readStreamPage(client, streamId, { fromVersion = null, maxCount = null, backward = false, prepare = false } = {}) {
  checkName(streamId, 'streamId');
  const from = fromVersion === null || fromVersion === undefined ? null : toInt8Param(fromVersion, 'fromVersion', 0);
  const count = maxCount === null || maxCount === undefined ? null : toInt8Param(maxCount, 'maxCount', 0);
  const name = prepare ? 'event_store_read_stream' : undefined;
  const res = await run(client, READ_STREAM_SQL, [streamId, from, count, backward === true], { streamId }, name);
  return res.rows.map(toEvent);
}

/*
 * Read a stream as an async iterator, pageSize events per query. Forward
 * from fromVersion (default 1), or backward from fromVersion (default the
 * last event); at most maxCount events in all.
 */
async function* readStream(client, streamId, options = {}) {
  checkName(streamId, 'streamId');
  const backward = options.backward === true;
  const pageSize = countOption(options.pageSize, 'pageSize', 500);
  let remaining = options.maxCount === undefined || options.maxCount === null
    ? Infinity
    : (toInt8Param(options.maxCount, 'maxCount', 0), Number(options.maxCount));
  let from = options.fromVersion === undefined || options.fromVersion === null
    ? null
    : options.fromVersion;
  if (from !== null) toInt8Param(from, 'fromVersion', 0);
  while (remaining > 0) {
    const want = Math.min(pageSize, remaining);
    const page = await readStreamPage(client, streamId, {
      fromVersion: from, maxCount: want, backward, prepare: options.prepare,
    });
    for (const event of page) yield event;
    remaining -= page.length;
    if (page.length < want) return;
    const last = page[page.length - 1].version;
    if (backward) {
      if (last <= 1) return;
      from = typeof last === 'bigint' ? last - 1n : last - 1;
    } else {
      from = typeof last === 'bigint' ? last + 1n : last + 1;
    }
  }
}

/*
 * Check an optional list of event types or categories for a filtered read:
 * an array of non-empty strings (an empty array matches nothing). Returns it,
 * or null when absent.
 */
function namesParam(value, name) {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) {
    throw new TypeError(`${name} must be an array of strings, got ${describe(value)}`);
  }
  for (let i = 0; i < value.length; i++) checkName(value[i], `${name}[${i}]`);
  return value.slice();
}

/* The parameters of read_all's filtered form: [after, maxCount, eventTypes, categories]. */
function readAllParams({ after = 0, maxCount = 1000, eventTypes, categories } = {}) {
  return [
    toInt8Param(after, 'after', 0),
    toInt8Param(maxCount, 'maxCount', 0),
    namesParam(eventTypes, 'eventTypes'),
    namesParam(categories, 'categories'),
  ];
}

/*
 * The parameters of read_category's filtered form:
 * [category, after, maxCount, member, size, eventTypes].
 */
function readCategoryParams(category, { after = 0, maxCount = 1000, consumerGroup, eventTypes } = {}) {
  checkName(category, 'category');
  const afterText = toInt8Param(after, 'after', 0);
  const countText = toInt8Param(maxCount, 'maxCount', 0);
  const [member, size] = groupParams(consumerGroup);
  return [category, afterText, countText, member, size, namesParam(eventTypes, 'eventTypes')];
}

/*
 * Read one page of the global log: events after the position, ascending,
 * never skipping an event that may still commit. eventTypes and categories
 * (arrays; 0.5.0) keep only the events of those types and categories.
 */
async function readAll(client, options = {}) {
  const params = readAllParams(options);
  const filtered = params[2] !== null || params[3] !== null;
  const res = filtered
    ? await run(client, READ_ALL_FILTERED_SQL, params, {})
    : await run(client, READ_ALL_SQL, params.slice(0, 2), {});
  return res.rows.map(toEvent);
}

/*
 * Read one page of a category (stream ids up to their first '-'), optionally
 * one consumer-group member's share: consumerGroup = {member, size}; and
 * only events of the types in eventTypes (0.5.0).
 */
async function readCategory(client, category, options = {}) {
  const params = readCategoryParams(category, options);
  const res = params[5] !== null
    ? await run(client, READ_CATEGORY_FILTERED_SQL, params, {})
    : await run(client, READ_CATEGORY_SQL, params.slice(0, 5), {});
  return res.rows.map(toEvent);
}

/*
 * readAll, and how far the read got, in one statement: { events, position }.
 * position is event_store.last_read_position() of that read (0.5.0): the
 * checkpoint to continue from, past the events a filter left out, also when
 * the page is empty.
 */
async function readAllWithPosition(client, options = {}) {
  const res = await run(client, READ_ALL_POSITION_SQL, readAllParams(options), {});
  return toPage(res.rows);
}

/* readCategory, and how far the read got, in one statement: { events, position }. */
async function readCategoryWithPosition(client, category, options = {}) {
  const res = await run(client, READ_CATEGORY_POSITION_SQL, readCategoryParams(category, options), {});
  return toPage(res.rows);
}

/* Check a consumer group option and return [member, size] (nulls when absent). */
function groupParams(consumerGroup) {
  if (consumerGroup === undefined || consumerGroup === null) return [null, null];
  const { member, size } = consumerGroup;
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new TypeError(`consumerGroup.size must be a positive integer, got ${describe(size)}`);
  }
  if (!Number.isSafeInteger(member) || member < 0 || member >= size) {
    throw new TypeError(`consumerGroup.member must be an integer in 0..size-1, got ${describe(member)}`);
  }
  return [member, size];
}

/* Return a subscriber's checkpoint, 0 if it has none. */
async function getCheckpoint(client, subscriber) {
  checkName(subscriber, 'subscriber');
  const res = await run(client, CHECKPOINT_SQL, [subscriber], {});
  return fromInt8(res.rows[0].position);
}

/*
 * Save a subscriber's checkpoint and return it as stored. It never moves
 * backwards unless options.allowBackwards is true.
 */
async function saveCheckpoint(client, subscriber, position, { allowBackwards = false } = {}) {
  checkName(subscriber, 'subscriber');
  const positionText = toInt8Param(position, 'position', 0);
  const res = await run(client, SAVE_CHECKPOINT_SQL, [subscriber, positionText, allowBackwards === true], {});
  return fromInt8(res.rows[0].position);
}

/*
 * Save a stream's state at one of its versions (replacing a snapshot of that
 * version) and return the version. The server takes the stream's lock and
 * refuses, with 22023, a version the stream does not have yet.
 */
async function saveSnapshot(client, streamId, version, state) {
  checkName(streamId, 'streamId');
  const versionText = toInt8Param(version, 'version', 1);
  if (state === undefined) {
    throw new TypeError('state is missing (use null for a state without a value)');
  }
  // JSON.stringify gives undefined for a function or a symbol, which would
  // be sent as SQL NULL and refused only by the server (22004); a BigInt,
  // NaN or an infinity inside the state makes it throw a TypeError, also
  // before any query.
  const stateText = toJson(state, 'state');
  if (stateText === undefined) {
    throw new TypeError(`state must be a JSON value, got ${describe(state)}`);
  }
  const res = await run(client, SAVE_SNAPSHOT_SQL, [streamId, versionText, stateText], { streamId });
  return fromInt8(res.rows[0].version);
}

/*
 * Return a stream's latest snapshot, or with maxVersion the latest at or
 * below it, as { version, state, createdAt }; null when there is none.
 */
async function readSnapshot(client, streamId, { maxVersion = null } = {}) {
  checkName(streamId, 'streamId');
  const maxText = maxVersion === null || maxVersion === undefined ? null : toInt8Param(maxVersion, 'maxVersion', 0);
  const res = await run(client, READ_SNAPSHOT_SQL, [streamId, maxText], { streamId });
  if (res.rows.length === 0) return null;
  const row = res.rows[0];
  return { version: fromInt8(row.version), state: row.state, createdAt: row.created_at };
}

module.exports = {
  withPooledClient,
  ANY,
  NO_STREAM,
  STREAM_EXISTS,
  EVENT_COLUMNS,
  toEvent,
  run,
  isPool,
  connectionSurvives,
  isQueryTimeout,
  isWellFormed,
  checkName,
  expectedParam,
  toJson,
  groupParams,
  serializeEvents,
  appendParams,
  sendAppend,
  appendToStream,
  streamVersion,
  readStream,
  readStreamPage,
  readAll,
  readCategory,
  readAllWithPosition,
  readCategoryWithPosition,
  namesParam,
  withReadPosition,
  toPage,
  sendCancel,
  settleTimeout,
  timeoutError,
  getCheckpoint,
  saveCheckpoint,
  saveSnapshot,
  readSnapshot,
};
