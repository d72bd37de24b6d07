/*-------------------------------------------------------------------------
 *
 * wait.c
 *		wait_for_event, and what appending transactions tell waiters.
 *
 * wait_for_event(after, timeout, category, event_types) returns the
 * position of the first event after "after" (of the category, of the types)
 * that a read of the global log would return now, or NULL once the timeout
 * has passed.  It is one statement, so it works through a pooler in
 * transaction mode, where LISTEN does not.
 *
 * THE WAIT
 *
 * A waiter probes the log as read_all or read_category would, for one event
 * (es_log_probe).  A probe that finds nothing still reports how far it got,
 * every position up to there being settled for the waiter, and the next
 * probe goes on from there: a waiter for a rare type scans the log once,
 * not once per wake-up.  Before probing it compares that point with the
 * last position taken (on a standby, the watermark): nothing can be
 * readable beyond it until that moves, so most wake-ups cost one read of a
 * sequence's page.
 *
 * Between probes the waiter sleeps:
 *
 *	With shared memory (the library in shared_preload_libraries on any
 *	major, or, from 17, a named DSM segment that needs no configuration), on
 *	a condition variable that every appending transaction broadcasts when it
 *	commits or rolls back, or a subtransaction of it rolls back: the moments
 *	at which an event can become readable.  A waiter prepares to sleep before
 *	it probes, so a broadcast during the probe wakes it.  Appends broadcast
 *	only when the waiter count is not zero, read after their commit became
 *	visible and after a full barrier; a waiter raises the count (a full
 *	barrier) before its first probe.  So either the append sees the waiter,
 *	or the waiter's probe, whose snapshot is taken later, sees the commit.
 *	After a wake-up a waiter waits out WAKE_THROTTLE_MS before its next
 *	probe, so that waiters follow a busy log at a bounded rate instead of
 *	once per commit; the commits meanwhile are found by that probe.  It also
 *	wakes every WAKE_FALLBACK_MS by itself, for the events no append
 *	announces: a prepared transaction committed by COMMIT PREPARED, rows of
 *	a plain INSERT.
 *
 *	Without shared memory (15 and 16 without shared_preload_libraries), and
 *	on a hot standby (the writers are on the primary), by polling every
 *	POLL_MS.
 *
 * The wait honours cancel and statement_timeout, and shows as wait event
 * "Extension".  Like any statement it holds its snapshot's horizon while it
 * runs, so long timeouts hold back VACUUM's cleanup as long.  It refuses to
 * run under REPEATABLE READ or SERIALIZABLE, whose one snapshot would never
 * show it a new event.
 *
 * src/wait.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "event_store.h"

PG_FUNCTION_INFO_V1(wait_for_event);

#define WAKE_THROTTLE_MS	1
#define WAKE_FALLBACK_MS	1000
#define POLL_MS				10

/* What waiters and appending transactions share. */
typedef struct EsWakeState
{
	pg_atomic_uint32 waiters;	/* backends inside wait_for_event */
	ConditionVariable cv;		/* broadcast when an appending transaction
								 * ends */
} EsWakeState;

#define ES_WAKE_NAME "event_store"

static EsWakeState *preloaded_state = NULL;
static EsWakeState *named_state = NULL;
static bool named_looked_up = false;
static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;

/* This backend's part: is it counted among the waiters? */
static bool counted = false;
static bool exit_callback_registered = false;

/* What this transaction appended. */
static bool xact_appended = false;
static int64 xact_last_position = 0;
static Oid	xact_gate = InvalidOid;
static Oid	xact_events_seq = InvalidOid;
static Oid	xact_watermark_seq = InvalidOid;
static bool xact_callbacks_registered = false;

static void InitWakeState(void *ptr);
static void RequestWakeShmem(void);
static void StartupWakeShmem(void);
static EsWakeState *WakeState(void);
static void Wake(void);
static void AtXactEvent(XactEvent event, void *arg);
static void AtSubXactEvent(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg);
static void Uncount(int code, Datum arg);
static long TimeoutMs(Interval *timeout);
static int64 LogMark(void);

static void
InitWakeState(void *ptr)
{
	EsWakeState *state = (EsWakeState *) ptr;

	pg_atomic_init_u32(&state->waiters, 0);
	ConditionVariableInit(&state->cv);
}

static void
RequestWakeShmem(void)
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(EsWakeState)));
}

static void
StartupWakeShmem(void)
{
	bool		found;

	if (previous_shmem_startup_hook)
		previous_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	preloaded_state = ShmemInitStruct(ES_WAKE_NAME, sizeof(EsWakeState),
									  &found);
	if (!found)
		InitWakeState(preloaded_state);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The shared state, attached on first use; NULL when there is none (15 and
 * 16 without shared_preload_libraries).
 */
static EsWakeState *
WakeState(void)
{
	bool		found;

	if (preloaded_state != NULL)
		return preloaded_state;
	if (!named_looked_up)
	{
		named_state = es_named_shared_memory(ES_WAKE_NAME, sizeof(EsWakeState),
											 InitWakeState, &found);
		named_looked_up = true;
	}
	return named_state;
}

/*
 * An appending transaction ended, or a subtransaction of it rolled back:
 * wake the waiters, if any.  Runs in transaction callbacks, so it must not
 * fail; the state was attached when the transaction appended.
 */
static void
Wake(void)
{
	EsWakeState *state = preloaded_state != NULL ? preloaded_state : named_state;

	if (state == NULL)
		return;
	pg_memory_barrier();
	if (pg_atomic_read_u32(&state->waiters) > 0)
		ConditionVariableBroadcast(&state->cv);
}

static void
AtXactEvent(XactEvent event, void *arg)
{
	if (!xact_appended)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			es_watermark_at_commit(xact_last_position, xact_gate,
								   xact_events_seq, xact_watermark_seq);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
			Wake();
			xact_appended = false;
			break;
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			xact_appended = false;
			break;
		default:
			break;
	}
}

static void
AtSubXactEvent(SubXactEvent event, SubTransactionId mySubid,
			   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && xact_appended)
		Wake();
}

/*
 * An append call of this transaction inserted events up to last_position
 * (append.c).
 */
void
es_note_append(const EsCatalog *cat, int64 last_position)
{
	if (!xact_callbacks_registered)
	{
		RegisterXactCallback(AtXactEvent, NULL);
		RegisterSubXactCallback(AtSubXactEvent, NULL);
		xact_callbacks_registered = true;
	}
	(void) WakeState();
	if (!xact_appended || last_position > xact_last_position)
		xact_last_position = last_position;
	xact_gate = cat->gate;
	xact_events_seq = cat->events_seq;
	xact_watermark_seq = cat->watermark_seq;
	xact_appended = true;
}

/* At exit, stop counting this backend among the waiters. */
static void
Uncount(int code, Datum arg)
{
	EsWakeState *state = WakeState();

	if (counted && state != NULL)
	{
		pg_atomic_fetch_sub_u32(&state->waiters, 1);
		counted = false;
	}
}

/* A wait's timeout in milliseconds. */
static long
TimeoutMs(Interval *timeout)
{
	double		ms;

	if (es_interval_is_infinite(timeout))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be finite")));
	ms = timeout->time / 1000.0 +
		((double) timeout->day + (double) timeout->month * DAYS_PER_MONTH) *
		SECS_PER_DAY * 1000.0;
	if (ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	return (long) Min(ms, (double) INT_MAX);
}

/*
 * The point beyond which nothing can be readable yet: the last position
 * taken, or on a standby the watermark.
 */
static int64
LogMark(void)
{
	Relation	events;
	const EsCatalog *cat = es_catalog_open(AccessShareLock, &events, NULL);
	int64		mark;

	if (!RecoveryInProgress())
		mark = es_sequence_last_value(cat->events_seq);
	else if (OidIsValid(cat->watermark_seq))
		mark = es_sequence_last_value(cat->watermark_seq);
	else
		mark = PG_INT64_MAX;
	table_close(events, NoLock);
	return mark;
}

/*
 * event_store.wait_for_event(after_position bigint, timeout interval,
 *		category text, event_types text[]) returns bigint
 */
Datum
wait_for_event(PG_FUNCTION_ARGS)
{
	int64		after;
	long		timeout_ms;
	text	   *category = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	ArrayType  *types = PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3);
	EsWakeState *state;
	bool		use_cv;
	TimestampTz deadline;
	MemoryContext probecxt;
	int64		reached;
	int64		found = 0;
	bool		first = true;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("after_position must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null")));
	after = PG_GETARG_INT64(0);
	timeout_ms = TimeoutMs(PG_GETARG_INTERVAL_P(1));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("wait_for_event cannot wait in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("The transaction's snapshot would never show it a new event."),
				 errhint("Call it in a READ COMMITTED transaction, or outside a transaction block.")));

	state = RecoveryInProgress() ? NULL : WakeState();
	use_cv = (state != NULL);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	probecxt = AllocSetContextCreate(CurrentMemoryContext,
									 "event_store wait", ALLOCSET_SMALL_SIZES);
	reached = Max(after, 0);

	if (use_cv)
	{
		if (!exit_callback_registered)
		{
			before_shmem_exit(Uncount, (Datum) 0);
			exit_callback_registered = true;
		}
		pg_atomic_fetch_add_u32(&state->waiters, 1);
		counted = true;
	}

	PG_TRY();
	{
		for (;;)
		{
			TimestampTz now;
			long		remaining;
			MemoryContext old;

			if (use_cv)
				ConditionVariablePrepareToSleep(&state->cv);
			old = MemoryContextSwitchTo(probecxt);
			/*
			 * The first probe runs whatever the mark says: it checks the
			 * caller's privilege and the arguments.
			 */
			if (first || LogMark() > reached)
				found = es_log_probe(&reached, category, types);
			first = false;
			MemoryContextSwitchTo(old);
			MemoryContextReset(probecxt);
			if (found != 0)
				break;

			now = GetCurrentTimestamp();
			if (now >= deadline)
				break;
			remaining = (long) ((deadline - now + 999) / 1000);

			if (use_cv)
			{
				(void) ConditionVariableTimedSleep(&state->cv,
												   Min(remaining, WAKE_FALLBACK_MS),
												   PG_WAIT_EXTENSION);
				(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 WAKE_THROTTLE_MS, PG_WAIT_EXTENSION);
			}
			else
			{
				(void) WaitLatch(MyLatch,
								 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 Min(remaining, POLL_MS), PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
			}
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		if (use_cv)
		{
			ConditionVariableCancelSleep();
			pg_atomic_fetch_sub_u32(&state->waiters, 1);
			counted = false;
		}
	}
	PG_END_TRY();
	MemoryContextDelete(probecxt);

	if (found == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(found);
}

/*
 * Ask for the shared state at server start when the library is in
 * shared_preload_libraries; called from _PG_init.
 */
void
es_wait_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = RequestWakeShmem;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = StartupWakeShmem;
}
