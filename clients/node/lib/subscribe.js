'use strict';

/*
 * The projection runner: applies the global log (or one category) to a read
 * model exactly once.
 *
 * Each batch is one transaction on one pooled connection:
 *
 *   BEGIN
 *   pg_try_advisory_xact_lock(hashtextextended(subscriber, 0))
 *   read_all / read_category after checkpoint(subscriber), with the
 *     position the read reached (last_read_position, 0.5.0)
 *   handler(client, events)           -- writes the read model
 *   save_checkpoint(subscriber, that position)
 *   COMMIT
 *
 * A crash anywhere rolls back the read model's changes with the checkpoint,
 * and the lock keeps two runners of the same subscriber from applying the
 * same batch. A runner that does not get the lock (another one is applying
 * a batch) ends its transaction and waits pollIntervalMs rather than queue
 * for the lock, so that stop() is never held up by the other runner's
 * transaction.
 *
 * The checkpoint saved is how far the read got (last_read_position), not
 * the last event returned: with eventTypes or categories, a page can be
 * short or empty while the read scanned far past the events it left out,
 * and the checkpoint moves past them all the same. On a server before
 * 0.5.0 (or a role that may not execute last_read_position) an unfiltered
 * runner saves the last event's position, as before.
 *
 * When a batch comes back short the runner waits for more with
 * event_store.wait_for_event (0.5.0) on a pooled connection, up to
 * pollIntervalMs: one statement, which works through pgbouncer in
 * transaction mode. stop() cancels that wait. With the `listen` option, or
 * on a server without wait_for_event, it sleeps pollIntervalMs instead,
 * woken early by a notification on channel event_store on the optional
 * LISTEN connection (a dedicated, direct one: LISTEN does not work through
 * pgbouncer in transaction mode).
 *
 * With onEventError: 'park', the batch is applied in a savepoint; when that
 * fails, its events are applied again one by one, each in a savepoint of
 * its own, and an event whose handler fails is rolled back to its savepoint
 * and parked with its error (park_event, in the same transaction), and the
 * batch goes on.
 */

const pg = require('pg');
const {
  EVENT_COLUMNS,
  toEvent,
  checkName,
  groupParams,
  withPooledClient,
  namesParam,
} = require('./store');
const { describe, fromInt8 } = require('./numbers');
const { mapError } = require('./errors');
const { waitForEvent } = require('./status');
const { parkable, errorText, PARK_SQL, SAVEPOINT } = require('./parked');

const LOCK_SQL = 'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS granted';
// Before 0.5.0: the read alone; the checkpoint is the last event's position.
const READ_ALL_SQL =
  `SELECT ${EVENT_COLUMNS} FROM event_store.read_all(event_store.checkpoint($1), $2)`;
const READ_CATEGORY_SQL =
  `SELECT ${EVENT_COLUMNS} FROM event_store.read_category($3, event_store.checkpoint($1), $2, $4, $5)`;
/*
 * 0.5.0: the checkpoint, the page and how far the read got, in one
 * statement. The position is taken in a CTE whose FROM counts the page, so
 * after the read has run (see withReadPosition in store.js).
 */
function positionedRead(readCall) {
  return 'WITH cp AS MATERIALIZED (SELECT event_store.checkpoint($1) AS after), ' +
    `page AS MATERIALIZED (SELECT r.* FROM cp, ${readCall} r), ` +
    'reached AS MATERIALIZED (SELECT cp.after, event_store.last_read_position() AS read_position ' +
    'FROM cp, (SELECT count(*) FROM page) n) ' +
    `SELECT reached.after, reached.read_position, ${EVENT_COLUMNS} FROM reached LEFT JOIN page ON true ` +
    'ORDER BY page.global_position';
}
const READ_ALL_POSITION_SQL = positionedRead('event_store.read_all(cp.after, $2, $3::text[], $4::text[])');
const READ_CATEGORY_POSITION_SQL = positionedRead(
  'event_store.read_category($3, cp.after, $2, $4, $5, $6::text[])');
const SAVE_SQL = 'SELECT event_store.save_checkpoint($1, $2)';
// What the server offers this role: a function it lacks, or may not
// execute, is left alone.
const FEATURES_SQL =
  'SELECT ' +
  "coalesce(has_function_privilege(to_regprocedure('event_store.last_read_position()')::oid, 'EXECUTE'), false) AS positions, " +
  "coalesce(has_function_privilege(to_regprocedure('event_store.wait_for_event(bigint, interval, text, text[])')::oid, 'EXECUTE'), false) AS waits, " +
  "coalesce(has_function_privilege(to_regprocedure('event_store.park_event(text, bigint, text)')::oid, 'EXECUTE'), false) AS parking";

// setTimeout's longest delay; a longer one fires at once.
const MAX_DELAY_MS = 2 ** 31 - 1;

/* Check a delay option in milliseconds: positive, finite, one setTimeout can wait. */
function delay(value, name, fallback) {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !(value > 0) || !(value <= MAX_DELAY_MS)) {
    throw new TypeError(`${name} must be a number of milliseconds above 0, at most ${MAX_DELAY_MS}, got ${describe(value)}`);
  }
  return value;
}

// Returned by runBatch when another runner holds the subscriber's lock.
const LOCKED = -1;

/*
 * Start a projection runner. Returns { stop(), done, position }: stop()
 * finishes the batch in progress and resolves when the runner has stopped;
 * done settles when the runner ends (it rejects if the runner failed);
 * position is the last checkpoint this runner committed.
 */
function subscribe(pool, options = {}) {
  if (pool === null || typeof pool !== 'object' || typeof pool.connect !== 'function') {
    throw new TypeError('subscribe needs a pg Pool');
  }
  const { subscriber, category, consumerGroup, handler, listen, onError, onParked } = options;
  checkName(subscriber, 'subscriber');
  const byCategory = category !== undefined && category !== null;
  if (byCategory) checkName(category, 'category');
  if ((consumerGroup !== undefined && consumerGroup !== null) && !byCategory) {
    // read_all has no consumer groups: every member would apply every event.
    throw new TypeError('consumerGroup needs a category');
  }
  const eventTypes = namesParam(options.eventTypes, 'eventTypes');
  const categories = namesParam(options.categories, 'categories');
  if (categories !== null && byCategory) {
    throw new TypeError('categories is for a runner over the whole log: give category or categories, not both');
  }
  const filtered = eventTypes !== null || categories !== null;
  if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  if (onError !== undefined && typeof onError !== 'function') {
    throw new TypeError('onError must be a function');
  }
  const onEventError = options.onEventError === undefined || options.onEventError === null
    ? 'fail'
    : options.onEventError;
  if (onEventError !== 'fail' && onEventError !== 'park') {
    throw new TypeError(`onEventError must be 'fail' or 'park', got ${describe(onEventError)}`);
  }
  const parking = onEventError === 'park';
  if (onParked !== undefined && typeof onParked !== 'function') {
    throw new TypeError('onParked must be a function');
  }
  const batchSize = options.batchSize === undefined || options.batchSize === null ? 500 : options.batchSize;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new TypeError(`batchSize must be a positive integer, got ${describe(batchSize)}`);
  }
  const pollIntervalMs = delay(options.pollIntervalMs, 'pollIntervalMs', 1000);
  const retryDelayMs = delay(options.retryDelayMs, 'retryDelayMs', 1000);
  const [member, size] = groupParams(consumerGroup);
  const oldReadSql = byCategory ? READ_CATEGORY_SQL : READ_ALL_SQL;
  const oldReadParams = byCategory
    ? [subscriber, String(batchSize), category, member, size]
    : [subscriber, String(batchSize)];
  const readSql = byCategory ? READ_CATEGORY_POSITION_SQL : READ_ALL_POSITION_SQL;
  const readParams = byCategory
    ? [subscriber, String(batchSize), category, member, size, eventTypes]
    : [subscriber, String(batchSize), eventTypes, categories];
  // wait_for_event takes one category: with several, it wakes for any
  // (the read that follows keeps only theirs).
  const waitCategory = byCategory ? category : (categories !== null && categories.length === 1 ? categories[0] : null);

  let stopped = false;
  let woken = false;
  let wake = null;
  let listener = null;
  // What the server offers, asked in the first batch (and again after a
  // failed one): { positions, waits, parking }.
  let features;
  const waiting = new AbortController();

  const handle = { position: undefined, stop, done: undefined };

  /* Wake the runner from its idle wait, or make the next wait return at once. */
  function wakeUp() {
    woken = true;
    if (wake) wake();
  }

  /* Wait up to ms, or until woken or stopped. */
  function idle(ms) {
    if (woken || stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = done;
    });
  }

  /* Ask the server what it offers, and refuse options it cannot serve. */
  async function checkFeatures(client) {
    const res = await client.query(FEATURES_SQL);
    const found = res.rows[0];
    if (filtered && !found.positions) {
      throw new Error('eventTypes and categories need event_store 0.5.0 and EXECUTE on ' +
        'event_store.last_read_position() (the checkpoint of a filtered read)');
    }
    if (parking && !(found.positions && found.parking)) {
      throw new Error("onEventError: 'park' needs event_store 0.5.0 and EXECUTE on " +
        'event_store.park_event(text, bigint, text) and event_store.last_read_position()');
    }
    return found;
  }

  /*
   * Apply a batch when parking. First the whole batch in one savepoint: a
   * batch that applies costs one savepoint, not one per event (each
   * savepoint that writes takes a subtransaction id, and a transaction with
   * more than 64 of them slows every other session's visibility checks
   * while it is open). When that fails with an error that may be parked,
   * the batch's work is rolled back to the savepoint and the events are
   * applied again one by one, each in a savepoint of its own; an event that
   * fails is rolled back to its savepoint and parked. Returns the parked
   * ones.
   */
  async function applyParking(client, watch, events) {
    const parked = [];
    await client.query(`SAVEPOINT ${SAVEPOINT}`);
    try {
      await handler(client, events);
      // Fails when the handler left the transaction aborted: the batch
      // failed too.
      await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      return parked;
    } catch (err) {
      if (watch.lost || !parkable(err)) throw err;
      await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      if (events.length === 1) {
        parked.push(await park(client, events[0], err));
        return parked;
      }
    }
    for (const event of events) {
      await client.query(`SAVEPOINT ${SAVEPOINT}`);
      try {
        await handler(client, [event]);
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      } catch (err) {
        if (watch.lost || !parkable(err)) throw err;
        await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
        parked.push(await park(client, event, err));
      }
    }
    return parked;
  }

  /* Park an event with the error it failed with; { event, error, attempts }. */
  async function park(client, event, err) {
    const res = await client.query({
      text: PARK_SQL,
      values: [subscriber, String(event.globalPosition), errorText(err)],
    });
    return { event, error: err, attempts: res.rows[0].attempts };
  }

  /*
   * Apply one batch in one transaction; return { count, reached } (the
   * number of events and the checkpoint after the batch), or LOCKED when
   * another runner of this subscriber holds the lock.
   */
  async function runBatch() {
    woken = false;
    // A connection lost while the batch holds it (the handler may be
    // awaiting something else) fails the batch.
    return withPooledClient(pool, async (client, watch) => {
      try {
        await client.query('BEGIN');
        const lock = await client.query({ text: LOCK_SQL, values: [subscriber] });
        if (lock.rows[0].granted !== true) {
          await client.query('COMMIT');
          return LOCKED;
        }
        if (features === undefined) features = await checkFeatures(client);
        let events;
        let reached;
        let before;
        if (features.positions) {
          const res = await client.query({ text: readSql, values: readParams });
          events = [];
          for (const row of res.rows) {
            if (row.global_position !== null) events.push(toEvent(row));
          }
          before = fromInt8(res.rows[0].after);
          reached = fromInt8(res.rows[0].read_position);
        } else {
          const res = await client.query({ text: oldReadSql, values: oldReadParams });
          events = res.rows.map(toEvent);
          reached = events.length > 0 ? events[events.length - 1].globalPosition : undefined;
        }
        let parked = [];
        if (events.length > 0) {
          if (parking) parked = await applyParking(client, watch, events);
          else await handler(client, events);
        }
        const moved = reached !== undefined && (before === undefined || reached > before);
        if (moved) await client.query({ text: SAVE_SQL, values: [subscriber, String(reached)] });
        await client.query('COMMIT');
        if (moved || before !== undefined) handle.position = moved ? reached : before;
        if (onParked) {
          for (const p of parked) onParked(p.event, p.error, p.attempts);
        }
        return { count: events.length, reached: reached === undefined ? before : reached };
      } catch (err) {
        // Ask again next time: the failure may have been a missing function.
        features = undefined;
        // Once the connection is lost, report that error rather than the
        // "not queryable" of the queries that followed it.
        const failure = watch.lost || err;
        if (!watch.lost) {
          try {
            await client.query('ROLLBACK');
          } catch (rollbackErr) {
            watch.broken = rollbackErr;
          }
        }
        throw mapError(failure, {});
      }
    });
  }

  /*
   * Wait for an event past the position the last batch reached, up to
   * pollIntervalMs, with wait_for_event; stop() aborts it.
   */
  async function waitForMore(after) {
    try {
      await waitForEvent(pool, {
        after,
        timeoutMs: pollIntervalMs,
        category: waitCategory,
        eventTypes,
        signal: waiting.signal,
      });
    } catch (err) {
      if (stopped && waiting.signal.aborted) return;
      throw err;
    }
  }

  /* Keep a LISTEN connection open while the runner runs, reconnecting on loss. */
  async function keepListening() {
    const config = typeof listen === 'string' ? { connectionString: listen } : listen;
    while (!stopped) {
      const client = new pg.Client(config);
      const lost = new Promise((resolve) => {
        client.on('error', resolve);
        client.on('end', resolve);
      });
      client.on('notification', wakeUp);
      listener = client;
      try {
        await client.connect();
        await client.query('LISTEN event_store');
        // Anything appended while the listener was down is read now.
        wakeUp();
        await lost;
      } catch (err) {
        if (onError && !stopped) onError(err);
      }
      listener = null;
      client.end().catch(() => {});
      if (!stopped) await sleepUnlessStopped(retryDelayMs);
    }
  }

  const sleepers = new Set();
  /* Wait ms, or less if the runner is stopped. */
  function sleepUnlessStopped(ms) {
    return new Promise((resolve) => {
      const sleeper = () => {
        clearTimeout(timer);
        sleepers.delete(sleeper);
        resolve();
      };
      const timer = setTimeout(sleeper, ms);
      sleepers.add(sleeper);
    });
  }

  /* Flag the runner as stopping and cut every wait short. */
  function halt() {
    stopped = true;
    if (wake) wake();
    for (const sleeper of [...sleepers]) sleeper();
    if (listener) listener.end().catch(() => {});
    waiting.abort();
  }

  async function loop() {
    let failures = 0;
    while (!stopped) {
      try {
        const result = await runBatch();
        if (result === LOCKED) {
          failures = 0;
          // Another runner is applying a batch, and waits for new events
          // itself: wait the whole interval before trying again.
          await sleepUnlessStopped(pollIntervalMs);
        } else if (result.count < batchSize && !stopped) {
          if (!listen && features !== undefined && features.positions && features.waits &&
              result.reached !== undefined) {
            await waitForMore(result.reached);
          } else {
            await idle(pollIntervalMs);
          }
          failures = 0;
        } else {
          failures = 0;
        }
      } catch (err) {
        if (stopped && waiting.signal.aborted && err === waiting.signal.reason) break;
        if (!onError) throw err;
        onError(err);
        failures++;
        await sleepUnlessStopped(Math.min(retryDelayMs * 2 ** Math.min(failures - 1, 6), 60000));
      }
    }
  }

  const listening = listen ? keepListening() : Promise.resolve();
  handle.done = loop().finally(async () => {
    halt();
    await listening;
  });

  function stop() {
    halt();
    return handle.done.then(() => undefined, () => undefined);
  }

  // Avoid an unhandled rejection when nobody awaits done; stop() and done
  // still report it.
  handle.done.catch(() => {});
  return handle;
}

module.exports = { subscribe };
