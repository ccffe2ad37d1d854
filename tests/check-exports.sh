#!/bin/sh
# Checks the dynamic symbols of libscaleneprof.so (jansson's check-exports):
# every exported symbol is scalene_*, and the set equals the documented one
# in abi/scaleneprof.symbols (one name per line, sorted).  Run by `make
# check` with top_builddir, top_srcdir and NM in the environment.
# Exit 77 (skipped) only when shared libraries are disabled.
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
NM=${NM:-nm}
so=$top_builddir/.libs/libscaleneprof.so
baseline=$top_srcdir/abi/scaleneprof.symbols

if [ ! -f "$so" ]; then
  if [ -x "$top_builddir/libtool" ] &&
     "$top_builddir/libtool" --config | grep -q '^build_libtool_libs=no'; then
    echo "check-exports: shared libraries are disabled; skipped"
    exit 77
  fi
  echo "check-exports: $so not found (is the library built?)" >&2
  exit 1
fi
if [ ! -f "$baseline" ]; then
  echo "check-exports: $baseline not found" >&2
  exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# NM may be "nm -B" (what libtool detects); take the last field of each
# line and drop a symbol version.  Weak undefined symbols are not defined.
if ! $NM -D --defined-only "$so" >"$tmp/nm.out"; then
  echo "check-exports: $NM -D failed on $so" >&2
  exit 1
fi
awk 'NF >= 2 { s = $NF; sub(/@.*/, "", s); print s }' "$tmp/nm.out" | LC_ALL=C sort -u >"$tmp/actual"
if [ ! -s "$tmp/actual" ]; then
  echo "check-exports: no dynamic symbols found in $so" >&2
  exit 1
fi

status=0
if grep -v '^scalene_' "$tmp/actual" >"$tmp/foreign"; then
  echo "check-exports: symbols exported without the scalene_ prefix:" >&2
  sed 's/^/  /' "$tmp/foreign" >&2
  status=1
fi
LC_ALL=C sort -u "$baseline" >"$tmp/expected"
if ! diff -u "$tmp/expected" "$tmp/actual" >"$tmp/diff"; then
  echo "check-exports: exported symbols differ from $baseline (- documented, + exported):" >&2
  cat "$tmp/diff" >&2
  status=1
fi
[ $status -eq 0 ] && echo "check-exports: $(wc -l <"$tmp/actual") symbols, all documented"
exit $status
