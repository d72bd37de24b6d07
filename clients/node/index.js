'use strict';

/*
 * event-store-client: a Node.js client for the event_store PostgreSQL
 * extension.
 */

// Named bindings, exported in shorthand below, so that Node's ESM loader
// finds every name (import { appendToStream } from 'event-store-client').
const {
  ANY,
  NO_STREAM,
  STREAM_EXISTS,
  appendToStream,
  readStream,
  readStreamPage,
  streamVersion,
  readAll,
  readCategory,
  readAllWithPosition,
  readCategoryWithPosition,
  getCheckpoint,
  saveCheckpoint,
  saveSnapshot,
  readSnapshot,
} = require('./lib/store');
const {
  waitForEvent,
  subscriptions,
  logHolders,
  headPosition,
  watermark,
  publishWatermark,
} = require('./lib/status');
const { parkEvent, readParked, unparkEvent, replayParked } = require('./lib/parked');
const {
  EventStoreError,
  WrongExpectedVersionError,
  EventAlreadyStoredError,
  StreamTombstonedError,
  mapError,
} = require('./lib/errors');
const {
  LIFECYCLE_STREAM,
  deleteStream,
  tombstoneStream,
  truncateStream,
  setStreamRetention,
  streamInfo,
  purge,
  eraseStream,
  redactEvent,
  isLifecycleEvent,
} = require('./lib/lifecycle');
const { handleCommand, createStateCache, isTransient } = require('./lib/command');
const { subscribe } = require('./lib/subscribe');
const { newEventId } = require('./lib/uuid');
const { fromInt8 } = require('./lib/numbers');

module.exports = {
  ANY,
  NO_STREAM,
  STREAM_EXISTS,
  appendToStream,
  readStream,
  readStreamPage,
  streamVersion,
  readAll,
  readCategory,
  readAllWithPosition,
  readCategoryWithPosition,
  getCheckpoint,
  saveCheckpoint,
  saveSnapshot,
  readSnapshot,
  waitForEvent,
  subscriptions,
  logHolders,
  headPosition,
  watermark,
  publishWatermark,
  parkEvent,
  readParked,
  unparkEvent,
  replayParked,
  LIFECYCLE_STREAM,
  deleteStream,
  tombstoneStream,
  truncateStream,
  setStreamRetention,
  streamInfo,
  purge,
  eraseStream,
  redactEvent,
  isLifecycleEvent,
  handleCommand,
  createStateCache,
  isTransient,
  subscribe,
  newEventId,
  fromInt8,
  EventStoreError,
  WrongExpectedVersionError,
  EventAlreadyStoredError,
  StreamTombstonedError,
  mapError,
};
