'use strict';

/*
 * bench/append.js: single-event appends through bare pg against the same
 * appends through appendToStream.
 *
 *   bare:     SELECT event_store.append_event($1, $2, $3, $4), a named
 *             (prepared) statement, the expected version tracked by the writer
 *   same:     the statement appendToStream sends, sent with bare pg
 *             (unnamed; the event as a one-element JSON array)
 *   client:   appendToStream(client, stream, version, [{type, data}]), its
 *             default: an unnamed statement, which works through pgbouncer
 *   prepared: the same with {prepare: true}, a named statement
 *   poolSame, poolClient: "same" and "client" through a pg.Pool of as many
 *             connections (pool.query against appendToStream(pool, ...))
 *
 * Every method uses the same connections, each writing its own stream at
 * exact expected versions. Runs are interleaved, in an order that rotates
 * every round, so that drift in the machine's speed hits each method alike.
 * Prints events/s per run, the medians, and how much more the client costs
 * per append (the median of each round's ratio to bare pg). Then the paired
 * measure (see paired()), which is the fairer one on a busy machine: the
 * same statement by hand and through appendToStream, alternating call by
 * call on each connection, on a pg.Client and on a pg.Pool.
 *
 * Usage: node bench/append.js [events per run] [connections] [rounds]
 * Connection from PGHOST, PGPORT, PGUSER; a database is created and dropped.
 * BENCH_SYNC_COMMIT=off takes the disk's flush out of each commit, so that
 * the comparison measures the client and the protocol rather than fsync.
 */

const crypto = require('crypto');
const pg = require('pg');
const { appendToStream } = require('..');

const N = Number(process.argv[2] || 4000);
const CONNECTIONS = Number(process.argv[3] || 4);
const ROUNDS = Number(process.argv[4] || 9);

const base = {
  host: process.env.PGHOST || '/var/run/postgresql',
  port: Number(process.env.PGPORT || 5432),
  user: process.env.PGUSER || 'postgres',
  password: process.env.PGPASSWORD,
};
const session = process.env.BENCH_SYNC_COMMIT
  ? { options: `-c synchronous_commit=${process.env.BENCH_SYNC_COMMIT}` }
  : {};

/* Run one statement in the postgres database. */
async function admin(sql) {
  const c = new pg.Client({ ...base, database: 'postgres' });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/* The data of event i: a small object, as an application would append. */
function payload(i) {
  return { n: i, sku: `sku-${i % 100}`, quantity: (i % 7) + 1, note: 'benchmark event' };
}

const methods = {
  async bare(client, stream, count) {
    let version = 0;
    for (let i = 0; i < count; i++) {
      const res = await client.query({
        name: 'es_bench_append',
        text: 'SELECT event_store.append_event($1, $2, $3, $4)',
        values: [stream, String(version), 'ItemAdded', JSON.stringify(payload(i))],
      });
      version = Number(res.rows[0].append_event);
    }
  },
  // The statement appendToStream sends, written by hand: unnamed, the
  // events as one JSON array.
  async same(client, stream, count) {
    let version = 0;
    for (let i = 0; i < count; i++) {
      const res = await client.query({
        text: 'SELECT event_store.append_events($1, $2, $3::jsonb) AS version',
        values: [stream, String(version), JSON.stringify([{ type: 'ItemAdded', data: payload(i) }])],
      });
      version = Number(res.rows[0].version);
    }
  },
  async client(client, stream, count) {
    let version = 0;
    for (let i = 0; i < count; i++) {
      version = await appendToStream(client, stream, version, [{ type: 'ItemAdded', data: payload(i) }]);
    }
  },
  async prepared(client, stream, count) {
    let version = 0;
    for (let i = 0; i < count; i++) {
      version = await appendToStream(client, stream, version, [{ type: 'ItemAdded', data: payload(i) }], {
        prepare: true,
      });
    }
  },
};
// Through a pg.Pool of the same size, as applications call it: the same
// statement with pool.query, and appendToStream(pool, ...).
let pool;
const clients = [];
methods.poolSame = async (client, stream, count) => {
  let version = 0;
  for (let i = 0; i < count; i++) {
    const res = await pool.query({
      text: 'SELECT event_store.append_events($1, $2, $3::jsonb) AS version',
      values: [stream, String(version), JSON.stringify([{ type: 'ItemAdded', data: payload(i) }])],
    });
    version = Number(res.rows[0].version);
  }
};
methods.poolClient = async (client, stream, count) => {
  let version = 0;
  for (let i = 0; i < count; i++) {
    version = await appendToStream(pool, stream, version, [{ type: 'ItemAdded', data: payload(i) }]);
  }
};
const NAMES = Object.keys(methods);

/* One run: N events over the connections; returns events per second. */
async function runOnce(clients, method, round) {
  const per = Math.floor(N / clients.length);
  const t0 = process.hrtime.bigint();
  await Promise.all(clients.map((c, k) => methods[method](c, `bench-${method}${round}x${k}`, per)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return (per * clients.length) / seconds;
}

/*
 * The paired measure: every connection alternates, call by call, between
 * the statement written by hand (bare pg) and appendToStream, each on a
 * stream of its own, and times every call. Both methods then run under the
 * same load at the same moments, which the machine's drift cannot bias.
 * Returns the mean microseconds per append of each.
 */
async function paired(target, count, tag) {
  const sums = { bare: 0n, client: 0n };
  const sql = 'SELECT event_store.append_events($1, $2, $3::jsonb) AS version';
  await Promise.all(clients.map(async (c, k) => {
    const on = target === 'pool' ? pool : c;
    const streams = { bare: `pair-${tag}-bare-${k}`, client: `pair-${tag}-client-${k}` };
    const versions = { bare: 0, client: 0 };
    for (let i = 0; i < 2 * count; i++) {
      const m = (i + k) % 2 === 0 ? 'bare' : 'client';
      const data = payload(i);
      const t0 = process.hrtime.bigint();
      if (m === 'bare') {
        const res = await on.query({
          text: sql,
          values: [streams.bare, String(versions.bare), JSON.stringify([{ type: 'ItemAdded', data }])],
        });
        versions.bare = Number(res.rows[0].version);
      } else {
        versions.client = await appendToStream(on, streams.client, versions.client, [{ type: 'ItemAdded', data }]);
      }
      sums[m] += process.hrtime.bigint() - t0;
    }
  }));
  const n = count * clients.length;
  return { bare: Number(sums.bare) / 1e3 / n, client: Number(sums.client) / 1e3 / n };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const database = `es_bench_${crypto.randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${database}`);
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const c = new pg.Client({ ...base, ...session, database });
      await c.connect();
      clients.push(c);
    }
    await clients[0].query('CREATE EXTENSION event_store');
    pool = new pg.Pool({ ...base, ...session, database, max: CONNECTIONS });
    // pool.end() resolves before its connections have closed; the DROP
    // DATABASE ... WITH (FORCE) at the end may then end one.
    pool.on('error', () => {});
    const sync = (await clients[0].query('SHOW synchronous_commit')).rows[0].synchronous_commit;
    console.log(`${N} single-event appends per run, ${CONNECTIONS} connections, ${ROUNDS} rounds, ` +
      `synchronous_commit ${sync}`);
    // Warm up every path (connections, plans, the library's code).
    for (const m of NAMES) await runOnce(clients, m, 'w');
    const results = Object.fromEntries(NAMES.map((m) => [m, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const line = [];
      for (let k = 0; k < NAMES.length; k++) {
        const m = NAMES[(k + r) % NAMES.length];
        const rate = await runOnce(clients, m, r);
        results[m].push(rate);
        line.push(`${m} ${rate.toFixed(0)}`);
      }
      console.log(`round ${r + 1}: ${line.join(', ')} events/s`);
    }
    console.log(`bare pg (named statement):  ${median(results.bare).toFixed(0)} events/s (median)`);
    const labels = {
      same: 'bare pg, the same SQL:     ',
      client: 'appendToStream:           ',
      prepared: 'appendToStream, prepare:  ',
    };
    for (const m of ['same', 'client', 'prepared']) {
      const ratio = median(results[m].map((x, r) => x / results.bare[r]));
      console.log(`${labels[m]}${median(results[m]).toFixed(0)} events/s (median); ratio to bare ` +
        `${ratio.toFixed(3)}, costs ${((1 / ratio - 1) * 100).toFixed(1)}% more per append`);
    }
    // The client's own cost: appendToStream against the very statement it
    // sends, written by hand with bare pg.
    const own = median(results.client.map((x, r) => x / results.same[r]));
    console.log(`appendToStream against the same SQL through bare pg: ratio ${own.toFixed(3)}, ` +
      `costs ${((1 / own - 1) * 100).toFixed(1)}% more per append`);
    for (const target of ['client', 'pool']) {
      await paired(target, 200, `w${target}`);
      const runs = [];
      for (let r = 0; r < ROUNDS; r++) runs.push(await paired(target, Math.floor(N / CONNECTIONS / 2), `${target}${r}`));
      const bare = median(runs.map((x) => x.bare));
      const cl = median(runs.map((x) => x.client));
      const ratio = median(runs.map((x) => x.client / x.bare));
      console.log(`paired, through a pg.${target === 'pool' ? 'Pool' : 'Client'}: bare pg ${bare.toFixed(1)} us, ` +
        `appendToStream ${cl.toFixed(1)} us per append (medians of ${ROUNDS}); appendToStream costs ` +
        `${((ratio - 1) * 100).toFixed(1)}% more per append`);
    }
    const ownPool = median(results.poolClient.map((x, r) => x / results.poolSame[r]));
    console.log(`through a pg.Pool: pool.query ${median(results.poolSame).toFixed(0)} events/s, ` +
      `appendToStream(pool) ${median(results.poolClient).toFixed(0)} events/s (medians); ` +
      `ratio ${ownPool.toFixed(3)}, costs ${((1 / ownPool - 1) * 100).toFixed(1)}% more per append`);
  } finally {
    if (pool) await pool.end();
    await Promise.all(clients.map((c) => c.end()));
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
