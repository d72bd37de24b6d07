# Makefile for the event_store extension (PGXS)
#
#	make && make install			build and install into the server of pg_config
#	make installcheck				run the regression and isolation suites
#									against a running server (PGHOST, PGPORT)
#	make COPT=-Werror				treat warnings as errors (as the tests do)

EXTENSION = event_store
# The version lives in the control file alone.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'$$/\1/p" $(EXTENSION).control)

MODULE_big = event_store
OBJS = \
	src/append.o \
	src/catalog.o \
	src/event_input.o \
	src/event_store.o \
	src/gate.o \
	src/global_log.o \
	src/heads.o \
	src/guard.o \
	src/lifecycle.o \
	src/storage.o \
	src/visibility.o \
	src/wait.o \
	src/watermark.o

# The install script of the first release (frozen) and every upgrade script:
# CREATE EXTENSION installs the current version along that chain, so every
# release's objects are written once, in its upgrade script.
DATA = $(wildcard sql/$(EXTENSION)--*.sql)

# One regression file per feature, one isolation spec per concurrency story.
REGRESS = append_event append_events idempotency read_stream stream_version \
	bad_input large_events append_only privileges table_changes global_log checkpoints \
	fuzz security row_security cancel lock_all_streams snapshots filtered_reads wait_for_event watermark \
	delete_stream tombstone retention erasure parked_events
REGRESS_OPTS = --inputdir=test --outputdir=test/results_regress

ISOLATION = alice_and_bob same_field wait_behind_open_transaction \
	create_same_stream idempotent_retry_race batch_conflict_midway \
	different_streams advisory_keys lock_waits reinstall snapshot_isolation \
	read_all_slow_writer read_all_position_window read_all_open_reader filtered_read_slow_writer log_holders \
	consumer_group notify read_all_row_security no_stall_unique_index \
	no_stall_event_id import_holds_store ddl_on_row_type lock_before_window \
	snapshot_waits_for_append delete_against_append tombstone_against_retry \
	purge_against_readers retention_against_consumer_group redaction_against_readers \
	lifecycle_cache parked_replay_race
ISOLATION_OPTS = --inputdir=test --outputdir=test/results_isolation

PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers

EXTRA_CLEAN = test/results_regress test/results_isolation META.json

# PGXN metadata, with the control file's version.
all: META.json
META.json: META.json.in $(EXTENSION).control
	sed 's/@EXTVERSION@/$(EXTVERSION)/g' $< >$@

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
