/*
 * TypeScript declarations for event-store-client (index.js and lib/), the
 * Node.js client of the event_store PostgreSQL extension.
 *
 * They describe the JavaScript as it behaves; nothing here exists at run
 * time. The pg package's types are imported as types only: a TypeScript
 * project that compiles against these declarations installs @types/pg
 * itself (it is not a dependency of this package).
 */

import type { ClientConfig, Pool, PoolClient, QueryConfig } from 'pg';

// ---------------------------------------------------------------------------
// Numbers

/**
 * A PostgreSQL bigint as the client returns it: a number while it is a safe
 * integer, a BigInt beyond Number.MAX_SAFE_INTEGER (2^53 - 1). Arguments of
 * this type take a safe integer number or a BigInt; any other number (a
 * fraction, NaN, 2^53) is a TypeError before any query.
 */
export type Int8 = number | bigint;

/** A stream version: 1 for a stream's first event, 0 for a stream with no events. */
export type Version = Int8;

/** A global position in the store's log (events are numbered across all streams). */
export type Position = Int8;

/**
 * An expected version: NO_STREAM (0), STREAM_EXISTS (-1), ANY (-2) or an
 * exact version N > 0. Below -2 is a RangeError; undefined or null is a
 * TypeError (there is no default).
 */
export type ExpectedVersion = Int8;

/** Expected version: append without a check. */
export const ANY: -2;
/** Expected version: the stream must not exist yet (have no events). */
export const NO_STREAM: 0;
/** Expected version: the stream must exist (have at least one event). */
export const STREAM_EXISTS: -1;

/**
 * Convert an int8 value as pg returns it (a string) to a number while it is
 * a safe integer, else to a BigInt. A number or BigInt comes back as a
 * number when it is safe; null and undefined come back as they are.
 */
export function fromInt8(value: string | number | bigint): Int8;
export function fromInt8(value: null): null;
export function fromInt8(value: undefined): undefined;
export function fromInt8(value: string | number | bigint | null | undefined): Int8 | null | undefined;

// ---------------------------------------------------------------------------
// Clients and events

/**
 * What every function except subscribe() runs its queries on: anything with
 * pg's query(config) method, such as a pg.Pool, a pg.PoolClient or a
 * pg.Client. Each function sends one statement per round trip
 * ({text, values}, or {name, text, values} with `prepare: true`) and reads
 * only `rows` from the result. From a pg.Pool it checks a connection out
 * for each statement (pool.connect(), then release), so that a server
 * error does not cost the pool its connection.
 */
export interface Queryable {
  query(config: QueryConfig): Promise<{ rows: any[] }>;
}

/** Event metadata: a JSON object. */
export type Metadata = { [key: string]: unknown };

/**
 * The part of an event the application chooses: its type and its data.
 * Declare an application's events as a union of these, discriminated by
 * `type`, for instance
 * `{ type: 'Incremented'; data: { count: number } } | { type: 'Reset'; data: null }`.
 * Types passed for events read back are not checked at run time: they are
 * the application's statement of what its streams hold.
 */
export interface EventBody {
  /** A non-empty string of at most 255 bytes (no lone surrogate). */
  type: string;
  /** Any JSON value; null for an event without data (the key is required). */
  data: unknown;
}

/**
 * An event to append. Only `type`, `data`, `metadata` and `id` are sent;
 * other keys are left out.
 */
export type NewEvent<E extends EventBody = EventBody> = E & {
  /** A JSON object; null or absent for none. */
  metadata?: Metadata | null;
  /**
   * A uuid, in any form PostgreSQL's uuid type accepts (sent in lower-case
   * hyphenated form; anything else is a TypeError before any query).
   * Absent: the server assigns a version 7 uuid. Give one
   * (newEventId()) so that a retry after a lost acknowledgement is
   * recognised as a repeat.
   */
  id?: string | null;
};

/** An event read from the store. */
export type RecordedEvent<E extends EventBody = EventBody> = E & {
  globalPosition: Position;
  streamId: string;
  version: Version;
  /** The event id, a lower-case uuid string. */
  id: string;
  metadata: Metadata | null;
  /**
   * When the appending transaction started. A Date with pg's default type
   * parsers.
   */
  createdAt: Date;
};

// ---------------------------------------------------------------------------
// Appends and stream reads

export interface AppendOptions {
  /**
   * Send a NOTIFY on channel event_store (empty payload) when the append
   * commits, whatever the event_store.notify setting.
   */
  notify?: boolean;
  /**
   * Use a named prepared statement: a little faster on a direct connection;
   * not for pgbouncer in transaction mode.
   */
  prepare?: boolean;
}

/**
 * Append events to a stream if it is at the expected version, all or
 * nothing, in one round trip. Resolves to the stream's new version (for an
 * empty batch, the current version, after the check). A repeat of a call
 * whose events (by id) are stored resolves to the first call's version.
 *
 * Rejects with a TypeError or RangeError for bad arguments (before any
 * query), WrongExpectedVersionError (VE001), EventAlreadyStoredError
 * (VE002), an EventStoreError for any other SQLSTATE, or pg's own error when
 * none was received (a lost connection: the outcome is unknown).
 */
export function appendToStream<E extends EventBody = EventBody>(
  client: Queryable,
  streamId: string,
  expected: ExpectedVersion,
  events: ReadonlyArray<NewEvent<E>>,
  options?: AppendOptions,
): Promise<Version>;

export interface StreamVersionOptions {
  /** Use a named prepared statement (direct connections only). */
  prepare?: boolean;
}

/** A stream's current version; 0 if it has no events. */
export function streamVersion(
  client: Queryable,
  streamId: string,
  options?: StreamVersionOptions,
): Promise<Version>;

export interface ReadStreamPageOptions {
  /**
   * Forward: the first version to read (default 1). Backward: the highest
   * version to read (default the last event). At least 0.
   */
  fromVersion?: Version | null;
  /** At most this many events (default: all); 0 reads none. */
  maxCount?: Int8 | null;
  /** Read in descending order of version. */
  backward?: boolean;
  /** Use a named prepared statement (direct connections only). */
  prepare?: boolean;
}

/** Read one page of a stream in one query. An unknown stream gives []. */
export function readStreamPage<E extends EventBody = EventBody>(
  client: Queryable,
  streamId: string,
  options?: ReadStreamPageOptions,
): Promise<Array<RecordedEvent<E>>>;

export interface ReadStreamOptions extends ReadStreamPageOptions {
  /** Events per query, a positive integer (default 500). */
  pageSize?: number | null;
}

/**
 * Read a stream as an async iterator, `pageSize` events per query, forward
 * or backward, at most `maxCount` events in all. Arguments are checked when
 * iteration starts, not when readStream is called.
 */
export function readStream<E extends EventBody = EventBody>(
  client: Queryable,
  streamId: string,
  options?: ReadStreamOptions,
): AsyncGenerator<RecordedEvent<E>, void, unknown>;

// ---------------------------------------------------------------------------
// The global log and checkpoints

export interface LogReadOptions {
  /** Read the events after this position (default 0: from the start). */
  after?: Position;
  /** At most this many events (default 1000). */
  maxCount?: Int8;
  /**
   * Only events of these types (0.5.0): an array of non-empty strings; an
   * empty array matches nothing. The server scans past the others.
   */
  eventTypes?: string[] | null;
}

export interface ReadAllOptions extends LogReadOptions {
  /** Only events of these categories (0.5.0); an empty array matches nothing. */
  categories?: string[] | null;
}

/**
 * Read one page of the global log: the events after `after`, ascending by
 * global position, never skipping an event that may still commit. Continue
 * from the last event's globalPosition; an empty page means nothing more yet.
 * With filters, continue from readAllWithPosition's position instead.
 */
export function readAll<E extends EventBody = EventBody>(
  client: Queryable,
  options?: ReadAllOptions,
): Promise<Array<RecordedEvent<E>>>;

/**
 * One member's share of a category: each stream belongs to exactly one
 * member (a stable hash of its id modulo `size`).
 */
export interface ConsumerGroup {
  /** An integer in 0..size-1. */
  member: number;
  /** A positive integer. */
  size: number;
}

export interface ReadCategoryOptions extends LogReadOptions {
  consumerGroup?: ConsumerGroup | null;
}

/**
 * Read one page of a category (stream ids up to their first '-'), with the
 * same guarantee as readAll, optionally one consumer-group member's share.
 */
export function readCategory<E extends EventBody = EventBody>(
  client: Queryable,
  category: string,
  options?: ReadCategoryOptions,
): Promise<Array<RecordedEvent<E>>>;

/** A page of the log and how far its read got. */
export interface LogPage<E extends EventBody = EventBody> {
  events: Array<RecordedEvent<E>>;
  /**
   * event_store.last_read_position() of the read: every event at or below
   * it that the read had to return, it returned. The checkpoint to save and
   * to continue from, also when a filter left the page short or empty.
   */
  position: Position;
}

/**
 * readAll and last_read_position() in one statement (0.5.0): the page and
 * how far the read got, past the events the filters left out.
 */
export function readAllWithPosition<E extends EventBody = EventBody>(
  client: Queryable,
  options?: ReadAllOptions,
): Promise<LogPage<E>>;

/** readCategory and last_read_position() in one statement (0.5.0). */
export function readCategoryWithPosition<E extends EventBody = EventBody>(
  client: Queryable,
  category: string,
  options?: ReadCategoryOptions,
): Promise<LogPage<E>>;

export interface WaitForEventOptions {
  /** Wait for an event after this position (default 0). */
  after?: Position;
  /** The longest wait in ms, 0 or more (default 30000). */
  timeoutMs?: number;
  /** Only an event of this category. */
  category?: string | null;
  /** Only an event of one of these types. */
  eventTypes?: string[] | null;
  /**
   * Stop waiting when it aborts: the client sends a cancel request for the
   * statement, and the call rejects with the signal's reason. Needs a
   * pg.Pool, or a connected pg.Client or PoolClient.
   */
  signal?: AbortSignal | null;
}

/**
 * event_store.wait_for_event (0.5.0): resolves to the position of the first
 * event after `after` (of the category and types) that a read of the
 * global log would return, as soon as there is one, or to null when
 * timeoutMs passes first. One statement, so it works through pgbouncer in
 * transaction mode. It holds a connection while it waits, and a
 * statement_timeout (or pg's query_timeout) shorter than timeoutMs ends it
 * first. An EventStoreError with code '25000' under REPEATABLE READ or
 * SERIALIZABLE.
 */
export function waitForEvent(client: Queryable, options?: WaitForEventOptions): Promise<Position | null>;

/** A subscriber's checkpoint; 0 if it has none. */
export function getCheckpoint(client: Queryable, subscriber: string): Promise<Position>;

export interface SaveCheckpointOptions {
  /** Let the checkpoint move backwards (default false: it never does). */
  allowBackwards?: boolean;
}

/** Save a subscriber's checkpoint; resolves to the checkpoint as stored. */
export function saveCheckpoint(
  client: Queryable,
  subscriber: string,
  position: Position,
  options?: SaveCheckpointOptions,
): Promise<Position>;

// ---------------------------------------------------------------------------
// Status (extension 0.5.0)

/** A row of the view event_store.subscriptions. */
export interface SubscriptionStatus {
  subscriber: string;
  checkpoint: Position;
  /** The highest position stored. */
  headPosition: Position;
  /** head - checkpoint (0 at least): rolled-back positions and other categories' events count too. */
  lagPositions: Int8;
  /** Events stored after the checkpoint, counted. */
  lagEvents: Int8;
  /** How old the first event after the checkpoint is, in ms; 0 when caught up. */
  lagMs: number;
  /** When the checkpoint was last saved. */
  savedAt: Date;
}

/** Every subscriber's status, by name; with `subscriber`, its row only ([] if it has no checkpoint). */
export function subscriptions(
  client: Queryable,
  options?: { subscriber?: string | null },
): Promise<SubscriptionStatus[]>;

/** A row of the view event_store.log_holders: what holds the global log back. */
export interface LogHolder {
  /** The lowest position whose transaction is still open. */
  position: Position;
  /** Its session's process id; null for a prepared transaction, or one that has ended since. */
  pid: number | null;
  roleName: string | null;
  applicationName: string | null;
  clientAddr: string | null;
  /** 'idle in transaction' is the classic culprit. */
  state: string | null;
  xactStart: Date | null;
  xactAgeMs: number | null;
  stateChange: Date | null;
  query: string | null;
}

/** What holds the global log back right now; [] when nothing does. */
export function logHolders(client: Queryable): Promise<LogHolder[]>;

/** The highest global position stored (0 for an empty store). */
export function headPosition(client: Queryable): Promise<Position>;

/** The watermark for hot standbys as published (on a standby, as replayed). */
export function watermark(client: Queryable): Promise<Position>;

/** Publish the watermark now, on the primary; resolves to it. */
export function publishWatermark(client: Queryable): Promise<Position>;

// ---------------------------------------------------------------------------
// Parked events (extension 0.5.0)

/** A parked event: a row of event_store.read_parked. */
export interface ParkedEvent<E extends EventBody = EventBody> {
  globalPosition: Position;
  /** The event as reads show it now; null when it is gone (deleted, erased, purged, ...). */
  event: RecordedEvent<E> | null;
  /** The error of the last failed attempt. */
  error: string;
  /** How many times it was parked. */
  attempts: number;
  /** When it was last parked. */
  parkedAt: Date;
}

/**
 * Park an event a subscriber could not apply, with its error text;
 * resolves to the attempts so far (parking it again adds one). An
 * EventStoreError with code 'P0002' for a position where the role can read
 * no event.
 */
export function parkEvent(client: Queryable, subscriber: string, globalPosition: Position, error: string): Promise<number>;

export interface ReadParkedOptions {
  /** At most this many (default 100). */
  maxCount?: Int8;
  /** The parked events after this position (default 0). */
  after?: Position;
}

/** A page of a subscriber's parked events, by position. */
export function readParked<E extends EventBody = EventBody>(
  client: Queryable,
  subscriber: string,
  options?: ReadParkedOptions,
): Promise<Array<ParkedEvent<E>>>;

/**
 * Remove a parking; true if this call removed it. Call it in the
 * transaction that applies the event, and roll back on false.
 */
export function unparkEvent(client: Queryable, subscriber: string, globalPosition: Position): Promise<boolean>;

export interface ReplayParkedOptions {
  /** Parked events per transaction, a positive integer (default 100). */
  pageSize?: number;
}

export interface ReplayResult {
  /** Applied and unparked. */
  replayed: number;
  /** The handler failed again: parked again with the new error. */
  failed: number;
  /** Gone from the log since they were parked: unparked without the handler. */
  missing: number;
  /** Unparked by another replayer first. */
  skipped: number;
  /** The errors of the failed ones. */
  errors: Array<{ globalPosition: Position; error: unknown }>;
}

/**
 * Apply a subscriber's parked events again. Each page is one transaction
 * that takes the subscriber's lock; each event, in a savepoint, is
 * unparked and handed to handler(client, [event], parked). A handler that
 * throws rolls the event's savepoint back and parks it again with the new
 * error. Errors that pass on their own (40001, 40P01, 55P03, 57014, a lost
 * connection) roll the page back and reject: run it again. `client`: a
 * pg.Pool, or a pg.Client or PoolClient outside any transaction.
 */
export function replayParked<E extends EventBody = EventBody>(
  client: Queryable,
  subscriber: string,
  handler: (client: PoolClient, events: Array<RecordedEvent<E>>, parked: ParkedEvent<E>) => unknown,
  options?: ReplayParkedOptions,
): Promise<ReplayResult>;

// ---------------------------------------------------------------------------
// Snapshots

/** A stream's state as saved at one of its versions. */
export interface Snapshot<State = unknown> {
  /** The stream version the state was folded up to. */
  version: Version;
  /** The state as saved, parsed from JSON. */
  state: State;
  /** When it was saved (or last replaced). A Date with pg's default type parsers. */
  createdAt: Date;
}

/**
 * Save a stream's state at one of its versions; resolves to the version.
 * Saving the same version again replaces its snapshot. The state is sent as
 * JSON.stringify(state): any JSON value, null included (`{} | null` keeps
 * out undefined; a function or a symbol is a TypeError at run time).
 *
 * The server takes the stream's lock, so the save waits for an append of
 * the stream in progress and checks the version against the head it left.
 * Rejects with a TypeError or RangeError for bad arguments (before any
 * query: a version below 1 is a RangeError), an EventStoreError with code
 * '22023' for a version the stream does not have (nothing is saved), an
 * EventStoreError for any other SQLSTATE.
 */
export function saveSnapshot(
  client: Queryable,
  streamId: string,
  version: Version,
  state: {} | null,
): Promise<Version>;

export interface ReadSnapshotOptions {
  /** The latest snapshot at or below this version (default: the latest of all). At least 0. */
  maxVersion?: Version | null;
}

/**
 * A stream's latest snapshot (at or below maxVersion when given), or null
 * when there is none. Continue with readStream from version + 1. The state
 * type is not checked at run time.
 */
export function readSnapshot<State = unknown>(
  client: Queryable,
  streamId: string,
  options?: ReadSnapshotOptions,
): Promise<Snapshot<State> | null>;

// ---------------------------------------------------------------------------
// Stream lifecycle (extension 0.4.0)
//
// The server allows these only to a role with EXECUTE on the function and
// DELETE on event_store.events; without them the call rejects with an
// EventStoreError with code '42501'. A stream id beginning with '$' is
// refused by the server ('22023'). Bad arguments are a TypeError or a
// RangeError before any query.

/**
 * Soft-delete a stream if it is at the expected version (as for appends:
 * NO_STREAM, STREAM_EXISTS, ANY or an exact version; VE001 otherwise).
 * Every version up to the head is hidden for good and the stream's
 * snapshots are deleted; the stream then reads as empty, and an append
 * expecting NO_STREAM (0) or the head continues at head + 1 (versions are
 * never reused). Deleting a stream without events, or one already deleted,
 * changes nothing. Resolves to the head. A tombstoned stream rejects with
 * StreamTombstonedError.
 */
export function deleteStream(client: Queryable, streamId: string, expected: ExpectedVersion): Promise<Version>;

/**
 * Tombstone a stream if it is at the expected version: its events and
 * snapshots are removed, and every later append (an idempotent repeat of an
 * append stored before included) and snapshot save rejects with
 * StreamTombstonedError. A stream without events can be tombstoned (its id
 * is reserved). Resolves to the number of events removed (0 for a stream
 * already tombstoned).
 */
export function tombstoneStream(client: Queryable, streamId: string, expected: ExpectedVersion): Promise<Int8>;

/**
 * Hide the stream's versions below beforeVersion (1 or more), for good. The
 * server refuses ('22023') a beforeVersion above head + 1 or below an
 * earlier truncation. Resolves to the first visible version.
 */
export function truncateStream(client: Queryable, streamId: string, beforeVersion: Version): Promise<Version>;

/** A stream's retention: each limit null or absent for none. */
export interface StreamRetention {
  /** Keep only the last maxCount events visible: a positive integer (a RangeError below 1). */
  maxCount?: Int8 | null;
  /**
   * Hide events older than this: an interval in PostgreSQL's input syntax
   * ('90 days', '1 hour 30 minutes'), or a number of seconds (finite, at
   * least 0.000001; sent with microsecond precision). The server refuses
   * ('22023') an interval that is not positive.
   */
  maxAge?: string | number | null;
}

/**
 * Replace a stream's retention; `{}` clears it. The object is required and
 * may hold only maxCount and maxAge (any other key is a TypeError, so that
 * a misspelt key cannot clear a limit). Raising a limit shows again the
 * hidden events purge has not removed yet.
 */
export function setStreamRetention(client: Queryable, streamId: string, retention: StreamRetention): Promise<void>;

/** A stream's lifecycle state, as streamInfo returns it. */
export interface StreamInfo {
  /** The head: the last version ever appended (0 for a stream that does not exist). */
  version: Version;
  /** The first version reads may return now (1 for a stream that does not exist). */
  firstVisibleVersion: Version;
  /** The stream's truncation bound (truncateStream, deleteStream), as the server reports it. */
  truncateBefore: Version | null;
  /** The retention's maxCount, or null. */
  maxCount: Int8 | null;
  /** The retention's maxAge as the server prints the interval ('90 days', '01:00:00'), or null. */
  maxAge: string | null;
  tombstoned: boolean;
}

/** A stream's lifecycle state (takes no lock). */
export function streamInfo(client: Queryable, streamId: string): Promise<StreamInfo>;

/**
 * Remove hidden events physically, at most maxEvents (an integer from 1 to
 * 2^31 - 1; absent: the server's default, 10000). Resolves to the number
 * removed; 0 at once when another purge is running.
 */
export function purge(client: Queryable, maxEvents?: number | null): Promise<Int8>;

/**
 * Erase a stream for data protection: a tombstone, with a row in
 * event_store.erasures holding the reason (a non-empty string). Resolves to
 * the number of events erased.
 */
export function eraseStream(client: Queryable, streamId: string, reason: string): Promise<Int8>;

/** What a redaction writes in place of an event's data and metadata. */
export interface Redaction {
  /** Any JSON value (default {}). */
  data?: {} | null;
  /** A JSON object, or null or absent for none. */
  metadata?: Metadata | null;
}

/**
 * Rewrite one event's data and metadata in place (its position, version,
 * type and id stay), with a row in event_store.erasures holding the reason
 * (a non-empty string). The event id is a uuid in any form PostgreSQL
 * accepts. An unknown id rejects with code 'P0002'; an event of $lifecycle
 * with '22023'. Resolves to the event's global position.
 */
export function redactEvent(client: Queryable, eventId: string, reason: string, redaction?: Redaction): Promise<Position>;

/** The type of a lifecycle event's data, by event type. */
export type LifecycleEvent =
  | { type: '$deleted'; data: { stream_id: string; version: number; first_visible_version: number } }
  | { type: '$truncated'; data: { stream_id: string; first_visible_version: number } }
  | { type: '$retention'; data: { stream_id: string; max_count: number | null; max_age: string | null } }
  | { type: '$tombstoned'; data: { stream_id: string; version: number; events_removed: number } }
  | { type: '$erased'; data: { stream_id: string; version: number; events_removed: number; erasure_id: number } }
  | { type: '$redacted'; data: { stream_id: string; version: number; event_id: string; global_position: number; erasure_id: number } };

/** The reserved stream the server appends lifecycle events to. */
export const LIFECYCLE_STREAM: '$lifecycle';

/**
 * Whether an event (from readAll) is a lifecycle event: of stream
 * '$lifecycle', with a type beginning with '$'. Only readCategory of the
 * category '$lifecycle' returns them. Type the global log as holding them,
 * `readAll<AppEvent | LifecycleEvent>(...)`, so that the guard narrows each
 * branch to its side (with readAll<AppEvent> alone, the lifecycle branch is
 * `never`).
 */
export function isLifecycleEvent(
  event: { streamId: string; type: string },
): event is RecordedEvent<LifecycleEvent>;

// ---------------------------------------------------------------------------
// The command loop

/** What decide() is told besides the state. */
export interface DecideContext {
  streamId: string;
  /** The stream version the state was loaded at; the append expects it. */
  version: Version;
  /** The attempt, from 1. */
  attempt: number;
}

/** How a command loads a stream's state and decides on it. */
export interface CommandHandlers<State, E extends EventBody = EventBody> {
  /**
   * The state of a stream with no events, or a function returning a fresh
   * one (called for each load that starts from nothing). A value that is
   * not a function is copied with structuredClone for each load; one that
   * a copy would change (an instance of a class, a function inside) is a
   * TypeError: pass a function instead.
   */
  initialState: State | (() => State);
  /**
   * Fold one event into the state; synchronous. Return a new state rather
   * than change the one given: cached states are shared between commands,
   * and the state an attempt loaded is the next attempt's starting point.
   */
  evolve: (state: State, event: RecordedEvent<E>) => State;
  /**
   * Decide the events to append on this state: an array (empty, null or
   * undefined for none), or a promise of one. Events without an id get one
   * that is kept, position by position, across the command's attempts.
   */
  decide: (
    state: State,
    context: DecideContext,
  ) =>
    | ReadonlyArray<NewEvent<NotInferred<E>>>
    | null
    | undefined
    | PromiseLike<ReadonlyArray<NewEvent<NotInferred<E>>> | null | undefined>;
}

/**
 * E, without being a place to infer E from: handleCommand takes the event
 * type from evolve (or from its type arguments), so that a decide() that
 * returns [] does not make it `never`.
 */
type NotInferred<E> = [E][E extends any ? 0 : never];

/** A loaded state and the stream version it reflects. */
export interface CacheEntry<State> {
  version: Version;
  state: State;
}

/**
 * What handleCommand needs of a cache: createStateCache() or your own.
 * delete() drops an entry that is ahead of the stream (without it, the
 * entry is set to undefined). An entry ahead of the stream is found only
 * when an append conflicts (VE001 with an actual version below it): after
 * restoring the store from an older backup, clear the caches.
 */
export interface StateCacheLike<State> {
  get(streamId: string): CacheEntry<State> | undefined;
  set(streamId: string, entry: CacheEntry<State> | undefined): void;
  delete?(streamId: string): unknown;
}

/** An in-memory cache of stream states that drops the least recently used stream. */
export interface StateCache<State = any> extends StateCacheLike<State> {
  delete(streamId: string): boolean;
  clear(): void;
  readonly size: number;
}

export interface StateCacheOptions {
  /** The number of streams kept, a positive integer (default 1000). */
  max?: number;
}

/**
 * A cache of stream states for handleCommand, keyed by stream id. Use one
 * cache per kind of stream (per evolve function).
 */
export function createStateCache<State = any>(options?: StateCacheOptions): StateCache<State>;

export interface HandleCommandOptions<State = any> {
  /** Attempts in all, a positive safe integer (default 10). */
  maxAttempts?: number;
  /**
   * Backoff base in ms, finite, 0 to 2^31 - 1 (default 5): attempt n waits a
   * random time up to min(maxDelayMs, baseDelayMs * 2^(n-1)).
   */
  baseDelayMs?: number;
  /** Backoff cap in ms, finite, 0 to 2^31 - 1 (default 1000). */
  maxDelayMs?: number;
  /** Events per query when loading the stream, a positive safe integer (default 500). */
  pageSize?: number;
  /**
   * Load from the cached state and version, and store each state loaded
   * outside any transaction: through a pg.Pool, or a pg.Client or
   * PoolClient not in a transaction. Reads through anything else, or inside
   * a transaction (which may still roll back), are not stored. A conflict
   * whose actual version is below the cached one drops the entry, and the
   * command reads the stream from the start.
   */
  cache?: StateCacheLike<State>;
  /** Passed to appendToStream: NOTIFY on channel event_store when the append commits. */
  notify?: boolean;
  /** Use named prepared statements for the reads and the append (direct connections only). */
  prepare?: boolean;
  /**
   * Which errors of handleCommand's database calls to retry (default: the
   * exported isTransient). It is asked about nothing else: what
   * initialState, evolve or decide throws, and a decision the client
   * refuses (a TypeError), are never retried.
   */
  isTransient?: (err: unknown) => boolean;
}

/** An event handleCommand appended, with its id and version. */
export type AppendedEvent<E extends EventBody = EventBody> = E & {
  id: string;
  version: Version;
  metadata?: Metadata | null;
};

export interface CommandResult<State, E extends EventBody = EventBody> {
  /**
   * The stream's version after the append; when nothing was decided, the
   * version loaded; when alreadyDone, the version of the command's last
   * event as stored by the earlier attempt or command.
   */
  version: Version;
  /** The events appended, at consecutive versions; [] when none were (also when alreadyDone). */
  events: Array<AppendedEvent<E>>;
  /** The attempt that finished the command, from 1. */
  attempts: number;
  /**
   * True when the command's events were stored before: an earlier attempt
   * committed but its acknowledgement was lost, or the ids decide() gave
   * are already in the stream (VE002). Nothing was written twice.
   */
  alreadyDone: boolean;
  /**
   * The state as the last attempt loaded it, the one decide() saw: the
   * appended events are not folded into it.
   */
  state: State;
}

/**
 * Run a command against one stream: load the state (from the cache if
 * given), decide, append expecting the version loaded; when a database call
 * fails with a transient error (see isTransient) wait with jittered backoff
 * and do it all again, up to maxAttempts. A version conflict is therefore
 * decided again on the new state. What initialState, evolve or decide
 * throws ends the command at once (throwing from decide refuses it). The
 * error that ends the command is thrown with `attempts` set on it, and
 * `outcomeUnknown: true` when the last append may have been stored all the
 * same. Never retried, whatever isTransient says: a client-side timeout
 * (pg's query_timeout; the statement is cancelled first, see mapError),
 * and a lost connection of a pg.Client or PoolClient (its later queries
 * would all fail); the error that reported it is thrown. Through a
 * pg.Pool a lost connection is retried on another connection.
 *
 * After an append whose outcome is unknown (the connection failed), the
 * next attempt first waits for any append of the stream still in flight,
 * then reloads, so that it finds the earlier attempt's events if they were
 * stored, and reports the command alreadyDone.
 *
 * On a pg.Client or PoolClient inside a transaction of the caller's, each
 * append runs in a savepoint named event_store_command_ and 16 random hex
 * digits (one name per command; rolled back and released when the append
 * fails, released when it succeeds), so a conflict leaves the transaction
 * usable and is retried in it; a failed read, or a lost connection, ends
 * the command at once. After a client-side timeout of the append, it is
 * cancelled and rolled back to its savepoint before the error is thrown;
 * when that cannot be done, the error has `rollbackRequired: true`: the
 * transaction may hold the append and must be rolled back. Under
 * REPEATABLE READ or SERIALIZABLE a conflict also ends it at once: the
 * transaction's snapshot cannot see what a retry would need, so retry the
 * whole transaction. Nothing read inside the transaction is cached.
 */
export function handleCommand<State, E extends EventBody = EventBody>(
  client: Queryable,
  streamId: string,
  handlers: CommandHandlers<State, E>,
  options?: HandleCommandOptions<State>,
): Promise<CommandResult<State, E>>;

/**
 * Whether an attempt whose database call failed may be tried again: a
 * WrongExpectedVersionError (VE001), SQLSTATE 40001 or 40P01, 55P03
 * (lock_timeout), a lost connection (SQLSTATE class 08, 57P01 to 57P03), or
 * an Error without a SQLSTATE (the outcome is unknown), except a TypeError,
 * RangeError, SyntaxError, ReferenceError or pg's client-side timeout
 * ('Query read timeout': the caller's deadline). Anything else is not: 57014 (a
 * cancel or statement_timeout is a request to stop), other SQLSTATEs
 * (VE002, 22023, 23505, ...) and values that are not Errors.
 */
export function isTransient(err: unknown): boolean;

/**
 * A new version 7 uuid (time-ordered), as a lower-case string. The ids one
 * process makes are strictly increasing.
 */
export function newEventId(): string;

// ---------------------------------------------------------------------------
// Projections

export interface SubscribeOptions<E extends EventBody = EventBody> {
  /** The checkpoint's name, and the key of the lock that keeps two runners of it apart. */
  subscriber: string;
  /**
   * Apply a batch to the read model on `client`, inside the batch's
   * transaction. Do not commit, roll back or release it. Throwing (or
   * rejecting) rolls the batch back with the checkpoint.
   */
  handler: (client: PoolClient, events: Array<RecordedEvent<E>>) => unknown;
  /** Follow one category instead of the whole log. */
  category?: string | null;
  /** Only with a category (a TypeError otherwise): read only this member's share of it. */
  consumerGroup?: ConsumerGroup | null;
  /**
   * Only events of these types (0.5.0). The checkpoint still moves past
   * the others (last_read_position).
   */
  eventTypes?: string[] | null;
  /** Without `category` only: follow these categories of the log (0.5.0). */
  categories?: string[] | null;
  /** Events per batch, a positive safe integer (default 500). */
  batchSize?: number;
  /**
   * After a short batch, the longest wait for new events (one
   * wait_for_event, which returns as soon as there is one), or, with
   * `listen` or on a server before 0.5.0, the sleep before reading again;
   * also the wait when another runner of the subscriber holds its lock. In
   * ms, above 0 and at most 2^31 - 1 (default 1000).
   */
  pollIntervalMs?: number;
  /**
   * The wait after a failed batch (doubling per failure in a row, up to 64
   * times, at most 60 s) and before reconnecting the LISTEN connection, in
   * ms, above 0 and at most 2^31 - 1 (default 1000).
   */
  retryDelayMs?: number;
  /**
   * A direct connection (a connection string, or pg.Client settings) to
   * LISTEN on channel event_store, which wakes the runner early: the
   * runner then sleeps pollIntervalMs instead of waiting with
   * wait_for_event. Not through pgbouncer in transaction mode.
   */
  listen?: string | ClientConfig;
  /**
   * Called with each failed batch's error (the runner then retries) and
   * each failure to open the LISTEN connection. Without it, a failed batch
   * ends the runner and `done` rejects.
   */
  onError?: (err: unknown) => void;
  /**
   * What an error of the handler does (0.5.0 for 'park'). 'fail' (the
   * default): the batch fails. 'park': the batch is applied in a savepoint;
   * when that fails, its events are applied again one by one, each in a
   * savepoint, and an event whose handler throws is rolled back and parked
   * with String(err), in the batch's transaction, and the batch goes on.
   * Errors that pass on their own (40001, 40P01, 55P03, 57014, VE001, a lost
   * connection) still fail the batch.
   */
  onEventError?: 'fail' | 'park';
  /** Called after a batch commits, for each event it parked. */
  onParked?: (event: RecordedEvent<E>, error: unknown, attempts: number) => void;
}

/** A running projection. */
export interface Subscription {
  /** The last checkpoint this runner committed; undefined until its first batch commits. */
  readonly position: Position | undefined;
  /**
   * Finish the batch in progress and stop. Resolves when the runner has
   * stopped, also if it failed.
   */
  stop(): Promise<void>;
  /** Settles when the runner ends: resolves after stop(), rejects if it failed. */
  readonly done: Promise<void>;
}

/**
 * Start a projection runner that applies the global log (or one category)
 * to a read model exactly once. Each batch is one transaction on one
 * connection from the pool: try the subscriber's lock, read after its
 * checkpoint, handler(client, events), save the checkpoint (how far the
 * read got), commit. When another runner holds the lock, the runner ends
 * the transaction and waits pollIntervalMs instead of queueing for the
 * lock. After a short batch it waits for more with wait_for_event (0.5.0),
 * which stop() cancels.
 */
export function subscribe<E extends EventBody = EventBody>(
  pool: Pool,
  options: SubscribeOptions<E>,
): Subscription;

// ---------------------------------------------------------------------------
// Errors

export interface EventStoreErrorOptions {
  code?: string;
  streamId?: string;
  cause?: unknown;
  detail?: string;
  hint?: string;
}

/**
 * The base class of every error the store reports: a server error with a
 * SQLSTATE. The pg error is kept as `cause`.
 */
export class EventStoreError extends Error {
  constructor(message: string, options?: EventStoreErrorOptions);
  name: string;
  /** The SQLSTATE, such as '22023' or '40001'. */
  code: string | undefined;
  /** The stream of the call that failed, when it had one. */
  streamId?: string;
  /** The server's DETAIL. */
  detail?: string;
  /** The server's HINT. */
  hint?: string;
  /** The pg error this was mapped from. */
  cause?: unknown;
  /** For 23505 (an event id already stored in another stream): that id. */
  eventId?: string;
  /**
   * Set by handleCommand on the error it throws: the attempts made. (It
   * sets it on whatever error ends the loop, not only on these classes.)
   */
  attempts?: number;
  /**
   * Set on the error handleCommand throws when the last append may have
   * been stored all the same, and on a client-side timeout: false when the
   * cancelled statement was seen to end, true when it may still run.
   */
  outcomeUnknown?: boolean;
  /**
   * Set by handleCommand inside the caller's transaction when it could not
   * roll back to its savepoint: roll the transaction back, do not commit.
   */
  rollbackRequired?: boolean;
}

export interface WrongExpectedVersionErrorOptions {
  streamId?: string;
  expected?: Version;
  actual?: Version;
  cause?: unknown;
  detail?: string;
  hint?: string;
}

/** VE001: the stream was not at the expected version; nothing was written. */
export class WrongExpectedVersionError extends EventStoreError {
  constructor(message: string, options?: WrongExpectedVersionErrorOptions);
  name: 'WrongExpectedVersionError';
  code: 'VE001';
  /** The expected version of the call (from the DETAIL, or the call's own). */
  expected: Version | undefined;
  /** The stream's version at the time (from the DETAIL; undefined if it could not be parsed). */
  actual: Version | undefined;
}

export interface EventAlreadyStoredErrorOptions {
  streamId?: string;
  eventId?: string;
  version?: Version;
  cause?: unknown;
  detail?: string;
  hint?: string;
}

/**
 * VE002: an event id of the call is already stored in this stream, but not
 * as a repeat of this call: the command was carried out before.
 */
export class EventAlreadyStoredError extends EventStoreError {
  constructor(message: string, options?: EventAlreadyStoredErrorOptions);
  name: 'EventAlreadyStoredError';
  code: 'VE002';
  /** The first stored id, lower case (undefined if the DETAIL could not be parsed). */
  eventId: string | undefined;
  /** The version it is stored at (undefined if the DETAIL could not be parsed). */
  version: Version | undefined;
}

export interface StreamTombstonedErrorOptions {
  streamId?: string;
  cause?: unknown;
  detail?: string;
  hint?: string;
}

/**
 * VE003: the stream is tombstoned (tombstoneStream or eraseStream): nothing
 * can be appended to it or saved for it, ever again. isTransient says
 * false: a retry cannot succeed.
 */
export class StreamTombstonedError extends EventStoreError {
  constructor(message: string, options?: StreamTombstonedErrorOptions);
  name: 'StreamTombstonedError';
  code: 'VE003';
  /** The call's stream, or for an error of your own SQL the one the server's message names. */
  streamId?: string;
}

/** What a call knows when it maps an error. */
export interface ErrorContext {
  streamId?: string;
  /** Used for `expected` when a VE001 DETAIL says "any". */
  expected?: Version;
}

/**
 * Map a pg error to a typed error: VE001 to WrongExpectedVersionError, VE002
 * to EventAlreadyStoredError, VE003 to StreamTombstonedError, any other
 * server error with a SQLSTATE to EventStoreError. Anything else (no SQLSTATE: a lost connection, a
 * client-side timeout) is returned unchanged.
 *
 * After pg's client-side timeout (query_timeout) the functions of this
 * package send a cancel request for the statement and wait for it to end
 * (up to query_timeout again, at least a second) before they throw pg's
 * 'Query read timeout' error, with outcomeUnknown false when it was seen to
 * end (cause: the server error that ended it, 57014 for the cancel) and
 * true otherwise; a statement that finished first returns its result. A
 * server-side statement_timeout is the better deadline: the server stops
 * the statement, and the outcome is known (57014).
 */
export function mapError<T>(err: T, context?: ErrorContext): T | EventStoreError;

// Only what is marked `export` above is part of the package's types.
export {};
