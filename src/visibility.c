/*-------------------------------------------------------------------------
 *
 * visibility.c
 *		Which versions of a stream the read functions show: the bounds set
 *		by soft delete, truncation and retention.
 *
 * A stream shows the versions from its first visible version up to its
 * head.  The first visible version is the highest of:
 *
 *	- visible_from, which delete_stream and truncate_stream only ever raise
 *	  (a soft delete sets it to head + 1);
 *	- head - max_count + 1, with a max_count;
 *	- with a max_age, the first stored version whose created_at is not
 *	  older than the reading statement's start (the transaction's, under
 *	  REPEATABLE READ and SERIALIZABLE) minus max_age.  created_at is the
 *	  start of the appending transaction, so it need not rise with the
 *	  version (a transaction open for long appends an old time after young
 *	  ones): the bound hides only the run of old events at the start of the
 *	  stream and stops at the first young one, so no young event is ever
 *	  hidden or purged.  It is found by reading the stream's old events in
 *	  order from the other bounds on, which purge keeps few.
 *
 * Every bound is a version, so read_stream applies it as one more bound of
 * its index range (first_visible_version), and the global log applies it
 * with a comparison per row.
 *
 * THE GLOBAL LOG'S CACHE
 *
 * read_all and read_category scan by position, so they need, for the stream
 * of each row, its bound.  A backend keeps a hash of the streams that hide
 * anything (visible_from > 1, or a retention limit), built under the read's
 * snapshot S by a scan of the partial index streams_lifecycle_idx.  Every
 * operation that changes a bound appends, in its transaction, one event to
 * the reserved stream $lifecycle, so that stream's head, read under S, is
 * the generation of the bounds S sees: a read whose generation differs from
 * the hash's rebuilds it.  A read therefore applies exactly the operations
 * whose commit its snapshot sees: none that commit later, every one that
 * committed before.  The bounds that move without a lifecycle operation
 * (max_count as the head rises, max_age as time passes) are computed once
 * per read, under S, for the streams that have them.  A store where no
 * stream hides anything pays one index probe per read.
 *
 * src/visibility.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "event_store.h"

PG_FUNCTION_INFO_V1(first_visible_version);

/* One stream that hides anything; the id's bytes live in the cache. */
typedef struct HidingEntry
{
	const char *id;
	int			len;
	uint32		hash;			/* hash_bytes of the id */
	EsStreamLimits limits;
	uint64		read_id;		/* the read whose bound is in bound */
	int64		bound;			/* first visible version for that read */
} HidingEntry;

/*
 * The backend's cache, for one streams table at one generation: the
 * entries, and an open-addressing table of slots over them (each slot the
 * entry's index + 1, 0 when empty; at most half of them used), so that the
 * check made for every row of the global log is one hash of the stream id
 * and, for a stream that hides nothing, usually one probe.
 */
static MemoryContext hiding_cxt = NULL;
static HidingEntry *hiding = NULL;
static int	hiding_count = 0;
static uint32 *hiding_slots = NULL;
static uint32 hiding_mask = 0;
static int64 hiding_max_bound = 0;	/* no fixed bound is higher */
static int64 hiding_horizon = 0;	/* no fixed bound hides a later position */
static Oid	hiding_streams = InvalidOid;
static int64 hiding_generation = -1;
static bool hiding_dynamic = false; /* some entry has a moving bound */
static uint64 read_counter = 0;
static bool wrote_lifecycle = false;	/* this transaction wrote $lifecycle */

static void ForgetOnAbort(XactEvent event, void *arg);
static void ForgetOnSubAbort(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);
static HidingEntry *FindHiding(const char *id, int len);
static void LimitsFromValues(EsStreamLimits *limits, const Datum *values,
							 const bool *nulls, int natts);
static void LimitsByQuery(Relation streams, text *stream_id,
						  EsStreamLimits *limits);
static int64 HeadGeneration(Relation streams, Relation pkey, Snapshot snapshot);
static void BuildHiding(Relation streams, Relation pkey, Snapshot snapshot,
						int64 generation, Relation events,
						Relation stream_idx);
static int64 FirstYoung(Relation events, Relation index, Snapshot snapshot,
						text *stream_id, int64 from, int64 head,
						TimestampTz cutoff);

/*
 * A hash built while the backend saw its own uncommitted lifecycle
 * operations holds bounds that a rollback takes back, and $lifecycle's head
 * version is then used again by the next operation; and under REPEATABLE
 * READ an operation appends to $lifecycle above operations its snapshot
 * does not see, so a hash built under that snapshot carries a generation
 * that fresh snapshots reach with more bounds.  So the hash is forgotten on
 * every abort, of a transaction or a subtransaction, and at the end of every
 * transaction that wrote $lifecycle, whether it commits, prepares or aborts.
 */
static void
ForgetOnAbort(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			hiding_streams = InvalidOid;
			wrote_lifecycle = false;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			if (wrote_lifecycle)
				hiding_streams = InvalidOid;
			wrote_lifecycle = false;
			break;
		default:
			break;
	}
}

/* Note that this transaction wrote $lifecycle (append.c). */
void
es_visibility_wrote_lifecycle(void)
{
	wrote_lifecycle = true;
	hiding_streams = InvalidOid;
}

static void
ForgetOnSubAbort(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	/*
	 * Only a transaction that wrote $lifecycle can have built the cache
	 * from a write that the subtransaction's abort takes back.
	 */
	if (event == SUBXACT_EVENT_ABORT_SUB && wrote_lifecycle)
		hiding_streams = InvalidOid;
}

/* Register the callbacks above (from _PG_init). */
void
es_visibility_init(void)
{
	RegisterXactCallback(ForgetOnAbort, NULL);
	RegisterSubXactCallback(ForgetOnSubAbort, NULL);
}

/* The cache's entry of a stream, or NULL when it hides nothing. */
static HidingEntry *
FindHiding(const char *id, int len)
{
	uint32		hash = hash_bytes((const unsigned char *) id, len);

	for (uint32 i = hash & hiding_mask;; i = (i + 1) & hiding_mask)
	{
		uint32		slot = hiding_slots[i];
		HidingEntry *entry;

		if (slot == 0)
			return NULL;
		entry = &hiding[slot - 1];
		if (entry->hash == hash && entry->len == len &&
			memcmp(entry->id, id, len) == 0)
			return entry;
	}
}

/* The limits of a head row's columns (the defaults before 0.4.0). */
static void
LimitsFromValues(EsStreamLimits *limits, const Datum *values,
				 const bool *nulls, int natts)
{
	memset(limits, 0, sizeof(EsStreamLimits));
	limits->head = nulls[Anum_es_streams_version - 1] ? 0 :
		DatumGetInt64(values[Anum_es_streams_version - 1]);
	limits->visible_from = 1;
	if (natts < Natts_es_streams)
		return;
	limits->visible_from = DatumGetInt64(values[Anum_es_streams_visible_from - 1]);
	limits->tombstoned = DatumGetBool(values[Anum_es_streams_tombstoned - 1]);
	if (!nulls[Anum_es_streams_max_count - 1])
	{
		limits->has_max_count = true;
		limits->max_count = DatumGetInt64(values[Anum_es_streams_max_count - 1]);
	}
	if (!nulls[Anum_es_streams_max_age - 1])
	{
		limits->has_max_age = true;
		limits->max_age = *DatumGetIntervalP(values[Anum_es_streams_max_age - 1]);
	}
}

/* The limits in a head that es_storage_read_head has read. */
void
es_head_limits(const EsStorage *st, EsStreamLimits *limits)
{
	LimitsFromValues(limits, st->head_values, st->head_nulls, st->head_natts);
}

/* The limits in a head row held by a slot whose attributes are all read. */
void
es_limits_from_slot(TupleTableSlot *slot, EsStreamLimits *limits)
{
	LimitsFromValues(limits, slot->tts_values, slot->tts_isnull,
					 slot->tts_tupleDescriptor->natts);
}

/*
 * Read a stream's head row under a snapshot; false when there is none (then
 * limits holds a stream with no events and no bounds).
 */
bool
es_read_limits(Relation streams, Relation pkey, Snapshot snapshot,
			   text *stream_id, EsStreamLimits *limits)
{
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot = table_slot_create(streams, NULL);
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	scan = es_index_beginscan(streams, pkey, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
	{
		slot_getallattrs(slot);
		LimitsFromValues(limits, slot->tts_values, slot->tts_isnull,
						 slot->tts_tupleDescriptor->natts);
	}
	else
	{
		memset(limits, 0, sizeof(EsStreamLimits));
		limits->visible_from = 1;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/*
 * The time max_age is measured from: the reading statement's start, or the
 * transaction's where the transaction keeps one snapshot.
 */
TimestampTz
es_retention_now(void)
{
	if (IsolationUsesXactSnapshot())
		return GetCurrentTransactionStartTimestamp();
	return GetCurrentStatementStartTimestamp();
}

/*
 * The first stored version from "from" on whose created_at is not older
 * than the cutoff; head + 1 when there is none.  The scan reads the old
 * events in order until the first young one, so it costs as many index
 * entries as there are old events that purge has not removed yet.
 */
static int64
FirstYoung(Relation events, Relation index, Snapshot snapshot,
		   text *stream_id, int64 from, int64 head, TimestampTz cutoff)
{
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(events, NULL);
	int64		first = head + 1;

	scan = es_begin_version_scan(events, index, snapshot, stream_id,
								 BTGreaterEqualStrategyNumber, from);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		TimestampTz at;

		CHECK_FOR_INTERRUPTS();
		at = DatumGetTimestampTz(slot_getattr(slot, Anum_es_events_created_at,
											  &isnull));
		if (at >= cutoff)
		{
			first = DatumGetInt64(slot_getattr(slot, Anum_es_events_version,
											   &isnull));
			break;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return first;
}

/*
 * A stream's first visible version under its limits (see the top of this
 * file).  events and stream_idx (events on (stream_id, version)) are needed
 * only for a max_age.
 */
int64
es_first_visible(const EsStreamLimits *limits, Relation events,
				 Relation stream_idx, Snapshot snapshot, text *stream_id,
				 TimestampTz now)
{
	int64		bound = limits->visible_from;

	if (limits->has_max_count && limits->head - limits->max_count + 1 > bound)
		bound = limits->head - limits->max_count + 1;

	if (limits->has_max_age && bound <= limits->head)
	{
		TimestampTz cutoff;

		cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														 TimestampTzGetDatum(now),
														 IntervalPGetDatum(&limits->max_age)));
		bound = FirstYoung(events, stream_idx, snapshot, stream_id, bound,
						   limits->head, cutoff);
	}
	return bound;
}

/*
 * event_store.first_visible_version(stream_id text) returns bigint
 *
 * The first version read_stream shows, under the query's snapshot: 1 for a
 * stream that hides nothing, head + 1 when it hides everything.  Used by
 * read_stream as a bound of its index range; the caller's right to read
 * event_store.events is checked, as read_stream's own scan would.  For a
 * caller subject to row-level security on event_store.streams who may read
 * that table, the head is read through the policies (a head the caller may
 * not see hides nothing), so that the bound tells nothing of another
 * tenant's stream; a caller who may not read the table at all gets the bound
 * read with the extension's rights, as read_all applies it.
 */
Datum
first_visible_version(PG_FUNCTION_ARGS)
{
	EsStreamLimits limits;

	PG_RETURN_INT64(es_stream_bound(PG_GETARG_TEXT_PP(0), false, &limits));
}

/*
 * A stream's limits and first visible version under the query's snapshot,
 * for first_visible_version and (for_info) stream_info.  Both need SELECT
 * on event_store.events.  stream_info shows the head row whole, so it also
 * needs SELECT on event_store.streams, and refuses a caller subject to
 * row-level security there rather than bypass the policies;
 * first_visible_version reads the head through them instead (see above).
 */
int64
es_stream_bound(text *stream_id, bool for_info, EsStreamLimits *limits)
{
	const EsCatalog *cat;
	Relation	events;
	Relation	streams;
	Relation	pkey;
	Relation	stream_idx = NULL;
	Snapshot	snapshot = GetActiveSnapshot();
	bool		rls;
	int64		bound;

	cat = es_catalog_open(AccessShareLock, &events, &streams);
	es_check_select(events);
	if (for_info)
		es_check_select(streams);
	rls = check_enable_rls(RelationGetRelid(streams), InvalidOid,
						   false) == RLS_ENABLED;
	if (rls && for_info)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("stream_info does not apply row-level security policies"),
				 errdetail("Row-level security is enabled on table \"event_store.streams\" for this role."),
				 errhint("Use event_store.stream_version, which applies them.")));
	pkey = es_open_index(cat, streams, ES_INDEX_STREAM_ID, AccessShareLock);
	if (rls && pg_class_aclcheck(RelationGetRelid(streams), GetUserId(),
								 ACL_SELECT) == ACLCHECK_OK)
		LimitsByQuery(streams, stream_id, limits);
	else
		(void) es_read_limits(streams, pkey, snapshot, stream_id, limits);
	if (limits->has_max_age)
		stream_idx = es_open_index(cat, events, ES_INDEX_STREAM_VERSION,
								   AccessShareLock);
	bound = es_first_visible(limits, events, stream_idx, snapshot, stream_id,
							 es_retention_now());
	if (stream_idx != NULL)
		index_close(stream_idx, NoLock);
	index_close(pkey, NoLock);
	table_close(streams, NoLock);
	table_close(events, NoLock);
	return bound;
}

/*
 * Read a stream's limits through the heads table's policies (heads.c); no
 * row visible: no bound.
 */
static void
LimitsByQuery(Relation streams, text *stream_id, EsStreamLimits *limits)
{
	Datum		values[Natts_es_streams];
	bool		nulls[Natts_es_streams];
	int			natts = RelationGetDescr(streams)->natts;

	memset(limits, 0, sizeof(EsStreamLimits));
	limits->visible_from = 1;
	if (es_head_by_query(streams, stream_id, natts, values, nulls))
		LimitsFromValues(limits, values, nulls, natts);
}

/* The head of $lifecycle under a snapshot: the generation of the bounds. */
static int64
HeadGeneration(Relation streams, Relation pkey, Snapshot snapshot)
{
	EsStreamLimits limits;
	text	   *lifecycle = cstring_to_text(ES_LIFECYCLE_STREAM);

	(void) es_read_limits(streams, pkey, snapshot, lifecycle, &limits);
	pfree(lifecycle);
	return limits.head;
}

/*
 * Build the hash of the streams that hide anything, as a snapshot sees
 * them, from the partial index streams_lifecycle_idx (or, if it is missing,
 * a scan of the table).
 */
static void
BuildHiding(Relation streams, Relation pkey, Snapshot snapshot,
			int64 generation, Relation events, Relation stream_idx)
{
	TupleTableSlot *slot;
	Oid			indexid = es_lifecycle_index(streams);
	Relation	index = NULL;
	IndexScanDesc iscan = NULL;
	TableScanDesc hscan = NULL;
	int			allocated = 64;
	uint32		nslots;

	if (hiding_cxt == NULL)
		hiding_cxt = AllocSetContextCreate(TopMemoryContext,
										   "event_store hiding streams",
										   ALLOCSET_DEFAULT_SIZES);
	hiding = NULL;
	hiding_count = 0;
	hiding_slots = NULL;
	hiding_streams = InvalidOid;
	hiding_dynamic = false;
	hiding_max_bound = 0;
	hiding_horizon = PG_INT64_MAX;
	MemoryContextReset(hiding_cxt);
	hiding = MemoryContextAlloc(hiding_cxt, sizeof(HidingEntry) * allocated);

	slot = table_slot_create(streams, NULL);
	if (OidIsValid(indexid))
	{
		index = index_open(indexid, AccessShareLock);
		iscan = es_index_beginscan(streams, index, snapshot, 0, 0);
		index_rescan(iscan, NULL, 0, NULL, 0);
	}
	else
		hscan = table_beginscan(streams, snapshot, 0, NULL);

	for (;;)
	{
		EsStreamLimits limits;
		text	   *sid;
		bool		isnull;
		HidingEntry *entry;
		char	   *id;

		CHECK_FOR_INTERRUPTS();
		if (iscan != NULL ?
			!index_getnext_slot(iscan, ForwardScanDirection, slot) :
			!table_scan_getnextslot(hscan, ForwardScanDirection, slot))
			break;
		slot_getallattrs(slot);
		LimitsFromValues(&limits, slot->tts_values, slot->tts_isnull,
						 slot->tts_tupleDescriptor->natts);
		if (limits.tombstoned ||
			(limits.visible_from <= 1 && !limits.has_max_count &&
			 !limits.has_max_age))
			continue;

		sid = DatumGetTextPP(slot_getattr(slot, Anum_es_streams_stream_id,
										  &isnull));
		if (hiding_count == allocated)
		{
			allocated *= 2;
			hiding = repalloc_huge(hiding, sizeof(HidingEntry) * allocated);
		}
		entry = &hiding[hiding_count++];
		entry->len = VARSIZE_ANY_EXHDR(sid);
		id = MemoryContextAlloc(hiding_cxt, Max(entry->len, 1));
		memcpy(id, VARDATA_ANY(sid), entry->len);
		entry->id = id;
		entry->hash = hash_bytes((const unsigned char *) id, entry->len);
		entry->limits = limits;
		entry->read_id = 0;
		entry->bound = limits.visible_from;
		if (limits.has_max_count || limits.has_max_age)
			hiding_dynamic = true;
		if (limits.visible_from > hiding_max_bound)
			hiding_max_bound = limits.visible_from;
	}

	/* The slots: a power of two, at least twice the entries. */
	for (nslots = 16; nslots < (uint32) hiding_count * 2; nslots *= 2)
		;
	hiding_slots = MemoryContextAllocExtended(hiding_cxt,
											  sizeof(uint32) * nslots,
											  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	hiding_mask = nslots - 1;
	for (int e = 0; e < hiding_count; e++)
	{
		uint32		i = hiding[e].hash & hiding_mask;

		while (hiding_slots[i] != 0)
			i = (i + 1) & hiding_mask;
		hiding_slots[i] = e + 1;
	}

	if (iscan != NULL)
	{
		index_endscan(iscan);
		index_close(index, NoLock);
	}
	else
		table_endscan(hscan);
	ExecDropSingleTupleTableSlot(slot);

	/*
	 * The horizon: the position of $lifecycle's event at this generation.
	 * An operation that raised a fixed bound hid only events its stream had
	 * when it took the stream's lock, which committed before it appended its
	 * own event; so no fixed bound hides an event at a later position, and a
	 * reader following the log's head checks no row against them.
	 */
	if (generation > 0)
	{
		IndexScanDesc scan;
		TupleTableSlot *eslot = table_slot_create(events, NULL);
		text	   *lifecycle = cstring_to_text(ES_LIFECYCLE_STREAM);

		scan = es_begin_version_scan(events, stream_idx, snapshot, lifecycle,
									 BTEqualStrategyNumber, generation);
		if (index_getnext_slot(scan, ForwardScanDirection, eslot))
		{
			bool		isnull;

			hiding_horizon = DatumGetInt64(slot_getattr(eslot,
														Anum_es_events_global_position,
														&isnull));
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(eslot);
		pfree(lifecycle);
	}

	hiding_streams = RelationGetRelid(streams);
	hiding_generation = generation;
}

/*
 * Prepare a read of the global log under snapshot S: bring the backend's
 * hash up to S's generation.  Sets up h for es_hidden; h->active is false
 * when no stream hides anything, and then es_hidden is never needed.
 */
void
es_hiding_begin(EsHiding *h, Relation events, Snapshot snapshot)
{
	const EsCatalog *cat;
	Relation	streams;
	Relation	pkey;
	int64		generation;

	memset(h, 0, sizeof(EsHiding));
	cat = es_catalog_open(AccessShareLock, NULL, &streams);
	if (!cat->lifecycle)
	{
		table_close(streams, NoLock);
		return;
	}
	pkey = es_open_index(cat, streams, ES_INDEX_STREAM_ID, AccessShareLock);
	generation = HeadGeneration(streams, pkey, snapshot);

	if (hiding == NULL || hiding_streams != RelationGetRelid(streams) ||
		hiding_generation != generation)
	{
		Relation	stream_idx = es_open_index(cat, events,
											   ES_INDEX_STREAM_VERSION,
											   AccessShareLock);

		BuildHiding(streams, pkey, snapshot, generation, events, stream_idx);
		index_close(stream_idx, NoLock);
	}

	if (hiding_count > 0)
	{
		h->active = true;
		h->read_id = ++read_counter;
		h->snapshot = snapshot;
		h->now = es_retention_now();
		h->events = events;
		if (hiding_dynamic)
		{
			h->streams = streams;
			h->pkey = pkey;
			h->stream_idx = es_open_index(cat, events, ES_INDEX_STREAM_VERSION,
										  AccessShareLock);
			return;
		}
	}
	index_close(pkey, NoLock);
	table_close(streams, NoLock);
}

/* Release what es_hiding_begin opened. */
void
es_hiding_end(EsHiding *h)
{
	if (h->stream_idx != NULL)
		index_close(h->stream_idx, NoLock);
	if (h->pkey != NULL)
		index_close(h->pkey, NoLock);
	if (h->streams != NULL)
		table_close(h->streams, NoLock);
	memset(h, 0, sizeof(EsHiding));
}

/*
 * Is the event in the slot (visible to the read's snapshot) hidden by its
 * stream's bound?
 */
bool
es_hidden(EsHiding *h, TupleTableSlot *slot)
{
	bool		isnull;
	text	   *sid;
	HidingEntry *entry;
	int64		version;
	Datum		raw;
	bool		hidden;

	/* A rebuild under this read failed half-way (see above): no bounds. */
	if (hiding_slots == NULL)
		return false;

	/*
	 * With fixed bounds only: a position past the horizon, or a version
	 * above every bound, is hidden by none; nothing to look up.
	 */
	if (!hiding_dynamic &&
		DatumGetInt64(slot_getattr(slot, Anum_es_events_global_position,
								   &isnull)) > hiding_horizon)
		return false;
	version = DatumGetInt64(slot_getattr(slot, Anum_es_events_version, &isnull));
	if (!hiding_dynamic && version >= hiding_max_bound)
		return false;

	raw = slot_getattr(slot, Anum_es_events_stream_id, &isnull);
	sid = DatumGetTextPP(raw);
	entry = FindHiding(VARDATA_ANY(sid), VARSIZE_ANY_EXHDR(sid));
	if (entry == NULL)
	{
		/* A compressed id was decompressed for this row: free it. */
		if ((Pointer) sid != DatumGetPointer(raw))
			pfree(sid);
		return false;
	}

	if ((entry->limits.has_max_count || entry->limits.has_max_age) &&
		entry->read_id != h->read_id && h->streams == NULL)
	{
		/*
		 * The hash was rebuilt during this read (a policy function that
		 * reads the global log itself), with moving bounds this read did
		 * not open the relations for: keep to the fixed bound.
		 */
		entry->bound = entry->limits.visible_from;
		entry->read_id = h->read_id;
	}
	else if ((entry->limits.has_max_count || entry->limits.has_max_age) &&
			 entry->read_id != h->read_id)
	{
		EsStreamLimits limits;

		/* A moving bound: this read's, under its snapshot. */
		(void) es_read_limits(h->streams, h->pkey, h->snapshot, sid, &limits);
		entry->bound = es_first_visible(&limits, h->events, h->stream_idx,
										h->snapshot, sid, h->now);
		entry->read_id = h->read_id;
	}

	hidden = version < entry->bound;
	if ((Pointer) sid != DatumGetPointer(raw))
		pfree(sid);
	return hidden;
}
