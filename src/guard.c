/*-------------------------------------------------------------------------
 *
 * guard.c
 *		The trigger that keeps stored history append-only.
 *
 * event_store.refuse_change() is attached as a BEFORE UPDATE OR DELETE OR
 * TRUNCATE statement trigger to event_store.events, event_store.streams and
 * (from 0.4.0) event_store.erasures.  Statement triggers fire even when no
 * row matches, so any such statement is refused outright.  The append
 * functions, and the lifecycle functions of lifecycle.c (the only sanctioned
 * way to delete or rewrite events), write the tables directly, below the
 * executor, and so never fire it.  INSERT stays open, because pg_restore
 * loads the data back with COPY.
 *
 * The triggers are ENABLE ALWAYS, so they fire under
 * session_replication_role = replica too.  The one exception is a logical
 * replication worker: on a subscriber it replays what happened on the
 * publisher, which the publisher's own guard has let through.  (An apply
 * worker fires statement triggers only for a replicated TRUNCATE; a head's
 * UPDATE arrives as a row change and fires none.)
 *
 * src/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "replication/logicalworker.h"
#include "utils/rel.h"

#include "event_store.h"

PG_FUNCTION_INFO_V1(refuse_change);

/* Refuse an UPDATE, DELETE or TRUNCATE of a table of the extension. */
Datum
refuse_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *relname;
	const char *detail;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"refuse_change\" must be fired as a trigger")));

	if (IsLogicalWorker())
		return PointerGetDatum(NULL);

	relname = RelationGetRelationName(trigdata->tg_relation);
	if (strcmp(relname, "streams") == 0)
		detail = "A stream's head moves only forward, through event_store.append_event and event_store.append_events.";
	else if (strcmp(relname, "erasures") == 0)
		detail = "The audit of erasures is append-only; erase_stream and redact_event add to it.";
	else
		detail = "Stored events are append-only; events are added only through event_store.append_event and event_store.append_events.";

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot update table \"%s\"", relname),
				 errdetail("%s", detail)));
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot delete from table \"%s\"", relname),
				 errdetail("%s", detail)));
	else
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot truncate table \"%s\"", relname),
				 errdetail("%s", detail)));

	PG_RETURN_NULL();
}
