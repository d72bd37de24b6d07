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
 *	lifecycle.c		deleting, truncating, erasing and redacting streams
 *	visibility.c	which versions of a stream reads show
 *	wait.c			wait_for_event, and the wake-ups appends send
 *	watermark.c		the watermark that keeps the log exact on a standby
 *	compat.h		the differences between PostgreSQL majors
 *
 * read_stream is a SQL function in the install scripts, so that the planner
 * can inline it.  This file defines the settings and the hook that keeps
 * conflicts out of the server log when asked to.
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

/* event_store.log_conflicts: write version conflicts to the server log. */
bool		es_log_conflicts = true;

static emit_log_hook_type previous_emit_log_hook = NULL;

void		_PG_init(void);
static void QuietConflicts(ErrorData *edata);

/*
 * With event_store.log_conflicts off, keep the expected outcomes of an
 * append, VE001 and VE002, out of the server log; the client still gets
 * them.  Every other message is left alone.
 */
static void
QuietConflicts(ErrorData *edata)
{
	if (!es_log_conflicts && edata->elevel == ERROR &&
		(edata->sqlerrcode == ERRCODE_ES_WRONG_EXPECTED_VERSION ||
		 edata->sqlerrcode == ERRCODE_ES_EVENT_ALREADY_STORED))
		edata->output_to_server = false;
	if (previous_emit_log_hook)
		previous_emit_log_hook(edata);
}

/* Set up the module when the library is loaded. */
void
_PG_init(void)
{
	DefineCustomBoolVariable("event_store.notify",
							 "Sends a NOTIFY on channel \"event_store\" for every committed append.",
							 "The notification carries no payload (LISTEN checks no privilege); one is sent per transaction, on commit.",
							 &es_notify,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("event_store.log_conflicts",
							 "Writes version conflicts (VE001, VE002) to the server log.",
							 "Off keeps these expected outcomes of an append out of the server log; the client still receives them.",
							 &es_log_conflicts,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	es_watermark_init();
	MarkGUCPrefixReserved("event_store");
	previous_emit_log_hook = emit_log_hook;
	emit_log_hook = QuietConflicts;
	es_catalog_init();
	es_visibility_init();
	es_wait_init();
}
