/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		Find the extension's relations by name, once, and cache their OIDs.
 *
 * An append must not pay for catalog look-ups.  The OIDs are looked up on
 * first use and kept until a relcache invalidation names one of them (or all
 * relations), as happens when the extension is dropped or altered; then they
 * are looked up again on the next use.
 *
 * Invalidations from other sessions are only read when a lock is taken, so a
 * cached OID can be stale until the tables are locked: another session may
 * have dropped and re-created the extension.  es_catalog_open therefore locks
 * the tables first and then checks that the cache survived; if not, it looks
 * the names up again and retries, as RangeVarGetRelidExtended does.
 *
 * src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_type.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "event_store.h"

#define ES_SCHEMA "event_store"

static EsCatalog cache;
static bool cache_valid = false;

/* Have the tables of the cached catalog passed CheckShape? */
static bool events_checked = false;
static bool streams_checked = false;

/* Forget the cached OIDs when one of our relations changes. */
static void
InvalidateCatalog(Datum arg, Oid relid)
{
	if (!cache_valid)
		return;
	if (relid == InvalidOid ||
		relid == cache.events ||
		relid == cache.events_seq ||
		relid == cache.streams ||
		relid == cache.gate)
		cache_valid = false;
}

/* Register the invalidation callback; called once from _PG_init. */
void
es_catalog_init(void)
{
	CacheRegisterRelcacheCallback(InvalidateCatalog, (Datum) 0);
}

/* Look up one relation of the extension's schema. */
static Oid
LookupRelation(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"%s.%s\" does not exist", ES_SCHEMA, name),
				 errhint("Reinstall the extension with DROP EXTENSION and CREATE EXTENSION, after saving its data.")));
	return relid;
}

/* Does a row descriptor have exactly these column types, none dropped? */
static bool
ColumnsMatch(TupleDesc desc, const Oid *types, int natts)
{
	if (desc->natts != natts)
		return false;
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != types[i])
			return false;
	}
	return true;
}

/*
 * Check that a locked table is a plain table (not a partition, whose
 * partition constraint the appends would not check) with exactly the columns
 * this code writes, of the expected types, and no dropped column between.
 */
static void
CheckShape(Relation rel, const Oid *types, int natts)
{
	if (!ColumnsMatch(RelationGetDescr(rel), types, natts))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s.%s\" does not have the columns this version of event_store expects",
						ES_SCHEMA, RelationGetRelationName(rel)),
				 errhint("Undo the change to the table's columns, or reinstall the extension.")));
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s.%s\" must be a plain table, not a partition",
						ES_SCHEMA, RelationGetRelationName(rel)),
				 errhint("Detach the table from its partitioned table.")));
}

/*
 * Check that the position sequence hands out rising values one at a time: a
 * backend that cached values would hold positions taken outside the gate of
 * global_log.c, and a falling or cycling sequence would hand out positions
 * below readers' checkpoints.
 */
static void
CheckSequence(Oid seqid)
{
	HeapTuple	tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));
	Form_pg_sequence seq;
	bool		ok;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for sequence %u", seqid);
	seq = (Form_pg_sequence) GETSTRUCT(tuple);
	ok = (seq->seqcache == 1 && seq->seqincrement > 0 && !seq->seqcycle);
	ReleaseSysCache(tuple);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sequence \"%s.events_global_position_seq\" must hand out rising positions one at a time",
						ES_SCHEMA),
				 errhint("Run ALTER SEQUENCE %s.events_global_position_seq INCREMENT 1 NO CYCLE CACHE 1.",
						 ES_SCHEMA)));
}

static const Oid events_types[Natts_es_events] = {
	INT8OID, TEXTOID, INT8OID, UUIDOID, TEXTOID, JSONBOID, JSONBOID,
	TIMESTAMPTZOID
};

static const Oid streams_types[Natts_es_streams] = {TEXTOID, INT8OID};

/*
 * Check the row type a read function returns: the read functions store the
 * events table's tuples in it as they are, so it must have the same layout
 * (an ALTER TYPE event_store.event would otherwise be read as garbage).
 */
void
es_check_row_type(TupleDesc desc)
{
	if (!ColumnsMatch(desc, events_types, Natts_es_events))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("type \"%s.event\" does not have the columns this version of event_store expects",
						ES_SCHEMA),
				 errhint("Undo the change to the type's attributes, or reinstall the extension.")));
}

/* Return the extension's relation OIDs, looking them up if needed. */
static const EsCatalog *
GetCatalog(void)
{
	Oid			nsp;
	EsCatalog	found;

	if (cache_valid)
		return &cache;

	nsp = get_namespace_oid(ES_SCHEMA, true);
	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", ES_SCHEMA),
				 errhint("Run CREATE EXTENSION event_store.")));

	found.events = LookupRelation(nsp, "events");
	found.events_seq = LookupRelation(nsp, "events_global_position_seq");
	found.streams = LookupRelation(nsp, "streams");
	found.gate = LookupRelation(nsp, "event");
	CheckSequence(found.events_seq);

	cache = found;
	cache_valid = true;
	events_checked = false;
	streams_checked = false;
	return &cache;
}

/*
 * Open event_store.events unless events is NULL, and event_store.streams
 * unless streams is NULL, with the given lock mode, making sure they are the
 * extension's current tables.  Returns the catalog that was valid once the
 * locks were held.
 */
const EsCatalog *
es_catalog_open(LOCKMODE mode, Relation *events, Relation *streams)
{
	Assert(events != NULL || streams != NULL);
	for (;;)
	{
		const EsCatalog *cat = GetCatalog();
		Relation	e = NULL;
		Relation	s = NULL;
		bool		ok = true;

		if (events != NULL)
			ok = (e = try_table_open(cat->events, mode)) != NULL;
		if (ok && streams != NULL)
			ok = (s = try_table_open(cat->streams, mode)) != NULL;

		/* Taking the locks has read any pending invalidation. */
		if (ok && cache_valid)
		{
			/*
			 * Check the shapes once per cached catalog, on the locked
			 * tables: an ALTER TABLE invalidates the cache, so a change is
			 * seen on the next open.  Readers rely on the events table's
			 * shape to return its tuples as they are.
			 */
			if (!events_checked && e != NULL)
			{
				CheckShape(e, events_types, Natts_es_events);
				events_checked = true;
			}
			if (!streams_checked && s != NULL)
			{
				CheckShape(s, streams_types, Natts_es_streams);
				streams_checked = true;
			}
			if (events != NULL)
				*events = e;
			if (streams != NULL)
				*streams = s;
			return cat;
		}

		if (s != NULL)
			table_close(s, mode);
		if (e != NULL)
			table_close(e, mode);
		cache_valid = false;
	}
}
