#!/usr/bin/env python3
"""Overhead benchmark: plain Python vs our profiler vs Debian's Scalene 1.5.16.

Two modes (--mode cpu|memory|all, default all: both tables):

  cpu     ours     PYTHON -m scalene run --cpu-only -o TMP/ours.json prog.py
          scalene  PYTHON -m scalene --cpu-only --json --outfile TMP/sc.json prog.py
  memory  ours     PYTHON -m scalene run --memory -o TMP/ours.json prog.py
                   (CPU + memory + copy profiling; `--memory` keeps memory
                   on whether or not it is already the default of `run`)
          scalene  PYTHON -m scalene --cpu --memory --json --outfile TMP/sc.json prog.py
                   (Scalene 1.5.16 re-executes the program under LD_PRELOAD
                   with its libscalene; the re-executed child is included
                   in the measured time, CPU and peak RSS)

each against  plain  PYTHON prog.py  (shared by both modes).

Every run is pinned to one CPU (--cpu N; default the last CPU the script
may use; --cpu none: not pinned), the profiler's own threads included, so
that their CPU time is paid inside the measured wall time.  Pinning is
also what makes ratios of runs comparable on a virtual machine: on this
project's 2-vCPU machines one vCPU ran the same Python program 55 %
slower than the other for a while (1.77 s against 1.15 s, measured with
taskset), so an unpinned plain run and an unpinned profiled run that
landed on different vCPUs differed by that much.

Debian's Scalene is imported from /usr/lib/python3/dist-packages through a
temporary directory holding only a `scalene` symlink to it, with no
LD_LIBRARY_PATH, when python3-scalene is installed.

For each program in bench/programs/ every variant runs N times, paired and
interleaved (the order of the variants rotates every repetition, so that a
drift of the machine's speed hits all of them alike).  Each run goes
through a small launcher process that forks, execs and reaps it with
os.wait4, which gives the child's own wall time, CPU time and peak RSS
(ru_maxrss, including its waited-for descendants, e.g. Scalene's
re-executed child; see LAUNCHER for why not straight from this script).
Per program and mode the script reports the ratio of profiled to plain
wall time, the geometric mean of the ratios, the same ratios of CPU time
(user + system) and the peak RSS added (median profiled ru_maxrss minus
median plain ru_maxrss, MiB).  The ratio is, by default (--statistic
paired), the median over the repetitions of each repetition's own ratio:
the runs of one program in one repetition follow each other within
seconds, while the speed of a shared virtual machine drifts over minutes
(runs of the same plain program took 1.9 s for three repetitions, then
1.1 s), and a ratio of medians mixes runs from both.  --statistic median
is the median profiled time over the median plain time; --statistic min
the fastest over the fastest (noise on a shared machine only adds time).
RSS is always the median.  The targets are judged on wall time and on the
RSS added:

  cpu     ours: geomean <= 1.03, no program above 1.08, below Scalene on
          every program.
  memory  ours: geomean <= 1.10, no program above 1.25, peak RSS added
          <= 15 MiB on every program, below Scalene on every program.

In memory mode the script also says whether ours' profiles recorded copy
volume (`n_copy_mb_s` > 0 on some line), i.e. whether the copy sampler was
on in the build under test.

The programs take about a second each, so the fixed cost of a profiled run
(imports, start, final write, exit: ~25 ms) is 2-3 % of each ratio.
--repeat K makes every program do its work K times within one run
(BENCH_REPEAT in its environment), for the overhead of a longer run; the
targets are judged on the default, K = 1.

`make bench` runs it with PYTHONPATH and LD_LIBRARY_PATH pointing into the
build tree (options through BENCH_FLAGS, e.g. make bench BENCH_FLAGS='--mode
memory -n 3'); by hand, pass --build DIR (a configured and built build
tree).  Exit status: 0, or 1 when a run failed, or 3 with --check when a
target was missed.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = ["pure_loop.py", "calls.py", "numpy_prog.py", "threads.py", "io_prog.py",
            "alloc_objects.py", "copy_prog.py", "numpy_alloc.py", "deep_library.py"]
DEBIAN_SCALENE = Path("/usr/lib/python3/dist-packages/scalene")
MIB = 1024.0  # ru_maxrss is in KiB on Linux

# mode -> (ours variant, scalene variant, targets)
MODES = {
    "cpu": {"ours": "ours_cpu", "scalene": "scalene_cpu",
            "geomean": 1.03, "max": 1.08, "rss": None},
    "memory": {"ours": "ours_mem", "scalene": "scalene_mem",
               "geomean": 1.10, "max": 1.25, "rss": 15.0},
}


def geomean(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def median(xs):
    return statistics.median(xs) if xs else None


def fastest(xs):
    return min(xs) if xs else None


def paired(xs, plain):
    """The median of the ratios xs[i] / plain[i] over the repetitions in
    which both ran (None: a failed run)."""
    return median([x / p for x, p in zip(xs, plain) if x is not None and p])


# Runs argv[3:] as its child, pinned to CPU argv[2] ("-": not pinned), and
# writes "wall cpu maxrss_kib" to argv[1].
# A process's ru_maxrss starts from the RSS of the process it was forked
# from (exec keeps the high-water mark; vfork/posix_spawn share the parent's
# memory), so a child spawned straight from this script would report at
# least this script's RSS.  This launcher runs as `python3 -S -I`, about
# 5.5 MiB, below any Python program's own peak; it forks, execs, and reaps
# with os.wait4 (the child's own CPU and peak RSS, plus those of its
# waited-for descendants, e.g. Scalene's re-executed child).
LAUNCHER = r"""
import os, sys, time
out, cpu, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
if cpu != "-":
    os.sched_setaffinity(0, {int(cpu)})
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, st, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(out, "w") as f:
    f.write(f"{wall!r} {ru.ru_utime + ru.ru_stime!r} {ru.ru_maxrss}\n")
os._exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st))
"""


def timed(cmd, env, cwd, timeout, errfile, py, cpu):
    """Runs cmd through LAUNCHER, pinned to cpu (None: not pinned); returns
    (wall s, CPU s, peak RSS MiB, error text or None)."""
    result = Path(errfile).with_suffix(".rusage")
    result.unlink(missing_ok=True)
    pin = "-" if cpu is None else str(cpu)
    with open(errfile, "w+") as err:
        proc = subprocess.Popen([py, "-S", "-I", "-c", LAUNCHER, str(result), pin] + cmd, env=env,
                                cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            return None, None, None, f"timed out after {timeout} s: {' '.join(cmd)}"
        if proc.returncode != 0:
            err.seek(0)
            text = err.read()[-2000:]
            return None, None, None, f"exit {proc.returncode}: {' '.join(cmd)}\n{text}"
    try:
        wall, cpu, rss = result.read_text().split()
    except (OSError, ValueError) as e:
        return None, None, None, f"no resource usage from the launcher ({e}): {' '.join(cmd)}"
    return float(wall), float(cpu), int(rss) / MIB, None


def copy_seen(path):
    """True when the profile at path has a line with n_copy_mb_s > 0."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return False
    for entry in (doc.get("files") or {}).values():
        for line in entry.get("lines") or ():
            try:
                if float(line.get("n_copy_mb_s") or 0) > 0:
                    return True
            except (TypeError, ValueError):
                pass
    return False


def make_variants(args, tmp, modes):
    """{name: (command builder, env)}; plain first."""
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
    # Byte-compile our package once, as an install does (Debian's scalene
    # ships its .pyc files): with PYTHONDONTWRITEBYTECODE set, every run
    # would otherwise recompile our modules (~12 ms each run).
    subprocess.run([py, "-m", "compileall", "-q", os.path.dirname(where)], env=ours_env,
                   cwd=tmp, capture_output=True)
    ours_out = str(tmp / "ours.json")
    variants = {"plain": (lambda prog: [py, str(prog)], plain_env)}
    if "cpu" in modes:
        variants["ours_cpu"] = (lambda prog: [py, "-m", "scalene", "run", "--cpu-only",
                                              "-o", ours_out, str(prog)], ours_env)
    if "memory" in modes:
        variants["ours_mem"] = (lambda prog: [py, "-m", "scalene", "run", "--memory",
                                              "-o", ours_out, str(prog)], ours_env)
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
            if "cpu" in modes:
                variants["scalene_cpu"] = (lambda prog: [py, "-m", "scalene", "--cpu-only", "--json",
                                                         "--outfile", sc_out, str(prog)], sc_env)
            if "memory" in modes:
                variants["scalene_mem"] = (lambda prog: [py, "-m", "scalene", "--cpu", "--memory",
                                                         "--json", "--outfile", sc_out, str(prog)],
                                           sc_env)
    return variants, ours_out


def fmt(x, spec):
    if x is not None:
        return format(x, spec)
    width = spec.split(".")[0]
    return format("-", ">" + width) if width.isdigit() else "-"


def report_mode(mode, programs, wratio, wplain, cratio, cplain, rss, have_sc, stat):
    """Prints one mode's table and targets; returns (JSON section, targets)."""
    spec = MODES[mode]
    o, s = spec["ours"], spec["scalene"]
    rows = []
    for prog in programs:
        rplain = rss[prog]["plain"]
        row = {"program": prog, "plain_sec": wplain[prog], "plain_cpu_sec": cplain[prog],
               "plain_rss_mib": rplain}
        for key, v in (("ours", o), ("scalene", s)):
            r = rss[prog].get(v)
            row[f"{key}_ratio"] = wratio[prog].get(v)
            row[f"{key}_cpu_ratio"] = cratio[prog].get(v)
            row[f"{key}_rss_added_mib"] = r - rplain if r is not None and rplain is not None else None
        rows.append(row)

    title = {"cpu": "CPU only (ours: run --cpu-only; Scalene 1.5.16: --cpu-only)",
             "memory": "CPU + memory + copy (ours: run --memory; Scalene 1.5.16: --cpu --memory)"}[mode]
    print()
    print(f"== {mode} mode: {title}")
    head = (f"{'program':<17} | {'plain s':>7} | {'ours':>6} | {'scalene':>7}"
            f" || {'ours cpu':>8} | {'sc cpu':>7} || {'plain MiB':>9} | {'ours +MiB':>9} | {'sc +MiB':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['program']:<17} | {fmt(r['plain_sec'], '7.3f')} | {fmt(r['ours_ratio'], '6.3f')} | "
              f"{fmt(r['scalene_ratio'], '7.3f')} || {fmt(r['ours_cpu_ratio'], '8.3f')} | "
              f"{fmt(r['scalene_cpu_ratio'], '7.3f')} || {fmt(r['plain_rss_mib'], '9.1f')} | "
              f"{fmt(r['ours_rss_added_mib'], '9.1f')} | {fmt(r['scalene_rss_added_mib'], '8.1f')}")
    print("-" * len(head))
    g = {k: geomean(r[k] for r in rows) for k in ("ours_ratio", "scalene_ratio",
                                                    "ours_cpu_ratio", "scalene_cpu_ratio")}
    rmax = {k: max((r[k] for r in rows if r[k] is not None), default=None)
            for k in ("ours_rss_added_mib", "scalene_rss_added_mib")}
    print(f"{'geomean / max':<17} | {'':>7} | {fmt(g['ours_ratio'], '6.3f')} | "
          f"{fmt(g['scalene_ratio'], '7.3f')} || {fmt(g['ours_cpu_ratio'], '8.3f')} | "
          f"{fmt(g['scalene_cpu_ratio'], '7.3f')} || {'':>9} | "
          f"{fmt(rmax['ours_rss_added_mib'], '9.1f')} | {fmt(rmax['scalene_rss_added_mib'], '8.1f')}")
    how = {"paired": "median over the repetitions of each one's wall time over plain's",
           "median": "median wall time over plain's median",
           "min": "fastest wall time over plain's fastest"}[stat]
    print(f"(ours, scalene: {how}; cpu: the same for user+system time; plain s: median;"
          " +MiB: peak RSS added)")

    ours = [r["ours_ratio"] for r in rows]
    complete = bool(rows) and all(x is not None for x in ours)
    worst = max((x for x in ours if x is not None), default=None)
    worst_prog = next((r["program"] for r in rows if r["ours_ratio"] == worst), "-")
    k_geo = f"geomean_le_{spec['geomean']}"
    k_max = f"none_above_{spec['max']}"
    targets = {
        k_geo: complete and g["ours_ratio"] is not None and g["ours_ratio"] <= spec["geomean"],
        k_max: complete and all(x <= spec["max"] for x in ours),
    }
    print(f"target geomean <= {spec['geomean']}: {'yes' if targets[k_geo] else 'NO'}"
          f" ({fmt(g['ours_ratio'], '.3f')})")
    print(f"target none > {spec['max']}: {'yes' if targets[k_max] else 'NO'}"
          f" (worst {fmt(worst, '.3f')}, {worst_prog})")
    if spec["rss"] is not None:
        added = [r["ours_rss_added_mib"] for r in rows]
        ok = bool(rows) and all(x is not None and x <= spec["rss"] for x in added)
        targets[f"rss_added_le_{spec['rss']:g}_mib"] = ok
        print(f"target peak RSS added <= {spec['rss']:g} MiB: {'yes' if ok else 'NO'}"
              f" (max {fmt(rmax['ours_rss_added_mib'], '.1f')} MiB)")
    if have_sc:
        targets["below_scalene_each"] = complete and all(
            r["scalene_ratio"] is not None and r["ours_ratio"] < r["scalene_ratio"] for r in rows)
        print(f"target below Scalene 1.5.16 on each: {'yes' if targets['below_scalene_each'] else 'NO'}")
    else:
        targets["below_scalene_each"] = None
        print("target below Scalene 1.5.16 on each: not measured (python3-scalene absent or --no-scalene)")
    section = {"rows": rows, "geomean": {"ours": g["ours_ratio"], "scalene": g["scalene_ratio"]},
               "cpu_geomean": {"ours": g["ours_cpu_ratio"], "scalene": g["scalene_cpu_ratio"]},
               "max_rss_added_mib": {"ours": rmax["ours_rss_added_mib"],
                                     "scalene": rmax["scalene_rss_added_mib"]},
               "targets": targets}
    return section, targets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--repetitions", type=int, default=5, help="runs of each variant (default 5)")
    ap.add_argument("--mode", choices=("cpu", "memory", "all"), default="all",
                    help="cpu: CPU-only profiling; memory: CPU + memory + copy; all: both (default)")
    ap.add_argument("--statistic", choices=("paired", "median", "min"), default="paired",
                    help="time of a variant: median of its runs (default) or the fastest run")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter (default /usr/bin/python3)")
    ap.add_argument("--build", help="build tree whose pybuild/ and .libs/ to use for ours")
    ap.add_argument("--programs", nargs="+", default=PROGRAMS, metavar="PROG",
                    help="subset of bench/programs/*.py")
    ap.add_argument("--no-scalene", action="store_true", help="do not run Debian's Scalene")
    ap.add_argument("--json", metavar="FILE", help="also write the tables as JSON")
    ap.add_argument("--timeout", type=float, default=300.0, help="per run, seconds")
    ap.add_argument("--check", action="store_true", help="exit 3 when a target is missed")
    ap.add_argument("--repeat", type=int, default=1, metavar="K",
                    help="each program does its work K times in one run (BENCH_REPEAT; default "
                         "1): the fixed cost of a run then weighs K times less in its ratio")
    ap.add_argument("--cpu", default=None, metavar="N|none",
                    help="pin every run to CPU N (default: the last CPU this script may use); "
                         "none: do not pin")
    args = ap.parse_args(argv)
    if args.repetitions < 1:
        ap.error("--repetitions must be at least 1")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    os.environ["BENCH_REPEAT"] = str(args.repeat)  # every variant's environment copies it
    allowed = sorted(os.sched_getaffinity(0))
    if args.cpu is None:
        args.cpu = allowed[-1]
    elif args.cpu == "none":
        args.cpu = None
    else:
        try:
            args.cpu = int(args.cpu)
        except ValueError:
            ap.error(f"--cpu: not a CPU number or 'none': {args.cpu!r}")
        if args.cpu not in allowed:
            ap.error(f"--cpu: CPU {args.cpu} is not one this process may use ({allowed})")
    for prog in args.programs:
        if not (HERE / "programs" / prog).is_file():
            ap.error(f"no such program: bench/programs/{prog}")
    modes = ["cpu", "memory"] if args.mode == "all" else [args.mode]

    tmp = Path(tempfile.mkdtemp(prefix="scalene-bench-"))
    failures = []
    copy_progs = set()
    try:
        variants, ours_out = make_variants(args, tmp, modes)
        names = list(variants)
        times = {prog: {v: [] for v in names} for prog in args.programs}
        cpus = {prog: {v: [] for v in names} for prog in args.programs}
        rsss = {prog: {v: [] for v in names} for prog in args.programs}
        load0 = os.getloadavg()[0]
        for rep in range(args.repetitions):
            for prog in args.programs:
                path = HERE / "programs" / prog
                k = rep % len(names)
                for v in names[k:] + names[:k]:
                    build, env = variants[v]
                    wall, cpu, rss, err = timed(build(path), env, tmp, args.timeout, tmp / "stderr",
                                                args.python, args.cpu)
                    if err:
                        failures.append(f"{prog} [{v}] {err}")
                        print(f"FAILED {prog} [{v}]: {err}", file=sys.stderr)
                    # None for a failed run: index r is repetition r
                    times[prog][v].append(wall)
                    cpus[prog][v].append(cpu)
                    rsss[prog][v].append(rss)
                    if v == "ours_mem" and copy_seen(ours_out):
                        copy_progs.add(prog)
            print(f"repetition {rep + 1}/{args.repetitions} done", file=sys.stderr)
        load1 = os.getloadavg()[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def ok(xs):
        return [x for x in xs if x is not None]

    def ratios(runs):
        """{prog: {variant: ratio to plain}}, and {prog: plain} (median)."""
        out = {}
        for prog, d in runs.items():
            base = d["plain"]
            if args.statistic == "paired":
                out[prog] = {v: paired(t, base) for v, t in d.items()}
            else:
                pick = fastest if args.statistic == "min" else median
                b = pick(ok(base))
                out[prog] = {v: (pick(ok(t)) / b if ok(t) and b else None) for v, t in d.items()}
        return out, {prog: median(ok(d["plain"])) for prog, d in runs.items()}

    wratio, wplain = ratios(times)
    cratio, cplain = ratios(cpus)
    rmed = {p: {v: median(ok(t)) for v, t in d.items()} for p, d in rsss.items()}
    ncpu = os.cpu_count() or 1
    if args.repeat > 1:
        print(f"every program does its work {args.repeat} times in each run (--repeat)")
    print(f"{args.repetitions} repetitions; load average {load0:.2f} at the start, "
          f"{load1:.2f} at the end, {ncpu} CPUs; "
          + ("runs not pinned" if args.cpu is None else f"every run pinned to CPU {args.cpu}")
          + ("  -- WARNING: a busy machine; wall-time ratios are noisy, see the CPU-time columns"
             if max(load0, load1) > 0.5 * ncpu else ""))
    doc = {"repetitions": args.repetitions, "statistic": args.statistic, "python": args.python,
           "cpu": args.cpu,
           "loadavg": [load0, load1],
           "runs": {p: {v: {"wall": times[p][v], "cpu": cpus[p][v], "maxrss_mib": rsss[p][v]}
                        for v in names} for p in args.programs},
           "modes": {}, "failures": failures}
    all_targets = {}
    for mode in modes:
        have_sc = MODES[mode]["scalene"] in names
        section, targets = report_mode(mode, args.programs, wratio, wplain, cratio, cplain, rmed,
                                       have_sc, args.statistic)
        doc["modes"][mode] = section
        all_targets.update({f"{mode}:{k}": v for k, v in targets.items()})
        if mode == "memory":
            seen = sorted(copy_progs)
            doc["modes"][mode]["copy_seen_in"] = seen
            print("copy volume (n_copy_mb_s > 0) in ours' profiles: "
                  + (", ".join(seen) if seen else "none (copy sampler off in this build?)"))
    if failures:
        print(f"\n{len(failures)} run(s) failed; see above", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    if failures:
        return 1
    if args.check and not all(v for v in all_targets.values() if v is not None):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
