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
 * A probe's high-water mark (gate.c) is shared among the waiters of a
 * database through shared memory, when there is some (SharedHighWater): one
 * waiter computes it, the others use it, so that many waiters do not each
 * read every backend's fast-path locks.
 *
 * Each probe runs in a subtransaction that is rolled back, which releases
 * the locks it took: a waiter holds no lock while it sleeps, so DDL that
 * needs one (REINDEX, ALTER EXTENSION) does not queue behind a waiter, and
 * appends do not queue behind that DDL for as long as the waiter waits.
 *
 * Between probes the waiter sleeps:
 *
 *	With shared memory (the library in shared_preload_libraries on any
 *	major, or, from 17, a named DSM segment that needs no configuration), on
 *	a condition variable that every appending transaction broadcasts when it
 *	commits or rolls back, or a subtransaction that appended rolls back: the
 *	moments at which an event can become readable.  Appends do so only when
 *	the waiter count is not zero, read after their commit became visible and
 *	after a full barrier, and then also count the end in "ended"; a waiter
 *	raises the waiter count (a full barrier) before its first probe, reads
 *	"ended" before each probe, and after the probe prepares to sleep and
 *	sleeps only if "ended" has not moved.  So an end either comes after the
 *	waiter prepared, and its broadcast wakes it, or moved "ended", and the
 *	waiter probes again without sleeping; and the probe's snapshot, taken
 *	after the end it did not see counted, sees that commit.  A woken waiter
 *	probes at once if its last probe is older than its throttle, else when
 *	it is: the throttle starts at WAKE_THROTTLE_MIN_MS and doubles after
 *	each probe that found nothing, up to WAKE_THROTTLE_MAX_MS, so on a
 *	quiet log a waiter wakes at once, and on a busy one it probes at a
 *	bounded rate (the events meanwhile are found by the next probe).  It also
 *	wakes every WAKE_FALLBACK_MS by itself, for the events no append
 *	announces: a prepared transaction committed by COMMIT PREPARED, rows of
 *	a plain INSERT.
 *
 *	Without shared memory (15 and 16 without shared_preload_libraries), and
 *	on a hot standby (the writers are on the primary), by polling: every
 *	POLL_MIN_MS while the log moves, backing off to POLL_MAX_MS while it
 *	does not.
 *
 * The wait honours cancel and statement_timeout, and shows as wait event
 * "Extension".  Like any statement it holds its snapshot's horizon while it
 * runs, so long timeouts hold back VACUUM's cleanup as long; on a hot
 * standby without hot_standby_feedback, the replay of such cleanup waits
 * for it (up to max_standby_streaming_delay).  It refuses to run under
 * REPEATABLE READ or SERIALIZABLE, whose one snapshot would never show it a
 * new event.
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
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "event_store.h"

PG_FUNCTION_INFO_V1(wait_for_event);

#define WAKE_THROTTLE_MIN_MS	1
#define WAKE_THROTTLE_MAX_MS	16
#define WAKE_FALLBACK_MS		1000
#define POLL_MIN_MS				5
#define POLL_MAX_MS				40

/*
 * A high-water mark of gate.c computed by one waiter for the others of its
 * database (SharedHighWater).
 */
typedef struct EsHighSlot
{
	slock_t		mutex;
	Oid			db;				/* InvalidOid: a free slot */
	Oid			seq;			/* the position sequence it is for */
	int64		high;
	bool		computing;		/* a waiter is computing a newer one */
	TimestampTz since;			/* since when */
	int64		owed;			/* a watermark a committing append could not
								 * publish (watermark.c) */
	TimestampTz used;			/* last looked up (under slots_mutex) */
} EsHighSlot;

#define ES_HIGH_SLOTS		16
#define HIGH_STALE_MS		1000

/* What waiters and appending transactions share. */
typedef struct EsWakeState
{
	pg_atomic_uint32 waiters;	/* backends inside wait_for_event */
	pg_atomic_uint64 ended;		/* appending transactions ended while some
								 * backend waited */
	slock_t		slots_mutex;	/* taken to claim a free slot */
	EsHighSlot	slots[ES_HIGH_SLOTS];
	ConditionVariable cv;		/* broadcast when an appending transaction
								 * ends */
} EsWakeState;

/* The shared state's name, with the layout's version. */
#define ES_WAKE_NAME "event_store 0.5.0"

static EsWakeState *preloaded_state = NULL;
static EsWakeState *named_state = NULL;
static bool named_looked_up = false;
static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;

/* This backend's part: is it counted among the waiters? */
static bool counted = false;

/* The slot whose mark this backend is computing, for cleanup. */
static EsHighSlot *computing_slot = NULL;
static bool exit_callback_registered = false;

/* What this transaction appended. */
static bool xact_appended = false;
static int64 xact_last_position = 0;
static Oid	xact_gate = InvalidOid;
static Oid	xact_events_seq = InvalidOid;
static Oid	xact_watermark_seq = InvalidOid;
static SubTransactionId xact_last_append_subid = InvalidSubTransactionId;
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
static void StopComputing(void);
static EsHighSlot *HighSlot(EsWakeState *state, Oid seq);
static EsHighSlot *MySlot(Oid seq, bool lookup);
static bool SlotIsMine(EsHighSlot *slot, Oid seq);
static int64 SharedHighWater(Relation events, Relation pkey, Oid gate,
							 Oid seqid, Oid watermark_seq);
static long TimeoutMs(Interval *timeout);
static int64 LogMark(void);
static int64 Probe(int64 *reached, bool force, text *category,
				   ArrayType *types, MemoryContext cxt, bool *probed);

static void
InitWakeState(void *ptr)
{
	EsWakeState *state = (EsWakeState *) ptr;

	pg_atomic_init_u32(&state->waiters, 0);
	pg_atomic_init_u64(&state->ended, 0);
	SpinLockInit(&state->slots_mutex);
	for (int i = 0; i < ES_HIGH_SLOTS; i++)
	{
		SpinLockInit(&state->slots[i].mutex);
		state->slots[i].db = InvalidOid;
		state->slots[i].seq = InvalidOid;
		state->slots[i].high = 0;
		state->slots[i].computing = false;
		state->slots[i].since = 0;
		state->slots[i].owed = 0;
		state->slots[i].used = 0;
	}
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
	{
		pg_atomic_fetch_add_u64(&state->ended, 1);
		ConditionVariableBroadcast(&state->cv);
	}
}

static void
AtXactEvent(XactEvent event, void *arg)
{
	if (!xact_appended)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
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
	/*
	 * Subtransaction ids rise, and a subtransaction ends before a later
	 * sibling begins: an append at or above the aborting one was made in it
	 * (a wait's own probes, later, are not).
	 */
	if (event == SUBXACT_EVENT_ABORT_SUB && xact_appended &&
		xact_last_append_subid >= mySubid)
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
	xact_last_append_subid = GetCurrentSubTransactionId();
	xact_appended = true;
}

/*
 * The slot of a position sequence of this database, remembered by this
 * backend; NULL without shared memory.  The caller checks, under the slot's
 * spinlock, that the slot is still this database's (SlotIsMine): another
 * may have taken it over.
 */
static EsHighSlot *
MySlot(Oid seq, bool lookup)
{
	static EsHighSlot *slot = NULL;
	static Oid	slot_seq = InvalidOid;
	EsWakeState *state = preloaded_state != NULL ? preloaded_state : named_state;

	if (state == NULL)
		return NULL;
	if (lookup || slot == NULL || slot_seq != seq)
	{
		slot = HighSlot(state, seq);
		slot_seq = seq;
	}
	return slot;
}

static bool
SlotIsMine(EsHighSlot *slot, Oid seq)
{
	return slot->db == MyDatabaseId && slot->seq == seq;
}

/*
 * The watermark owed, in this database, by committing appends that could
 * not publish it, for the next committer to publish (watermark.c); 0
 * without shared memory.
 */
int64
es_wake_owed_watermark(Oid seq)
{
	for (int attempt = 0; attempt < 2; attempt++)
	{
		EsHighSlot *slot = MySlot(seq, attempt > 0);
		int64		owed = 0;
		bool		mine;

		if (slot == NULL)
			return 0;
		SpinLockAcquire(&slot->mutex);
		mine = SlotIsMine(slot, seq);
		if (mine)
			owed = slot->owed;
		SpinLockRelease(&slot->mutex);
		if (mine)
			return owed;
	}
	return 0;
}

/* Raise the owed watermark of this database to at least position. */
void
es_wake_owe_watermark(Oid seq, int64 position)
{
	for (int attempt = 0; attempt < 2; attempt++)
	{
		EsHighSlot *slot = MySlot(seq, attempt > 0);
		bool		mine;

		if (slot == NULL)
			return;
		SpinLockAcquire(&slot->mutex);
		mine = SlotIsMine(slot, seq);
		if (mine && slot->owed < position)
			slot->owed = position;
		SpinLockRelease(&slot->mutex);
		if (mine)
			return;
	}
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
	StopComputing();
}

/* Let others compute the slot's mark again (after an error, at exit). */
static void
StopComputing(void)
{
	if (computing_slot != NULL)
	{
		SpinLockAcquire(&computing_slot->mutex);
		computing_slot->computing = false;
		SpinLockRelease(&computing_slot->mutex);
		computing_slot = NULL;
	}
}

/*
 * The slot of this database's position sequence.  A slot that is not found
 * takes a free one, or the one used longest ago (of a database dropped, or
 * of a store re-created since, most likely): its mark and owed watermark are
 * then lost, which costs its database a computation or a publication that
 * falls to the next append, never exactness.
 */
static EsHighSlot *
HighSlot(EsWakeState *state, Oid seq)
{
	EsHighSlot *slot = NULL;
	EsHighSlot *oldest = NULL;
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&state->slots_mutex);
	for (int i = 0; i < ES_HIGH_SLOTS && slot == NULL; i++)
	{
		EsHighSlot *s = &state->slots[i];

		if (s->db == MyDatabaseId && s->seq == seq)
			slot = s;
		else if (oldest == NULL || s->db == InvalidOid ||
				 (oldest->db != InvalidOid && s->used < oldest->used))
			oldest = s;
	}
	if (slot == NULL)
	{
		slot = oldest;
		SpinLockAcquire(&slot->mutex);
		slot->db = MyDatabaseId;
		slot->seq = seq;
		slot->high = 0;
		slot->computing = false;
		slot->owed = 0;
		SpinLockRelease(&slot->mutex);
	}
	slot->used = now;
	SpinLockRelease(&state->slots_mutex);
	return slot;
}

/*
 * The high-water mark of a waiter's probe, shared among the waiters of a
 * database: computing it (gate.c) reads every backend's fast-path locks,
 * which is what a probe costs most, and contends with the appends' own
 * lock-taking.  A mark computed by one backend serves any reader whose
 * snapshot is taken after the mark was stored: the computer's wait for the
 * windows ended before it stored it (the slot's spinlock orders the two), so
 * lemma 1 of gate.c holds for that reader.  So a waiter computes a mark only
 * when the stored one is below the last position taken and no one else is
 * computing; otherwise it uses the stored one.  A computer that raised the
 * stored mark counts an end and wakes the waiters, which may have used the
 * older one meanwhile and gone to sleep.
 */
static int64
SharedHighWater(Relation events, Relation pkey, Oid gate, Oid seqid,
				Oid watermark_seq)
{
	EsWakeState *state = WakeState();
	EsHighSlot *slot = (state != NULL) ? HighSlot(state, seqid) : NULL;
	int64		last = es_sequence_last_value(seqid);
	TimestampTz now = GetCurrentTimestamp();
	int64		high;
	bool		compute = false;
	bool		raised = false;

	if (slot == NULL)
		return es_gate_high_water(events, pkey, gate, seqid, watermark_seq);

	SpinLockAcquire(&slot->mutex);
	if (!SlotIsMine(slot, seqid))
	{
		SpinLockRelease(&slot->mutex);
		return es_gate_high_water(events, pkey, gate, seqid, watermark_seq);
	}
	high = slot->high;
	if (high < last &&
		(!slot->computing ||
		 TimestampDifferenceExceeds(slot->since, now, HIGH_STALE_MS)))
	{
		slot->computing = true;
		slot->since = now;
		compute = true;
	}
	SpinLockRelease(&slot->mutex);
	if (!compute)
		return high;

	computing_slot = slot;
	high = es_gate_high_water(events, pkey, gate, seqid, watermark_seq);
	SpinLockAcquire(&slot->mutex);
	if (SlotIsMine(slot, seqid) && high > slot->high)
	{
		slot->high = high;
		raised = true;
	}
	slot->computing = false;
	SpinLockRelease(&slot->mutex);
	computing_slot = NULL;
	if (raised)
	{
		pg_atomic_fetch_add_u64(&state->ended, 1);
		ConditionVariableBroadcast(&state->cv);
	}
	return high;
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
 * One probe, in a subtransaction that is rolled back, so that the locks it
 * takes on the extension's relations are released before the waiter
 * sleeps: a waiter holds no lock that DDL could queue behind, and so no
 * append queues behind such DDL for the waiter's sake.  Unless force, it
 * reads the mark first and does not probe (*probed false) when nothing can
 * be new.  Allocations go to cxt.
 */
static int64
Probe(int64 *reached, bool force, text *category, ArrayType *types,
	  MemoryContext cxt, bool *probed)
{
	ResourceOwner owner = CurrentResourceOwner;
	MemoryContext caller = CurrentMemoryContext;
	volatile int64 found = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (force || LogMark() > *reached)
		{
			found = es_log_probe(reached, category, types,
								 RecoveryInProgress() ? es_gate_high_water :
								 SharedHighWater);
			*probed = true;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		StopComputing();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(caller);
	CurrentResourceOwner = owner;
	return found;
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
	TimestampTz last_probe = 0;
	long		throttle_ms = WAKE_THROTTLE_MIN_MS;
	long		poll_ms = POLL_MIN_MS;

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
			uint64		seen = 0;
			bool		probed = false;

			/*
			 * Read the count of ended appends before probing: one that ends
			 * during the probe or after it changes the count, and then the
			 * waiter does not sleep.
			 */
			if (use_cv)
				seen = pg_atomic_read_u64(&state->ended);
			found = Probe(&reached, first, category, types, probecxt, &probed);
			MemoryContextReset(probecxt);
			first = false;
			if (found != 0)
				break;

			now = GetCurrentTimestamp();
			if (probed)
			{
				last_probe = now;
				throttle_ms = Min(throttle_ms * 2, WAKE_THROTTLE_MAX_MS);
				poll_ms = POLL_MIN_MS;
			}
			else
				poll_ms = Min(poll_ms * 2, POLL_MAX_MS);
			if (now >= deadline)
				break;
			remaining = (long) ((deadline - now + 999) / 1000);

			if (use_cv)
			{
				long		since;

				ConditionVariablePrepareToSleep(&state->cv);
				if (pg_atomic_read_u64(&state->ended) == seen)
					(void) ConditionVariableTimedSleep(&state->cv,
													   Min(remaining, WAKE_FALLBACK_MS),
													   PG_WAIT_EXTENSION);
				ConditionVariableCancelSleep();

				/*
				 * Woken: probe now if the last probe is older than the
				 * throttle, else when it is, so that on a busy log a waiter
				 * probes at a bounded rate; the ends meanwhile are found by
				 * that probe.
				 */
				since = (long) ((GetCurrentTimestamp() - last_probe) / 1000);
				if (since < throttle_ms && since >= 0)
					(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
									 Min(throttle_ms - since, remaining),
									 PG_WAIT_EXTENSION);
			}
			else
			{
				(void) WaitLatch(MyLatch,
								 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 Min(remaining, poll_ms), PG_WAIT_EXTENSION);
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
