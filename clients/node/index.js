'use strict';

/*
 * event-store-client: a Node.js client for the event_store PostgreSQL
 * extension.
 */

const store = require('./lib/store');
const errors = require('./lib/errors');
const command = require('./lib/command');
const { subscribe } = require('./lib/subscribe');
const { newEventId } = require('./lib/uuid');
const { fromInt8 } = require('./lib/numbers');

module.exports = {
  ANY: store.ANY,
  NO_STREAM: store.NO_STREAM,
  STREAM_EXISTS: store.STREAM_EXISTS,
  appendToStream: store.appendToStream,
  readStream: store.readStream,
  readStreamPage: store.readStreamPage,
  streamVersion: store.streamVersion,
  readAll: store.readAll,
  readCategory: store.readCategory,
  getCheckpoint: store.getCheckpoint,
  saveCheckpoint: store.saveCheckpoint,
  handleCommand: command.handleCommand,
  createStateCache: command.createStateCache,
  isTransient: command.isTransient,
  subscribe,
  newEventId,
  fromInt8,
  EventStoreError: errors.EventStoreError,
  WrongExpectedVersionError: errors.WrongExpectedVersionError,
  EventAlreadyStoredError: errors.EventAlreadyStoredError,
  mapError: errors.mapError,
};
