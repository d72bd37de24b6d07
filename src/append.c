/*-------------------------------------------------------------------------
 *
 * append.c
 *		event_store.append_event and event_store.append_events.
 *
 * LOCKING PROTOCOL
 *
 * Every append to a stream, including an empty batch, runs these steps:
 *
 *	1. Check the arguments and parse the batch.  No lock is held yet.
 *	2. Take RowExclusiveLock on event_store.events and event_store.streams.
 *	3. Take the stream lock: a transaction-scoped advisory lock in
 *	   ExclusiveLock mode, exactly as pg_advisory_xact_lock would, on a key
 *	   derived from the stream id (below).  It is held until the transaction
 *	   ends, so it waits like any heavyweight lock: lock_timeout and
 *	   statement_timeout interrupt it, and the deadlock detector sees it.
 *	   A transaction that holds event_store.streams in ExclusiveLock
 *	   (lock_all_streams) skips this step: no other session can append
 *	   until it ends, since step 2 conflicts with that lock.
 *	4. Take a fresh snapshot (GetLatestSnapshot).  The previous holder of the
 *	   stream lock released it only after its commit or abort was visible to
 *	   new snapshots, so this snapshot sees the head it left, or the head as
 *	   it was before it if it rolled back.  The check therefore always runs
 *	   against the latest committed state, whatever the isolation level.
 *	5. Read the stream's head row (its version; 0 when there is none).
 *	6. If the caller supplied event ids, look each one up: an id stored in
 *	   another stream is an error; ids that repeat an earlier append of this
 *	   call make it succeed without writing (idempotent retry); ids found
 *	   otherwise are a conflict.  An id that another open transaction has
 *	   just inserted is waited for here, before anything is written.
 *	7. Check the expected version; a mismatch is a conflict.
 *	8. Insert the events at head+1, head+2, ... and move the head (update
 *	   its row, or insert it for a new stream).  The first event is inserted
 *	   inside the gate's window (gate.c), in which nothing waits for another
 *	   transaction; the others after it.
 *
 * Nothing is written before step 8, so a failed check writes nothing.  Only
 * the holder of the stream lock ever writes a stream's head or events, so no
 * two appends can take the same version, and two sessions creating the same
 * new stream are serialized by the lock before either inserts the head row:
 * the second one sees the first one's head and reports a conflict, never a
 * unique violation.  Appends to different streams take different locks and
 * never wait for each other, except on a 64-bit hash collision, which only
 * makes one wait and cannot break a check, and except where they insert the
 * same event id or violate a unique index of the user's together: then the
 * later one waits for the earlier one's transaction, as an INSERT would.
 * Every loop over a call's events checks for interrupts, so cancel and
 * statement_timeout stop a batch of any size.
 *
 * The lock key: the 64-bit hash_bytes_extended of the stream id's bytes,
 * split over the two 32-bit key fields of an advisory lock tag, whose fourth
 * field is ES_LOCK_FIELD4.  pg_advisory_lock(bigint) uses 1 there and
 * pg_advisory_lock(int, int) uses 2, so an application's own advisory locks
 * can never collide with a stream lock.  In pg_locks, stream locks show as
 * locktype 'advisory' with objsubid 17747.
 *
 * src/append.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "commands/async.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "event_store.h"

/* The fourth field of a stream lock's tag ("ES"). */
#define ES_LOCK_FIELD4		0x4553

/* Seed of the stream-lock hash; fixed, as lock keys must agree across backends. */
#define ES_LOCK_SEED		UINT64CONST(0x6576656e7473746f)

PG_FUNCTION_INFO_V1(append_event);
PG_FUNCTION_INFO_V1(append_events);
PG_FUNCTION_INFO_V1(append_event_checked);
PG_FUNCTION_INFO_V1(append_events_checked);
PG_FUNCTION_INFO_V1(append_event_reserved);
PG_FUNCTION_INFO_V1(append_events_reserved);
PG_FUNCTION_INFO_V1(lock_all_streams);
PG_FUNCTION_INFO_V1(new_event_id);

static void LockStream(EsStorage *st, text *stream_id);
static void ReportConflict(text *stream_id, int64 expected, int64 actual,
						   bool ids_elsewhere);
static void ReportAlreadyStored(text *stream_id, const pg_uuid_t *id,
								int64 version);
static void ReportForeignId(const pg_uuid_t *id);
static int64 CheckRepeat(EsStorage *st, text *stream_id, int64 expected,
						 EsEventInput *events, int nevents, bool legacy);
static int64 ExpectedArg(FunctionCallInfo fcinfo, bool legacy);
static Datum AppendEvent(FunctionCallInfo fcinfo, bool legacy,
						 bool refuse_reserved);
static Datum AppendEvents(FunctionCallInfo fcinfo, bool legacy,
						  bool refuse_reserved);
static int64 InsertEvents(EsStorage *st, text *stream_id, int64 first_version,
						 EsEventInput *events, int nevents, Jsonb *batch);
static void Notify(void);
static int64 AppendUnderLock(const char *funcname, text *stream_id,
							 int64 expected, EsEventInput *events, int nevents,
							 Jsonb *batch, bool legacy, bool lifecycle_log);

/*
 * Take the stream lock until the end of the transaction, unless the
 * transaction holds event_store.streams in ExclusiveLock (lock_all_streams),
 * which keeps every other append out of the whole store until it ends.
 */
static void
LockStream(EsStorage *st, text *stream_id)
{
	uint64		key;
	LOCKTAG		tag;

	if (CheckRelationLockedByMe(st->streams, ExclusiveLock, true))
		return;
	key = hash_bytes_extended((const unsigned char *) VARDATA_ANY(stream_id),
							  VARSIZE_ANY_EXHDR(stream_id), ES_LOCK_SEED);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32),
						 (uint32) key, ES_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* Take a stream's lock, as an append does (for the lifecycle functions). */
void
es_lock_stream(EsStorage *st, text *stream_id)
{
	LockStream(st, stream_id);
}

/*
 * Report an append to a tombstoned stream.  This is checked before
 * everything else, the repeat of an earlier call included: a stream deleted
 * for good takes nothing more, and a retry must not be told it succeeded.
 */
void
es_report_tombstoned(text *stream_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_ES_STREAM_TOMBSTONED),
			 errmsg("stream \"%s\" is tombstoned", text_to_cstring(stream_id)),
			 errdetail("The stream was deleted for good and can never be written to again."),
			 errhidestmt(true),
			 errhidecontext(true)));
}

/*
 * Report a failed expected-version check.  The DETAIL has a fixed form that
 * clients may parse: "Expected version E, actual version A." where E is a
 * number, or "any" for the NULL of the 0.1 and 0.2 functions.  A conflict is
 * an expected outcome, so the statement and context are left out of the
 * server log, and event_store.log_conflicts = off leaves it out altogether.
 */
static void
ReportConflict(text *stream_id, int64 expected, int64 actual,
			   bool ids_elsewhere)
{
	char		expected_str[32];

	if (expected == ES_EXPECT_ANY)
		strlcpy(expected_str, "any", sizeof(expected_str));
	else
		snprintf(expected_str, sizeof(expected_str), INT64_FORMAT, expected);

	ereport(ERROR,
			(errcode(ERRCODE_ES_WRONG_EXPECTED_VERSION),
			 errmsg("wrong expected version for stream \"%s\"",
					text_to_cstring(stream_id)),
			 errdetail("Expected version %s, actual version " INT64_FORMAT ".",
					   expected_str, actual),
			 ids_elsewhere ?
			 errhint("Some event ids of this call are already stored in the stream, but not as a repeat of this call.") :
			 errhint("Read the stream again and decide on its current state."),
			 errhidestmt(true),
			 errhidecontext(true)));
}

/* Report a failed expected-version check (for the lifecycle functions). */
void
es_report_conflict(text *stream_id, int64 expected, int64 actual)
{
	ReportConflict(stream_id, expected, actual, false);
}

/*
 * Report that an event id of the call is already stored in this stream, but
 * not as a repeat of this call: the command that made the event has already
 * been carried out, and no retry can change that.  The DETAIL has a fixed
 * form that clients may parse: "Event id U is stored at version N."
 */
static void
ReportAlreadyStored(text *stream_id, const pg_uuid_t *id, int64 version)
{
	ereport(ERROR,
			(errcode(ERRCODE_ES_EVENT_ALREADY_STORED),
			 errmsg("event already stored in stream \"%s\"",
					text_to_cstring(stream_id)),
			 errdetail("Event id %s is stored at version " INT64_FORMAT ".",
					   DatumGetCString(DirectFunctionCall1(uuid_out,
														   UUIDPGetDatum(id))),
					   version),
			 errhint("The command that made this event has already been carried out; report it as done rather than retrying."),
			 errhidestmt(true),
			 errhidecontext(true)));
}

/* Report an event id that is stored in another stream. */
static void
ReportForeignId(const pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("event id \"%s\" already exists in another stream",
					DatumGetCString(DirectFunctionCall1(uuid_out,
														UUIDPGetDatum(id)))),
			 errdetail("Event ids are unique across the whole store.")));
}

/*
 * Decide whether a call whose ids are already stored repeats an earlier
 * append.  Returns -1 when none of the ids is stored (go on with the append),
 * the version to return when the call is a repeat, and reports otherwise:
 * VE002, naming the first stored id (VE001 for the 0.1 and 0.2 functions).
 * Raises unique_violation for an id stored in another stream.
 */
static int64
CheckRepeat(EsStorage *st, text *stream_id, int64 expected,
			EsEventInput *events, int nevents, bool legacy)
{
	int			nfound = 0;
	bool		consecutive = true;
	int64		first = 0;
	int			first_found = -1;
	int64		first_found_version = 0;

	for (int i = 0; i < nevents; i++)
	{
		bool		same_stream;
		int64		version;

		CHECK_FOR_INTERRUPTS();
		if (!events[i].has_id)
			continue;
		if (!es_storage_find_event(st, &events[i].id, stream_id,
								   &same_stream, &version))
			continue;
		if (!same_stream)
			ReportForeignId(&events[i].id);

		if (nfound == 0)
		{
			first = version - i;
			first_found = i;
			first_found_version = version;
		}
		if (version != first + i)
			consecutive = false;
		nfound++;
	}

	if (nfound == 0)
		return -1;

	/*
	 * A repeat: every event of the call is stored, in call order at
	 * consecutive versions, and where the expectation says it should be.
	 */
	if (nfound == nevents && consecutive &&
		(expected == ES_EXPECT_ANY || expected == ES_EXPECT_STREAM_EXISTS ||
		 first == expected + 1 ||
		 (expected == ES_EXPECT_NO_STREAM && first == EsHeadVisibleFrom(st))))
		return first + nevents - 1;

	if (legacy)
		ReportConflict(stream_id, expected, st->head_version, true);
	ReportAlreadyStored(stream_id, &events[first_found].id,
						first_found_version);
	return -1;					/* keep compiler quiet */
}

/*
 * Insert the events at consecutive versions from first_version.  Each event's
 * values are built (from the batch, when there is one) and inserted in a
 * memory context of its own, emptied after every event, so memory stays flat
 * however long the batch.  Only the first event is inserted inside the
 * gate's window (see storage.c and gate.c).
 *
 * An event id can still collide here, with an id that a concurrent,
 * uncommitted append to another stream inserted after the look-up in
 * CheckRepeat: the unique index then waits for that transaction (outside the
 * window) and fails if it commits.  That failure is reported like the one
 * CheckRepeat raises, naming the id.
 */
static int64
InsertEvents(EsStorage *st, text *stream_id, int64 first_version,
			 EsEventInput *events, int nevents, Jsonb *batch)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext eventcxt;
	volatile int i = 0;
	volatile int64 last = 0;

	eventcxt = AllocSetContextCreate(CurrentMemoryContext,
									 "event_store event",
									 ALLOCSET_DEFAULT_SIZES);
	PG_TRY();
	{
		for (; i < nevents; i++)
		{
			CHECK_FOR_INTERRUPTS();
			MemoryContextSwitchTo(eventcxt);
			if (!events[i].has_id)
				es_generate_event_id(&events[i].id);
			if (batch != NULL)
				es_load_batch_event(batch, i, &events[i]);
			last = es_storage_insert_event(st, stream_id, first_version + i,
										   &events[i], i == 0);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(eventcxt);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_UNIQUE_VIOLATION &&
			edata->constraint_name != NULL &&
			strcmp(edata->constraint_name,
				   RelationGetRelationName(st->event_id_idx)) == 0)
		{
			FlushErrorState();
			ReportForeignId(&events[i].id);
		}
		FreeErrorData(edata);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextDelete(eventcxt);
	return last;
}

/*
 * With event_store.notify on, send one NOTIFY on channel "event_store" for
 * the append, delivered if and when the transaction commits.  LISTEN checks
 * no privilege, so the notification carries no payload: any role that can
 * connect may receive it.  Identical notifications of one transaction are
 * delivered once, so a transaction sends one however many appends it makes.
 */
static void
Notify(void)
{
	Async_Notify("event_store", "");
}

/*
 * Does the stream's head satisfy the expectation?  A stream whose events are
 * all hidden by a soft delete or a truncation (its first visible version is
 * past its head) reads as empty, so "no stream" matches it and "stream
 * exists" does not; its exact version still matches too.
 */
bool
es_version_matches(const EsStorage *st, int64 expected)
{
	int64		current = st->head_version;
	bool		emptied = current > 0 && EsHeadVisibleFrom(st) > current;

	if (expected == ES_EXPECT_ANY)
		return true;
	if (expected == ES_EXPECT_NO_STREAM)
		return current == 0 || emptied;
	if (expected == ES_EXPECT_STREAM_EXISTS)
		return current > 0 && !emptied;
	return current == expected;
}

/*
 * Append events to a stream under the locking protocol above.  Returns the
 * stream's version after the append.
 */
int64
es_append(const char *funcname, text *stream_id, int64 expected,
		  EsEventInput *events, int nevents, Jsonb *batch, bool legacy)
{
	return AppendUnderLock(funcname, stream_id, expected, events, nevents,
						   batch, legacy, false);
}

/*
 * Append a lifecycle operation's event to $lifecycle (lifecycle.c).  That
 * stream is the operations' own log, ordered by its lock: under REPEATABLE
 * READ its head moving since the snapshot says nothing about the operation's
 * stream, so it is not a serialization failure here.
 */
void
es_append_lifecycle_event(const char *funcname, EsEventInput *ev)
{
	(void) AppendUnderLock(funcname, cstring_to_text(ES_LIFECYCLE_STREAM),
						   ES_EXPECT_ANY, ev, 1, NULL, false, true);
	es_visibility_wrote_lifecycle();
}

static int64
AppendUnderLock(const char *funcname, text *stream_id, int64 expected,
				EsEventInput *events, int nevents, Jsonb *batch, bool legacy,
				bool lifecycle_log)
{
	EsStorage	st;
	int64		current;
	int64		result;
	int64		last_position;

	PreventCommandIfReadOnly(funcname);
	PreventCommandIfParallelMode(funcname);
	es_check_unique_ids(events, nevents);

	es_storage_open(&st);
	LockStream(&st, stream_id);
	es_storage_read_head(&st, stream_id);
	current = st.head_version;
	if (EsHeadTombstoned(&st))
		es_report_tombstoned(stream_id);
	if (lifecycle_log)
		st.head_moved_after_snapshot = false;

	result = CheckRepeat(&st, stream_id, expected, events, nevents, legacy);
	if (result >= 0)
	{
		es_storage_close(&st);
		return result;
	}

	if (!es_version_matches(&st, expected))
		es_report_conflict(stream_id, expected, current);

	if (nevents == 0)
	{
		es_storage_close(&st);
		return current;
	}

	if (current > PG_INT64_MAX - nevents)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("stream \"%s\" cannot hold more events",
						text_to_cstring(stream_id))));

	last_position = InsertEvents(&st, stream_id, current + 1, events, nevents,
								 batch);
	result = current + nevents;
	es_storage_write_head(&st, stream_id, result);
	es_storage_close(&st);

	if (es_notify)
		Notify();
	es_note_append(st.cat, last_position);

	/* Let later commands of this transaction see the new events and head. */
	CommandCounterIncrement();
	return result;
}

/*
 * The expected version argument.  From 0.3.0 on, NULL is refused: "no
 * check" is -2, said on purpose, because a client's undefined or None
 * arrives as NULL.  The 0.1 and 0.2 functions (legacy) took NULL for it.
 */
static int64
ExpectedArg(FunctionCallInfo fcinfo, bool legacy)
{
	int64		expected;

	if (PG_ARGISNULL(1))
	{
		if (legacy)
			return ES_EXPECT_ANY;
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("expected version must not be null"),
				 errhint("Pass the version you read, 0 for a new stream, -1 for an existing one, or event_store.any_version() (-2) to append without a check.")));
	}
	expected = PG_GETARG_INT64(1);
	es_check_expected_version(expected, legacy);
	return expected;
}

/*
 * event_store.append_event(stream_id, expected_version, event_type, data,
 *							metadata, event_id) returns bigint
 */
static Datum
AppendEvent(FunctionCallInfo fcinfo, bool legacy, bool refuse_reserved)
{
	text	   *stream_id = es_check_stream_id(PG_GETARG_DATUM(0), PG_ARGISNULL(0));
	int64		expected = ExpectedArg(fcinfo, legacy);
	EsEventInput ev;

	if (refuse_reserved)
		es_refuse_reserved_stream(stream_id);

	memset(&ev, 0, sizeof(ev));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event type must not be null")));
	ev.event_type = PG_GETARG_TEXT_PP(2);
	es_check_event_type(ev.event_type);
	if (refuse_reserved)
		es_refuse_reserved_type(ev.event_type);

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event data must not be null"),
				 errhint("Pass the JSON value null ('null'::jsonb) for an event without data.")));
	ev.data = PG_GETARG_DATUM(3);

	if (!PG_ARGISNULL(4))
	{
		es_check_metadata(PG_GETARG_JSONB_P(4));
		ev.metadata = PG_GETARG_DATUM(4);
		ev.has_metadata = true;
	}

	if (!PG_ARGISNULL(5))
	{
		ev.id = *PG_GETARG_UUID_P(5);
		ev.has_id = true;
	}

	PG_RETURN_INT64(es_append("append_event", stream_id, expected, &ev, 1,
							  NULL, legacy));
}

/*
 * event_store.append_events(stream_id, expected_version, events jsonb)
 * returns bigint
 */
static Datum
AppendEvents(FunctionCallInfo fcinfo, bool legacy, bool refuse_reserved)
{
	text	   *stream_id = es_check_stream_id(PG_GETARG_DATUM(0), PG_ARGISNULL(0));
	int64		expected = ExpectedArg(fcinfo, legacy);
	Jsonb	   *batch;
	EsEventInput *events;
	int			nevents;

	if (refuse_reserved)
		es_refuse_reserved_stream(stream_id);

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("events must not be null"),
				 errhint("Pass an empty JSON array to check the expected version without appending.")));
	batch = PG_GETARG_JSONB_P(2);
	events = es_parse_event_array(batch, &nevents, refuse_reserved);

	PG_RETURN_INT64(es_append("append_events", stream_id, expected, events,
							  nevents, batch, legacy));
}

/*
 * The append functions of 0.4.0 on: as 0.3.0's, and stream ids and event
 * types beginning with '$' are refused (reserved for lifecycle events).
 */
Datum
append_event_reserved(PG_FUNCTION_ARGS)
{
	return AppendEvent(fcinfo, false, true);
}

Datum
append_events_reserved(PG_FUNCTION_ARGS)
{
	return AppendEvents(fcinfo, false, true);
}

/* The append functions of 0.3.0: NULL refused, VE002 for stored ids. */
Datum
append_event_checked(PG_FUNCTION_ARGS)
{
	return AppendEvent(fcinfo, false, false);
}

Datum
append_events_checked(PG_FUNCTION_ARGS)
{
	return AppendEvents(fcinfo, false, false);
}

/*
 * The append functions as 0.1.0 and 0.2.0 declare them (NULL means any),
 * for a database whose extension has not been updated yet.
 */
Datum
append_event(PG_FUNCTION_ARGS)
{
	return AppendEvent(fcinfo, true, false);
}

Datum
append_events(PG_FUNCTION_ARGS)
{
	return AppendEvents(fcinfo, true, false);
}

/*
 * event_store.new_event_id() returns uuid: a version 7 uuid, as the append
 * functions make for events without an id (PostgreSQL 18's own generator
 * where there is one).
 */
Datum
new_event_id(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

	es_generate_event_id(id);
	PG_RETURN_UUID_P(id);
}

/*
 * event_store.lock_all_streams() returns void
 *
 * Take ExclusiveLock on event_store.streams until the end of the
 * transaction.  Every append takes RowExclusiveLock on that table, so no
 * other session appends until this transaction ends (they wait, and then
 * check against what it committed), and this transaction's own appends need
 * no stream lock each: an import of any number of streams holds one lock.
 * Readers are not held up.
 */
Datum
lock_all_streams(PG_FUNCTION_ARGS)
{
	Relation	streams;

	PreventCommandIfReadOnly("lock_all_streams");
	PreventCommandIfParallelMode("lock_all_streams");
	(void) es_catalog_open(ExclusiveLock, NULL, &streams);
	table_close(streams, NoLock);
	PG_RETURN_VOID();
}
