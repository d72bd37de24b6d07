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

#include "executor/executor.h"
#include "storage/lock.h"

/*
 * Insert a stored tuple's index entries.  With no_wait, unique and exclusion
 * checks do not wait for other transactions and return the indexes whose
 * check must be finished later, as for a deferrable constraint.  (16 added
 * the onlySummarizing argument.)
 */
static inline List *
es_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot,
					   EState *estate, bool no_wait)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, no_wait, NULL, NIL,
								 false);
#else
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

#endif							/* EVENT_STORE_COMPAT_H */
