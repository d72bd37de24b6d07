#!/usr/bin/env bash
# scripts/demo.sh: set everything up and run the demo.
#
# Builds and installs the extension, starts a throwaway cluster and tells the
# story of Alice and Bob in SQL (demo/demo.sql) against it.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
es_setup

es_log "running demo/demo.sql"
echo
psql -X -q -v ON_ERROR_STOP=0 -d postgres -f "$ES_ROOT/demo/demo.sql"
