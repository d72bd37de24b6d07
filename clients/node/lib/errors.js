'use strict';

/*
 * Typed errors, mapped from the SQLSTATE of a PostgreSQL error.
 *
 * VE001 becomes a WrongExpectedVersionError and VE002 an
 * EventAlreadyStoredError, with the numbers parsed from their DETAIL, which
 * the extension writes in a fixed form; VE003 a StreamTombstonedError. Every other error that carries a
 * SQLSTATE becomes an EventStoreError with that code. The pg error is kept
 * as `cause`. Errors without a SQLSTATE (a lost connection, a client-side
 * timeout) are passed through unchanged: their outcome is unknown.
 */

const { fromInt8 } = require('./numbers');

const SQLSTATE_RE = /^[0-9A-Z]{5}$/;

/* The base class of every error the store reports. */
class EventStoreError extends Error {
  constructor(message, { code, streamId, cause, detail, hint } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'EventStoreError';
    this.code = code;
    if (streamId !== undefined) this.streamId = streamId;
    if (detail !== undefined) this.detail = detail;
    if (hint !== undefined) this.hint = hint;
  }
}

/* VE001: the stream was not at the expected version; nothing was written. */
class WrongExpectedVersionError extends EventStoreError {
  constructor(message, { streamId, expected, actual, cause, detail, hint } = {}) {
    super(message, { code: 'VE001', streamId, cause, detail, hint });
    this.name = 'WrongExpectedVersionError';
    this.expected = expected;
    this.actual = actual;
  }
}

/*
 * VE002: an event id of the call is already stored in this stream, but not as
 * a repeat of this call: the command was carried out before.
 */
class EventAlreadyStoredError extends EventStoreError {
  constructor(message, { streamId, eventId, version, cause, detail, hint } = {}) {
    super(message, { code: 'VE002', streamId, cause, detail, hint });
    this.name = 'EventAlreadyStoredError';
    this.eventId = eventId;
    this.version = version;
  }
}

/*
 * VE003: the stream is tombstoned (or erased): nothing can be appended to
 * it, or saved for it, ever again. Retrying never helps.
 */
class StreamTombstonedError extends EventStoreError {
  constructor(message, { streamId, cause, detail, hint } = {}) {
    super(message, { code: 'VE003', streamId, cause, detail, hint });
    this.name = 'StreamTombstonedError';
  }
}

const VE001_DETAIL = /^Expected version (any|-?\d+), actual version (-?\d+)\.$/;
const VE002_DETAIL = /^Event id ([0-9a-fA-F-]{36}) is stored at version (\d+)\.$/;
const ID_IN_MESSAGE = /^event id "([0-9a-fA-F-]{36})"/;
// The extension's message for VE003.
const TOMBSTONED_MESSAGE = /^stream "(.*)" is tombstoned$/s;

/* Whether an error is a server error carrying a SQLSTATE. */
function hasSqlState(err) {
  return err != null && typeof err.code === 'string' && SQLSTATE_RE.test(err.code) &&
    typeof err.severity === 'string';
}

/*
 * Map a pg error to a typed error. `context` carries what the call knows:
 * streamId, and expected (used when the DETAIL says "any").
 */
function mapError(err, context = {}) {
  if (!hasSqlState(err)) return err;
  const { streamId } = context;
  const opts = { streamId, cause: err, detail: err.detail, hint: err.hint };
  if (err.code === 'VE001') {
    const m = VE001_DETAIL.exec(err.detail || '');
    const expected = m && m[1] !== 'any' ? fromInt8(m[1]) : context.expected;
    const actual = m ? fromInt8(m[2]) : undefined;
    return new WrongExpectedVersionError(err.message, { ...opts, expected, actual });
  }
  if (err.code === 'VE002') {
    const m = VE002_DETAIL.exec(err.detail || '');
    return new EventAlreadyStoredError(err.message, {
      ...opts,
      eventId: m ? m[1].toLowerCase() : undefined,
      version: m ? fromInt8(m[2]) : undefined,
    });
  }
  if (err.code === 'VE003') {
    // Without the call's stream (an error of the caller's own SQL), the
    // one the message names.
    let id = streamId;
    if (id === undefined) {
      const m = TOMBSTONED_MESSAGE.exec(err.message || '');
      if (m) id = m[1];
    }
    return new StreamTombstonedError(err.message, { ...opts, streamId: id });
  }
  const mapped = new EventStoreError(err.message, { ...opts, code: err.code });
  if (err.code === '23505') {
    const m = ID_IN_MESSAGE.exec(err.message);
    if (m) mapped.eventId = m[1].toLowerCase();
  }
  return mapped;
}

module.exports = {
  EventStoreError,
  WrongExpectedVersionError,
  EventAlreadyStoredError,
  StreamTombstonedError,
  mapError,
  hasSqlState,
};
