'use strict';

/*
 * A projection process for the kill-and-restart test, started with
 * child_process.fork. Its configuration comes in ES_PROJECTOR (JSON:
 * poolConfig, subscriber, category, batchSize). The read model counts the
 * events of each stream and records every global position it applied, so a
 * double application fails on the primary key. It reports each committed
 * checkpoint to its parent.
 */

const pg = require('pg');
const { subscribe } = require('../..');

const config = JSON.parse(process.env.ES_PROJECTOR);
const pool = new pg.Pool({ ...config.poolConfig, max: 2 });

const handle = subscribe(pool, {
  subscriber: config.subscriber,
  category: config.category,
  batchSize: config.batchSize,
  pollIntervalMs: 50,
  async handler(client, events) {
    await client.query({
      text:
        'INSERT INTO rm_counts (stream_id, events, last_version) ' +
        'SELECT s, count(*), max(v) FROM unnest($1::text[], $2::bigint[]) AS u(s, v) GROUP BY s ' +
        'ON CONFLICT (stream_id) DO UPDATE SET events = rm_counts.events + excluded.events, ' +
        'last_version = excluded.last_version',
      values: [events.map((e) => e.streamId), events.map((e) => String(e.version))],
    });
    await client.query({
      text: 'INSERT INTO rm_applied (global_position) SELECT unnest($1::bigint[])',
      values: [events.map((e) => String(e.globalPosition))],
    });
    // Keep the transaction open a little, so that a kill lands inside one.
    await client.query('SELECT pg_sleep(0.005)');
    process.nextTick(() => process.send({ position: events[events.length - 1].globalPosition }));
  },
});

handle.done.catch((err) => {
  process.send({ error: String(err && err.stack) });
  process.exit(1);
});

process.on('message', async (msg) => {
  if (msg === 'stop') {
    await handle.stop();
    await pool.end();
    process.exit(0);
  }
});

process.send({ started: true });
