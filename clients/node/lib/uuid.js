'use strict';

/*
 * Version 7 uuids (RFC 9562), made on the client.
 *
 * A command that assigns its event ids before its first append can repeat
 * the append after a lost acknowledgement with the same ids, and the store
 * recognises the repeat. The first 48 bits are the Unix time in
 * milliseconds, so ids are time-ordered and the store's unique index on
 * event ids grows at its right edge. Within one millisecond the 12 bits
 * after the version act as a counter, so the ids one process makes are
 * strictly increasing.
 */

const crypto = require('crypto');

const POOL_IDS = 256;
let pool = Buffer.alloc(0);
let poolOffset = 0;
let lastMs = 0;
let counter = 0;

const HEX = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

/* Take 10 random bytes from a buffer refilled 256 ids at a time. */
function randomOffset() {
  if (poolOffset + 10 > pool.length) {
    pool = crypto.randomBytes(10 * POOL_IDS);
    poolOffset = 0;
  }
  const offset = poolOffset;
  poolOffset += 10;
  return offset;
}

/* Return a new version 7 uuid as a lower-case string. */
function newEventId() {
  let ms = Date.now();
  const r = randomOffset();
  if (ms > lastMs) {
    lastMs = ms;
    // Start the counter in the lower half of its range, leaving room to count.
    counter = ((pool[r] << 8) | pool[r + 1]) & 0x7ff;
  } else {
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      // Counter exhausted within one millisecond: borrow the next one.
      lastMs++;
      ms = lastMs;
      counter = 0;
    }
  }
  const b = new Array(16);
  // 48-bit timestamp, big-endian. Division keeps the top bits exact.
  const high = Math.floor(ms / 0x100000000);
  const low = ms >>> 0;
  b[0] = (high >>> 8) & 0xff;
  b[1] = high & 0xff;
  b[2] = (low >>> 24) & 0xff;
  b[3] = (low >>> 16) & 0xff;
  b[4] = (low >>> 8) & 0xff;
  b[5] = low & 0xff;
  b[6] = 0x70 | (counter >>> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | (pool[r + 2] & 0x3f);
  for (let i = 9; i < 16; i++) b[i] = pool[r + i - 6];
  return (
    HEX[b[0]] + HEX[b[1]] + HEX[b[2]] + HEX[b[3]] + '-' +
    HEX[b[4]] + HEX[b[5]] + '-' + HEX[b[6]] + HEX[b[7]] + '-' +
    HEX[b[8]] + HEX[b[9]] + '-' +
    HEX[b[10]] + HEX[b[11]] + HEX[b[12]] + HEX[b[13]] + HEX[b[14]] + HEX[b[15]]
  );
}

// The input forms PostgreSQL's uuid type accepts: 32 hex digits in any
// case, a hyphen allowed after any group of four, the whole optionally in
// braces.
const UUID_INPUT_RE = /^(?:[0-9a-f]{4}-?){7}[0-9a-f]{4}$/i;

/*
 * Return a uuid in the canonical lower-case hyphenated form the store
 * returns ids in, or undefined when the value is not a uuid.
 */
function normalizeUuid(value) {
  if (typeof value !== 'string') return undefined;
  const inner = value.length > 0 && value[0] === '{' && value[value.length - 1] === '}'
    ? value.slice(1, -1)
    : value;
  if (!UUID_INPUT_RE.test(inner)) return undefined;
  const hex = inner.replace(/-/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

module.exports = { newEventId, normalizeUuid };
