/*-------------------------------------------------------------------------
 *
 * storage.c
 *		Direct index and heap access to event_store.streams and
 *		event_store.events.
 *
 * An append reads one head row by its primary key, probes the event_id index
 * for ids the caller supplied, inserts event rows and moves the head.  Doing
 * that through the table and index access methods, instead of SPI, saves the
 * planner and executor start-up of every statement, and there is no cached
 * plan that can go stale as the tables grow.
 *
 * What SQL would have done and this code must do itself:
 *	- take RowExclusiveLock on both tables, as an INSERT or UPDATE would;
 *	- maintain every index of the table, the user's own included
 *	  (ExecOpenIndices and ExecInsertIndexTuples, as COPY does);
 *	- fill the defaults: the global position from the sequence and the
 *	  creation time from now();
 *	- read with a snapshot taken after the stream lock was granted
 *	  (GetLatestSnapshot), so that the head committed by the previous lock
 *	  holder is seen whatever the isolation level;
 *	- leave the head update heap-only when it can: only the version changes,
 *	  and no index covers it.
 * Triggers and constraints of the tables are not fired: the guard triggers
 * exist to refuse changes made by any other path, and the checks they would
 * make are done by the append code before writing.
 *
 * src/storage.c
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
#include "commands/sequence.h"
#include "executor/executor.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "event_store.h"

/* Find an index opened by ExecOpenIndices. */
static Relation
FindOpenIndex(ResultRelInfo *rri, Oid indexid)
{
	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		if (RelationGetRelid(rri->ri_IndexRelationDescs[i]) == indexid)
			return rri->ri_IndexRelationDescs[i];
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("index with OID %u of table \"%s\" is not usable",
					indexid, RelationGetRelationName(rri->ri_RelationDesc))));
	return NULL;				/* keep compiler quiet */
}

/* Open a table for writing, with its indexes. */
static ResultRelInfo *
OpenForWrite(EState *estate, Relation rel)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	return rri;
}

/* Open both tables and their indexes; no snapshot is taken yet. */
void
es_storage_open(EsStorage *st)
{
	const EsCatalog *cat = es_catalog();

	memset(st, 0, sizeof(EsStorage));
	st->events_seq = cat->events_seq;
	st->events = table_open(cat->events, RowExclusiveLock);
	st->streams = table_open(cat->streams, RowExclusiveLock);

	st->estate = CreateExecutorState();
	st->events_rri = OpenForWrite(st->estate, st->events);
	st->streams_rri = OpenForWrite(st->estate, st->streams);
	st->event_id_idx = FindOpenIndex(st->events_rri, cat->events_event_id_idx);
	st->streams_pkey = FindOpenIndex(st->streams_rri, cat->streams_pkey);

	st->events_slot = MakeSingleTupleTableSlot(RelationGetDescr(st->events),
											   table_slot_callbacks(st->events));
	st->streams_slot = MakeSingleTupleTableSlot(RelationGetDescr(st->streams),
												table_slot_callbacks(st->streams));
}

/*
 * Read the stream's head row.  The snapshot is taken here, on first use: the
 * caller holds the stream lock by now.
 */
void
es_storage_read_head(EsStorage *st, text *stream_id)
{
	IndexScanDesc scan;
	ScanKeyData key;

	if (st->snapshot == NULL)
		st->snapshot = RegisterSnapshot(GetLatestSnapshot());

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	scan = index_beginscan(st->streams, st->streams_pkey, st->snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);

	st->head_found = index_getnext_slot(scan, ForwardScanDirection,
										st->streams_slot);
	if (st->head_found)
	{
		bool		isnull;
		Datum		v = slot_getattr(st->streams_slot, Anum_es_streams_version,
									 &isnull);

		st->head_version = isnull ? 0 : DatumGetInt64(v);
		st->head_tid = st->streams_slot->tts_tid;
	}
	else
		st->head_version = 0;

	index_endscan(scan);
	ExecClearTuple(st->streams_slot);
}

/* Do two text values hold the same bytes? */
static bool
SameText(text *a, text *b)
{
	int			len = VARSIZE_ANY_EXHDR(a);

	return len == (int) VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), len) == 0;
}

/*
 * Look up a stored event by id.  Returns false when there is none; else sets
 * whether it belongs to stream_id, and its version.
 */
bool
es_storage_find_event(EsStorage *st, const pg_uuid_t *id, text *stream_id,
					  bool *same_stream, int64 *version)
{
	IndexScanDesc scan;
	ScanKeyData key;
	bool		found;

	Assert(st->snapshot != NULL);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
				UUIDPGetDatum(id));
	scan = index_beginscan(st->events, st->event_id_idx, st->snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);

	found = index_getnext_slot(scan, ForwardScanDirection, st->events_slot);
	if (found)
	{
		bool		isnull;
		Datum		sid = slot_getattr(st->events_slot,
									   Anum_es_events_stream_id, &isnull);
		Datum		ver = slot_getattr(st->events_slot,
									   Anum_es_events_version, &isnull);

		*same_stream = SameText(DatumGetTextPP(sid), stream_id);
		*version = DatumGetInt64(ver);
	}

	index_endscan(scan);
	ExecClearTuple(st->events_slot);
	return found;
}

/* Insert one event row and its index entries. */
void
es_storage_insert_event(EsStorage *st, text *stream_id, int64 version,
						const EsEventInput *ev)
{
	TupleTableSlot *slot = st->events_slot;
	Datum	   *values;
	bool	   *isnull;
	List	   *recheck;

	ExecClearTuple(slot);
	values = slot->tts_values;
	isnull = slot->tts_isnull;
	memset(isnull, 0, sizeof(bool) * Natts_es_events);

	values[Anum_es_events_global_position - 1] =
		Int64GetDatum(nextval_internal(st->events_seq, false));
	values[Anum_es_events_stream_id - 1] = PointerGetDatum(stream_id);
	values[Anum_es_events_version - 1] = Int64GetDatum(version);
	values[Anum_es_events_event_id - 1] = UUIDPGetDatum(&ev->id);
	values[Anum_es_events_event_type - 1] = PointerGetDatum(ev->event_type);
	values[Anum_es_events_data - 1] = ev->data;
	values[Anum_es_events_metadata - 1] = ev->metadata;
	isnull[Anum_es_events_metadata - 1] = !ev->has_metadata;
	values[Anum_es_events_created_at - 1] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	ExecStoreVirtualTuple(slot);

	table_tuple_insert(st->events, slot, GetCurrentCommandId(true), 0, NULL);
	recheck = ExecInsertIndexTuples(st->events_rri, slot, st->estate,
									false, false, NULL, NIL);
	list_free(recheck);
	ExecClearTuple(slot);
	ResetPerTupleExprContext(st->estate);
}

/* Move the stream's head to version, creating the row for a new stream. */
void
es_storage_write_head(EsStorage *st, text *stream_id, int64 version)
{
	TupleTableSlot *slot = st->streams_slot;
	bool		update_indexes = true;

	ExecClearTuple(slot);
	slot->tts_values[Anum_es_streams_stream_id - 1] = PointerGetDatum(stream_id);
	slot->tts_isnull[Anum_es_streams_stream_id - 1] = false;
	slot->tts_values[Anum_es_streams_version - 1] = Int64GetDatum(version);
	slot->tts_isnull[Anum_es_streams_version - 1] = false;
	ExecStoreVirtualTuple(slot);

	if (st->head_found)
	{
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		TM_Result	result;

		result = table_tuple_update(st->streams, &st->head_tid, slot,
									GetCurrentCommandId(true), st->snapshot,
									InvalidSnapshot, true, &tmfd, &lockmode,
									&update_indexes);
		if (result != TM_Ok)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not move the head of stream \"%s\"",
							text_to_cstring(stream_id)),
					 errdetail("The head row was changed by another path than an append.")));
	}
	else
		table_tuple_insert(st->streams, slot, GetCurrentCommandId(true), 0,
						   NULL);

	if (update_indexes)
		list_free(ExecInsertIndexTuples(st->streams_rri, slot, st->estate,
										st->head_found, false, NULL, NIL));
	ExecClearTuple(slot);
}

/* Release what es_storage_open took; the table locks are kept. */
void
es_storage_close(EsStorage *st)
{
	if (st->snapshot != NULL)
		UnregisterSnapshot(st->snapshot);
	ExecDropSingleTupleTableSlot(st->events_slot);
	ExecDropSingleTupleTableSlot(st->streams_slot);
	ExecCloseIndices(st->events_rri);
	ExecCloseIndices(st->streams_rri);
	FreeExecutorState(st->estate);
	table_close(st->events, NoLock);
	table_close(st->streams, NoLock);
}
