'use strict';

/*
 * Stream lifecycle (extension 0.4.0): soft delete, tombstones, truncation,
 * retention, purge, erasure and redaction, one function per SQL function,
 * each one statement in one round trip.
 *
 * The server allows these only to a role that holds EXECUTE on the
 * function and DELETE on event_store.events (else 42501). The client
 * checks what it can before any query, as for appends: a TypeError for a
 * missing or ill-typed argument, a RangeError for a number out of range.
 */

const { fromInt8, toInt8Param, describe } = require('./numbers');
const { run, checkName, expectedParam, toJson } = require('./store');
const { normalizeUuid } = require('./uuid');

/* The reserved stream the lifecycle events are appended to. */
const LIFECYCLE_STREAM = '$lifecycle';

const DELETE_SQL = 'SELECT event_store.delete_stream($1::text, $2::bigint) AS version';
const TOMBSTONE_SQL = 'SELECT event_store.tombstone_stream($1::text, $2::bigint) AS removed';
const TRUNCATE_SQL = 'SELECT event_store.truncate_stream($1::text, $2::bigint) AS first_visible_version';
const RETENTION_SQL = 'SELECT event_store.set_stream_retention($1::text, $2::bigint, $3::interval)';
// max_age as text in the server's interval output: it goes back into
// setStreamRetention unchanged, and a month stays a month.
const STREAM_INFO_SQL =
  'SELECT version, first_visible_version, truncate_before, max_count, max_age::text AS max_age, tombstoned ' +
  'FROM event_store.stream_info($1::text)';
const PURGE_DEFAULT_SQL = 'SELECT event_store.purge() AS removed';
const PURGE_SQL = 'SELECT event_store.purge($1::integer) AS removed';
const ERASE_SQL = 'SELECT event_store.erase_stream($1::text, $2::text) AS erased';
const REDACT_SQL =
  'SELECT event_store.redact_event($1::uuid, $2::text, $3::jsonb, $4::jsonb) AS global_position';

// purge's max_events is an integer (int4).
const MAX_INT4 = 2 ** 31 - 1;

/* Check an options object: an object (or, when optional, absent) with only the given keys. */
function checkOptions(options, keys, what, optional) {
  if (options === undefined && optional) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${what} must be an object with ${keys.join(' and/or ')}, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) {
      throw new TypeError(`${what} has an unknown key "${key}"; it takes only ${keys.join(' and ')}`);
    }
  }
  return options;
}

/*
 * Check a max age and return it as interval text, or null: a non-empty
 * string in PostgreSQL's interval input ('90 days', '1 hour 30 minutes'),
 * which the server parses, or a positive number of seconds, sent with
 * microsecond precision.
 */
function maxAgeParam(maxAge) {
  if (maxAge === undefined || maxAge === null) return null;
  if (typeof maxAge === 'string') {
    checkName(maxAge, 'maxAge');
    return maxAge;
  }
  if (typeof maxAge !== 'number' || !Number.isFinite(maxAge)) {
    throw new TypeError(`maxAge must be an interval string or a finite number of seconds, got ${describe(maxAge)}`);
  }
  if (!(maxAge >= 0.000001)) {
    throw new RangeError(`maxAge must be at least one microsecond (0.000001 seconds), got ${maxAge}`);
  }
  return `${maxAge.toFixed(6)} seconds`;
}

/*
 * Soft-delete a stream if it is at the expected version: every version up
 * to the head is hidden for good, and the stream's snapshots are deleted.
 * Resolves to the head, which is never reused: an append expecting
 * NO_STREAM (0) or the head continues at head + 1. A stream already deleted
 * or without events is left as it is.
 */
async function deleteStream(client, streamId, expected) {
  checkName(streamId, 'streamId');
  const expectedText = expectedParam(expected);
  const res = await run(client, DELETE_SQL, [streamId, expectedText], { streamId, expected });
  return fromInt8(res.rows[0].version);
}

/*
 * Tombstone a stream if it is at the expected version: its events and
 * snapshots are removed, and every later append to it (idempotent repeats
 * included) fails with StreamTombstonedError (VE003). Resolves to the
 * number of events removed (0 for a stream already tombstoned).
 */
async function tombstoneStream(client, streamId, expected) {
  checkName(streamId, 'streamId');
  const expectedText = expectedParam(expected);
  const res = await run(client, TOMBSTONE_SQL, [streamId, expectedText], { streamId, expected });
  return fromInt8(res.rows[0].removed);
}

/*
 * Hide the versions of a stream below beforeVersion, for good. It may be
 * at most the head + 1, and may not be lower than an earlier truncation
 * (the server refuses both with 22023). Resolves to the first visible version.
 */
async function truncateStream(client, streamId, beforeVersion) {
  checkName(streamId, 'streamId');
  if (beforeVersion === undefined || beforeVersion === null) {
    throw new TypeError(`beforeVersion must be given, got ${describe(beforeVersion)}`);
  }
  const beforeText = toInt8Param(beforeVersion, 'beforeVersion', 1);
  const res = await run(client, TRUNCATE_SQL, [streamId, beforeText], { streamId });
  return fromInt8(res.rows[0].first_visible_version);
}

/*
 * Replace a stream's retention: { maxCount, maxAge }, each null or absent
 * for no limit ({} clears both). maxCount keeps the last maxCount events
 * visible; maxAge hides events older than it. Raising a limit shows again
 * the hidden events purge has not removed yet.
 */
async function setStreamRetention(client, streamId, options) {
  checkName(streamId, 'streamId');
  const { maxCount, maxAge } = checkOptions(options, ['maxCount', 'maxAge'], 'retention', false);
  const countText = maxCount === undefined || maxCount === null ? null : toInt8Param(maxCount, 'maxCount', 1);
  const ageText = maxAgeParam(maxAge);
  await run(client, RETENTION_SQL, [streamId, countText, ageText], { streamId });
}

/*
 * A stream's lifecycle state: { version, firstVisibleVersion,
 * truncateBefore, maxCount, maxAge, tombstoned }. A stream that does not
 * exist has version 0 and firstVisibleVersion 1. maxAge is the server's
 * text for the interval ('90 days', '01:00:00'), or null.
 */
async function streamInfo(client, streamId) {
  checkName(streamId, 'streamId');
  const res = await run(client, STREAM_INFO_SQL, [streamId], { streamId });
  const row = res.rows[0];
  return {
    version: fromInt8(row.version),
    firstVisibleVersion: fromInt8(row.first_visible_version),
    truncateBefore: fromInt8(row.truncate_before),
    maxCount: fromInt8(row.max_count),
    maxAge: row.max_age,
    tombstoned: row.tombstoned,
  };
}

/*
 * Remove hidden events physically, at most maxEvents of them (the server's
 * default, 10000, when absent), and resolve to how many were removed. A
 * purge that finds another one running resolves to 0 at once.
 */
async function purge(client, maxEvents) {
  if (maxEvents === undefined || maxEvents === null) {
    const res = await run(client, PURGE_DEFAULT_SQL, [], {});
    return fromInt8(res.rows[0].removed);
  }
  if (typeof maxEvents !== 'number' || !Number.isInteger(maxEvents)) {
    throw new TypeError(`maxEvents must be an integer, got ${describe(maxEvents)}`);
  }
  if (maxEvents < 1 || maxEvents > MAX_INT4) {
    throw new RangeError(`maxEvents must be from 1 to ${MAX_INT4}, got ${maxEvents}`);
  }
  const res = await run(client, PURGE_SQL, [maxEvents], {});
  return fromInt8(res.rows[0].removed);
}

/*
 * Erase a stream for data protection: a tombstone, with a row in
 * event_store.erasures giving the reason. Resolves to the number of
 * events erased.
 */
async function eraseStream(client, streamId, reason) {
  checkName(streamId, 'streamId');
  checkName(reason, 'reason');
  const res = await run(client, ERASE_SQL, [streamId, reason], { streamId });
  return fromInt8(res.rows[0].erased);
}

/*
 * Rewrite one event's data and metadata in place (its position, version,
 * type and id stay), with a row in event_store.erasures giving the reason.
 * options.data is any JSON value (default {}); options.metadata an object,
 * or null or absent for none. Resolves to the event's global position.
 */
async function redactEvent(client, eventId, reason, options) {
  const id = normalizeUuid(eventId);
  if (id === undefined) {
    throw new TypeError(`eventId must be a uuid, got ${describe(eventId)}`);
  }
  checkName(reason, 'reason');
  const { data, metadata } = checkOptions(options, ['data', 'metadata'], 'redaction', true);
  let dataText = '{}';
  if (data !== undefined) {
    // undefined for a function or a symbol, which would be sent as SQL NULL.
    dataText = toJson(data, 'data');
    if (dataText === undefined) {
      throw new TypeError(`data must be a JSON value, got ${describe(data)}`);
    }
  }
  let metadataText = null;
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new TypeError(`metadata must be an object, got ${describe(metadata)}`);
    }
    metadataText = toJson(metadata, 'metadata');
  }
  const res = await run(client, REDACT_SQL, [id, reason, dataText, metadataText], {});
  return fromInt8(res.rows[0].global_position);
}

/*
 * Whether an event read from the global log is a lifecycle event: one of
 * the reserved stream $lifecycle, with a reserved type ($deleted,
 * $truncated, $retention, $tombstoned, $erased, $redacted).
 */
function isLifecycleEvent(event) {
  return event !== null && typeof event === 'object' &&
    event.streamId === LIFECYCLE_STREAM && typeof event.type === 'string' && event.type.startsWith('$');
}

module.exports = {
  LIFECYCLE_STREAM,
  deleteStream,
  tombstoneStream,
  truncateStream,
  setStreamRetention,
  streamInfo,
  purge,
  eraseStream,
  redactEvent,
  isLifecycleEvent,
};
