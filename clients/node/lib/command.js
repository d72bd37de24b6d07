'use strict';

/*
 * The command loop of an event-sourced application: load a stream's state,
 * decide, append expecting the version read, and on a conflict do it again.
 *
 * Event ids are assigned once, on the client, and kept across attempts
 * (position by position), so an attempt that repeats one whose
 * acknowledgement was lost is recognised by the store: either the reload
 * finds the ids in the stream, or the append reports them stored (VE002),
 * or it is an idempotent repeat. In each case the command was carried out
 * once, and is reported as done.
 */

const { appendToStream, readStream, readStreamPage } = require('./store');
const {
  WrongExpectedVersionError,
  EventAlreadyStoredError,
  hasSqlState,
} = require('./errors');
const { newEventId, normalizeUuid } = require('./uuid');
const { describe } = require('./numbers');

const RETRYABLE_SQLSTATES = new Set(['VE001', '40001', '40P01']);

/*
 * Whether an attempt that failed with this error may be tried again:
 * a version conflict, a serialization failure or deadlock, a connection
 * that was lost (SQLSTATE class 08, 57P01..57P03) or an error that carries
 * no SQLSTATE at all (the outcome of the append is unknown).
 */
function isTransient(err) {
  if (err instanceof WrongExpectedVersionError) return true;
  const code = err && err.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) &&
      (hasSqlState(err) || (err.cause && hasSqlState(err.cause)))) {
    return RETRYABLE_SQLSTATES.has(code) || code.startsWith('08') ||
      code === '57P01' || code === '57P02' || code === '57P03';
  }
  if (err instanceof TypeError || err instanceof RangeError ||
      err instanceof SyntaxError || err instanceof ReferenceError) {
    return false;
  }
  return err instanceof Error;
}

/*
 * What the application's initialState, evolve or decide throws: its answer
 * (a refused command, a bug), not a failure of the store. It ends the
 * command at once, whatever isTransient says of it.
 */
class ApplicationError {
  constructor(error) {
    this.error = error;
  }
}

/* A delay with full jitter: uniform in [0, min(max, base * 2^(attempt - 1))]. */
function backoffDelay(attempt, baseMs, maxMs) {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.random() * cap;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/*
 * An in-memory cache of stream states for handleCommand: a Map with a size
 * bound that drops the least recently used stream. Use one cache per kind
 * of stream (per evolve function).
 */
function createStateCache({ max = 1000 } = {}) {
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('max must be a positive integer');
  const map = new Map();
  return {
    get(streamId) {
      const entry = map.get(streamId);
      if (entry !== undefined) {
        map.delete(streamId);
        map.set(streamId, entry);
      }
      return entry;
    },
    set(streamId, entry) {
      map.delete(streamId);
      map.set(streamId, entry);
      if (map.size > max) map.delete(map.keys().next().value);
    },
    delete(streamId) {
      return map.delete(streamId);
    },
    clear() {
      map.clear();
    },
    get size() {
      return map.size;
    },
  };
}

/* Check a non-negative number option. */
function numberOption(value, name, fallback, min = 0) {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw new TypeError(`${name} must be a number of at least ${min}, got ${describe(value)}`);
  }
  return value;
}

/* Add one to a version, a number or a BigInt. */
function next(version) {
  return typeof version === 'bigint' ? version + 1n : version + 1;
}

/*
 * Run a command against one stream.
 *
 * handlers: { initialState, evolve(state, event) -> state,
 *             decide(state, {streamId, version, attempt}) -> events[] }
 * options:  { maxAttempts = 10, baseDelayMs = 5, maxDelayMs = 1000,
 *             cache, pageSize = 500, notify, prepare, isTransient }
 *
 * Returns { version, events, attempts, alreadyDone, state }. What
 * initialState, evolve or decide throw ends the command at once.
 */
async function handleCommand(pool, streamId, handlers, options = {}) {
  if (pool === null || typeof pool !== 'object' || typeof pool.query !== 'function') {
    throw new TypeError('handleCommand needs a pg Pool or Client (anything with query())');
  }
  if (typeof streamId !== 'string' || streamId === '') {
    throw new TypeError(`streamId must be a non-empty string, got ${describe(streamId)}`);
  }
  const { initialState, evolve, decide } = handlers || {};
  if (typeof evolve !== 'function') throw new TypeError('handlers.evolve must be a function');
  if (typeof decide !== 'function') throw new TypeError('handlers.decide must be a function');
  const maxAttempts = numberOption(options.maxAttempts, 'maxAttempts', 10, 1);
  const baseDelayMs = numberOption(options.baseDelayMs, 'baseDelayMs', 5);
  const maxDelayMs = numberOption(options.maxDelayMs, 'maxDelayMs', 1000);
  const pageSize = numberOption(options.pageSize, 'pageSize', 500, 1);
  const transient = options.isTransient || isTransient;
  const cache = options.cache;
  const prepare = options.prepare === true;
  const initial = typeof initialState === 'function' ? initialState : () => initialState;

  // Every id this command has sent; ids are reused position by position.
  const ids = [];
  const sent = new Set();
  let known = cache ? cache.get(streamId) : undefined;
  let lastError;

  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    try {
      // Load: fold the events after the last known version.
      let version = known ? known.version : 0;
      let state;
      try {
        state = known ? known.state : initial();
      } catch (err) {
        throw new ApplicationError(err);
      }
      let doneAt;
      for await (const event of readStream(pool, streamId, { fromVersion: next(version), pageSize, prepare })) {
        if (sent.has(event.id)) doneAt = event.version;
        try {
          state = evolve(state, event);
        } catch (err) {
          throw new ApplicationError(err);
        }
        version = event.version;
      }
      known = { version, state };
      remember(cache, streamId, known);
      if (doneAt !== undefined) {
        // An earlier attempt's append committed; its acknowledgement was lost.
        return { version: doneAt, events: [], attempts: attempt, alreadyDone: true, state };
      }

      let decided;
      try {
        decided = await decide(state, { streamId, version, attempt });
      } catch (err) {
        throw new ApplicationError(err);
      }
      if (decided !== undefined && decided !== null && !Array.isArray(decided)) {
        throw new TypeError(`decide must return an array of events, got ${describe(decided)}`);
      }
      if (!decided || decided.length === 0) {
        return { version, events: [], attempts: attempt, alreadyDone: false, state };
      }
      const events = decided.map((e, i) => {
        if (e === null || typeof e !== 'object') {
          throw new TypeError(`decide returned a non-object at index ${i}`);
        }
        let id = e.id;
        if (id === undefined || id === null) {
          if (ids[i] === undefined) ids[i] = newEventId();
          id = ids[i];
        } else {
          // In the lower-case form the store returns, so that the ids read
          // back, and the one a VE002 names, are recognised as this
          // command's. (Not a uuid: appendToStream refuses it.)
          id = normalizeUuid(id) || id;
        }
        return { type: e.type, data: e.data, metadata: e.metadata, id };
      });
      for (const e of events) sent.add(e.id);

      const newVersion = await appendToStream(pool, streamId, version, events, { notify: options.notify, prepare });
      let v = typeof newVersion === 'bigint' ? newVersion - BigInt(events.length) : newVersion - events.length;
      const appended = events.map((e) => ({ ...e, version: (v = next(v)) }));
      return { version: newVersion, events: appended, attempts: attempt, alreadyDone: false, state };
    } catch (err) {
      if (err instanceof ApplicationError) {
        const { error } = err;
        if (error && typeof error === 'object') error.attempts = attempt;
        throw error;
      }
      if (err instanceof EventAlreadyStoredError && sent.has(err.eventId)) {
        // The command was carried out by an earlier attempt.
        const version = await lastOwnVersion(pool, streamId, err, sent);
        return { version, events: [], attempts: attempt, alreadyDone: true, state: known && known.state };
      }
      if (!transient(err) || attempt >= maxAttempts) {
        if (err && typeof err === 'object') err.attempts = attempt;
        throw err;
      }
      lastError = err;
      await sleep(backoffDelay(attempt, baseDelayMs, maxDelayMs));
    }
  }
  throw lastError;
}

/* Store a loaded state in the cache unless the cache already holds a newer one. */
function remember(cache, streamId, entry) {
  if (!cache) return;
  const current = cache.get(streamId);
  if (current === undefined || current.version <= entry.version) cache.set(streamId, entry);
}

/*
 * After VE002: the version of the last of this command's events, read from
 * where the store says the reported one is stored.
 */
async function lastOwnVersion(pool, streamId, err, sent) {
  const page = await readStreamPage(pool, streamId, { fromVersion: err.version, maxCount: sent.size });
  let version = err.version;
  for (const e of page) if (sent.has(e.id)) version = e.version;
  return version;
}

module.exports = { handleCommand, createStateCache, isTransient, backoffDelay };
