#!/bin/sh
# Builds the local runtime's helper that starts a step as its user in one exec
# (activities/runtime/local/as-user.c) beside users.js; run by `npm run build` after tsc.
# Without a C compiler (e.g. the container image, whose worker runs pods) it says so and the
# local runtime starts steps through unshare, sh, mount and setpriv instead, as before.
set -eu
cd "$(dirname "$0")/.."
src=activities/runtime/local/as-user.c
out=dist/activities/runtime/local/as-user
if ! command -v cc >/dev/null 2>&1; then
  rm -f "$out"
  echo "no C compiler (cc): $out not built; local steps start through unshare, sh, mount and setpriv (install gcc and libc6-dev, then npm run build)" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
cc -O2 -Wall -Wextra -Werror -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
