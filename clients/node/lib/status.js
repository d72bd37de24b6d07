'use strict';

/*
 * Waiting for events, and the status of subscriptions and of the global log
 * (extension 0.5.0): one statement each.
 *
 * waitForEvent is event_store.wait_for_event: it returns as soon as an
 * event after a position (of a category, of given types) is readable, or
 * null at its timeout. Being one statement, it works through pgbouncer in
 * transaction mode, where LISTEN does not. With an AbortSignal it can be
 * stopped early: the client sends a cancel request for the statement.
 */

const {
  run,
  isPool,
  withPooledClient,
  checkName,
  namesParam,
  sendCancel,
  connectionSurvives,
  isQueryTimeout,
  settleTimeout,
  timeoutError,
} = require('./store');
const { fromInt8, toInt8Param, describe } = require('./numbers');
const { mapError, hasSqlState } = require('./errors');

const WAIT_SQL =
  'SELECT event_store.wait_for_event($1, make_interval(secs => $2::double precision), $3, $4::text[]) AS position';
const SUBSCRIPTIONS_SQL =
  'SELECT subscriber, checkpoint, head_position, lag_positions, lag_events, ' +
  'extract(epoch FROM lag) * 1000 AS lag_ms, saved_at FROM event_store.subscriptions';
const LOG_HOLDERS_SQL =
  'SELECT position, pid, role_name, application_name, client_addr::text AS client_addr, state, ' +
  'xact_start, extract(epoch FROM xact_age) * 1000 AS xact_age_ms, state_change, query ' +
  'FROM event_store.log_holders ORDER BY position';
const HEAD_POSITION_SQL = 'SELECT event_store.head_position() AS position';
const WATERMARK_SQL = 'SELECT event_store.watermark() AS position';
const PUBLISH_WATERMARK_SQL = 'SELECT event_store.publish_watermark() AS position';

// How often a cancel is sent again while an aborted wait has not ended: a
// cancel that reaches the server before the statement has begun is ignored.
const CANCEL_AGAIN_MS = 250;

/* Check waitForEvent's options and return its query parameters. */
function waitParams({ after = 0, timeoutMs = 30000, category = null, eventTypes = null } = {}) {
  const afterText = toInt8Param(after, 'after', 0);
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new TypeError(`timeoutMs must be a number of milliseconds, 0 or more, got ${describe(timeoutMs)}`);
  }
  if (category !== null && category !== undefined) checkName(category, 'category');
  return [afterText, String(timeoutMs / 1000), category === undefined ? null : category,
    namesParam(eventTypes, 'eventTypes')];
}

/* The reason an aborted signal gives, as an Error to throw. */
function abortReason(signal) {
  if (signal.reason !== undefined) return signal.reason;
  const err = new Error('The operation was aborted');
  err.name = 'AbortError';
  return err;
}

/*
 * Wait until an event after `after` (of `category`, of one of `eventTypes`)
 * is readable by the global log, up to timeoutMs (default 30 s); resolves
 * to its position, or null at the timeout. With `signal` (an AbortSignal),
 * aborting sends a cancel request for the wait, which then rejects with
 * the signal's reason; a wait that ended before the cancel took effect
 * resolves as usual.
 */
async function waitForEvent(client, options = {}) {
  const params = waitParams(options);
  const { signal } = options;
  if (signal === undefined || signal === null) {
    const res = await run(client, WAIT_SQL, params, {});
    return fromInt8(res.rows[0].position);
  }
  if (typeof signal !== 'object' || typeof signal.addEventListener !== 'function' ||
      typeof signal.aborted !== 'boolean') {
    throw new TypeError(`signal must be an AbortSignal, got ${describe(signal)}`);
  }
  if (signal.aborted) throw abortReason(signal);
  if (isPool(client)) {
    return withPooledClient(client, (pooled, watch) => cancellableWait(pooled, params, signal, watch));
  }
  return cancellableWait(client, params, signal, null);
}

/*
 * Run the wait on one connection (a pg.Client or PoolClient), cancelling it
 * when the signal aborts. The cancel is sent again every CANCEL_AGAIN_MS
 * until the statement ends, and the function returns only once every
 * cancel request has been delivered, so that none is left to reach a later
 * statement of the connection.
 */
async function cancellableWait(client, params, signal, watch) {
  if (typeof client.processID !== 'number' || client.secretKey === null || client.secretKey === undefined) {
    throw new TypeError('waitForEvent with a signal needs a pg.Pool or a connected pg.Client or PoolClient');
  }
  const config = { text: WAIT_SQL, values: params };
  const connection = client.connectionParameters || {};
  const host = client.host || connection.host;
  const port = client.port || connection.port;
  const cancels = [];
  let aborted = false;
  let ended = false;
  let timer = null;
  const cancel = () => {
    if (ended) return;
    cancels.push(sendCancel(host, port, client.processID, client.secretKey));
    timer = setTimeout(cancel, CANCEL_AGAIN_MS);
  };
  const onAbort = () => {
    aborted = true;
    cancel();
  };
  // Aborted while the connection was being checked out: no event will come.
  if (signal.aborted) throw abortReason(signal);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await client.query(config);
    return fromInt8(res.rows[0].position);
  } catch (err) {
    if (aborted && hasSqlState(err) && err.code === '57014') throw abortReason(signal);
    if (isQueryTimeout(err) && !(watch && watch.lost)) {
      const outcome = await settleTimeout(client, config, err);
      if (outcome.ended && outcome.error === undefined) return fromInt8(outcome.result.rows[0].position);
      if (!outcome.ended && watch) watch.broken = err;
      throw timeoutError(err, outcome, {});
    }
    if (watch && !connectionSurvives(err)) watch.broken = err;
    throw mapError(err, {});
  } finally {
    ended = true;
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    if (cancels.length > 0) await Promise.all(cancels);
  }
}

/* A number from a numeric column (pg returns numeric as a string); null stays null. */
function toNumber(value) {
  return value === null || value === undefined ? null : Number(value);
}

/*
 * Every subscriber's checkpoint, the log's head and the lag (the view
 * event_store.subscriptions), ordered by subscriber; with `subscriber`,
 * that one's row only.
 */
async function subscriptions(client, { subscriber } = {}) {
  let res;
  if (subscriber === undefined || subscriber === null) {
    res = await run(client, `${SUBSCRIPTIONS_SQL} ORDER BY subscriber`, [], {});
  } else {
    checkName(subscriber, 'subscriber');
    res = await run(client, `${SUBSCRIPTIONS_SQL} WHERE subscriber = $1`, [subscriber], {});
  }
  return res.rows.map((row) => ({
    subscriber: row.subscriber,
    checkpoint: fromInt8(row.checkpoint),
    headPosition: fromInt8(row.head_position),
    lagPositions: fromInt8(row.lag_positions),
    lagEvents: fromInt8(row.lag_events),
    lagMs: toNumber(row.lag_ms),
    savedAt: row.saved_at,
  }));
}

/*
 * What holds the global log back right now (the view
 * event_store.log_holders): the lowest position whose transaction is still
 * open, with that session's activity. An empty array when nothing does.
 */
async function logHolders(client) {
  const res = await run(client, LOG_HOLDERS_SQL, [], {});
  return res.rows.map((row) => ({
    position: fromInt8(row.position),
    pid: row.pid,
    roleName: row.role_name,
    applicationName: row.application_name,
    clientAddr: row.client_addr,
    state: row.state,
    xactStart: row.xact_start,
    xactAgeMs: toNumber(row.xact_age_ms),
    stateChange: row.state_change,
    query: row.query,
  }));
}

/* The highest global position stored (0 for an empty store). */
async function headPosition(client) {
  const res = await run(client, HEAD_POSITION_SQL, [], {});
  return fromInt8(res.rows[0].position);
}

/* The watermark for hot standbys, as published (on a standby, as replayed). */
async function watermark(client) {
  const res = await run(client, WATERMARK_SQL, [], {});
  return fromInt8(res.rows[0].position);
}

/* Publish the watermark now (on the primary); resolves to it. */
async function publishWatermark(client) {
  const res = await run(client, PUBLISH_WATERMARK_SQL, [], {});
  return fromInt8(res.rows[0].position);
}

module.exports = {
  waitForEvent,
  subscriptions,
  logHolders,
  headPosition,
  watermark,
  publishWatermark,
};
