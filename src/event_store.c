/*-------------------------------------------------------------------------
 *
 * event_store.c
 *		Module entry point of the event_store extension.
 *
 * event_store turns a PostgreSQL database into an event store with
 * optimistic concurrency control.  The work is split by concept:
 *
 *	append.c		the append functions and their locking protocol
 *	event_input.c	validation of stream ids, types, metadata and batches
 *	storage.c		direct index and heap access to the two tables
 *	catalog.c		finding the extension's relations and indexes, cached
 *	guard.c			the trigger that keeps stored history append-only
 *	gate.c			the gate that keeps the global log exact
 *	global_log.c	read_all, read_category and safe_position
 *	heads.c			stream_version
 *	compat.h		the differences between PostgreSQL majors
 *
 * read_stream is a SQL function in the install scripts, so that the planner
 * can inline it.
 *
 * src/event_store.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "event_store.h"

PG_MODULE_MAGIC;

/* event_store.notify: send a NOTIFY for every committed append. */
bool		es_notify = false;

void		_PG_init(void);

/* Set up the module when the library is loaded. */
void
_PG_init(void)
{
	DefineCustomBoolVariable("event_store.notify",
							 "Sends a NOTIFY on channel \"event_store\" for every committed append.",
							 "The payload is a JSON object with the stream id, the first and last version appended and the last global position.",
							 &es_notify,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("event_store");
	es_catalog_init();
}
