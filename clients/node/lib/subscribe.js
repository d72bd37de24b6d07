'use strict';

/*
 * The projection runner: applies the global log (or one category) to a read
 * model exactly once.
 *
 * Each batch is one transaction on one pooled connection:
 *
 *   BEGIN
 *   pg_try_advisory_xact_lock(hashtextextended(subscriber, 0))
 *   read_all / read_category after checkpoint(subscriber)
 *   handler(client, events)           -- writes the read model
 *   save_checkpoint(subscriber, last position)
 *   COMMIT
 *
 * A crash anywhere rolls back the read model's changes with the checkpoint,
 * and the lock keeps two runners of the same subscriber from applying the
 * same batch. A runner that does not get the lock (another one is applying
 * a batch) ends its transaction and waits pollIntervalMs rather than queue
 * for the lock, so that stop() is never held up by the other runner's
 * transaction. When a batch comes back short the runner waits pollIntervalMs,
 * or less when a notification on channel event_store arrives on the
 * optional LISTEN connection. That connection is a dedicated, direct one:
 * LISTEN does not work through pgbouncer in transaction mode.
 */

const pg = require('pg');
const { EVENT_COLUMNS, toEvent, checkName, groupParams, withPooledClient } = require('./store');
const { describe } = require('./numbers');
const { mapError } = require('./errors');

const LOCK_SQL = 'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS granted';
const READ_ALL_SQL =
  `SELECT ${EVENT_COLUMNS} FROM event_store.read_all(event_store.checkpoint($1), $2)`;
const READ_CATEGORY_SQL =
  `SELECT ${EVENT_COLUMNS} FROM event_store.read_category($3, event_store.checkpoint($1), $2, $4, $5)`;
const SAVE_SQL = 'SELECT event_store.save_checkpoint($1, $2)';

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
  const { subscriber, category, consumerGroup, handler, listen, onError } = options;
  checkName(subscriber, 'subscriber');
  if (category !== undefined && category !== null) checkName(category, 'category');
  if ((consumerGroup !== undefined && consumerGroup !== null) && (category === undefined || category === null)) {
    // read_all has no consumer groups: every member would apply every event.
    throw new TypeError('consumerGroup needs a category');
  }
  if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  if (onError !== undefined && typeof onError !== 'function') {
    throw new TypeError('onError must be a function');
  }
  const batchSize = options.batchSize === undefined || options.batchSize === null ? 500 : options.batchSize;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new TypeError(`batchSize must be a positive integer, got ${describe(batchSize)}`);
  }
  const pollIntervalMs = delay(options.pollIntervalMs, 'pollIntervalMs', 1000);
  const retryDelayMs = delay(options.retryDelayMs, 'retryDelayMs', 1000);
  const [member, size] = groupParams(consumerGroup);
  const byCategory = category !== undefined && category !== null;
  const readSql = byCategory ? READ_CATEGORY_SQL : READ_ALL_SQL;
  const readParams = byCategory
    ? [subscriber, String(batchSize), category, member, size]
    : [subscriber, String(batchSize)];

  let stopped = false;
  let woken = false;
  let wake = null;
  let listener = null;

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

  /*
   * Apply one batch in one transaction; return the number of events, or
   * LOCKED when another runner of this subscriber holds the lock.
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
        const res = await client.query({ text: readSql, values: readParams });
        const events = res.rows.map(toEvent);
        if (events.length > 0) {
          await handler(client, events);
          const last = events[events.length - 1].globalPosition;
          await client.query({ text: SAVE_SQL, values: [subscriber, String(last)] });
        }
        await client.query('COMMIT');
        if (events.length > 0) handle.position = events[events.length - 1].globalPosition;
        return events.length;
      } catch (err) {
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
  }

  async function loop() {
    let failures = 0;
    while (!stopped) {
      let count;
      try {
        count = await runBatch();
        failures = 0;
      } catch (err) {
        if (!onError) throw err;
        onError(err);
        failures++;
        await sleepUnlessStopped(Math.min(retryDelayMs * 2 ** Math.min(failures - 1, 6), 60000));
        continue;
      }
      if (count === LOCKED) {
        // Another runner is applying a batch, and wakes for notifications
        // itself: wait the whole interval before trying again.
        await sleepUnlessStopped(pollIntervalMs);
      } else if (count < batchSize) {
        await idle(pollIntervalMs);
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
