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
 * src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "event_store.h"

#define ES_SCHEMA "event_store"

static EsCatalog cache;
static bool cache_valid = false;

/* Forget the cached OIDs when one of our relations changes. */
static void
InvalidateCatalog(Datum arg, Oid relid)
{
	if (!cache_valid)
		return;
	if (relid == InvalidOid ||
		relid == cache.events ||
		relid == cache.events_event_id_idx ||
		relid == cache.events_seq ||
		relid == cache.streams ||
		relid == cache.streams_pkey)
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

/* Check that event_store.events has the columns this code writes. */
static void
CheckEventsShape(Oid relid)
{
	static const Oid types[Natts_es_events] = {
		INT8OID, TEXTOID, INT8OID, UUIDOID, TEXTOID, JSONBOID, JSONBOID,
		TIMESTAMPTZOID
	};
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		ok = (desc->natts == Natts_es_events);

	for (int i = 0; ok && i < Natts_es_events; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		ok = (!att->attisdropped && att->atttypid == types[i]);
	}
	table_close(rel, AccessShareLock);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s.events\" does not have the columns this version of event_store expects",
						ES_SCHEMA),
				 errhint("Run ALTER EXTENSION event_store UPDATE, or reinstall the extension.")));
}

/* Return the extension's relation OIDs, looking them up if needed. */
const EsCatalog *
es_catalog(void)
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
	found.events_event_id_idx = LookupRelation(nsp, "events_event_id_key");
	found.events_seq = LookupRelation(nsp, "events_global_position_seq");
	found.streams = LookupRelation(nsp, "streams");
	found.streams_pkey = LookupRelation(nsp, "streams_pkey");
	CheckEventsShape(found.events);

	cache = found;
	cache_valid = true;
	return &cache;
}
