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

#include "access/tupdesc.h"
#include "nodes/execnodes.h"
#include "storage/lockdefs.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

/*
 * The extension's SQLSTATEs, in class "VE", which PostgreSQL does not use:
 * a failed expected-version check (every kind of check), and event ids of a
 * call already stored in the stream, but not as a repeat of that call.
 */
#define ERRCODE_ES_WRONG_EXPECTED_VERSION	MAKE_SQLSTATE('V','E','0','0','1')
#define ERRCODE_ES_EVENT_ALREADY_STORED		MAKE_SQLSTATE('V','E','0','0','2')

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

/* Column numbers of event_store.streams. */
#define Anum_es_streams_stream_id		1
#define Anum_es_streams_version			2
#define Natts_es_streams				2

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

	/*
	 * Per role, a usable index of the expected shape, found (not by name)
	 * once the table is locked; InvalidOid when there is none.  unusable
	 * keeps one of the right shape that is being built or dropped, to name
	 * it in the error.
	 */
	Oid			index[ES_NUM_INDEX_ROLES];
	Oid			unusable[ES_NUM_INDEX_ROLES];
} EsCatalog;

extern const EsCatalog *es_catalog_open(LOCKMODE mode, Relation *events,
										Relation *streams);
extern Oid	es_index_for(const EsCatalog *cat, Relation table, EsIndexRole role);
extern Relation es_open_index(const EsCatalog *cat, Relation table,
							  EsIndexRole role, LOCKMODE mode);
extern void es_check_select(Relation rel);
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
extern EsEventInput *es_parse_event_array(Jsonb *events, int *nevents);
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
	Oid			events_seq;
	Oid			gate;

	/* The stream's head, as read by es_storage_read_head. */
	bool		head_found;
	bool		head_moved_after_snapshot;
	int64		head_version;
	ItemPointerData head_tid;
} EsStorage;

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
extern void es_storage_close(EsStorage *st);

/* gate.c: the gate that keeps the global log exact */
extern void es_gate_enter(Oid gate);
extern void es_gate_exit(Oid gate);
extern int64 es_gate_high_water(Relation events, Relation pkey, Oid gate,
								Oid seqid);

/* event_store.c */
extern bool es_notify;
extern bool es_log_conflicts;

/* append.c */
extern int64 es_append(const char *funcname, text *stream_id, int64 expected,
					   EsEventInput *events, int nevents, Jsonb *batch,
					   bool legacy);

#endif							/* EVENT_STORE_H */
