'use strict';

/*
 * Parked events (extension 0.5.0): an event a subscriber could not apply,
 * kept with its error so that the subscriber can move on and apply it
 * later.
 *
 *   parkEvent      event_store.park_event(subscriber, position, error)
 *   readParked     event_store.read_parked(subscriber, max_count, after)
 *   unparkEvent    event_store.unpark_event(subscriber, position)
 *   replayParked   each parked event applied and unparked in one transaction
 *
 * subscribe(..., { onEventError: 'park' }) parks the events its handler
 * fails on (lib/subscribe.js).
 */

const {
  EVENT_COLUMNS,
  toEvent,
  run,
  isPool,
  withPooledClient,
  checkName,
  isQueryTimeout,
} = require('./store');
const { fromInt8, toInt8Param, describe } = require('./numbers');
const { mapError } = require('./errors');
const { sqlState, RETRYABLE_SQLSTATES } = require('./command');

const PARK_SQL = 'SELECT event_store.park_event($1, $2, $3) AS attempts';
const READ_PARKED_SQL =
  `SELECT ${EVENT_COLUMNS}, error, attempts, parked_at FROM event_store.read_parked($1, $2, $3)`;
const UNPARK_SQL = 'SELECT event_store.unpark_event($1, $2) AS unparked';
// The subscriber's lock, the one its runner's batches take (waited for here).
const REPLAY_LOCK_SQL = 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))';
// The savepoint each event is applied in.
const SAVEPOINT = 'event_store_event';

/*
 * The text an error is parked with: String(err) ("TypeError: message" for
 * an Error), without NUL characters, which a text value cannot hold.
 */
function errorText(err) {
  let text;
  try {
    text = String(err);
  } catch (_) {
    text = Object.prototype.toString.call(err);
  }
  return text.replace(/\u0000/g, '');
}

/*
 * Whether an error of a handler's work on an event may be parked: anything
 * but an error that passes on its own, which fails the whole batch instead
 * so that it is tried again (parking it would set aside an event nothing
 * is wrong with): a serialization failure, a deadlock, a lock timeout, a
 * conflict (40001, 40P01, 55P03, VE001), a cancel or statement timeout
 * (57014), a lost connection or the server shutting down (class 08,
 * 57P01 to 57P03), and a client-side timeout, after which the connection
 * may still be busy.
 */
function parkable(err) {
  if (isQueryTimeout(err)) return false;
  const code = sqlState(err);
  if (code === undefined) return true;
  return !(RETRYABLE_SQLSTATES.has(code) || code === '57014' || code.startsWith('08'));
}

/* A row of read_parked as a parked event. */
function toParked(row) {
  return {
    globalPosition: fromInt8(row.global_position),
    event: row.event_id === null ? null : toEvent(row),
    error: row.error,
    attempts: row.attempts,
    parkedAt: row.parked_at,
  };
}

/* Check a subscriber name and a global position; return the position as a parameter. */
function positionParam(subscriber, globalPosition) {
  checkName(subscriber, 'subscriber');
  return toInt8Param(globalPosition, 'globalPosition', 1);
}

/*
 * Park an event for a subscriber with an error text; resolves to the
 * number of times it has been parked (attempts).
 */
async function parkEvent(client, subscriber, globalPosition, error) {
  const position = positionParam(subscriber, globalPosition);
  if (typeof error !== 'string') {
    throw new TypeError(`error must be a string, got ${describe(error)}`);
  }
  const res = await run(client, PARK_SQL, [subscriber, position, error.replace(/\u0000/g, '')], {});
  return res.rows[0].attempts;
}

/*
 * A page of a subscriber's parked events, by global position, after
 * `after`: { globalPosition, event, error, attempts, parkedAt }; event is
 * null when the event is gone (erased or purged).
 */
async function readParked(client, subscriber, { maxCount = 100, after = 0 } = {}) {
  checkName(subscriber, 'subscriber');
  const count = toInt8Param(maxCount, 'maxCount', 0);
  const afterText = toInt8Param(after, 'after', 0);
  const res = await run(client, READ_PARKED_SQL, [subscriber, count, afterText], {});
  return res.rows.map(toParked);
}

/*
 * Remove an event from a subscriber's parked events; resolves to true if it
 * was parked. Call it in the transaction that applies the event, and roll
 * back on false: another replayer got there first.
 */
async function unparkEvent(client, subscriber, globalPosition) {
  const position = positionParam(subscriber, globalPosition);
  const res = await run(client, UNPARK_SQL, [subscriber, position], {});
  return res.rows[0].unparked === true;
}

/*
 * Apply a subscriber's parked events again. Each page of them (pageSize,
 * default 100) is one transaction that takes the subscriber's lock (the
 * one its runner's batches take, so that a replay and a batch do not run
 * at once) and then, for each event, in a savepoint: unpark it, and
 * handler(client, [event], parked). When the handler fails, the savepoint
 * is rolled back (the event is parked again) and the event is parked with
 * the new error (its attempts go up); the replay goes on with the next.
 * An event that another replayer unparked first is skipped; one that is
 * gone (erased or purged since it was parked) is unparked without calling
 * the handler. Transient errors (a lost connection, a deadlock, ...) roll
 * back the page and end the replay: run it again.
 *
 * client: a pg.Pool (a connection per page), or a pg.Client or PoolClient
 * outside any transaction. Resolves to { replayed, failed, missing,
 * skipped, errors }, errors being [{ globalPosition, error }] of the events
 * parked again.
 */
async function replayParked(client, subscriber, handler, { pageSize = 100 } = {}) {
  checkName(subscriber, 'subscriber');
  if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
    throw new TypeError(`pageSize must be a positive integer, got ${describe(pageSize)}`);
  }
  if (client === null || typeof client !== 'object' || typeof client.query !== 'function') {
    throw new TypeError('replayParked needs a pg.Pool, pg.Client or PoolClient');
  }
  const result = { replayed: 0, failed: 0, missing: 0, skipped: 0, errors: [] };
  const onConnection = isPool(client)
    ? (fn) => withPooledClient(client, fn)
    : (fn) => fn(client, { lost: null, broken: null });
  let after = '0';
  for (;;) {
    const page = await onConnection((conn, watch) =>
      replayPage(conn, watch, subscriber, handler, pageSize, after));
    result.replayed += page.replayed;
    result.failed += page.failed;
    result.missing += page.missing;
    result.skipped += page.skipped;
    result.errors.push(...page.errors);
    if (page.count < pageSize) return result;
    after = page.last;
  }
}

/*
 * Replay one page of parked events after a position, in one transaction;
 * returns the page's counts, its length and its last position.
 */
async function replayPage(client, watch, subscriber, handler, pageSize, after) {
  const out = { replayed: 0, failed: 0, missing: 0, skipped: 0, errors: [], count: 0, last: after };
  try {
    await client.query('BEGIN');
    await client.query({ text: REPLAY_LOCK_SQL, values: [subscriber] });
    const res = await client.query({ text: READ_PARKED_SQL, values: [subscriber, String(pageSize), after] });
    const page = res.rows.map(toParked);
    out.count = page.length;
    for (const parked of page) {
      const position = String(parked.globalPosition);
      out.last = position;
      await client.query(`SAVEPOINT ${SAVEPOINT}`);
      const unparked = await client.query({ text: UNPARK_SQL, values: [subscriber, position] });
      if (unparked.rows[0].unparked !== true) {
        await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
        out.skipped++;
        continue;
      }
      if (parked.event === null) {
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
        out.missing++;
        continue;
      }
      try {
        await handler(client, [parked.event], parked);
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
        out.replayed++;
      } catch (err) {
        if (watch.lost || !parkable(err)) throw err;
        // Back to before the unpark, then parked again with this error.
        await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
        await client.query({ text: PARK_SQL, values: [subscriber, position, errorText(err)] });
        out.failed++;
        out.errors.push({ globalPosition: parked.globalPosition, error: err });
      }
    }
    await client.query('COMMIT');
    return out;
  } catch (err) {
    // Once the connection is lost, report that error rather than the
    // "not queryable" of the queries that followed it.
    const cause = watch.lost || err;
    if (!watch.lost) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        watch.broken = rollbackErr;
      }
    }
    throw mapError(cause, {});
  }
}

module.exports = {
  parkEvent,
  readParked,
  unparkEvent,
  replayParked,
  parkable,
  errorText,
  PARK_SQL,
  SAVEPOINT,
};
