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
 *	catalog.c		finding the extension's relations, cached
 *	guard.c			the trigger that keeps stored history append-only
 *
 * The read functions are SQL functions in the install script, so that the
 * planner can inline them.
 *
 * src/event_store.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "event_store.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Set up the module when the library is loaded. */
void
_PG_init(void)
{
	es_catalog_init();
}
