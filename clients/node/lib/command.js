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
 *
 * Only the errors of the loop's database calls are retried. What
 * initialState, evolve or decide throw is the application's answer (a
 * refused command, a bug) and ends the command at once.
 *
 * Given a pg.Client or PoolClient inside the caller's transaction, the loop
 * runs each append in a savepoint, so that a conflict leaves the caller's
 * transaction usable, and it caches nothing it read there: the transaction
 * may still roll back.
 */

const crypto = require('crypto');
const pg = require('pg');
const {
  readStream,
  readStreamPage,
  appendParams,
  sendAppend,
  run,
  isPool,
  checkName,
  connectionSurvives,
  isQueryTimeout,
} = require('./store');
const {
  WrongExpectedVersionError,
  EventAlreadyStoredError,
  hasSqlState,
} = require('./errors');
const { newEventId, normalizeUuid } = require('./uuid');
const { describe } = require('./numbers');

// The SQLSTATEs isTransient retries, besides those of class 08.
const RETRYABLE_SQLSTATES = new Set(['VE001', '40001', '40P01', '55P03', '57P01', '57P02', '57P03']);

// An empty batch with no check: it takes the stream's lock, so it waits for
// an append of the stream still in flight, and returns the current version.
const WAIT_SQL = "SELECT event_store.append_events($1, -2, '[]') AS version";
// The savepoint's name takes a random suffix per command, so that it is
// not taken for a savepoint of the caller's (ROLLBACK TO and RELEASE name
// the most recent savepoint of that name).
const SAVEPOINT_PREFIX = 'event_store_command_';

// setTimeout's longest delay; a longer one fires at once.
const MAX_DELAY_MS = 2 ** 31 - 1;

/* The SQLSTATE of a server error, or of the server error a typed error wraps. */
function sqlState(err) {
  if (hasSqlState(err)) return err.code;
  if (err !== null && typeof err === 'object' && hasSqlState(err.cause)) return err.cause.code;
  return undefined;
}

/*
 * Whether an attempt whose database call failed with this error may be
 * tried again:
 *
 *   VE001           the stream moved: read what is new and decide again
 *   40001, 40P01    a serialization failure or a deadlock
 *   55P03           lock_timeout ended a wait for the stream's lock
 *   class 08, 57P01..57P03
 *                   the connection was lost, or the server is shutting
 *                   down or starting up
 *   no SQLSTATE     the connection failed: the outcome is unknown (the
 *                   next attempt finds out whether the append was stored)
 *
 * Nothing else: not pg's client-side timeout (query_timeout: the caller's
 * deadline), not 57014 (a cancel or statement_timeout is a request to
 * stop), not VE002 (handleCommand reports the command done), not any other
 * SQLSTATE, and not a TypeError, RangeError, SyntaxError or ReferenceError
 * (a bug, not a connection). handleCommand asks only about errors of its
 * database calls.
 */
function isTransient(err) {
  if (err instanceof WrongExpectedVersionError) return true;
  // The caller's deadline (pg's query_timeout) has passed.
  if (isQueryTimeout(err)) return false;
  const code = sqlState(err);
  if (code !== undefined) return RETRYABLE_SQLSTATES.has(code) || code.startsWith('08');
  if (err instanceof TypeError || err instanceof RangeError ||
      err instanceof SyntaxError || err instanceof ReferenceError) {
    return false;
  }
  return err instanceof Error;
}

/*
 * Whether an append that failed with this error may have been stored all
 * the same: the connection failed, so the client never heard the outcome.
 */
function outcomeUnknown(err) {
  if (isQueryTimeout(err)) return err.outcomeUnknown !== false;
  const code = sqlState(err);
  return code === undefined || code.startsWith('08') ||
    code === '57P01' || code === '57P02' || code === '57P03';
}

/*
 * An error of one of handleCommand's database calls, wrapped on its way to
 * the retry loop: only these are candidates for a retry. `append` is true
 * for the append itself, whose outcome may be unknown.
 */
class DatabaseCallError {
  constructor(error, append) {
    this.error = error;
    this.append = append;
  }
}

/* Run a database call, wrapping what it throws in a DatabaseCallError. */
async function dbCall(append, call) {
  try {
    return await call();
  } catch (err) {
    throw new DatabaseCallError(err, append);
  }
}

/*
 * The transaction status of a connection as of its last ReadyForQuery: 'I'
 * (none open: each statement commits on its own), 'T' (in a transaction) or
 * 'E' (in a failed one). pg's Client keeps it in _txStatus and returns it
 * from getTransactionStatus(). Undefined when unknown: a pg without it, a
 * connection not yet open, or an object that is not a pg Client.
 */
function transactionStatus(db) {
  const status = typeof db.getTransactionStatus === 'function' ? db.getTransactionStatus() : db._txStatus;
  return status === 'I' || status === 'T' || status === 'E' ? status : undefined;
}

/*
 * Whether db is one connection of pg's (a pg.Client or PoolClient, of this
 * or another copy of pg) rather than a pool or another object with query():
 * once its connection is lost, every later query on it fails at once.
 */
function isConnection(db) {
  return db instanceof pg.Client ||
    (typeof db.connect === 'function' && 'processID' in db && typeof db.on === 'function');
}

/*
 * Whether the connection a query failed on is still usable: the error is a
 * server ERROR (a typed error keeps pg's as cause), not a FATAL, a lost
 * connection or a client-side timeout.
 */
function sessionSurvives(err) {
  if (connectionSurvives(err)) return true;
  return err !== null && typeof err === 'object' && !isQueryTimeout(err) && connectionSurvives(err.cause);
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
 * of stream (per evolve function). The cached states are shared by every
 * command that reads them: evolve must return a new state, not change the
 * one it is given.
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

/* Check a positive integer option (a count). */
function countOption(value, name, fallback) {
  if (value === undefined || value === null) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`${name} must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/* Check a delay option in milliseconds: finite, not negative, one setTimeout can wait. */
function delayOption(value, name, fallback) {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_DELAY_MS) {
    throw new TypeError(`${name} must be a number of milliseconds from 0 to ${MAX_DELAY_MS}, got ${describe(value)}`);
  }
  return value;
}

/* Check the cache option: anything with get(streamId) and set(streamId, entry). */
function cacheOption(cache) {
  if (cache === undefined || cache === null) return undefined;
  if (typeof cache !== 'object' || typeof cache.get !== 'function' || typeof cache.set !== 'function') {
    throw new TypeError('cache must have get(streamId) and set(streamId, entry) (see createStateCache)');
  }
  return cache;
}

/*
 * Return a function that makes each command's initial state: initialState
 * itself when it is a function, else a function that returns a copy of it
 * (structuredClone), so that an evolve that changes its state cannot carry
 * one command's state into another. Refuses, before any query, a value a
 * copy would change: one structuredClone cannot copy (a function inside),
 * or an instance of a class (the copy would be a plain object).
 */
function initialStateFactory(initialState) {
  if (typeof initialState === 'function') return initialState;
  if (initialState === null || typeof initialState !== 'object') return () => initialState;
  const proto = Object.getPrototypeOf(initialState);
  const copy = () => {
    const state = structuredClone(initialState);
    if (proto === null) Object.setPrototypeOf(state, null);
    return state;
  };
  let probe;
  try {
    probe = copy();
  } catch (err) {
    throw new TypeError(
      `handlers.initialState cannot be copied (${err.message}): pass a function that returns a new state`);
  }
  if (Object.getPrototypeOf(probe) !== proto) {
    throw new TypeError(
      'handlers.initialState is an instance of a class, which a copy would not keep: ' +
        'pass a function that returns a new state');
  }
  return copy;
}

/* Add one to a version, a number or a BigInt. */
function next(version) {
  return typeof version === 'bigint' ? version + 1n : version + 1;
}

/*
 * Run a command against one stream.
 *
 * db:       a pg.Pool, a pg.Client or PoolClient (also inside the caller's
 *           transaction), or anything else with query()
 * handlers: { initialState, evolve(state, event) -> state,
 *             decide(state, {streamId, version, attempt}) -> events[] }
 * options:  { maxAttempts = 10, baseDelayMs = 5, maxDelayMs = 1000,
 *             cache, pageSize = 500, notify, prepare, isTransient }
 *
 * evolve must return a new state rather than change the one it is given:
 * cached states are shared between commands. A non-function initialState
 * is copied for each command with structuredClone.
 *
 * Returns { version, events, attempts, alreadyDone, state }. What
 * initialState, evolve or decide throw ends the command at once; an error
 * of a database call is retried while isTransient says so and attempts
 * remain. The error thrown carries `attempts`, and `outcomeUnknown: true`
 * when the last append may have been stored all the same. Never retried: a
 * client-side timeout (pg's query_timeout; the statement is cancelled
 * first, see store.js settleTimeout), and a lost connection of a pg.Client
 * or PoolClient, whose later queries would all fail at once.
 *
 * Inside the caller's transaction (a Client whose transaction status is
 * 'T'), each append runs in a savepoint of its own name, rolled back and
 * released when it fails, and a failed read or a lost connection ends the
 * command at once (the transaction is aborted or gone); an error after
 * which the client could not roll back to its savepoint carries
 * `rollbackRequired: true`. Under REPEATABLE READ or SERIALIZABLE a
 * conflict ends it at once as well: the transaction's snapshot cannot see
 * the events a retry would need. The state cache is written only from reads
 * made outside any transaction: through a pg.Pool, or a Client whose status
 * is 'I' before and after them.
 */
async function handleCommand(db, streamId, handlers, options = {}) {
  if (db === null || typeof db !== 'object' || typeof db.query !== 'function') {
    throw new TypeError('handleCommand needs a pg Pool or Client (anything with query())');
  }
  checkName(streamId, 'streamId');
  const { initialState, evolve, decide } = handlers || {};
  if (typeof evolve !== 'function') throw new TypeError('handlers.evolve must be a function');
  if (typeof decide !== 'function') throw new TypeError('handlers.decide must be a function');
  const maxAttempts = countOption(options.maxAttempts, 'maxAttempts', 10);
  const baseDelayMs = delayOption(options.baseDelayMs, 'baseDelayMs', 5);
  const maxDelayMs = delayOption(options.maxDelayMs, 'maxDelayMs', 1000);
  const pageSize = countOption(options.pageSize, 'pageSize', 500);
  if (options.isTransient !== undefined && options.isTransient !== null &&
      typeof options.isTransient !== 'function') {
    throw new TypeError(`isTransient must be a function, got ${describe(options.isTransient)}`);
  }
  const transient = options.isTransient || isTransient;
  const cache = cacheOption(options.cache);
  const prepare = options.prepare === true;
  const appendOptions = { notify: options.notify, prepare };
  const initial = initialStateFactory(initialState);

  const pooled = isPool(db);
  // A connection of pg's is not retried on once it is lost.
  const single = !pooled && isConnection(db);
  let callerTransaction = false;
  let snapshotBound = false;
  const status = pooled ? 'I' : transactionStatus(db);
  if (status === 'T' || status === 'E') {
    // pg reports a query's error before the ReadyForQuery that follows it
    // (through pgbouncer it can arrive later), so right after a caught
    // error the status may still read 'T' for a transaction that has failed
    // or ended. It is up to date once this query has been answered.
    let res;
    try {
      res = await run(db, 'SHOW transaction_isolation', [], {});
    } catch (err) {
      if (err !== null && typeof err === 'object') err.attempts = 1;
      throw err;
    }
    callerTransaction = transactionStatus(db) === 'T';
    const level = res.rows[0].transaction_isolation;
    snapshotBound = level === 'repeatable read' || level === 'serializable';
  }
  const savepoint = callerTransaction ? SAVEPOINT_PREFIX + crypto.randomBytes(8).toString('hex') : undefined;
  /* Whether what db reads now is committed data, fit for the cache. */
  const autocommit = () => pooled || transactionStatus(db) === 'I';

  // Every id this command has sent; ids are reused position by position.
  const ids = [];
  const sent = new Set();
  let known = cache ? cache.get(streamId) : undefined;
  // Set once an append's outcome is unknown: it may still be running.
  let unsure = false;
  let lastError;

  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    let inSavepoint = false;
    try {
      if (unsure) {
        // Whatever an earlier attempt's append did is committed or rolled
        // back before this attempt reads.
        await dbCall(false, () => run(db, WAIT_SQL, [streamId], { streamId }));
      }

      // Load: fold the events after the last known version.
      const cacheable = cache !== undefined && autocommit();
      let version = known ? known.version : 0;
      let state = known ? known.state : initial();
      let doneAt;
      const events = readStream(db, streamId, { fromVersion: next(version), pageSize, prepare });
      for (;;) {
        const step = await dbCall(false, () => events.next());
        if (step.done) break;
        const event = step.value;
        if (sent.has(event.id)) doneAt = event.version;
        state = evolve(state, event);
        version = event.version;
      }
      known = { version, state };
      if (cacheable && autocommit()) remember(cache, streamId, known);
      if (doneAt !== undefined) {
        // An earlier attempt's append committed; its acknowledgement was lost.
        return { version: doneAt, events: [], attempts: attempt, alreadyDone: true, state };
      }

      const decided = await decide(state, { streamId, version, attempt });
      if (decided !== undefined && decided !== null && !Array.isArray(decided)) {
        throw new TypeError(`decide must return an array of events, got ${describe(decided)}`);
      }
      if (!decided || decided.length === 0) {
        return { version, events: [], attempts: attempt, alreadyDone: false, state };
      }
      const batch = decided.map((e, i) => {
        if (e === null || typeof e !== 'object') {
          throw new TypeError(`decide returned a non-object at index ${i}`);
        }
        let id;
        if (e.id === undefined || e.id === null) {
          if (ids[i] === undefined) ids[i] = newEventId();
          id = ids[i];
        } else {
          // The store returns ids in lower case: an id kept in another
          // form would not be recognised when read back.
          id = normalizeUuid(e.id);
          if (id === undefined) {
            throw new TypeError(`decide returned an event whose id is not a uuid, at index ${i}: ${describe(e.id)}`);
          }
        }
        return { type: e.type, data: e.data, metadata: e.metadata, id };
      });
      const params = appendParams(streamId, version, batch);
      for (const e of batch) sent.add(e.id);

      if (callerTransaction) {
        await dbCall(false, () => run(db, `SAVEPOINT ${savepoint}`, [], {}));
        inSavepoint = true;
      }
      const newVersion = await dbCall(true, () => sendAppend(db, params, appendOptions));
      if (inSavepoint) {
        inSavepoint = false;
        await dbCall(false, () => run(db, `RELEASE SAVEPOINT ${savepoint}`, [], {}));
      }

      if (unsure) {
        // This append may have been taken for a repeat of the start of an
        // earlier attempt that stored more events (it decided differently,
        // and took the stream's lock after this attempt's wait). If ids of
        // this command follow, that attempt carried the command out.
        const after = await dbCall(false, () =>
          readStreamPage(db, streamId, { fromVersion: next(newVersion), maxCount: sent.size }));
        let lastOwn;
        for (const e of after) if (sent.has(e.id)) lastOwn = e.version;
        if (lastOwn !== undefined) {
          return { version: lastOwn, events: [], attempts: attempt, alreadyDone: true, state };
        }
      }

      let v = typeof newVersion === 'bigint' ? newVersion - BigInt(batch.length) : newVersion - batch.length;
      const appended = batch.map((e) => ({ ...e, version: (v = next(v)) }));
      return { version: newVersion, events: appended, attempts: attempt, alreadyDone: false, state };
    } catch (caught) {
      if (!(caught instanceof DatabaseCallError)) {
        // Thrown by initialState, evolve or decide, or a bad decision.
        if (caught !== null && typeof caught === 'object') caught.attempts = attempt;
        throw caught;
      }
      const err = caught.error;
      // Inside the caller's transaction, an error outside the savepoint
      // leaves it aborted (or gone): nothing more can run in it.
      let recovered = !callerTransaction;
      // A timed-out append that was not seen to end may still be running:
      // a ROLLBACK TO would queue behind it, and it might still store.
      if (inSavepoint && !(isQueryTimeout(err) && err.outcomeUnknown !== false)) {
        try {
          // ROLLBACK TO keeps the savepoint: release it too, so that no
          // attempt leaves one behind in the caller's transaction.
          await run(db, `ROLLBACK TO SAVEPOINT ${savepoint}`, [], {});
          await run(db, `RELEASE SAVEPOINT ${savepoint}`, [], {});
          recovered = true;
        } catch (_) {
          recovered = false;
        }
      }
      if (recovered && err instanceof EventAlreadyStoredError && sent.has(err.eventId)) {
        // The command was carried out by an earlier attempt.
        try {
          const version = await lastOwnVersion(db, streamId, err, sent);
          return { version, events: [], attempts: attempt, alreadyDone: true, state: known && known.state };
        } catch (readErr) {
          if (readErr !== null && typeof readErr === 'object') readErr.attempts = attempt;
          throw readErr;
        }
      }
      if (caught.append && outcomeUnknown(err)) unsure = true;
      // The caller's transaction may hold an append the command reports
      // failed: only a rollback of the whole transaction undoes it.
      if (callerTransaction && !recovered && err !== null && typeof err === 'object') {
        err.rollbackRequired = true;
        err.message += ' (the caller\'s transaction must be rolled back: the client could not roll back to its savepoint)';
      }
      if (err instanceof WrongExpectedVersionError && known !== undefined &&
          (typeof err.actual === 'number' || typeof err.actual === 'bigint') && err.actual < known.version) {
        // The stream is behind the state this command started from (a
        // cached state that was never committed, or one kept from before a
        // restore of an older backup): read it again from the start. Only
        // a conflicting append finds this out; after a restore the caches
        // are to be cleared.
        if (cache) forget(cache, streamId, err.actual);
        known = undefined;
      }
      // Not retried whatever isTransient says: a client-side timeout (the
      // caller's deadline), and a lost connection of a pg Client (every
      // later query on it fails at once; a pool would take a new one).
      const retry = attempt < maxAttempts && !isQueryTimeout(err) &&
        !(single && !sessionSurvives(err)) && transient(err) &&
        (!callerTransaction || (recovered && !snapshotBound && !outcomeUnknown(err)));
      if (!retry) {
        if (err !== null && typeof err === 'object') {
          err.attempts = attempt;
          if (caught.append && outcomeUnknown(err)) err.outcomeUnknown = true;
        }
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
  const current = cache.get(streamId);
  if (current === undefined || current === null || current.version <= entry.version) cache.set(streamId, entry);
}

/* Drop a cached state that is ahead of the stream's actual version. */
function forget(cache, streamId, actual) {
  const current = cache.get(streamId);
  if (current === undefined || current === null || !(current.version > actual)) return;
  if (typeof cache.delete === 'function') cache.delete(streamId);
  else cache.set(streamId, undefined);
}

/*
 * After VE002: the version of the last of this command's events, read from
 * where the store says the reported one is stored.
 */
async function lastOwnVersion(db, streamId, err, sent) {
  const page = await readStreamPage(db, streamId, { fromVersion: err.version, maxCount: sent.size });
  let version = err.version;
  for (const e of page) if (sent.has(e.id)) version = e.version;
  return version;
}

module.exports = { handleCommand, createStateCache, isTransient, backoffDelay, sqlState, RETRYABLE_SQLSTATES };
