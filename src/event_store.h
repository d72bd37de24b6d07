/*-------------------------------------------------------------------------
 *
 * event_store.h
 *		Declarations shared by the C files of the event_store extension.
 *
 * src/event_store.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENT_STORE_H
#define EVENT_STORE_H

#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/tupdesc.h"
#include "nodes/execnodes.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

/*
 * The extension's SQLSTATEs, in class "VE", which PostgreSQL does not use:
 * a failed expected-version check (every kind of check), event ids of a
 * call already stored in the stream, but not as a repeat of that call, and
 * an append to a tombstoned stream.
 */
#define ERRCODE_ES_WRONG_EXPECTED_VERSION	MAKE_SQLSTATE('V','E','0','0','1')
#define ERRCODE_ES_EVENT_ALREADY_STORED		MAKE_SQLSTATE('V','E','0','0','2')
#define ERRCODE_ES_STREAM_TOMBSTONED		MAKE_SQLSTATE('V','E','0','0','3')

/* Input limits, in bytes. */
#define ES_MAX_STREAM_ID_LEN	1000
#define ES_MAX_EVENT_TYPE_LEN	255

/* Special expected versions (-2 is "any", as KurrentDB numbers it). */
#define ES_EXPECT_NO_STREAM		0
#define ES_EXPECT_STREAM_EXISTS (-1)
#define ES_EXPECT_ANY			(-2)

/* Column numbers of event_store.events. */
#define Anum_es_events_global_position	1
#define Anum_es_events_stream_id		2
#define Anum_es_events_version			3
#define Anum_es_events_event_id			4
#define Anum_es_events_event_type		5
#define Anum_es_events_data				6
#define Anum_es_events_metadata			7
#define Anum_es_events_created_at		8
#define Natts_es_events					8

/*
 * Column numbers of event_store.streams.  Before 0.4.0 the table has only
 * the first two; from 0.4.0 on, the lifecycle columns too (catalog.c accepts
 * both shapes, since the library serves a database not yet updated).
 */
#define Anum_es_streams_stream_id		1
#define Anum_es_streams_version			2
#define Anum_es_streams_visible_from	3
#define Anum_es_streams_tombstoned		4
#define Anum_es_streams_max_count		5
#define Anum_es_streams_max_age			6
#define Natts_es_streams_0_1			2
#define Natts_es_streams				6

/* The reserved stream of lifecycle events, and the reserved prefix. */
#define ES_LIFECYCLE_STREAM		"$lifecycle"
#define ES_RESERVED_PREFIX		'$'

/* catalog.c: the extension's relations, looked up once and cached. */
/* The indexes the code relies on, by role (catalog.c finds them). */
typedef enum EsIndexRole
{
	ES_INDEX_POSITION,			/* unique, on events (global_position) */
	ES_INDEX_CATEGORY,			/* on events (category(stream_id),
								 * global_position) */
	ES_INDEX_EVENT_ID,			/* unique, not deferrable, on events
								 * (event_id) */
	ES_INDEX_STREAM_ID,			/* unique, on streams (stream_id) */
	ES_INDEX_STREAM_VERSION,	/* unique, on events (stream_id, version) */
	ES_NUM_INDEX_ROLES
} EsIndexRole;

typedef struct EsCatalog
{
	Oid			events;			/* event_store.events */
	Oid			events_seq;		/* event_store.events_global_position_seq */
	Oid			streams;		/* event_store.streams */
	Oid			gate;			/* relation of type event_store.event: the
								 * gate of gate.c */
	Oid			category_fn;	/* event_store.category(text), or InvalidOid */
	Oid			watermark_seq;	/* event_store.watermark_seq (0.5.0), or
								 * InvalidOid */
	bool		lifecycle;		/* streams has the lifecycle columns (0.4.0) */

	/*
	 * Per role, a usable index of the expected shape, found (not by name)
	 * once the table is locked; InvalidOid when there is none.  unusable
	 * keeps one of the right shape that is being built or dropped, to name
	 * it in the error.
	 */
	Oid			index[ES_NUM_INDEX_ROLES];
	Oid			unusable[ES_NUM_INDEX_ROLES];

	/* In a caller's copy: have the tables' indexes been looked for? */
	bool		events_indexes_found;
	bool		streams_indexes_found;
} EsCatalog;

extern const EsCatalog *es_catalog_open(LOCKMODE mode, Relation *events,
										Relation *streams);
extern Oid	es_index_for(const EsCatalog *cat, Relation table, EsIndexRole role);
extern Relation es_open_index(const EsCatalog *cat, Relation table,
							  EsIndexRole role, LOCKMODE mode);
extern void es_check_select(Relation rel);
extern bool es_head_by_query(Relation streams, text *stream_id, int ncolumns,
							 Datum *values, bool *nulls);
extern void es_check_select_columns(Relation rel, const AttrNumber *attnums,
									int n);
extern void es_check_lifecycle_right(Relation events);
extern Oid	es_lifecycle_index(Relation streams);
extern void es_catalog_init(void);
extern void es_check_row_type(TupleDesc desc);

/* event_input.c: one event to append, validated. */
typedef struct EsEventInput
{
	text	   *event_type;
	Datum		data;			/* jsonb, possibly still toasted */
	Datum		metadata;		/* jsonb; valid when has_metadata */
	bool		has_metadata;
	bool		has_id;
	pg_uuid_t	id;
} EsEventInput;

extern text *es_check_stream_id(Datum stream_id, bool isnull);
extern void es_check_expected_version(int64 expected, bool legacy);
extern void es_check_event_type(text *event_type);
extern void es_check_metadata(Jsonb *metadata);
extern EsEventInput *es_parse_event_array(Jsonb *events, int *nevents,
										  bool refuse_reserved);
extern void es_refuse_reserved_stream(text *stream_id);
extern void es_refuse_reserved_type(text *event_type);
extern void es_load_batch_event(Jsonb *events, int i, EsEventInput *ev);
extern void es_check_unique_ids(EsEventInput *events, int nevents);
extern void es_generate_event_id(pg_uuid_t *id);

/* storage.c: direct access to the heads and events tables. */
typedef struct EsStorage
{
	Relation	events;
	Relation	streams;
	Relation	event_id_idx;
	Relation	streams_pkey;
	EState	   *estate;
	ResultRelInfo *events_rri;
	ResultRelInfo *streams_rri;
	TupleTableSlot *events_slot;
	TupleTableSlot *streams_slot;
	Snapshot	snapshot;		/* latest snapshot, taken under the lock */
	const EsCatalog *cat;
	Oid			events_seq;
	Oid			gate;

	/*
	 * The stream's head, as read by es_storage_read_head: its version, and
	 * every column of its row (defaults for a stream with no row), which
	 * es_storage_write_head writes back with the new version.  A lifecycle
	 * function changes head_values before writing the head.
	 */
	bool		head_found;
	bool		head_moved_after_snapshot;
	int64		head_version;
	ItemPointerData head_tid;
	int			head_natts;
	Datum		head_values[Natts_es_streams];
	bool		head_nulls[Natts_es_streams];
} EsStorage;

/* A head's lifecycle columns; the defaults before 0.4.0. */
#define EsHeadVisibleFrom(st) \
	((st)->head_natts > Anum_es_streams_visible_from - 1 ? \
	 DatumGetInt64((st)->head_values[Anum_es_streams_visible_from - 1]) : 1)
#define EsHeadTombstoned(st) \
	((st)->head_natts > Anum_es_streams_tombstoned - 1 && \
	 DatumGetBool((st)->head_values[Anum_es_streams_tombstoned - 1]))

extern void es_storage_open(EsStorage *st);
extern void es_storage_read_head(EsStorage *st, text *stream_id);
extern bool es_storage_find_event(EsStorage *st, const pg_uuid_t *id,
								  text *stream_id, bool *same_stream,
								  int64 *version);
extern int64 es_storage_insert_event(EsStorage *st, text *stream_id,
									 int64 version, const EsEventInput *ev,
									 bool first);
extern void es_storage_write_head(EsStorage *st, text *stream_id,
								  int64 version);
extern Relation es_storage_stream_index(EsStorage *st);
extern IndexScanDesc es_begin_version_scan(Relation events, Relation index,
										   Snapshot snapshot, text *stream_id,
										   StrategyNumber strategy,
										   int64 version);
extern int64 es_storage_delete_events(EsStorage *st, Relation stream_idx,
									  text *stream_id, int64 below,
									  int64 limit, int64 *first_position,
									  int64 *last_position);
extern bool es_storage_update_event(EsStorage *st, Relation stream_idx,
									text *stream_id, int64 version,
									const pg_uuid_t *event_id, Datum data,
									Datum metadata, bool metadata_null);
extern bool es_storage_event_by_id(EsStorage *st, const pg_uuid_t *id,
								   text **stream_id, int64 *version,
								   int64 *position);
extern void es_storage_close(EsStorage *st);

/* visibility.c: the versions a stream shows (soft delete, retention). */
typedef struct EsStreamLimits
{
	int64		head;			/* the stream's version; 0 when none */
	int64		visible_from;	/* raised by delete_stream, truncate_stream */
	bool		tombstoned;
	bool		has_max_count;
	int64		max_count;
	bool		has_max_age;
	Interval	max_age;
} EsStreamLimits;

/* A read of the global log's view of the hiding streams (es_hiding_begin). */
typedef struct EsHiding
{
	bool		active;			/* some stream hides something */
	uint64		read_id;
	Snapshot	snapshot;
	TimestampTz now;
	Relation	events;
	Relation	streams;		/* these three only for moving bounds */
	Relation	pkey;
	Relation	stream_idx;
} EsHiding;

extern void es_head_limits(const EsStorage *st, EsStreamLimits *limits);
extern void es_limits_from_slot(TupleTableSlot *slot, EsStreamLimits *limits);
extern bool es_read_limits(Relation streams, Relation pkey, Snapshot snapshot,
						   text *stream_id, EsStreamLimits *limits);
extern TimestampTz es_retention_now(void);
extern int64 es_first_visible(const EsStreamLimits *limits, Relation events,
							  Relation stream_idx, Snapshot snapshot,
							  text *stream_id, TimestampTz now);
extern void es_visibility_init(void);
extern void es_visibility_wrote_lifecycle(void);
extern int64 es_stream_bound(text *stream_id, bool for_info,
							 EsStreamLimits *limits);
extern void es_hiding_begin(EsHiding *h, Relation events, Snapshot snapshot);
extern void es_hiding_end(EsHiding *h);
extern bool es_hidden(EsHiding *h, TupleTableSlot *slot);

/* gate.c: the gate that keeps the global log exact */
extern void es_gate_enter(Oid gate);
extern void es_gate_exit(Oid gate);
extern int64 es_gate_high_water(Relation events, Relation pkey, Oid gate,
								Oid seqid, Oid watermark_seq);
extern bool es_gate_high_water_nowait(Oid gate, Oid seqid, int64 *high);
extern int64 es_sequence_last_value(Oid seqid);

/* global_log.c: what wait_for_event asks of the log */
typedef int64 (*EsHighWaterFn) (Relation events, Relation pkey, Oid gate,
								Oid seqid, Oid watermark_seq);
extern int64 es_log_probe(int64 *reached, text *category, ArrayType *types,
						  EsHighWaterFn high_water);

/* wait.c and watermark.c: what appends tell them */
extern void es_note_append(const EsCatalog *cat, int64 last_position);
extern void es_wait_init(void);
extern int64 es_wake_owed_watermark(Oid seq);
extern void es_wake_owe_watermark(Oid seq, int64 position);
extern void es_watermark_init(void);
extern void es_watermark_at_commit(int64 last_position, Oid gate,
								   Oid events_seq, Oid watermark_seq);
extern int	es_watermark_interval;

/* event_store.c */
extern bool es_notify;
extern bool es_log_conflicts;

/* append.c */
extern void es_lock_stream(EsStorage *st, text *stream_id);
extern void es_report_tombstoned(text *stream_id);
extern void es_report_conflict(text *stream_id, int64 expected, int64 actual);
extern bool es_version_matches(const EsStorage *st, int64 expected);
extern int64 es_append(const char *funcname, text *stream_id, int64 expected,
					   EsEventInput *events, int nevents, Jsonb *batch,
					   bool legacy);
extern void es_append_lifecycle_event(const char *funcname, EsEventInput *ev);

#endif							/* EVENT_STORE_H */
