#!/bin/sh
# Usage: tests/run-c-example.sh PREFIX
#
# Builds examples/c/hotspots.c against the library installed under PREFIX
# exactly as a consumer would (pkg-config, the command of
# examples/c/Makefile.example), runs it, and checks its report: the three
# functions heavy, medium and light, which burn 3, 2 and 1 units (300 ms
# each) of CPU time, must come out in that order with shares of the three
# within TOL points of 50, 33.3 and 16.7 %.
#
# The tolerance.  A sample weighs exactly the CPU time since the previous
# one, so a function's sampled time differs from its true time only at its
# two ends: the sample straddling the call that starts it charges up to one
# gap g to it or its neighbour, and the same at its end.  g is the 5 ms
# interval rounded up to the kernel's timer check (4 ms at HZ=250), up to
# ~20 ms on a heavily loaded host.  Each function's time thus moves by at
# most 2g = 40 ms, and the total of the three by at most 40 ms, out of
# 1800 ms: at most (40 + 0.5 * 40) / 1800 = 3.3 points for heavy's share,
# 2.9 for medium's and 2.6 for light's in the worst case, and a fraction of
# a point with typical gaps (~5 ms).  TOL = 4 points covers the worst case.
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 PREFIX" >&2
  exit 2
fi
prefix=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/scalene-c-example.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

TOL=${TOL:-4}

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
if ! pkg-config --exists scaleneprof; then
  echo "FAIL: pkg-config finds no scaleneprof under $prefix/lib/pkgconfig" >&2
  exit 1
fi

cp "$top/examples/c/hotspots.c" "$top/examples/c/Makefile.example" "$work/"
cd "$work"
make -s -f Makefile.example hotspots
LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ./hotspots > out.txt
[ -s hotspots.json ] || { echo "FAIL: hotspots.json was not written" >&2; exit 1; }

# The report: the lines after "== hotspots ==".
sed -n '/^== hotspots ==/,$p' out.txt > shares.txt
cat shares.txt
awk -v tol="$TOL" '
  NR == 1 { next }
  { v = $2; sub(/%$/, "", v); share[$1] = v + 0; order[++n] = $1 }
  END {
    want["heavy"] = 50.0; want["medium"] = 100.0 / 3; want["light"] = 100.0 / 6
    if (n != 3 || order[1] != "heavy" || order[2] != "medium" || order[3] != "light") {
      print "FAIL: expected the lines heavy, medium, light"; exit 1
    }
    sum = share["heavy"] + share["medium"] + share["light"]
    if (sum <= 0) { print "FAIL: no time was charged to the three functions"; exit 1 }
    if (!(share["heavy"] > share["medium"] && share["medium"] > share["light"])) {
      print "FAIL: the shares are not in the order heavy > medium > light"; exit 1
    }
    bad = 0
    for (f in want) {
      s = 100.0 * share[f] / sum
      d = s - want[f]; if (d < 0) d = -d
      printf "%s: %.1f %% of the three (want %.1f +- %s)\n", f, s, want[f], tol
      if (d > tol) bad = 1
    }
    if (bad) { print "FAIL: a share is outside the tolerance"; exit 1 }
  }' shares.txt
grep -q '"files"' hotspots.json || { echo "FAIL: hotspots.json has no files" >&2; exit 1; }
echo "PASS: hotspots reports heavy:medium:light as 3:2:1"
