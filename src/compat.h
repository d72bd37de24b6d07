/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every difference between the PostgreSQL majors event_store builds
 *		against, in one place, so that the rest of the code reads as if there
 *		were one PostgreSQL.
 *
 * src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENT_STORE_COMPAT_H
#define EVENT_STORE_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "storage/lock.h"
#if PG_VERSION_NUM >= 170000
#include "storage/dsm_registry.h"
#endif
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/*
 * Insert a stored tuple's index entries.  With no_wait, unique and exclusion
 * checks do not wait for other transactions and return the indexes whose
 * check must be finished later, as for a deferrable constraint.  With
 * only_summarizing (an update that es_tuple_update says was HOT but changed a
 * summarized column), only the summarizing indexes get an entry.  (16 added
 * the onlySummarizing argument; before 16 a HOT update needs no entry at all,
 * so only_summarizing is never true there.)
 */
static inline List *
es_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot,
					   EState *estate, bool no_wait, bool only_summarizing)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, no_wait, NULL, NIL,
								 only_summarizing);
#else
	Assert(!only_summarizing);
	return ExecInsertIndexTuples(rri, slot, estate, false, no_wait, NULL, NIL);
#endif
}

/* Does this backend hold the lock in exactly this mode?  (17 added orstronger.) */
static inline bool
es_lock_held_by_me(const LOCKTAG *tag, LOCKMODE mode)
{
#if PG_VERSION_NUM >= 170000
	return LockHeldByMe(tag, mode, false);
#else
	return LockHeldByMe(tag, mode);
#endif
}

/*
 * Update the tuple at otid to slot's contents.  On success *update_indexes
 * says whether the new tuple needs index entries and *only_summarizing
 * whether those are for the summarizing indexes only.  (16 replaced the bool
 * by TU_UpdateIndexes: TU_None, TU_All, TU_Summarizing.)
 */
static inline TM_Result
es_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
				CommandId cid, Snapshot snapshot, Snapshot crosscheck,
				bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode,
				bool *update_indexes, bool *only_summarizing)
{
#if PG_VERSION_NUM >= 160000
	TU_UpdateIndexes which = TU_All;
	TM_Result	result;

	result = table_tuple_update(rel, otid, slot, cid, snapshot, crosscheck,
								wait, tmfd, lockmode, &which);
	*update_indexes = (which != TU_None);
	*only_summarizing = (which == TU_Summarizing);
	return result;
#else
	*only_summarizing = false;
	return table_tuple_update(rel, otid, slot, cid, snapshot, crosscheck,
							  wait, tmfd, lockmode, update_indexes);
#endif
}

/* Begin an index scan.  (18 added the instrument argument.) */
static inline IndexScanDesc
es_index_beginscan(Relation heap, Relation index, Snapshot snapshot,
				   int nkeys, int norderbys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys);
#else
	return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

/*
 * A version 7 uuid from PostgreSQL's own generator, where there is one (18);
 * false when there is none and the caller makes its own.
 */
static inline bool
es_builtin_uuidv7(pg_uuid_t *out)
{
#if PG_VERSION_NUM >= 180000
	LOCAL_FCINFO(fcinfo, 0);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	result = uuidv7(fcinfo);
	*out = *DatumGetUUIDP(result);
	pfree(DatumGetPointer(result));
	return true;
#else
	(void) out;
	return false;
#endif
}

/* Is an interval infinite?  (17 added infinite intervals.) */
static inline bool
es_interval_is_infinite(const Interval *interval)
{
#if PG_VERSION_NUM >= 170000
	return INTERVAL_NOT_FINITE(interval);
#else
	(void) interval;
	return false;
#endif
}

/*
 * Shared memory for a library that is not in shared_preload_libraries: from
 * 17, a named DSM segment, made by the first backend that asks for it and
 * kept until the server stops; before 17, none (NULL).
 */
static inline void *
es_named_shared_memory(const char *name, size_t size,
					   void (*init) (void *ptr), bool *found)
{
#if PG_VERSION_NUM >= 170000
	return GetNamedDSMSegment(name, size, init, found);
#else
	(void) name;
	(void) size;
	(void) init;
	*found = false;
	return NULL;
#endif
}

#endif							/* EVENT_STORE_COMPAT_H */
