'use strict';

/*
 * bench/inventory.js: the retry loop and the projection runner under load,
 * in the shape of an inventory service.
 *
 * Commands: USERS concurrent users (one pool of USERS connections) reserve
 * one unit at a time of one of PRODUCTS hot products, through
 * handleCommand (re-read, decide, append, retry with backoff and jitter),
 * half of them with a state cache, for SECONDS seconds. Each product starts
 * with more stock than can sell out. Afterwards every product's stream is
 * folded again: the units sold must equal the reservations the users saw
 * succeed (no lost update, none counted twice), and the versions must be
 * 1..head. Prints commands/s, the spread of attempts per command, the
 * conflicts retried, and latency percentiles.
 *
 * Projection: a runner (subscribe) then projects the whole category into a
 * table, from checkpoint 0, in batches of BATCH; prints events/s and
 * checks the table against the fold.
 *
 * Usage: node bench/inventory.js [seconds] [users] [products] [batch]
 * Connection from PGHOST, PGPORT, PGUSER; with ES_PGBOUNCER_HOST and
 * ES_PGBOUNCER_PORT the pool goes through that pgbouncer (transaction
 * mode). A database is created and dropped.
 */

const crypto = require('crypto');
const pg = require('pg');
const es = require('..');

const SECONDS = Number(process.argv[2] || 20);
const USERS = Number(process.argv[3] || 16);
const PRODUCTS = Number(process.argv[4] || 5);
const BATCH = Number(process.argv[5] || 500);

const direct = {
  host: process.env.PGHOST || '/var/run/postgresql',
  port: Number(process.env.PGPORT || 5432),
  user: process.env.PGUSER || 'postgres',
  password: process.env.PGPASSWORD,
};
const viaBouncer = Boolean(process.env.ES_PGBOUNCER_HOST && process.env.ES_PGBOUNCER_PORT);
const pooled = viaBouncer
  ? { ...direct, host: process.env.ES_PGBOUNCER_HOST, port: Number(process.env.ES_PGBOUNCER_PORT) }
  : direct;

async function admin(database, sql) {
  const c = new pg.Client({ ...direct, database });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

const product = {
  initialState: { stock: 0, reserved: 0 },
  evolve(s, e) {
    if (e.type === 'Stocked') return { ...s, stock: s.stock + e.data.units };
    if (e.type === 'Reserved') return { stock: s.stock - e.data.units, reserved: s.reserved + e.data.units };
    return s;
  },
  decide(s, { attempt }) {
    if (s.stock < 1) throw new Error('out of stock');
    return [{ type: 'Reserved', data: { units: 1, attempt } }];
  },
};

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const database = `es_inventory_${crypto.randomBytes(4).toString('hex')}`;
  await admin('postgres', `CREATE DATABASE ${database}`);
  await admin('postgres', `ALTER DATABASE ${database} SET event_store.log_conflicts = off`);
  await admin(database, 'CREATE EXTENSION event_store');
  const pool = new pg.Pool({ ...pooled, database, max: USERS });
  // pool.end() resolves before its connections have closed; the DROP
  // DATABASE ... WITH (FORCE) at the end may then end one, which must not
  // be an unhandled error.
  pool.on('error', () => {});
  try {
    const streams = Array.from({ length: PRODUCTS }, (_, i) => `product-${i}`);
    for (const s of streams) {
      await es.appendToStream(pool, s, es.NO_STREAM, [{ type: 'Stocked', data: { units: 1e9 } }]);
    }
    console.log(`${USERS} users, ${PRODUCTS} hot products, ${SECONDS} s, ` +
      (viaBouncer ? 'through pgbouncer (transaction mode)' : 'direct connections'));

    const cache = es.createStateCache();
    const sold = Object.fromEntries(streams.map((s) => [s, 0]));
    const attempts = new Map();
    const latencies = [];
    let commands = 0;
    let conflicts = 0;
    const end = Date.now() + SECONDS * 1000;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: USERS }, async (_, u) => {
      let i = 0;
      while (Date.now() < end) {
        const s = streams[(u * 3 + i++) % PRODUCTS];
        const start = process.hrtime.bigint();
        const r = await es.handleCommand(pool, s, product, {
          maxAttempts: 100,
          cache: u % 2 === 0 ? cache : undefined,
        });
        latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
        if (r.alreadyDone) throw new Error('a fresh command was reported already done');
        sold[s] += r.events.length;
        commands++;
        conflicts += r.attempts - 1;
        attempts.set(r.attempts, (attempts.get(r.attempts) || 0) + 1);
      }
    }));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

    // The check: a fresh fold of every product against what the users saw.
    let lost = 0;
    let gaps = 0;
    let totalEvents = 0;
    for (const s of streams) {
      let state = product.initialState;
      let expect = 1;
      for await (const e of es.readStream(pool, s)) {
        if (e.version !== expect++) gaps++;
        state = product.evolve(state, e);
        totalEvents++;
      }
      if (state.reserved !== sold[s]) lost += Math.abs(state.reserved - sold[s]);
    }
    latencies.sort((a, b) => a - b);
    const spread = [...attempts.entries()].sort((a, b) => a[0] - b[0]);
    const bucket = (lo, hi) => spread.filter(([n]) => n >= lo && n <= hi).reduce((a, [, c]) => a + c, 0);
    console.log(`commands: ${commands} in ${seconds.toFixed(1)} s = ${(commands / seconds).toFixed(0)}/s; ` +
      `conflicts retried: ${conflicts} (${(conflicts / commands).toFixed(2)} per command)`);
    console.log(`attempts per command: 1: ${bucket(1, 1)}, 2: ${bucket(2, 2)}, 3-5: ${bucket(3, 5)}, ` +
      `6-10: ${bucket(6, 10)}, more: ${bucket(11, Infinity)}; most: ${spread[spread.length - 1][0]}`);
    console.log(`latency ms: p50 ${percentile(latencies, 50).toFixed(1)}, p90 ${percentile(latencies, 90).toFixed(1)}, ` +
      `p99 ${percentile(latencies, 99).toFixed(1)}, max ${latencies[latencies.length - 1].toFixed(1)}`);
    console.log(`check: units sold in the streams minus units the users saw sold: ${lost}; ` +
      `version gaps: ${gaps} -> ${lost === 0 && gaps === 0 ? 'no lost update' : 'FAILED'}`);

    // Projection of the whole category from the start.
    await pool.query('CREATE TABLE stock_view (product text PRIMARY KEY, reserved bigint NOT NULL)');
    const p0 = process.hrtime.bigint();
    let projected = 0;
    const runner = es.subscribe(pool, {
      subscriber: 'stock_view',
      category: 'product',
      batchSize: BATCH,
      pollIntervalMs: 50,
      async handler(client, events) {
        const add = new Map();
        for (const e of events) {
          if (e.type === 'Reserved') add.set(e.streamId, (add.get(e.streamId) || 0) + e.data.units);
        }
        for (const [id, n] of add) {
          await client.query(
            'INSERT INTO stock_view VALUES ($1, $2) ' +
            'ON CONFLICT (product) DO UPDATE SET reserved = stock_view.reserved + excluded.reserved',
            [id, n],
          );
        }
        projected += events.length;
      },
    });
    while (projected < totalEvents) await new Promise((r) => setTimeout(r, 20));
    const pseconds = Number(process.hrtime.bigint() - p0) / 1e9;
    await runner.stop();
    const view = await pool.query('SELECT product, reserved::bigint AS reserved FROM stock_view');
    let mismatched = 0;
    for (const row of view.rows) if (Number(row.reserved) !== sold[row.product]) mismatched++;
    if (view.rows.length !== streams.length) mismatched += streams.length - view.rows.length;
    console.log(`projection: ${projected} events in ${pseconds.toFixed(2)} s = ` +
      `${(projected / pseconds).toFixed(0)} events/s (batches of ${BATCH}); ` +
      `products differing from the fold: ${mismatched}`);
    if (lost !== 0 || gaps !== 0 || mismatched !== 0) process.exitCode = 1;
  } finally {
    await pool.end();
    await admin('postgres', `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
