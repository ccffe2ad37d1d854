#!/usr/bin/env python3
"""Overhead benchmark: plain Python vs our profiler vs Debian's Scalene 1.5.16.

For each program in bench/programs/ it runs, N times, paired and
interleaved (the order of the variants rotates every repetition, so that a
drift of the machine's speed hits all of them alike):
  plain    PYTHON prog.py
  ours     PYTHON -m scalene run --cpu-only -o TMP/ours.json prog.py
  scalene  PYTHON -m scalene --cpu-only --json --outfile TMP/scalene.json prog.py
           (Scalene 1.5.16's syntax, imported from /usr/lib/python3/dist-packages
            through a temporary directory holding only a `scalene` symlink to it,
            with no LD_LIBRARY_PATH), when python3-scalene is installed.
and reports, per program, the ratio of the median profiled wall time to the
median plain wall time, and the geometric mean of the ratios.  The same
ratios of CPU time (user + system of the child) are printed alongside: on a
busy machine they are steadier than wall time.  The targets are judged on
wall time.

Targets for ours: geomean <= 1.03, no program above 1.08, below Scalene on
every program.

`make bench` runs it with PYTHONPATH and LD_LIBRARY_PATH pointing into the
build tree; by hand, pass --build DIR (a configured and built build tree).
Exit status: 0, or 1 when a run failed, or 3 with --check when a target
was missed.
"""
import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = ["pure_loop.py", "calls.py", "numpy_prog.py", "threads.py", "io_prog.py"]
DEBIAN_SCALENE = Path("/usr/lib/python3/dist-packages/scalene")
TARGET_GEOMEAN = 1.03
TARGET_MAX = 1.08


def geomean(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def timed(cmd, env, cwd, timeout):
    """Runs cmd; returns (wall seconds, CPU seconds, error text or None).
    CPU is the child's user + system time (runs are sequential, so the
    RUSAGE_CHILDREN delta is this child's)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, f"timed out after {timeout} s: {' '.join(cmd)}"
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        return None, None, f"exit {proc.returncode}: {' '.join(cmd)}\n{proc.stderr[-2000:]}"
    return wall, cpu, None


def make_variants(args, tmp):
    """{name: (command prefix builder, env)}."""
    base = dict(os.environ)
    base.setdefault("OPENBLAS_NUM_THREADS", "1")
    ours_env = dict(base)
    if args.build:
        build = Path(args.build).resolve()
        ours_env["PYTHONPATH"] = str(build / "pybuild")
        ours_env["LD_LIBRARY_PATH"] = str(build / ".libs")
    plain_env = dict(base)
    plain_env.pop("PYTHONPATH", None)
    plain_env.pop("LD_LIBRARY_PATH", None)
    py = args.python
    probe = subprocess.run([py, "-c", "import scalene, os; print(os.path.realpath(scalene.__file__))"],
                           env=ours_env, cwd=tmp, capture_output=True, text=True)
    where = probe.stdout.strip()
    if probe.returncode != 0 or where.startswith(str(DEBIAN_SCALENE)):
        raise SystemExit(f"error: `import scalene` does not find our package (got {where!r} "
                         f"{probe.stderr.strip()}); run through `make bench` or pass --build DIR")
    ours_out = str(tmp / "ours.json")
    variants = {
        "plain": (lambda prog: [py, str(prog)], plain_env),
        "ours": (lambda prog: [py, "-m", "scalene", "run", "--cpu-only", "-o", ours_out,
                               str(prog)], ours_env),
    }
    if not args.no_scalene and (DEBIAN_SCALENE / "__init__.py").exists():
        shim = tmp / "debian-scalene"
        shim.mkdir()
        (shim / "scalene").symlink_to(DEBIAN_SCALENE)
        sc_env = dict(plain_env)
        sc_env["PYTHONPATH"] = str(shim)
        probe = subprocess.run([py, "-c", "import scalene, os; print(os.path.realpath(scalene.__file__))"],
                               env=sc_env, cwd=tmp, capture_output=True, text=True)
        where = probe.stdout.strip()
        if probe.returncode != 0 or not where.startswith(str(DEBIAN_SCALENE)):
            print(f"warning: Debian's scalene does not import from {DEBIAN_SCALENE} "
                  f"(got {where!r} {probe.stderr.strip()}); not comparing", file=sys.stderr)
        else:
            sc_out = str(tmp / "scalene.json")
            variants["scalene"] = (lambda prog: [py, "-m", "scalene", "--cpu-only", "--json",
                                                 "--outfile", sc_out, str(prog)], sc_env)
    return variants


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--repetitions", type=int, default=5, help="runs of each variant (default 5)")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter (default /usr/bin/python3)")
    ap.add_argument("--build", help="build tree whose pybuild/ and .libs/ to use for ours")
    ap.add_argument("--programs", nargs="+", default=PROGRAMS, metavar="PROG",
                    help="subset of bench/programs/*.py")
    ap.add_argument("--no-scalene", action="store_true", help="do not run Debian's Scalene")
    ap.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    ap.add_argument("--timeout", type=float, default=300.0, help="per run, seconds")
    ap.add_argument("--check", action="store_true", help="exit 3 when a target is missed")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="scalene-bench-"))
    failures = []
    try:
        variants = make_variants(args, tmp)
        names = list(variants)
        times = {prog: {v: [] for v in names} for prog in args.programs}
        cpus = {prog: {v: [] for v in names} for prog in args.programs}
        load0 = os.getloadavg()[0]
        for rep in range(args.repetitions):
            for prog in args.programs:
                path = HERE / "programs" / prog
                k = rep % len(names)
                for v in names[k:] + names[:k]:
                    build, env = variants[v]
                    wall, cpu, err = timed(build(path), env, tmp, args.timeout)
                    if err:
                        failures.append(f"{prog} [{v}] {err}")
                        print(f"FAILED {prog} [{v}]: {err}", file=sys.stderr)
                    else:
                        times[prog][v].append(wall)
                        cpus[prog][v].append(cpu)
            print(f"repetition {rep + 1}/{args.repetitions} done", file=sys.stderr)
        load1 = os.getloadavg()[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for prog in args.programs:
        med = {v: statistics.median(t) if t else None for v, t in times[prog].items()}
        cmed = {v: statistics.median(t) if t else None for v, t in cpus[prog].items()}
        plain = med["plain"]
        row = {"program": prog, "plain_sec": plain, "plain_cpu_sec": cmed["plain"],
               "runs": {v: times[prog][v] for v in names},
               "cpu_runs": {v: cpus[prog][v] for v in names}}
        for v in names[1:]:
            row[f"{v}_ratio"] = med[v] / plain if med[v] and plain else None
            row[f"{v}_cpu_ratio"] = cmed[v] / cmed["plain"] if cmed[v] and cmed["plain"] else None
        rows.append(row)

    have_sc = "scalene" in names

    def fmt(x, spec):
        return format(x, spec) if x is not None else "-"

    ncpu = os.cpu_count() or 1
    print(f"load average {load0:.2f} at the start, {load1:.2f} at the end, {ncpu} CPUs"
          + ("  -- WARNING: a busy machine; wall-time ratios are noisy, see the CPU-time column"
             if max(load0, load1) > 0.5 * ncpu else ""))
    head = (f"{'program':<14} | {'plain s':>8} | {'ours ratio':>10} | {'scalene 1.5.16 ratio':>20}"
            f" || {'ours cpu ratio':>14} | {'scalene cpu ratio':>17}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['program']:<14} | {fmt(r['plain_sec'], '8.3f')} | {fmt(r['ours_ratio'], '10.3f')} | "
              f"{fmt(r.get('scalene_ratio'), '20.3f')} || {fmt(r['ours_cpu_ratio'], '14.3f')} | "
              f"{fmt(r.get('scalene_cpu_ratio'), '17.3f')}")
    g_ours = geomean(r["ours_ratio"] for r in rows)
    g_sc = geomean(r.get("scalene_ratio") for r in rows) if have_sc else None
    print("-" * len(head))
    gc_ours = geomean(r["ours_cpu_ratio"] for r in rows)
    gc_sc = geomean(r.get("scalene_cpu_ratio") for r in rows) if have_sc else None
    print(f"{'geomean':<14} | {'':>8} | {fmt(g_ours, '10.3f')} | {fmt(g_sc, '20.3f')}"
          f" || {fmt(gc_ours, '14.3f')} | {fmt(gc_sc, '17.3f')}")

    ours = [r["ours_ratio"] for r in rows]
    complete = all(x is not None for x in ours)
    targets = {
        "geomean_le_1.03": complete and g_ours is not None and g_ours <= TARGET_GEOMEAN,
        "none_above_1.08": complete and all(x <= TARGET_MAX for x in ours),
    }
    if have_sc:
        targets["below_scalene_each"] = complete and all(
            r.get("scalene_ratio") is not None and r["ours_ratio"] < r["scalene_ratio"] for r in rows)
    else:
        targets["below_scalene_each"] = None
    print()
    print(f"target geomean <= {TARGET_GEOMEAN}: {'yes' if targets['geomean_le_1.03'] else 'NO'}"
          f" ({fmt(g_ours, '.3f')})")
    worst = max((x for x in ours if x is not None), default=None)
    print(f"target none > {TARGET_MAX}: {'yes' if targets['none_above_1.08'] else 'NO'}"
          f" (worst {fmt(worst, '.3f')})")
    if have_sc:
        print(f"target below Scalene 1.5.16 on each: {'yes' if targets['below_scalene_each'] else 'NO'}")
    else:
        print("target below Scalene 1.5.16 on each: not measured (python3-scalene absent or --no-scalene)")
    if failures:
        print(f"\n{len(failures)} run(s) failed; see above", file=sys.stderr)

    if args.json:
        doc = {"repetitions": args.repetitions, "python": args.python, "rows": rows,
               "geomean": {"ours": g_ours, "scalene": g_sc},
               "cpu_geomean": {"ours": gc_ours, "scalene": gc_sc},
               "loadavg": [load0, load1], "targets": targets,
               "failures": failures}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    if failures:
        return 1
    if args.check and not all(v for v in targets.values() if v is not None):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
