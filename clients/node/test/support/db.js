'use strict';

/*
 * Test databases. Each test file creates its own database with a random
 * name over a direct connection (PGHOST, PGPORT, PGUSER: a superuser),
 * installs the extension there, and drops it at the end.
 *
 * With ES_PGBOUNCER_HOST / ES_PGBOUNCER_PORT set, the pools the tests use go
 * through that pgbouncer (transaction pooling); database creation and LISTEN
 * stay on direct connections.
 */

const crypto = require('crypto');
const pg = require('pg');

/* The direct connection settings, from the environment. */
function directConfig(database) {
  return {
    host: process.env.PGHOST || '/var/run/postgresql',
    port: Number(process.env.PGPORT || 5432),
    user: process.env.PGUSER || 'postgres',
    password: process.env.PGPASSWORD,
    database,
  };
}

/* Whether the tests run through pgbouncer. */
function viaPgbouncer() {
  return Boolean(process.env.ES_PGBOUNCER_HOST || process.env.ES_PGBOUNCER_PORT);
}

/* The settings the tests' pools use: through pgbouncer when configured. */
function poolConfig(database) {
  const config = directConfig(database);
  if (viaPgbouncer()) {
    config.host = process.env.ES_PGBOUNCER_HOST || config.host;
    config.port = Number(process.env.ES_PGBOUNCER_PORT || config.port);
  }
  return config;
}

/* Run one statement on a short-lived direct connection. */
async function direct(database, text, values) {
  const client = new pg.Client(directConfig(database));
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/*
 * Create a database with the extension installed. Returns
 * { name, poolConfig, directConfig, pool(options), drop() }.
 */
async function createTestDatabase(prefix = 'es_node') {
  const name = `${prefix}_${crypto.randomBytes(5).toString('hex')}`;
  await direct('postgres', `CREATE DATABASE ${name}`);
  // Conflicts are expected outcomes in these tests: keep them out of the log.
  await direct('postgres', `ALTER DATABASE ${name} SET event_store.log_conflicts = off`);
  await direct(name, 'CREATE EXTENSION event_store');
  const pools = [];
  return {
    name,
    poolConfig: poolConfig(name),
    directConfig: directConfig(name),
    pool(options = {}) {
      const p = new pg.Pool({ ...poolConfig(name), max: 10, ...options });
      pools.push(p);
      return p;
    },
    async drop() {
      // pool.end() resolves before its connections have closed; DROP
      // DATABASE WITH (FORCE) can terminate one still closing, and the pool
      // would re-emit that error with no listener (an uncaught exception).
      for (const p of pools) p.on('error', () => {});
      await Promise.all(pools.map((p) => p.end().catch(() => {})));
      await direct('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/* Collect an async iterable into an array. */
async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/* Poll a condition until it holds or the timeout passes. */
async function waitFor(condition, { timeoutMs = 30000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/*
 * A client that records the queries it is sent and reaches no server: each
 * query answers with the given rows.
 */
function recordingClient(rows = []) {
  const queries = [];
  return {
    queries,
    query(config) {
      queries.push(config);
      return Promise.resolve({ rows });
    },
  };
}

/*
 * Fail (not skip) when the server's event_store lacks a function, so that a
 * run against the wrong build cannot pass.  signature as to_regprocedure
 * takes it, e.g. 'event_store.park_event(text,bigint,text)'.
 */
async function requireServerFunction(client, signature) {
  const { rows } = await client.query(
    'SELECT extversion, to_regprocedure($1) IS NOT NULL AS present ' +
      "FROM pg_extension WHERE extname = 'event_store'",
    [signature],
  );
  if (!rows[0].present) {
    throw new Error(`the installed event_store ${rows[0].extversion} has no ${signature.replace(/\(.*$/, '')}`);
  }
}

/* A category name of its own for each test. */
const newCategory = (prefix) => `${prefix}${crypto.randomBytes(4).toString('hex')}`;

module.exports = {
  createTestDatabase, directConfig, poolConfig, viaPgbouncer, collect, waitFor, recordingClient,
  requireServerFunction, newCategory,
};
