/*-------------------------------------------------------------------------
 *
 * heads.c
 *		event_store.stream_version: a stream's current version, read with
 *		one probe of the heads table's primary key.
 *
 * A SQL function with a sub-SELECT is never inlined into the calling query,
 * so it was planned and executed as a query of its own on every call.  This
 * one reads the head row directly, with the calling statement's snapshot,
 * as the SQL body would have seen it.  It checks what a SELECT would check:
 * the caller's SELECT privilege on event_store.streams, and row-level
 * security, in which case the head is read with a SELECT through SPI so
 * that the table's policies apply.
 *
 * src/heads.c
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
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "event_store.h"

PG_FUNCTION_INFO_V1(stream_version);

static int64 VersionByIndex(const EsCatalog *cat, Relation streams,
							text *stream_id);
static int64 VersionByQuery(Relation streams, text *stream_id);

/* The head's version by a probe of the primary key; 0 when there is none. */
static int64
VersionByIndex(const EsCatalog *cat, Relation streams, text *stream_id)
{
	Relation	pkey;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key;
	int64		version = 0;

	pkey = es_open_index(cat, streams, ES_INDEX_STREAM_ID, AccessShareLock);
	slot = table_slot_create(streams, NULL);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	scan = es_index_beginscan(streams, pkey,
							  ActiveSnapshotSet() ? GetActiveSnapshot() :
							  GetTransactionSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		v = slot_getattr(slot, Anum_es_streams_version, &isnull);

		if (!isnull)
			version = DatumGetInt64(v);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(pkey, NoLock);
	return version;
}

/*
 * Read the first ncolumns columns of a stream's head row with a SELECT run
 * with the caller's rights, for a caller subject to row-level security, so
 * that the policies (and column privileges) apply.  Returns false when the
 * policies hide the row or there is none; else fills values and nulls,
 * which stay valid after SPI is finished.
 */
bool
es_head_by_query(Relation streams, text *stream_id, int ncolumns,
				 Datum *values, bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(streams);
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	StringInfoData query;
	int			ret;
	bool		found;

	Assert(ncolumns >= 1 && ncolumns <= desc->natts);
	initStringInfo(&query);
	appendStringInfoString(&query, "SELECT ");
	for (int i = 0; i < ncolumns; i++)
		appendStringInfo(&query, "%ss.%s", i > 0 ? ", " : "",
						 quote_identifier(NameStr(TupleDescAttr(desc, i)->attname)));
	appendStringInfo(&query, " FROM %s s WHERE s.stream_id OPERATOR(pg_catalog.=) $1",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(streams)),
												RelationGetRelationName(streams)));
	args[0] = PointerGetDatum(stream_id);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args(query.data, 1, argtypes, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s",
			 SPI_result_code_string(ret));
	found = SPI_processed > 0;
	if (found)
		heap_deform_tuple(SPI_copytuple(SPI_tuptable->vals[0]),
						  SPI_tuptable->tupdesc, values, nulls);
	SPI_finish();
	pfree(query.data);
	return found;
}

/*
 * The head's version read through the policies: a head they hide reads as
 * 0, as the SQL function did.
 */
static int64
VersionByQuery(Relation streams, text *stream_id)
{
	Datum		values[Natts_es_streams_0_1];
	bool		nulls[Natts_es_streams_0_1];

	if (!es_head_by_query(streams, stream_id, Natts_es_streams_0_1, values,
						  nulls) ||
		nulls[Anum_es_streams_version - 1])
		return 0;
	return DatumGetInt64(values[Anum_es_streams_version - 1]);
}

/*
 * event_store.stream_version(stream_id text) returns bigint: the stream's
 * current version, 0 when it does not exist.
 */
Datum
stream_version(PG_FUNCTION_ARGS)
{
	static const AttrNumber head_columns[2] = {Anum_es_streams_stream_id,
	Anum_es_streams_version};
	text	   *stream_id = PG_GETARG_TEXT_PP(0);
	const EsCatalog *cat;
	Relation	streams;
	int64		version;

	cat = es_catalog_open(AccessShareLock, NULL, &streams);
	es_check_select_columns(streams, head_columns, lengthof(head_columns));
	if (check_enable_rls(RelationGetRelid(streams), InvalidOid,
						 false) == RLS_ENABLED)
		version = VersionByQuery(streams, stream_id);
	else
		version = VersionByIndex(cat, streams, stream_id);

	table_close(streams, NoLock);
	PG_RETURN_INT64(version);
}
