/*-------------------------------------------------------------------------
 *
 * event_input.c
 *		Validate what a caller asks to append, before any lock is taken.
 *
 * Every check here raises a specific SQLSTATE and runs before the append
 * touches a table, so bad input never writes anything:
 *
 *	NULL stream id, event type, data or batch		22004 null_value_not_allowed
 *	empty stream id or type, bad expected version,
 *	metadata that is not an object, a malformed
 *	batch element									22023 invalid_parameter_value
 *	stream id or type over its length limit			22001 string_data_right_truncation
 *	the same event id twice in one call				23505 unique_violation
 *
 * Batch elements are numbered from 0 in messages, as jsonb's -> operator
 * numbers them.
 *
 * src/event_input.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/time.h>

#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "compat.h"
#include "event_store.h"

static int HexValue(char c);
static bool ParseUuid(const char *s, int len, pg_uuid_t *out);
static void BadElement(int index, const char *detail);
static JsonbValue *GetKey(JsonbContainer *obj, const char *key,
						  JsonbValue *buf);
static void RefuseUnknownKey(JsonbContainer *obj, int index);
static void ReadElement(JsonbContainer *root, int i, EsEventInput *ev,
						bool load, bool refuse_reserved);
static void RefuseReserved(const char *what, const char *value, int len);
static int CompareIdAt(const void *a, const void *b);

/* Check a stream id argument and return it detoasted. */
text *
es_check_stream_id(Datum stream_id, bool isnull)
{
	text	   *t;
	int			len;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream id must not be null")));

	t = DatumGetTextPP(stream_id);
	len = VARSIZE_ANY_EXHDR(t);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream id must not be empty")));
	if (len > ES_MAX_STREAM_ID_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("stream id is too long"),
				 errdetail("A stream id is at most %d bytes; this one has %d.",
						   ES_MAX_STREAM_ID_LEN, len)));
	return t;
}

/*
 * Check a non-null expected version: -2 (any), 0, -1 or a version; the 0.1
 * and 0.2 functions (legacy) take NULL for any and know no -2.
 */
void
es_check_expected_version(int64 expected, bool legacy)
{
	if (legacy && expected < ES_EXPECT_STREAM_EXISTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid expected version " INT64_FORMAT, expected),
				 errdetail("The expected version must be NULL (any), 0 (no stream), -1 (stream exists) or a version of 1 or more.")));
	if (expected < ES_EXPECT_ANY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid expected version " INT64_FORMAT, expected),
				 errdetail("The expected version must be -2 (any), 0 (no stream), -1 (stream exists) or a version of 1 or more.")));
}

/* Check an event type; the caller has already refused NULL. */
void
es_check_event_type(text *event_type)
{
	int			len = VARSIZE_ANY_EXHDR(event_type);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event type must not be empty")));
	if (len > ES_MAX_EVENT_TYPE_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("event type is too long"),
				 errdetail("An event type is at most %d bytes; this one has %d.",
						   ES_MAX_EVENT_TYPE_LEN, len)));
}

/*
 * Refuse a stream id or event type that begins with '$': the prefix is
 * reserved for the extension's lifecycle events (the stream $lifecycle and
 * its types), so that no append can forge one.
 */
static void
RefuseReserved(const char *what, const char *value, int len)
{
	if (len > 0 && value[0] == ES_RESERVED_PREFIX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%.*s\" is reserved", what, len, value),
				 errdetail("Stream ids and event types beginning with \"$\" are reserved for the extension's lifecycle events.")));
}

/* Refuse a reserved stream id (see RefuseReserved). */
void
es_refuse_reserved_stream(text *stream_id)
{
	RefuseReserved("stream id", VARDATA_ANY(stream_id),
				   VARSIZE_ANY_EXHDR(stream_id));
}

/* Refuse a reserved event type (see RefuseReserved). */
void
es_refuse_reserved_type(text *event_type)
{
	RefuseReserved("event type", VARDATA_ANY(event_type),
				   VARSIZE_ANY_EXHDR(event_type));
}

/* Check that metadata, when given, is a JSON object. */
void
es_check_metadata(Jsonb *metadata)
{
	if (metadata != NULL &&
		(JB_ROOT_IS_SCALAR(metadata) || !JB_ROOT_IS_OBJECT(metadata)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event metadata must be a JSON object")));
}

/* Value of one hexadecimal digit, or -1. */
static int
HexValue(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Parse a uuid written as the uuid type's input accepts it: 32 hexadecimal
 * digits, optionally with a hyphen after any group of four and optionally in
 * braces.  Returns false on anything else, so that the caller can name the
 * batch element in its error.
 */
static bool
ParseUuid(const char *s, int len, pg_uuid_t *out)
{
	const char *p = s;
	const char *end = s + len;
	bool		braces = false;

	if (p < end && *p == '{')
	{
		braces = true;
		p++;
	}
	for (int i = 0; i < UUID_LEN; i++)
	{
		int			hi,
					lo;

		if (end - p < 2)
			return false;
		hi = HexValue(p[0]);
		lo = HexValue(p[1]);
		if (hi < 0 || lo < 0)
			return false;
		out->data[i] = (unsigned char) ((hi << 4) | lo);
		p += 2;
		if (p < end && *p == '-' && i % 2 == 1 && i < UUID_LEN - 1)
			p++;
	}
	if (braces)
	{
		if (p >= end || *p != '}')
			return false;
		p++;
	}
	return p == end;
}

/* Report a malformed batch element. */
static void
BadElement(int index, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid event at index %d of the batch", index),
			 errdetail("%s", detail)));
}

/* Find a key of a JSON object; NULL when absent. */
static JsonbValue *
GetKey(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

/* Report the first key of an element that is not one of the four known. */
static void
RefuseUnknownKey(JsonbContainer *obj, int index)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if ((v.val.string.len == 4 && memcmp(v.val.string.val, "type", 4) == 0) ||
			(v.val.string.len == 4 && memcmp(v.val.string.val, "data", 4) == 0) ||
			(v.val.string.len == 8 && memcmp(v.val.string.val, "metadata", 8) == 0) ||
			(v.val.string.len == 2 && memcmp(v.val.string.val, "id", 2) == 0))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event at index %d of the batch", index),
				 errdetail("Unknown key \"%.*s\"; an event has only the keys \"type\", \"data\", \"metadata\" and \"id\".",
						   v.val.string.len, v.val.string.val)));
	}
}

/*
 * Check element i of a batch and read its id.  With load, also build the
 * event's type, data and metadata values, in the current memory context; a
 * caller that loads one event at a time can free them after each insert.
 *
 * An element is an object {"type": string, "data": any,
 * "metadata": object (optional), "id": uuid string (optional)}.  A JSON null
 * for "metadata" or "id" is the same as leaving the key out.
 */
static void
ReadElement(JsonbContainer *root, int i, EsEventInput *ev, bool load,
			bool refuse_reserved)
{
	JsonbValue *elem = getIthJsonbValueFromContainer(root, i);
	JsonbContainer *obj;
	JsonbValue	buf;
	JsonbValue *v;
	int			known = 0;

	if (elem->type != jbvBinary ||
		!JsonContainerIsObject(elem->val.binary.data))
		BadElement(i, "An event must be a JSON object.");
	obj = elem->val.binary.data;

	/* type: a non-empty string within the length limit */
	v = GetKey(obj, "type", &buf);
	if (v == NULL || v->type != jbvString)
		BadElement(i, "The key \"type\" must be present and be a string.");
	if (v->val.string.len == 0)
		BadElement(i, "The event type must not be empty.");
	if (v->val.string.len > ES_MAX_EVENT_TYPE_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("invalid event at index %d of the batch", i),
				 errdetail("An event type is at most %d bytes; this one has %d.",
						   ES_MAX_EVENT_TYPE_LEN, v->val.string.len)));
	if (refuse_reserved)
		RefuseReserved("event type", v->val.string.val, v->val.string.len);
	if (load)
		ev->event_type = cstring_to_text_with_len(v->val.string.val,
												  v->val.string.len);
	known++;

	/* data: any JSON value, but present */
	v = GetKey(obj, "data", &buf);
	if (v == NULL)
		BadElement(i, "The key \"data\" must be present.");
	if (load)
		ev->data = JsonbPGetDatum(JsonbValueToJsonb(v));
	known++;

	/* metadata: an object, or absent */
	ev->has_metadata = false;
	v = GetKey(obj, "metadata", &buf);
	if (v != NULL)
	{
		known++;
		if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		{
			if (load)
				ev->metadata = JsonbPGetDatum(JsonbValueToJsonb(v));
			ev->has_metadata = true;
		}
		else if (v->type != jbvNull)
			BadElement(i, "The key \"metadata\" must be a JSON object.");
	}

	/* id: a uuid string, or absent */
	ev->has_id = false;
	v = GetKey(obj, "id", &buf);
	if (v != NULL)
	{
		known++;
		if (v->type == jbvString)
		{
			if (!ParseUuid(v->val.string.val, v->val.string.len, &ev->id))
				BadElement(i, "The key \"id\" must be a uuid.");
			ev->has_id = true;
		}
		else if (v->type != jbvNull)
			BadElement(i, "The key \"id\" must be a uuid.");
	}

	if (known != (int) JsonContainerSize(obj))
		RefuseUnknownKey(obj, i);
	pfree(elem);
}

/*
 * Check every element of a batch, which must be a JSON array of event
 * objects.  Returns one EsEventInput per element with only its id filled in:
 * es_load_batch_event builds the rest just before the event is inserted, so
 * that a large batch is not copied whole into memory.
 */
EsEventInput *
es_parse_event_array(Jsonb *events, int *nevents, bool refuse_reserved)
{
	MemoryContext work;
	MemoryContext old;
	EsEventInput *out;
	int			n;

	if (JB_ROOT_IS_SCALAR(events) || !JB_ROOT_IS_ARRAY(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array")));

	n = JsonContainerSize(&events->root);
	out = MemoryContextAllocHuge(CurrentMemoryContext,
								 sizeof(EsEventInput) * Max(n, 1));
	memset(out, 0, sizeof(EsEventInput) * Max(n, 1));

	work = AllocSetContextCreate(CurrentMemoryContext, "event_store batch check",
								 ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(work);
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		ReadElement(&events->root, i, &out[i], false, refuse_reserved);
		MemoryContextReset(work);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);

	*nevents = n;
	return out;
}

/* Build the values of batch element i, already checked, into ev. */
void
es_load_batch_event(Jsonb *events, int i, EsEventInput *ev)
{
	bool		has_id = ev->has_id;
	pg_uuid_t	id = ev->id;

	ReadElement(&events->root, i, ev, true, false);

	/* Keep the id as the append decided it (generated ids included). */
	ev->has_id = has_id;
	ev->id = id;
}

typedef struct IdAt
{
	pg_uuid_t	id;
	int			index;
} IdAt;

/* Order ids by value, then by their index in the call. */
static int
CompareIdAt(const void *a, const void *b)
{
	const IdAt *x = (const IdAt *) a;
	const IdAt *y = (const IdAt *) b;
	int			c = memcmp(x->id.data, y->id.data, UUID_LEN);

	if (c != 0)
		return c;
	return (x->index > y->index) - (x->index < y->index);
}

/* Refuse a call that names the same event id twice. */
void
es_check_unique_ids(EsEventInput *events, int nevents)
{
	IdAt	   *ids = MemoryContextAllocHuge(CurrentMemoryContext,
											 sizeof(IdAt) * Max(nevents, 1));
	int			n = 0;

	for (int i = 0; i < nevents; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (events[i].has_id)
		{
			ids[n].id = events[i].id;
			ids[n].index = i;
			n++;
		}
	}
	if (n > 1)
		qsort(ids, n, sizeof(IdAt), CompareIdAt);

	for (int i = 1; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (memcmp(ids[i].id.data, ids[i - 1].id.data, UUID_LEN) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("event id \"%s\" appears more than once in the batch",
							DatumGetCString(DirectFunctionCall1(uuid_out,
																UUIDPGetDatum(&ids[i].id)))),
					 errdetail("It is given at indexes %d and %d.",
							   ids[i - 1].index, ids[i].index)));
	}
	pfree(ids);
}

/*
 * Make a new event id: a version 7 uuid (RFC 9562), whose leading 48 bits
 * are the Unix time in milliseconds.  Ids made close in time sort close
 * together, so the unique index on event_id grows at its right edge instead
 * of at random pages.  PostgreSQL 18 has a generator of its own, which also
 * keeps ids of one backend rising within a millisecond; it is used there.
 */
void
es_generate_event_id(pg_uuid_t *id)
{
	struct timeval tv;
	uint64		ms;

	if (es_builtin_uuidv7(id))
		return;
	if (!pg_strong_random(id->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));

	gettimeofday(&tv, NULL);
	ms = (uint64) tv.tv_sec * 1000 + (uint64) tv.tv_usec / 1000;
	for (int i = 0; i < 6; i++)
		id->data[i] = (unsigned char) (ms >> (8 * (5 - i)));
	id->data[6] = (id->data[6] & 0x0F) | 0x70;	/* version 7 */
	id->data[8] = (id->data[8] & 0x3F) | 0x80;	/* RFC 4122 variant */
}
