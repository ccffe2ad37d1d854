#!/bin/sh
# Runs every test of libscaleneprof: the README's test command, and what CI runs.
#
#   1. build in build/check and `make check` (C tests with cmocka, the exported
#      symbol check, the Python tests with pytest against Debian's python3);
#   2. install into a staging prefix and build the C example against it with
#      pkg-config, as a consumer would;
#   3. the C tests again under AddressSanitizer + UndefinedBehaviorSanitizer;
#   4. the Python tests on every other supported interpreter that is present
#      (pyenv's 3.12 and 3.13 here);
#   5. make distcheck.
# Stops at the first failing stage; prints "N passed, N failed" at the end.
set -eu
top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
. tests/lib.sh
scalene_install_deps debian-packages.txt

jobs=$(nproc 2>/dev/null || echo 2)
passed=0
skipped=0
stage() {
  name=$1; shift
  echo "=== $name"
  start=$(date +%s)
  rc=0
  "$@" || rc=$?
  if [ $rc = 0 ]; then
    passed=$((passed + 1))
    echo "=== $name: ok ($(( $(date +%s) - start ))s)"
  elif [ $rc = 77 ]; then
    skipped=$((skipped + 1))
    echo "=== $name: SKIPPED (its prerequisites are absent on this machine)"
  else
    echo "=== $name: FAILED"
    echo "$passed passed, 1 failed"
    exit 1
  fi
}

autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }

check_build() {
  rm -rf build/check && mkdir -p build/check && cd build/check &&
  "$top/configure" -q PYTHON=/usr/bin/python3 --prefix="$top/build/stage" &&
  make -j"$jobs" >/dev/null &&
  make -j"$jobs" check; rc=$?
  if [ $rc != 0 ]; then
    for f in tests/c/*.log tests/*.log; do [ -f "$f" ] && cat "$f"; done
  fi
  cd "$top"; return $rc
}
consumer() {
  make -C build/check install >/dev/null && sh tests/run-c-example.sh "$top/build/stage"
}

stage "build and make check" check_build
stage "C consumer via pkg-config" consumer
stage "C tests under ASan+UBSan" sh tests/run-sanitizers.sh "$top/build/sanitize"
stage "Python version matrix" sh tests/run-matrix.sh "$top/build/matrix"
stage "make distcheck" make -C build/check distcheck DISTCHECK_CONFIGURE_FLAGS=PYTHON=/usr/bin/python3
echo "$passed passed, 0 failed, $skipped skipped"
