#!/bin/sh
# Builds the library and its C tests with AddressSanitizer and
# UndefinedBehaviorSanitizer in the directory $1 and runs them.  Any report
# fails the run (-fno-sanitize-recover, halt_on_error).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build/sanitize}
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
"$top/configure" -q --disable-python CFLAGS="-g -O1 $san" LDFLAGS="$san"
make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if ! make check; then
  cat tests/c/*.log 2>/dev/null
  exit 1
fi
