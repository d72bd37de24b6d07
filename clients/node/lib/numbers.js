'use strict';

/*
 * Conversions between PostgreSQL bigint values and JavaScript numbers.
 *
 * pg returns int8 columns as strings. Versions and positions come back as
 * plain numbers while they are safe integers, and as BigInt beyond
 * Number.MAX_SAFE_INTEGER, so no value is ever rounded.
 */

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

/* Convert an int8 value as pg returns it (a string) to a number or a BigInt. */
function fromInt8(value) {
  if (value === null || value === undefined) return value;
  if (typeof value === 'number' || typeof value === 'bigint') return normalizeInteger(value);
  const s = String(value);
  // Up to 15 digits is always a safe integer: skip the BigInt round trip.
  if (s.length <= 15) return Number(s);
  const big = BigInt(s);
  return big <= MAX_SAFE && big >= MIN_SAFE ? Number(big) : big;
}

/* Return a BigInt as a number when it is safe, else as is. */
function normalizeInteger(value) {
  if (typeof value === 'bigint') {
    return value <= MAX_SAFE && value >= MIN_SAFE ? Number(value) : value;
  }
  return value;
}

/* Whether a value is an integer number or a BigInt. */
function isInteger(value) {
  return typeof value === 'bigint' || Number.isSafeInteger(value);
}

/*
 * Check an integer argument and return it as a string for a bigint parameter.
 * Throws a TypeError for anything but a safe integer number or a BigInt, and a
 * RangeError below min.
 */
function toInt8Param(value, name, min) {
  if (typeof value === 'bigint') {
    if (min !== undefined && value < BigInt(min)) {
      throw new RangeError(`${name} must be ${min} or more, got ${value}`);
    }
    if (value > 9223372036854775807n) {
      throw new RangeError(`${name} is out of the bigint range: ${value}`);
    }
    return value.toString();
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer (a number or a BigInt), got ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value)) {
    throw new TypeError(`${name} must be a safe integer (use a BigInt beyond 2^53 - 1), got ${value}`);
  }
  if (min !== undefined && value < min) {
    throw new RangeError(`${name} must be ${min} or more, got ${value}`);
  }
  return String(value);
}

/* A short description of a value for an error message. */
function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

module.exports = { fromInt8, normalizeInteger, isInteger, toInt8Param, describe };
