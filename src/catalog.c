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
#include "access/genam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "event_store.h"

static void InvalidateCatalog(Datum arg, Oid relid);
static Oid LookupRelation(Oid nsp, const char *name);
static bool ColumnsMatch(TupleDesc desc, const Oid *types, int natts);
static void CheckShape(Relation rel, const Oid *types, int natts);
static void CheckSequence(Oid seqid);
static Oid LookupCategoryFunction(void);
static bool KeysAre(Relation index, const AttrNumber *attnums,
					const Oid *types, int nkeys);
static bool IsCategoryExpression(Relation index, Oid category_fn);
static void Consider(EsCatalog *cat, EsIndexRole role, Relation index);
static void FindIndexes(EsCatalog *cat, Relation table, bool is_events);
static const EsCatalog *GetCatalog(void);

#define ES_SCHEMA "event_store"

static EsCatalog cache;
static bool cache_valid = false;

/* Have the tables of the cached catalog passed CheckShape? */
static bool events_checked = false;
static bool streams_checked = false;

/* The schema the cache was found in. */
static Oid	cache_nsp = InvalidOid;

/* The watermark's sequence (0.5.0), or InvalidOid. */
static Oid
LookupWatermark(Oid nsp)
{
	Oid			relid = get_relname_relid("watermark_seq", nsp);

	if (OidIsValid(relid) && get_rel_relkind(relid) != RELKIND_SEQUENCE)
		return InvalidOid;
	return relid;
}

/* Forget the cached OIDs when one of our relations changes. */
static void
InvalidateCatalog(Datum arg, Oid relid)
{
	if (!cache_valid)
		return;
	if (relid == InvalidOid ||
		relid == cache.events ||
		relid == cache.events_seq ||
		relid == cache.watermark_seq ||
		relid == cache.streams ||
		relid == cache.gate)
		cache_valid = false;
	for (int i = 0; i < ES_NUM_INDEX_ROLES; i++)
		if (relid == cache.index[i] || relid == cache.unusable[i])
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
 * gate.c, and a falling or cycling sequence would hand out positions
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

static const Oid streams_types[Natts_es_streams] = {
	TEXTOID, INT8OID, INT8OID, BOOLOID, INT8OID, INTERVALOID
};

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

/*
 * The OID of event_store.category(text), which the category index uses;
 * InvalidOid when it cannot be found (then no index serves categories).
 */
static Oid
LookupCategoryFunction(void)
{
	Oid			argtypes[1] = {TEXTOID};

	return LookupFuncName(list_make2(makeString(ES_SCHEMA),
									 makeString("category")),
						  1, argtypes, true);
}

/*
 * Is the index a btree whose key columns are exactly these (0 for an
 * expression), each ascending, with the default operator class of its type
 * and, for text, the C collation (the scans compare with it), and with no
 * predicate?  types gives each key's type.
 */
static bool
KeysAre(Relation index, const AttrNumber *attnums, const Oid *types, int nkeys)
{
	Form_pg_index form = index->rd_index;

	if (index->rd_rel->relam != BTREE_AM_OID ||
		form->indnkeyatts != nkeys ||
		!heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL))
		return false;
	for (int i = 0; i < nkeys; i++)
	{
		Oid			opclass = GetDefaultOpClass(types[i], BTREE_AM_OID);
		Oid			collation = type_is_collatable(types[i]) ?
			C_COLLATION_OID : InvalidOid;

		if (form->indkey.values[i] != attnums[i] ||
			(index->rd_indoption[i] & INDOPTION_DESC) != 0 ||
			!OidIsValid(opclass) ||
			index->rd_opfamily[i] != get_opclass_family(opclass) ||
			index->rd_indcollation[i] != collation)
			return false;
	}
	return true;
}

/*
 * Is the index's one expression event_store.category(stream_id), as the
 * install script writes it?  The expression is read as stored, before the
 * planner would inline the SQL function.
 */
static bool
IsCategoryExpression(Relation index, Oid category_fn)
{
	Datum		exprs;
	bool		isnull;
	List	   *list;
	Expr	   *expected;

	if (!OidIsValid(category_fn))
		return false;
	exprs = SysCacheGetAttr(INDEXRELID, index->rd_indextuple,
							Anum_pg_index_indexprs, &isnull);
	if (isnull)
		return false;
	list = (List *) stringToNode(TextDatumGetCString(exprs));
	if (list_length(list) != 1)
		return false;
	expected = (Expr *) makeFuncExpr(category_fn, TEXTOID,
									 list_make1(makeVar(1, Anum_es_events_stream_id,
														TEXTOID, -1,
														C_COLLATION_OID, 0)),
									 C_COLLATION_OID, C_COLLATION_OID,
									 COERCE_EXPLICIT_CALL);
	return equal(linitial(list), expected);
}

/*
 * Record an index of a role's shape.  Only an index that is valid, ready
 * and live is used: one still being built lacks entries.  Once chosen under
 * the table's lock, it stays complete for as long as the lock is held: a
 * concurrent REINDEX or DROP INDEX CONCURRENTLY marks it invalid, but keeps
 * maintaining it and drops it only after waiting for every holder of a lock
 * on the table.
 */
static void
Consider(EsCatalog *cat, EsIndexRole role, Relation index)
{
	Form_pg_index form = index->rd_index;

	if (form->indisvalid && form->indisready && form->indislive)
		cat->index[role] = RelationGetRelid(index);
	else
		cat->unusable[role] = RelationGetRelid(index);
}

/* Find the indexes of the events table (or of the heads table). */
static void
FindIndexes(EsCatalog *cat, Relation table, bool is_events)
{
	static const AttrNumber position_keys[1] = {Anum_es_events_global_position};
	static const Oid position_types[1] = {INT8OID};
	static const AttrNumber category_keys[2] = {0, Anum_es_events_global_position};
	static const Oid category_types[2] = {TEXTOID, INT8OID};
	static const AttrNumber event_id_keys[1] = {Anum_es_events_event_id};
	static const Oid event_id_types[1] = {UUIDOID};
	static const AttrNumber stream_id_keys[1] = {Anum_es_streams_stream_id};
	static const Oid stream_id_types[1] = {TEXTOID};
	static const AttrNumber stream_version_keys[2] = {Anum_es_events_stream_id,
	Anum_es_events_version};
	static const Oid stream_version_types[2] = {TEXTOID, INT8OID};
	List	   *indexes = RelationGetIndexList(table);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		bool		unique = index->rd_index->indisunique;

		if (!is_events)
		{
			if (unique && KeysAre(index, stream_id_keys, stream_id_types, 1))
				Consider(cat, ES_INDEX_STREAM_ID, index);
		}
		else if (unique && KeysAre(index, position_keys, position_types, 1))
			Consider(cat, ES_INDEX_POSITION, index);
		else if (unique && index->rd_index->indimmediate &&
				 KeysAre(index, event_id_keys, event_id_types, 1))
			Consider(cat, ES_INDEX_EVENT_ID, index);
		else if (unique &&
				 KeysAre(index, stream_version_keys, stream_version_types, 2))
			Consider(cat, ES_INDEX_STREAM_VERSION, index);
		else if (KeysAre(index, category_keys, category_types, 2) &&
				 IsCategoryExpression(index, cat->category_fn))
			Consider(cat, ES_INDEX_CATEGORY, index);
		index_close(index, AccessShareLock);
	}
	list_free(indexes);
}

/* How each role's index is named in errors. */
static const char *const index_role_names[ES_NUM_INDEX_ROLES] = {
	"(global_position), unique",
	"(event_store.category(stream_id), global_position)",
	"(event_id), unique and not deferrable",
	"(stream_id), unique",
	"(stream_id, version), unique",
};

/*
 * The usable index of a role, which the catalog found when the table was
 * opened; an error when there is none.
 */
Oid
es_index_for(const EsCatalog *cat, Relation table, EsIndexRole role)
{
	bool		of_events = (role != ES_INDEX_STREAM_ID);

	if (OidIsValid(cat->index[role]))
		return cat->index[role];

	/*
	 * A catalog rebuilt by a call that opened only the other table has not
	 * looked at this table's indexes: look now (the caller holds a lock on
	 * the table).
	 */
	if (of_events ? !cat->events_indexes_found : !cat->streams_indexes_found)
	{
		EsCatalog	found = *cat;

		FindIndexes(&found, table, of_events);
		if (of_events)
			found.events_indexes_found = true;
		else
			found.streams_indexes_found = true;
		return es_index_for(&found, table, role);
	}
	if (OidIsValid(cat->unusable[role]))
	{
		char	   *name = get_rel_name(cat->unusable[role]);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s\" is not usable", name ? name : "?"),
				 errdetail("It is being built or dropped, or its build failed."),
				 errhint("Rebuild it with REINDEX INDEX %s.%s.", ES_SCHEMA,
						 name ? name : "?")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table \"%s.%s\" has no index on %s",
					ES_SCHEMA, RelationGetRelationName(table),
					index_role_names[role]),
			 errdetail("event_store needs a btree index on exactly those keys, ascending, with the default operator class and collation \"C\", and no predicate."),
			 errhint("Reinstall the extension, after saving its data.")));
	return InvalidOid;			/* keep compiler quiet */
}

/* Open the usable index of a role. */
Relation
es_open_index(const EsCatalog *cat, Relation table, EsIndexRole role,
			  LOCKMODE mode)
{
	return index_open(es_index_for(cat, table, role), mode);
}

/*
 * Check the caller's right to read a table below the executor, as a SELECT
 * of all its columns would: SELECT on the table, or on every column.
 */
void
es_check_select(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			user = GetUserId();

	if (pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK ||
		pg_attribute_aclcheck_all(relid, user, ACL_SELECT,
								  ACLMASK_ALL) == ACLCHECK_OK)
		return;
	aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
}

/*
 * Check the caller's right to read some columns of a table below the
 * executor, as a SELECT of those columns would: SELECT on the table, or on
 * each of them.
 */
void
es_check_select_columns(Relation rel, const AttrNumber *attnums, int n)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			user = GetUserId();

	if (pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK)
		return;
	for (int i = 0; i < n; i++)
		if (pg_attribute_aclcheck(relid, attnums[i], user,
								  ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE,
						   RelationGetRelationName(rel));
}

/*
 * Check the caller's right to run a destructive lifecycle function: DELETE
 * on event_store.events.  The guard refuses every DELETE of the table, so
 * the privilege serves for nothing else; EXECUTE on the function alone, as
 * a grant on all functions of the schema would give, is not enough.
 */
void
es_check_lifecycle_right(Relation events)
{
	if (pg_class_aclcheck(RelationGetRelid(events), GetUserId(),
						  ACL_DELETE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to delete, purge or erase events"),
				 errdetail("The lifecycle functions need DELETE on table \"%s.events\" as well as EXECUTE on the function.",
						   ES_SCHEMA)));
}

/*
 * The partial index of event_store.streams on the streams that hide
 * anything, when it is there and usable: a btree on stream_id; InvalidOid
 * otherwise (the caller then scans the table).  Its predicate is the
 * extension's own; an index re-created under its name with a narrower one
 * would hide rows from the scan, like any other change to the extension's
 * objects.
 */
Oid
es_lifecycle_index(Relation streams)
{
	Oid			indexid = get_relname_relid("streams_lifecycle_idx",
											RelationGetNamespace(streams));
	HeapTuple	tuple;
	bool		ok = false;
	Oid			relam = InvalidOid;

	if (!OidIsValid(indexid))
		return InvalidOid;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(indexid));
	if (HeapTupleIsValid(tuple))
	{
		relam = ((Form_pg_class) GETSTRUCT(tuple))->relam;
		ReleaseSysCache(tuple);
	}
	if (relam != BTREE_AM_OID)
		return InvalidOid;
	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexid));
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_index form = (Form_pg_index) GETSTRUCT(tuple);

		ok = form->indrelid == RelationGetRelid(streams) &&
			form->indisvalid && form->indisready && form->indislive &&
			form->indnkeyatts >= 1 &&
			form->indkey.values[0] == Anum_es_streams_stream_id;
		ReleaseSysCache(tuple);
	}
	return ok ? indexid : InvalidOid;
}

/* Return the extension's relation OIDs, looking them up if needed. */
static const EsCatalog *
GetCatalog(void)
{
	Oid			nsp;
	EsCatalog	found;

	if (cache_valid)
	{
		/*
		 * The update to 0.5.0 creates the watermark's sequence, which sends
		 * no invalidation for anything cached here: look again until found.
		 */
		if (!OidIsValid(cache.watermark_seq))
			cache.watermark_seq = LookupWatermark(cache_nsp);
		return &cache;
	}

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
	found.category_fn = LookupCategoryFunction();
	found.watermark_seq = LookupWatermark(nsp);
	found.lifecycle = false;
	for (int i = 0; i < ES_NUM_INDEX_ROLES; i++)
	{
		found.index[i] = InvalidOid;
		found.unusable[i] = InvalidOid;
	}
	CheckSequence(found.events_seq);

	cache = found;
	cache_nsp = nsp;
	cache_valid = true;
	events_checked = false;
	streams_checked = false;
	return &cache;
}

/*
 * Open event_store.events unless events is NULL, and event_store.streams
 * unless streams is NULL, with the given lock mode, making sure they are the
 * extension's current tables.  Returns a copy, in the current memory
 * context, of the catalog that was valid once the locks were held.
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
		if (!cache_valid)
			ok = false;
		if (ok)
		{
			/*
			 * Check the shapes once per cached catalog, on the locked
			 * tables, and find their indexes: an ALTER TABLE or a change of
			 * index invalidates the cache, so a change is seen on the next
			 * open.  Readers rely on the events table's shape to return its
			 * tuples as they are.
			 */
			if (!events_checked && e != NULL)
			{
				CheckShape(e, events_types, Natts_es_events);
				FindIndexes(&cache, e, true);
				events_checked = true;
			}
			if (!streams_checked && s != NULL)
			{
				/* The lifecycle columns come with 0.4.0. */
				cache.lifecycle =
					RelationGetDescr(s)->natts != Natts_es_streams_0_1;
				CheckShape(s, streams_types,
						   cache.lifecycle ? Natts_es_streams :
						   Natts_es_streams_0_1);
				FindIndexes(&cache, s, false);
				streams_checked = true;
			}

			/*
			 * Opening the indexes may have read an invalidation that voids
			 * what was just found; then find it again.
			 */
			if (!cache_valid)
				ok = false;
		}

		if (ok)
		{
			EsCatalog  *copy = palloc(sizeof(EsCatalog));

			if (events != NULL)
				*events = e;
			if (streams != NULL)
				*streams = s;

			/*
			 * The caller gets its own copy: an invalidation read later in
			 * its operation (any lock it takes reads them; a reset after a
			 * full invalidation queue voids everything) rebuilds the cache
			 * in place, and the rebuilt cache knows nothing of the indexes
			 * or the lifecycle columns until a table is checked again.
			 */
			*copy = cache;
			copy->events_indexes_found = events_checked;
			copy->streams_indexes_found = streams_checked;
			return copy;
		}

		if (s != NULL)
			table_close(s, mode);
		if (e != NULL)
			table_close(e, mode);
		cache_valid = false;
	}
}
