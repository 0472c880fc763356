#!/bin/sh
# A tiny test suite the example task runs.
. ./lib.sh
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: got $2, want $3"; exit 1; fi; }
check "greet world" "$(greet world)" "hello, world"
check "suite is $SUITE" "$SUITE" "unit"
