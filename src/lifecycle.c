/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *		The stream lifecycle: delete_stream, tombstone_stream,
 *		truncate_stream, set_stream_retention, stream_info, purge,
 *		erase_stream and redact_event.
 *
 * These are the only sanctioned paths past the append-only guard.  Like the
 * appends, they write event_store.events and event_store.streams below the
 * executor, so the guard's statement triggers never fire for them, and they
 * keep refusing every UPDATE, DELETE and TRUNCATE from anywhere else.  The
 * derived tables (snapshots, the erasure audit) are written through SPI with
 * the rights of the tables' owner, after the caller's own right was checked.
 *
 * RIGHTS
 *
 * EXECUTE on these functions is not granted to PUBLIC, and each one that
 * changes or removes anything also requires DELETE on event_store.events
 * (es_check_lifecycle_right): a role granted EXECUTE on every function of
 * the schema, as a writer may be, still cannot delete, purge or erase.
 *
 * LOCKING PROTOCOL
 *
 * An operation on a stream (all but purge):
 *
 *	1. Takes the stream lock of the stream (append.c's lock, held to the
 *	   end of the transaction).  So every lifecycle operation is ordered
 *	   against every append of its stream: an append expecting the version
 *	   before a delete either commits first (and the delete's check sees it)
 *	   or runs after the delete commits (and sees the deleted stream); it
 *	   never slips between.
 *	2. Reads the head with a fresh snapshot (GetLatestSnapshot), as an
 *	   append does, and checks: a tombstoned stream takes no operation but
 *	   a repeated tombstone or an erasure (VE003); the expected version as
 *	   an append checks it (VE001).
 *	3. Changes the stream: its head row (the lifecycle columns; the version
 *	   never changes), its events, its snapshots.
 *	4. Appends one event describing the change to $lifecycle, in the same
 *	   transaction, which takes $lifecycle's lock last, after the work: so
 *	   lifecycle operations are ordered among themselves by their commits,
 *	   and an operation that waits for its stream's lock (behind an open
 *	   append) holds up no operation on another stream.  The global log's
 *	   readers learn of the change from that event, in commit order,
 *	   exactly once; and $lifecycle's head is the generation that tells
 *	   their cache to rebuild (visibility.c).
 *
 * The price of taking $lifecycle last: a transaction that holds it (it ran
 * a lifecycle operation) and then takes another stream's lock (an append,
 * or another operation) can deadlock with an operation on that stream that
 * holds its lock and waits for $lifecycle; the deadlock detector ends one
 * of them (40P01).  Taking $lifecycle first instead made every operation
 * wait behind one that waited for its stream's lock, behind any open
 * append: a stall of all lifecycle operations, which no detector ends.
 *
 * purge takes no stream lock.  Bounds only rise: visible_from and tombstoned
 * never go back, a stream's head only grows and time only passes, so an
 * event below a bound stays below it whatever commits meanwhile (only a
 * raised max_count or max_age could show it again, and a purge that ran
 * first may already have removed it; the README says so).  Appends insert
 * above the head and never touch the rows purge deletes.  Readers whose
 * snapshot predates the purge's commit still see the rows (MVCC); readers
 * after it had them hidden already.  Two purges do not run at once: the
 * second finds the purge lock taken and returns 0 at once.
 *
 * src/lifecycle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "event_store.h"

/* The purge lock: an advisory lock no stream lock can take (field 4). */
#define ES_PURGE_LOCK_FIELD4	0x4550

PG_FUNCTION_INFO_V1(delete_stream);
PG_FUNCTION_INFO_V1(tombstone_stream);
PG_FUNCTION_INFO_V1(truncate_stream);
PG_FUNCTION_INFO_V1(set_stream_retention);
PG_FUNCTION_INFO_V1(stream_info);
PG_FUNCTION_INFO_V1(purge);
PG_FUNCTION_INFO_V1(erase_stream);
PG_FUNCTION_INFO_V1(redact_event);

static text *StreamArg(FunctionCallInfo fcinfo, int argno);
static bool IsLifecycleStream(text *stream_id);
static int64 ExpectedVersionArg(FunctionCallInfo fcinfo, int argno);
static text *ReasonArg(FunctionCallInfo fcinfo, int argno);
static void OpenStream(EsStorage *st, const char *funcname, text *stream_id);
static void RequireNotTombstoned(EsStorage *st, text *stream_id);
static void SetHeadColumn(EsStorage *st, int attnum, Datum value, bool isnull);
static int64 RemoveEvents(EsStorage *st, text *stream_id, int64 *first,
						  int64 *last);
static int64 EndStream(EsStorage *st, text *stream_id, const char *funcname,
					   const char *type, text *reason);
static int64 RunAsOwner(Relation events, const char *query, int nargs,
						Oid *argtypes, Datum *args, const char *nulls,
						bool returns_bigint);
static void RemoveSnapshots(Relation events, text *stream_id);
static int64 RecordErasure(Relation events, const char *operation,
						   text *stream_id, pg_uuid_t *event_id,
						   int64 count, int64 first, int64 last,
						   text *reason);
static void AppendLifecycleEvent(const char *funcname, const char *type,
								 StringInfo data);
static void JsonKeyText(StringInfo buf, const char *key, text *value);
static void JsonKeyInt(StringInfo buf, const char *key, int64 value);

/*
 * A stream id argument: not null, valid, and not $lifecycle.  Other ids
 * beginning with '$' are streams a store had before 0.4.0 reserved the
 * prefix: closed to appends, but they can still be deleted and erased.
 */
static text *
StreamArg(FunctionCallInfo fcinfo, int argno)
{
	text	   *stream_id = es_check_stream_id(PG_GETARG_DATUM(argno),
											   PG_ARGISNULL(argno));

	if (IsLifecycleStream(stream_id))
		es_refuse_reserved_stream(stream_id);
	return stream_id;
}

/* Is this the stream of lifecycle events? */
static bool
IsLifecycleStream(text *stream_id)
{
	return VARSIZE_ANY_EXHDR(stream_id) == strlen(ES_LIFECYCLE_STREAM) &&
		memcmp(VARDATA_ANY(stream_id), ES_LIFECYCLE_STREAM,
			   strlen(ES_LIFECYCLE_STREAM)) == 0;
}

/* An expected version argument, as the 0.3.0 appends take it. */
static int64
ExpectedVersionArg(FunctionCallInfo fcinfo, int argno)
{
	int64		expected;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("expected version must not be null"),
				 errhint("Pass the version you read, or event_store.any_version() (-2) for no check.")));
	expected = PG_GETARG_INT64(argno);
	es_check_expected_version(expected, false);
	return expected;
}

/* The reason of an erasure: required, for the audit row. */
static text *
ReasonArg(FunctionCallInfo fcinfo, int argno)
{
	text	   *reason;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("reason must not be null"),
				 errhint("Say why the data is erased, for the audit table; do not put personal data in it.")));
	reason = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(reason) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reason must not be empty")));
	return reason;
}

/*
 * Steps 1 and 2 of the protocol, up to the checks: open the tables, check
 * the caller's right, take the locks and read the head.
 */
static void
OpenStream(EsStorage *st, const char *funcname, text *stream_id)
{
	PreventCommandIfReadOnly(funcname);
	PreventCommandIfParallelMode(funcname);
	es_storage_open(st);
	es_check_lifecycle_right(st->events);
	if (!st->cat->lifecycle)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"event_store.streams\" has no lifecycle columns"),
				 errhint("Run ALTER EXTENSION event_store UPDATE.")));
	es_lock_stream(st, stream_id);
	es_storage_read_head(st, stream_id);
}

static void
RequireNotTombstoned(EsStorage *st, text *stream_id)
{
	if (EsHeadTombstoned(st))
		es_report_tombstoned(stream_id);
}

/* Set one column of the head row that es_storage_write_head will write. */
static void
SetHeadColumn(EsStorage *st, int attnum, Datum value, bool isnull)
{
	st->head_values[attnum - 1] = value;
	st->head_nulls[attnum - 1] = isnull;
}

/* Remove every event of the stream; returns how many. */
static int64
RemoveEvents(EsStorage *st, text *stream_id, int64 *first, int64 *last)
{
	*first = 0;
	*last = 0;
	return es_storage_delete_events(st, es_storage_stream_index(st),
									stream_id, PG_INT64_MAX, PG_INT64_MAX,
									first, last);
}

/*
 * Run one statement through SPI with the rights of the events table's owner
 * (the extension's tables share one), as a SECURITY DEFINER function would:
 * the caller's right was checked already.  Row-level security is not
 * applied to the owner here.  Returns the statement's first column as a
 * bigint when asked, else the number of rows processed.
 */
static int64
RunAsOwner(Relation events, const char *query, int nargs, Oid *argtypes,
		   Datum *args, const char *nulls, bool returns_bigint)
{
	Oid			save_userid;
	int			save_sec;
	int			ret;
	int64		result;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(events->rd_rel->relowner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args(query, nargs, argtypes, args, nulls, false, 0);
	if (ret < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s",
			 SPI_result_code_string(ret));
	if (returns_bigint)
	{
		bool		isnull;

		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the audit row of the erasure was not stored"),
					 errdetail("A trigger on table \"event_store.erasures\" suppressed it."),
					 errhint("Drop the trigger: an erasure is not carried out without its audit row.")));
		result = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1,
											 &isnull));
	}
	else
		result = (int64) SPI_processed;
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	return result;
}

/* Delete a stream's snapshots (derived data: they go with its events). */
static void
RemoveSnapshots(Relation events, text *stream_id)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	args[0] = PointerGetDatum(stream_id);
	(void) RunAsOwner(events,
					  "DELETE FROM event_store.snapshots"
					  " WHERE stream_id OPERATOR(pg_catalog.=) $1",
					  1, argtypes, args, NULL, false);
}

/*
 * Write the audit row of an erasure; returns its id.  It names what was
 * erased, when, by whom and why, and holds none of the erased data.
 */
static int64
RecordErasure(Relation events, const char *operation, text *stream_id,
			  pg_uuid_t *event_id, int64 count, int64 first, int64 last,
			  text *reason)
{
	Oid			argtypes[9] = {TEXTOID, TEXTOID, TEXTOID, UUIDOID, INT8OID,
	INT8OID, INT8OID, TEXTOID, TEXTOID};
	Datum		args[9];
	char		nulls[10] = "         ";

	args[0] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	args[1] = CStringGetTextDatum(operation);
	args[2] = PointerGetDatum(stream_id);
	if (event_id != NULL)
		args[3] = UUIDPGetDatum(event_id);
	else
		nulls[3] = 'n';
	args[4] = Int64GetDatum(count);
	args[5] = Int64GetDatum(first);
	args[6] = Int64GetDatum(last);
	if (count == 0)
		nulls[5] = nulls[6] = 'n';
	args[7] = PointerGetDatum(reason);
	args[8] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
	return RunAsOwner(events,
					  "INSERT INTO event_store.erasures"
					  " (erased_by, operation, stream_id, event_id,"
					  " event_count, first_position, last_position, reason,"
					  " session_user_name)"
					  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
					  " RETURNING erasure_id",
					  9, argtypes, args, nulls, true);
}

static void
JsonKeyText(StringInfo buf, const char *key, text *value)
{
	appendStringInfo(buf, "%s\"%s\": ", buf->len > 1 ? ", " : "", key);
	escape_json(buf, text_to_cstring(value));
}

static void
JsonKeyInt(StringInfo buf, const char *key, int64 value)
{
	appendStringInfo(buf, "%s\"%s\": " INT64_FORMAT, buf->len > 1 ? ", " : "",
					 key, value);
}

/*
 * Step 4: append the lifecycle event to $lifecycle (the data is a JSON
 * object under construction, opened with '{' and closed here), which takes
 * $lifecycle's lock.
 */
static void
AppendLifecycleEvent(const char *funcname, const char *type, StringInfo data)
{
	EsEventInput ev;

	appendStringInfoChar(data, '}');
	memset(&ev, 0, sizeof(ev));
	ev.event_type = cstring_to_text(type);
	ev.data = DirectFunctionCall1(jsonb_in, CStringGetDatum(data->data));
	es_append_lifecycle_event(funcname, &ev);
}

/*
 * event_store.delete_stream(stream_id text, expected_version bigint)
 * returns bigint
 *
 * Soft delete: the stream's versions up to its head are hidden for good
 * from every read, and its snapshots are deleted.  An append continues at
 * head + 1.  Deleting a stream with no events, or one already emptied,
 * changes nothing.  Returns the stream's version.
 */
Datum
delete_stream(PG_FUNCTION_ARGS)
{
	text	   *stream_id = StreamArg(fcinfo, 0);
	int64		expected = ExpectedVersionArg(fcinfo, 1);
	EsStorage	st;
	int64		head;
	StringInfoData data;

	OpenStream(&st, "delete_stream", stream_id);
	RequireNotTombstoned(&st, stream_id);
	head = st.head_version;
	if (!es_version_matches(&st, expected))
		es_report_conflict(stream_id, expected, head);
	if (head == 0 || EsHeadVisibleFrom(&st) > head)
	{
		es_storage_close(&st);
		PG_RETURN_INT64(head);
	}

	SetHeadColumn(&st, Anum_es_streams_visible_from, Int64GetDatum(head + 1),
				  false);
	es_storage_write_head(&st, stream_id, head);
	RemoveSnapshots(st.events, stream_id);
	es_storage_close(&st);

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	JsonKeyText(&data, "stream_id", stream_id);
	JsonKeyInt(&data, "version", head);
	JsonKeyInt(&data, "first_visible_version", head + 1);
	AppendLifecycleEvent("delete_stream", "$deleted", &data);
	PG_RETURN_INT64(head);
}

/*
 * Tombstone or erase a stream, whose lock is held and whose head st holds:
 * remove its events and snapshots, mark it so that it takes no more appends,
 * write the audit row of an erasure (reason not NULL), close the storage and
 * append the lifecycle event.  Returns how many events were removed.
 */
static int64
EndStream(EsStorage *st, text *stream_id, const char *funcname,
		  const char *type, text *reason)
{
	int64		head = st->head_version;
	int64		removed;
	int64		first;
	int64		last;
	int64		erasure_id = 0;
	StringInfoData data;

	removed = RemoveEvents(st, stream_id, &first, &last);
	SetHeadColumn(st, Anum_es_streams_visible_from, Int64GetDatum(head + 1),
				  false);
	SetHeadColumn(st, Anum_es_streams_tombstoned, BoolGetDatum(true), false);
	SetHeadColumn(st, Anum_es_streams_max_count, (Datum) 0, true);
	SetHeadColumn(st, Anum_es_streams_max_age, (Datum) 0, true);
	es_storage_write_head(st, stream_id, head);
	RemoveSnapshots(st->events, stream_id);
	if (reason != NULL)
		erasure_id = RecordErasure(st->events, funcname, stream_id, NULL,
								   removed, first, last, reason);
	es_storage_close(st);

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	JsonKeyText(&data, "stream_id", stream_id);
	JsonKeyInt(&data, "version", head);
	JsonKeyInt(&data, "events_removed", removed);
	if (reason != NULL)
		JsonKeyInt(&data, "erasure_id", erasure_id);
	AppendLifecycleEvent(funcname, type, &data);
	return removed;
}

/*
 * event_store.tombstone_stream(stream_id text, expected_version bigint)
 * returns bigint
 *
 * Hard delete: the stream's events and snapshots are removed, and every
 * later append to the stream id fails with VE003, a retry of an append
 * stored before included.  A stream with no events can be tombstoned too,
 * which reserves its id.  Tombstoning a tombstoned stream changes nothing.
 * Returns how many events were removed.
 */
Datum
tombstone_stream(PG_FUNCTION_ARGS)
{
	text	   *stream_id = StreamArg(fcinfo, 0);
	int64		expected = ExpectedVersionArg(fcinfo, 1);
	EsStorage	st;

	OpenStream(&st, "tombstone_stream", stream_id);
	if (EsHeadTombstoned(&st))
	{
		es_storage_close(&st);
		PG_RETURN_INT64(0);
	}
	if (!es_version_matches(&st, expected))
		es_report_conflict(stream_id, expected, st.head_version);
	PG_RETURN_INT64(EndStream(&st, stream_id, "tombstone_stream",
							  "$tombstoned", NULL));
}

/*
 * event_store.erase_stream(stream_id text, reason text) returns bigint
 *
 * Erasure for data protection: a tombstone with no version check, and an
 * audit row.  Erasing a tombstoned stream removes what may be left (its
 * snapshots) and is recorded too.  Returns how many events were erased.
 */
Datum
erase_stream(PG_FUNCTION_ARGS)
{
	text	   *stream_id = StreamArg(fcinfo, 0);
	text	   *reason = ReasonArg(fcinfo, 1);
	EsStorage	st;

	OpenStream(&st, "erase_stream", stream_id);
	PG_RETURN_INT64(EndStream(&st, stream_id, "erase_stream", "$erased",
							  reason));
}

/*
 * event_store.truncate_stream(stream_id text, before_version bigint)
 * returns bigint
 *
 * Hide the versions below before_version, for good (KurrentDB's truncate
 * before).  It may be at most head + 1 (hide everything) and cannot be
 * lowered.  Returns the stream's first visible version as this sets it.
 */
Datum
truncate_stream(PG_FUNCTION_ARGS)
{
	text	   *stream_id = StreamArg(fcinfo, 0);
	int64		before;
	int64		head;
	int64		visible_from;
	EsStorage	st;
	StringInfoData data;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("before_version must not be null")));
	before = PG_GETARG_INT64(1);
	if (before < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid before_version " INT64_FORMAT, before),
				 errdetail("Versions start at 1.")));

	OpenStream(&st, "truncate_stream", stream_id);
	RequireNotTombstoned(&st, stream_id);
	head = st.head_version;
	visible_from = EsHeadVisibleFrom(&st);
	if (before > head + 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot truncate stream \"%s\" before version " INT64_FORMAT,
						text_to_cstring(stream_id), before),
				 errdetail("The stream is at version " INT64_FORMAT "; it can be truncated before version " INT64_FORMAT " at most.",
						   head, head + 1)));
	if (before < visible_from)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot truncate stream \"%s\" before version " INT64_FORMAT,
						text_to_cstring(stream_id), before),
				 errdetail("Versions below " INT64_FORMAT " are hidden for good.",
						   visible_from)));
	if (before == visible_from)
	{
		es_storage_close(&st);
		PG_RETURN_INT64(before);
	}

	SetHeadColumn(&st, Anum_es_streams_visible_from, Int64GetDatum(before),
				  false);
	es_storage_write_head(&st, stream_id, head);
	es_storage_close(&st);

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	JsonKeyText(&data, "stream_id", stream_id);
	JsonKeyInt(&data, "first_visible_version", before);
	AppendLifecycleEvent("truncate_stream", "$truncated", &data);
	PG_RETURN_INT64(before);
}

/*
 * event_store.set_stream_retention(stream_id text, max_count bigint,
 *		max_age interval) returns void
 *
 * Replace the stream's retention limits; NULL clears one.  A stream that
 * does not exist yet gets a head row at version 0, so that its first events
 * are already kept under the limits.
 */
Datum
set_stream_retention(PG_FUNCTION_ARGS)
{
	text	   *stream_id = StreamArg(fcinfo, 0);
	bool		has_count = !PG_ARGISNULL(1);
	bool		has_age = !PG_ARGISNULL(2);
	int64		max_count = has_count ? PG_GETARG_INT64(1) : 0;
	Interval   *max_age = has_age ? PG_GETARG_INTERVAL_P(2) : NULL;
	EsStorage	st;
	EsStreamLimits old;
	StringInfoData data;

	if (has_count && max_count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must be at least 1")));
	if (has_age)
	{
		Interval	limit;

		/*
		 * Each field non-negative and one positive: an interval such as
		 * '-2 mons +60 days' is positive to interval_cmp, which counts a
		 * month as 30 days, but moves a cutoff into the future.
		 */
		if (es_interval_is_infinite(max_age) ||
			max_age->month < 0 || max_age->day < 0 || max_age->time < 0 ||
			(max_age->month == 0 && max_age->day == 0 && max_age->time == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_age must be positive and finite"),
					 errdetail("Its months, days and time must each be zero or more, and one of them more than zero.")));
		memset(&limit, 0, sizeof(limit));
		limit.month = 1000 * MONTHS_PER_YEAR;
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
											  IntervalPGetDatum(max_age),
											  IntervalPGetDatum(&limit))) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_age must be at most 1000 years")));
	}

	OpenStream(&st, "set_stream_retention", stream_id);
	RequireNotTombstoned(&st, stream_id);
	es_head_limits(&st, &old);
	if (old.has_max_count == has_count &&
		(!has_count || old.max_count == max_count) &&
		old.has_max_age == has_age &&
		(!has_age || (old.max_age.month == max_age->month &&
					  old.max_age.day == max_age->day &&
					  old.max_age.time == max_age->time)))
	{
		es_storage_close(&st);
		PG_RETURN_VOID();
	}

	SetHeadColumn(&st, Anum_es_streams_max_count, Int64GetDatum(max_count),
				  !has_count);
	SetHeadColumn(&st, Anum_es_streams_max_age, IntervalPGetDatum(max_age),
				  !has_age);
	es_storage_write_head(&st, stream_id, st.head_version);
	es_storage_close(&st);

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	JsonKeyText(&data, "stream_id", stream_id);
	if (has_count)
		JsonKeyInt(&data, "max_count", max_count);
	else
		appendStringInfoString(&data, ", \"max_count\": null");
	appendStringInfoString(&data, ", \"max_age\": ");
	if (has_age)
	{
		/* ISO 8601, whatever the session's IntervalStyle. */
		struct pg_itm itm;
		char		buf[MAXDATELEN + 1];

		interval2itm(*max_age, &itm);
		EncodeInterval(&itm, INTSTYLE_ISO_8601, buf);
		escape_json(&data, buf);
	}
	else
		appendStringInfoString(&data, "null");
	AppendLifecycleEvent("set_stream_retention", "$retention", &data);
	PG_RETURN_VOID();
}

/*
 * event_store.stream_info(stream_id text) returns (version bigint,
 *		first_visible_version bigint, truncate_before bigint,
 *		max_count bigint, max_age interval, tombstoned boolean)
 *
 * A stream's lifecycle state under the query's snapshot; a stream that does
 * not exist has version 0 and hides nothing.  Needs SELECT on
 * event_store.events and event_store.streams; it reads the head below the
 * executor, so it refuses a caller subject to row-level security on the
 * heads table rather than bypass the policies.
 */
Datum
stream_info(PG_FUNCTION_ARGS)
{
	text	   *stream_id = es_check_stream_id(PG_GETARG_DATUM(0),
											   PG_ARGISNULL(0));
	EsStreamLimits limits;
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	int64		first;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	first = es_stream_bound(stream_id, true, &limits);

	values[0] = Int64GetDatum(limits.head);
	values[1] = Int64GetDatum(first);
	values[2] = Int64GetDatum(limits.visible_from);
	values[3] = Int64GetDatum(limits.max_count);
	nulls[3] = !limits.has_max_count;
	if (limits.has_max_age)
	{
		Interval   *age = palloc(sizeof(Interval));

		*age = limits.max_age;
		values[4] = IntervalPGetDatum(age);
	}
	else
		nulls[4] = true;
	values[5] = BoolGetDatum(limits.tombstoned);
	desc = BlessTupleDesc(desc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * event_store.purge(max_events integer) returns bigint
 *
 * Remove hidden events physically, at most max_events, and return how many
 * were removed.  Runs beside appends and readers (see the protocol above);
 * one purge at a time, a second returns 0 at once.  Call it again until it
 * returns less than max_events; then VACUUM gives the space back.
 */
Datum
purge(PG_FUNCTION_ARGS)
{
	int64		max_events;
	EsStorage	st;
	LOCKTAG		tag;
	Relation	stream_idx;
	Relation	lifecycle_idx = NULL;
	Oid			lifecycle_oid;
	IndexScanDesc iscan = NULL;
	TableScanDesc hscan = NULL;
	TupleTableSlot *slot;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int64		removed = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_events must not be null")));
	max_events = PG_GETARG_INT32(0);
	if (max_events < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_events must be at least 1")));

	PreventCommandIfReadOnly("purge");
	PreventCommandIfParallelMode("purge");
	es_storage_open(&st);
	es_check_lifecycle_right(st.events);
	if (!st.cat->lifecycle)
	{
		es_storage_close(&st);
		PG_RETURN_INT64(0);
	}

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, ES_PURGE_LOCK_FIELD4);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		es_storage_close(&st);
		PG_RETURN_INT64(0);
	}

	st.snapshot = RegisterSnapshot(GetLatestSnapshot());
	stream_idx = es_storage_stream_index(&st);
	slot = table_slot_create(st.streams, NULL);
	lifecycle_oid = es_lifecycle_index(st.streams);
	if (OidIsValid(lifecycle_oid))
	{
		lifecycle_idx = index_open(lifecycle_oid, AccessShareLock);
		iscan = es_index_beginscan(st.streams, lifecycle_idx, st.snapshot, 0, 0);
		index_rescan(iscan, NULL, 0, NULL, 0);
	}
	else
		hscan = table_beginscan(st.streams, st.snapshot, 0, NULL);

	while (removed < max_events)
	{
		EsStreamLimits limits;
		bool		isnull;
		text	   *sid;
		int64		bound;
		int64		first;
		int64		last;

		CHECK_FOR_INTERRUPTS();
		if (iscan != NULL ?
			!index_getnext_slot(iscan, ForwardScanDirection, slot) :
			!table_scan_getnextslot(hscan, ForwardScanDirection, slot))
			break;
		slot_getallattrs(slot);
		es_limits_from_slot(slot, &limits);
		if (limits.tombstoned ||
			(limits.visible_from <= 1 && !limits.has_max_count &&
			 !limits.has_max_age))
			continue;
		sid = DatumGetTextPP(slot_getattr(slot, Anum_es_streams_stream_id,
										  &isnull));
		sid = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(sid));
		bound = es_first_visible(&limits, st.events, stream_idx, st.snapshot,
								 sid, now);
		if (bound > 1)
			removed += es_storage_delete_events(&st, stream_idx, sid, bound,
												max_events - removed,
												&first, &last);
		pfree(sid);
	}

	if (iscan != NULL)
	{
		index_endscan(iscan);
		index_close(lifecycle_idx, NoLock);
	}
	else
		table_endscan(hscan);
	ExecDropSingleTupleTableSlot(slot);
	es_storage_close(&st);
	PG_RETURN_INT64(removed);
}

/*
 * event_store.redact_event(event_id uuid, reason text, data jsonb,
 *		metadata jsonb) returns bigint
 *
 * Rewrite one event's data and metadata in place, for data protection: its
 * position, version, type and id stay.  Writes an audit row and a
 * $redacted lifecycle event.  Returns the event's global position.
 */
Datum
redact_event(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *event_id;
	text	   *reason;
	Datum		data;
	EsStorage	st;
	text	   *stream_id = NULL;
	int64		version = 0;
	int64		position = 0;
	int64		erasure_id;
	StringInfoData json;
	bool		found;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event id must not be null")));
	event_id = PG_GETARG_UUID_P(0);
	reason = ReasonArg(fcinfo, 1);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event data must not be null"),
				 errhint("Pass the JSON value null ('null'::jsonb) to keep no data.")));
	data = PG_GETARG_DATUM(2);
	if (!PG_ARGISNULL(3))
		es_check_metadata(PG_GETARG_JSONB_P(3));

	PreventCommandIfReadOnly("redact_event");
	PreventCommandIfParallelMode("redact_event");

	/*
	 * Find the event's stream, then lock as every operation on it does and
	 * look again: an erasure may have removed it meanwhile.
	 */
	es_storage_open(&st);
	es_check_lifecycle_right(st.events);
	st.snapshot = RegisterSnapshot(GetLatestSnapshot());
	found = es_storage_event_by_id(&st, event_id, &stream_id, &version,
								   &position);
	UnregisterSnapshot(st.snapshot);
	st.snapshot = NULL;
	es_storage_close(&st);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("event \"%s\" does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out,
															UUIDPGetDatum(event_id))))));
	if (IsLifecycleStream(stream_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot redact an event of stream \"%s\"",
						text_to_cstring(stream_id)),
				 errdetail("Lifecycle events hold no personal data.")));

	OpenStream(&st, "redact_event", stream_id);
	if (!es_storage_update_event(&st, es_storage_stream_index(&st), stream_id,
								 version, event_id, data,
								 PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
								 PG_ARGISNULL(3)))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("event \"%s\" does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out,
															UUIDPGetDatum(event_id)))),
				 errdetail("It was removed while the redaction waited for its stream.")));
	erasure_id = RecordErasure(st.events, "redact_event", stream_id, event_id,
							   1, position, position, reason);
	es_storage_close(&st);

	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	JsonKeyText(&json, "stream_id", stream_id);
	JsonKeyInt(&json, "version", version);
	appendStringInfoString(&json, ", \"event_id\": ");
	escape_json(&json, DatumGetCString(DirectFunctionCall1(uuid_out,
														   UUIDPGetDatum(event_id))));
	JsonKeyInt(&json, "global_position", position);
	JsonKeyInt(&json, "erasure_id", erasure_id);
	AppendLifecycleEvent("redact_event", "$redacted", &json);
	PG_RETURN_INT64(position);
}
