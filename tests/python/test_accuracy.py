"""End-to-end accuracy tests of the CPU profiler.

Each test runs the real CLI,
    python3 -m scalene run --cpu-only [options] -o OUT.json PROGRAM --- ARGS
on a program in tests/python/programs/ whose costs are known: the program
measures its own ground truth (thread CPU clocks, wall time, or the CPU time
that _scalenetest.spin burned) and writes it to a JSON file; the test
compares the profile with it.

Tolerances are derived in docs/sampling-math.md; the comment next to each
assertion repeats the numbers.  The two models used there:
  - a *segment* (a stretch of time spent on one line or function) is charged
    (end - d_end) - (start - d_start), where d is the time since the last
    sample before that boundary, uniform on [0, w) for sampling interval w:
    error < w per boundary, variance w^2/6 per segment (two boundaries);
    R independent segments: sigma = w * sqrt(R / 6).
  - when sites alternate much faster than w, the attribution is random
    sampling: n = T / w samples, share p, sigma = sqrt(p (1 - p) / n).
w is 10 ms by default; the kernel only checks CPU timers at its 250 Hz tick,
so one sample's weight can reach 12 ms: W = 0.012 s is used as the bound.

The programs import _scalenetest, which `make check-python` copies into
$builddir/pybuild/ (on PYTHONPATH).  Every test prints its measured values
(visible with pytest -s) and puts both operands in its assertion messages.
"""
import ast
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
PYTHON = sys.executable
TIMEOUT = 180
W = 0.012  # bound on one sample's weight at the default 10 ms interval (s)
# The tests of CPU attribution compare with thread CPU clocks, so they run
# with --use-virtual-time: by default the main thread's off-CPU time is
# sampled too (Scalene's meaning of "system"), and on a loaded machine that
# includes the time it sits preempted, which is not in a CPU-clock truth.
# test_numpy_lines_wall and the off-CPU tests cover the default mode.
VIRTUAL = ("--use-virtual-time",)
KINDS = {"python": "n_cpu_sec_python", "native": "n_cpu_sec_c", "sys": "n_sys_sec"}
PERCENTS = {"python": "n_cpu_percent_python", "native": "n_cpu_percent_c",
            "sys": "n_sys_percent"}


# ---------------------------------------------------------------- helpers

def markers(prog):
    """{name: lineno} for the `# @name` comments of a program."""
    found = {}
    for no, text in enumerate((PROGRAMS / prog).read_text().splitlines(), start=1):
        m = re.search(r"#\s*@([\w-]+)\s*$", text)
        if m:
            found[m.group(1)] = no
    return found


def function_ranges(prog):
    """{qualified name: (first line, last line)} of a program's functions."""
    tree = ast.parse((PROGRAMS / prog).read_text())
    return {node.name: (node.lineno, node.end_lineno) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


class Profile:
    """The profile of one program, read from the CLI's JSON."""

    def __init__(self, data, prog_path):
        self.data = data
        self.total = float(data.get("total_cpu_sec", 0.0))
        files = data.get("files", {})
        want = os.path.realpath(prog_path)
        self.file = None
        for name, entry in files.items():
            if os.path.realpath(name) == want:
                self.file = entry
        if self.file is None:  # fall back to the base name
            for name, entry in files.items():
                if os.path.basename(name) == os.path.basename(prog_path):
                    self.file = entry
        assert self.file is not None, (
            f"no entry for {prog_path} in the profile's files: {sorted(files)}")
        self.lines = {int(rec["lineno"]): rec for rec in self.file.get("lines", [])}

    def _sec(self, rec, kind):
        if rec is None:
            return 0.0
        if KINDS[kind] in rec:
            return float(rec[KINDS[kind]])
        assert PERCENTS[kind] in rec, f"record has neither {KINDS[kind]} nor {PERCENTS[kind]}: {rec}"
        return float(rec[PERCENTS[kind]]) * self.total / 100.0

    def sec(self, lineno, kind=None):
        """CPU seconds charged to a line (one kind, or all three)."""
        rec = self.lines.get(lineno)
        if kind is None:
            return sum(self._sec(rec, k) for k in KINDS)
        return self._sec(rec, kind)

    def span_sec(self, first, last, kind=None):
        return sum(self.sec(no, kind) for no in range(first, last + 1))

    def samples(self, lineno):
        rec = self.lines.get(lineno)
        return int(rec.get("cpu_samples", 0)) if rec else 0

    def function(self, name):
        for rec in self.file.get("functions", []):
            if rec.get("line") == name or str(rec.get("line", "")).endswith("." + name):
                return rec
        return None

    def function_sec(self, name, kind=None):
        rec = self.function(name)
        assert rec is not None, (
            f"no function entry {name!r}: {[r.get('line') for r in self.file.get('functions', [])]}")
        if kind is None:
            return sum(self._sec(rec, k) for k in KINDS)
        return self._sec(rec, kind)

    def describe(self, linenos):
        rows = []
        for no in linenos:
            rec = self.lines.get(no)
            text = rec.get("line", "").rstrip() if rec else "(no record)"
            rows.append(f"  {no:4d} py={self.sec(no, 'python'):.4f} c={self.sec(no, 'native'):.4f}"
                        f" sys={self.sec(no, 'sys'):.4f} n={self.samples(no)}  {text}")
        return f"total_cpu_sec={self.total:.4f}\n" + "\n".join(rows)


def run_profiled(tmp_path, prog, args=(), options=(), truth=True):
    """Profiles tests/python/programs/PROG; returns (Profile, truth dict or None, stdout)."""
    prog_path = PROGRAMS / prog
    out = tmp_path / f"{prog}.profile.json"
    truth_path = tmp_path / f"{prog}.truth.json"
    prog_args = [str(truth_path)] if truth else []
    prog_args += [str(a) for a in args]
    cmd = [PYTHON, "-m", "scalene", "run", "--cpu-only", *options, "-o", str(out), str(prog_path)]
    if prog_args:
        cmd += ["---", *prog_args]
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    assert out.exists(), f"{' '.join(cmd)} wrote no {out}\n--- stderr\n{proc.stderr[-3000:]}"
    with open(out) as f:
        profile = Profile(json.load(f), prog_path)
    truth_data = None
    if truth:
        with open(truth_path) as f:
            truth_data = json.load(f)
    return profile, truth_data, proc.stdout


@pytest.fixture(scope="module")
def helper_module():
    """_scalenetest must be importable the way the profiled programs import it."""
    proc = subprocess.run([PYTHON, "-c", "import _scalenetest; print(_scalenetest.__file__)"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (
        "the test helper extension _scalenetest is not importable: run these tests through "
        "`make check-python`, which builds it and copies it into $builddir/pybuild/ (on "
        f"PYTHONPATH)\n{proc.stderr[-2000:]}")
    return proc.stdout.strip()


# ---------------------------------------------------------------- tests

def test_split_3_to_1(tmp_path):
    """heavy() does 3x the work of light(), alternating 10 times.

    3x the work is 3x the CPU time only while the machine runs both at one
    speed: on a shared VM one run measured (thread_time) 71.15 % for heavy,
    and the profile said 71.10 %.  A run whose own truth strays more than
    1.5 points from 75 % is measured again (at most 4 runs); the profile is
    held to the nominal 75 % and to that run's truth either way."""
    fr = function_ranges("split31.py")
    for attempt in range(4):
        prof, truth, _ = run_profiled(tmp_path, "split31.py", options=VIRTUAL)
        true_share = 100.0 * truth["cpu"]["heavy"] / (truth["cpu"]["heavy"] + truth["cpu"]["light"])
        if abs(true_share - 75.0) <= 1.5:
            break
        print(f"\nsplit31: the machine gave heavy {true_share:.2f} % of the CPU time; again")
    heavy = prof.span_sec(*fr["heavy"])
    light = prof.span_sec(*fr["light"])
    both = heavy + light
    assert both > 0, prof.describe(range(*fr["heavy"]))
    share = 100.0 * heavy / both
    T = truth["cpu"]["heavy"] + truth["cpu"]["light"]
    print(f"\nsplit31: heavy {heavy:.3f}s light {light:.3f}s -> {share:.2f} % "
          f"(truth {true_share:.2f} %, nominal 75 %)")
    # Segment model: each function has R = 10 segments, so its total has
    # sigma <= W sqrt(R/6) = 0.012 * 1.29 = 0.0155 s, i.e. 0.0155 / T of the
    # combined time; T ~ 2.6 s here -> sigma ~ 0.6 pt, 4 sigma ~ 2.4 pt < 3.
    sigma = 100.0 * W * math.sqrt(truth["rounds"] / 6.0) / T
    assert abs(share - 75.0) <= 3.0, (
        f"heavy's share {share:.2f} % vs 75 % (+-3; truth {true_share:.2f} %, sigma {sigma:.2f})\n"
        + prof.describe(range(fr["heavy"][0], fr["light"][1] + 1)))
    # The same bound against the program's own thread_time measurement.
    assert abs(share - true_share) <= 3.0, (
        f"heavy's share {share:.2f} % vs truth {true_share:.2f} % (+-3, sigma {sigma:.2f})")


def test_native_spin_is_native_on_its_line(tmp_path, helper_module):
    """_scalenetest.spin (GIL released, then held) is native, on its own line."""
    prof, truth, _ = run_profiled(tmp_path, "native.py", options=VIRTUAL)
    mk = markers("native.py")
    rows = prof.describe(range(mk["before"], mk["after"] + 1))
    print("\nnative:\n" + rows + f"\ntruth {truth}")
    for name, key in (("spin-release", "released"), ("spin-hold", "held")):
        total = prof.sec(mk[name])
        native = prof.sec(mk[name], "native")
        spent = truth[key]
        # A single 0.6 s segment: it is charged within one sample weight of
        # the truth at each end (|error| < 2W = 0.024 s, deterministic); 0.05 s
        # adds room for the first sample after a thread's timer is armed.
        assert abs(total - spent) <= 0.05, (
            f"{name}: line {mk[name]} charged {total:.4f} s vs spin's {spent:.4f} s (+-0.05)\n{rows}")
        # Inside spin the PC is in _scalenetest's code: native except the
        # kernel time of its clock reads (< 1 %) and the edge samples (< 2W).
        assert native >= 0.9 * total, (
            f"{name}: native {native:.4f} s of {total:.4f} s on line {mk[name]} (want >= 90 %)\n{rows}")
    # Nothing leaks onto the next line: it costs microseconds, so at most
    # one sample's weight may land there.
    after = prof.sec(mk["after"])
    assert after <= 0.03, f"line after the spins charged {after:.4f} s (want <= 0.03)\n{rows}"
    # And the function entry carries the native time.
    fn_native = prof.function_sec("native_site", "native")
    spent = truth["released"] + truth["held"]
    assert fn_native >= 0.9 * spent - 0.05, (
        f"native_site(): native {fn_native:.4f} s vs spins' {spent:.4f} s (want >= 90 % - 0.05)")


def _numpy_run(tmp_path, options):
    pytest.importorskip("numpy", reason="numpy is not installed (apt install python3-numpy)")
    prof, truth, _ = run_profiled(tmp_path, "numpy_lines.py", options=options)
    mk = markers("numpy_lines.py")
    rows = prof.describe(range(mk["t0"], mk["t3"] + 1))
    names = ("dot", "py", "matmul")
    sec = {n: prof.sec(mk[n]) for n in names}
    total = sum(sec.values())
    assert total > 0, rows
    share = {n: 100.0 * sec[n] / total for n in names}
    truths = {}
    for clock in ("cpu", "wall"):
        t = sum(truth[clock].values())
        truths[clock] = {n: 100.0 * truth[clock][n] / t for n in names}
    print(f"\nnumpy {' '.join(options) or '(default)'}: "
          + ", ".join(f"{n} {share[n]:.2f} % (cpu truth {truths['cpu'][n]:.2f}, "
                      f"wall truth {truths['wall'][n]:.2f})" for n in names) + "\n" + rows)
    return prof, truth, mk, rows, sec, share, truths


def _numpy_common_checks(prof, mk, rows, sec, cpu_only):
    for n in ("dot", "matmul"):
        native = prof.sec(mk[n], "native")
        # OpenBLAS and numpy's C code: all but the edge samples are native.
        # Without --use-virtual-time the line also holds the off-CPU time of
        # the thread (preemption on a loaded host), as system: compare with
        # the line's CPU time then.
        base = sec[n] if cpu_only else prof.sec(mk[n], "native") + prof.sec(mk[n], "python")
        assert native >= 0.9 * base, (
            f"{n}: native {native:.4f} s of {base:.4f} s {'' if cpu_only else 'CPU '}"
            f"(want >= 90 %)\n{rows}")
    # The line after each numpy call costs microseconds: had the call's time
    # landed on the next line it would carry ~0.75 s; 6 segments of ~0 s
    # each get a sample with probability ~0, so 0.05 s (4 W) is ample.
    for n in ("t1", "t3"):
        assert prof.sec(mk[n]) <= 0.05, (
            f"line {mk[n]} after a numpy line charged {prof.sec(mk[n]):.4f} s (want <= 0.05)\n{rows}")
    py_python = prof.sec(mk["py"], "python")
    # The pure-Python line's user-mode time is the interpreter's (its
    # generator and sum() run in the interpreter's text).
    py_user = py_python + prof.sec(mk["py"], "native")
    assert py_python >= 0.8 * py_user, (
        f"pure-Python line: python {py_python:.4f} s of {py_user:.4f} s user time "
        f"(want >= 80 %)\n{rows}")


def test_numpy_lines_cpu(tmp_path):
    """np.dot and a @ b get their time as native on their own lines (CPU truth)."""
    prof, truth, mk, rows, sec, share, truths = _numpy_run(tmp_path, VIRTUAL)
    # Segment model: R = 6 segments per line, sigma <= W sqrt(6/6) = 0.012 s
    # of T ~ 2.6 s -> 0.5 pt; 4 sigma = 2 pt < 3.
    sigma = 100.0 * W * math.sqrt(truth["rounds"] / 6.0) / sum(truth["cpu"].values())
    for n in share:
        assert abs(share[n] - truths["cpu"][n]) <= 3.0, (
            f"{n}: {share[n]:.2f} % vs thread-CPU truth {truths['cpu'][n]:.2f} % "
            f"(+-3, sigma {sigma:.2f})\n{rows}")
    _numpy_common_checks(prof, mk, rows, sec, cpu_only=True)


def test_numpy_lines_wall(tmp_path):
    """The same in the default mode, against wall-time truth."""
    prof, truth, mk, rows, sec, share, truths = _numpy_run(tmp_path, ())
    # By default the main thread's CPU samples (weighted by CPU time) and its
    # off-CPU samples (weighted by time blocked off the CPU) add up to its
    # wall time less the time it sat preempted (which the sampler leaves out,
    # reading the run-queue wait from schedstat), so the shares follow that
    # clock; the program measures its "wall" truth the same way.  Segment model in wall
    # time: R = 6, sigma <= W sqrt(6/6) / T_wall, T_wall >= 2.6 s -> 0.5 pt;
    # 4 sigma = 2 pt < 3.
    sigma = 100.0 * W * math.sqrt(truth["rounds"] / 6.0) / sum(truth["wall"].values())
    for n in share:
        assert abs(share[n] - truths["wall"][n]) <= 3.0, (
            f"{n}: {share[n]:.2f} % vs wall truth {truths['wall'][n]:.2f} % "
            f"(+-3, sigma {sigma:.2f})\n{rows}")
    _numpy_common_checks(prof, mk, rows, sec, cpu_only=False)


def test_loop_body_lines_all_credited(tmp_path):
    """Each of three comparable lines in a hot loop gets its share."""
    prof, truth, _ = run_profiled(tmp_path, "loop3.py",
                                  options=VIRTUAL + ("--cpu-sampling-rate", "0.004"))
    mk = markers("loop3.py")
    first, last = function_ranges("loop3.py")["loop"]
    loop_total = prof.span_sec(first, last)
    rows = prof.describe(range(first, last + 1))
    n = sum(prof.samples(no) for no in range(first, last + 1))
    est = truth["line_cpu_est"]
    # Relative costs of the lines run alone (minus an empty loop), for the
    # message only: short calibration loops are too noisy to assert on.
    est_share = [100.0 * e / (sum(est) + truth["for_cpu_est"]) for e in est]
    shares = [100.0 * prof.sec(mk[k]) / loop_total if loop_total else 0.0 for k in ("l1", "l2", "l3")]
    print(f"\nloop3: shares {[round(s, 2) for s in shares]} % of {loop_total:.3f} s, {n} samples; "
          f"isolated-cost estimate {[round(s, 1) for s in est_share]} %\n{rows}")
    # Iterations take ~0.3 us, far below the interval: random sampling.
    # Samples come at the 250 Hz tick, every 4 ms (8 ms at worst, when a
    # tick comes just before the thread's 4 ms are full), so over the
    # loop's T ~ 2.9-3.7 s there are n >= T / 8 ms >= 360 samples (about
    # 720 are seen: one a tick).  The three lines cost about the same, but
    # not exactly (l1's arithmetic is on larger ints; on 3.11 the `for`
    # line makes a new int each iteration, on 3.12+ it reuses one), so take
    # each line's true share p >= 0.25: sigma = sqrt(0.25 * 0.75 / 360) =
    # 2.3 pt, 4 sigma = 9.1 pt, and 25 - 9.1 = 15.9 >= 15.  A line whose
    # time went to another (Scalene's fault on 3.11+) gets ~0 %.  The sample
    # count is checked first, so the bound is powered; at the default 10 ms
    # it would be ~T / 10 ms, below the limit, so this also checks that
    # --cpu-sampling-rate is obeyed.
    need = truth["loop_cpu"] / 0.008
    assert n >= need, (
        f"only {n} samples in {truth['loop_cpu']:.2f} s at --cpu-sampling-rate 0.004 "
        f"(want >= {need:.0f}: the 15 % bound needs them)\n{rows}")
    for k, s in zip(("l1", "l2", "l3"), shares):
        assert s >= 15.0, (
            f"line {mk[k]} ({k}) got {s:.2f} % of the loop's {loop_total:.3f} s (want >= 15 %; "
            f"all shares {shares})\n{rows}")


def test_threads_match_thread_time(tmp_path, helper_module):
    """Main thread in native code while 4 Python threads compute."""
    prof, truth, _ = run_profiled(tmp_path, "threads.py", options=VIRTUAL)
    fr = function_ranges("threads.py")
    mk = markers("threads.py")
    cpu = truth["cpu"]
    names = ("work_a", "work_b", "work_c", "work_d")
    measured = {n: prof.span_sec(*fr[n]) for n in names}
    measured["main_spin"] = prof.sec(mk["spin"])
    m_total = sum(measured.values())
    t_total = sum(cpu[n] for n in measured)
    assert m_total > 0, prof.describe(range(1, fr["main"][1] + 1))
    rows = "\n".join(f"  {n}: {100 * measured[n] / m_total:6.2f} % ({measured[n]:.3f} s) vs truth "
                     f"{100 * cpu[n] / t_total:6.2f} % ({cpu[n]:.3f} s)" for n in measured)
    print("\nthreads:\n" + rows)
    # Each thread's samples are weighted with its own CPU clock, one segment
    # per thread: error < 2W = 0.024 s per thread (its first tick before the
    # timer is armed, and the last partial interval) of T ~ 3.3 s -> < 0.8 pt,
    # plus the same in the denominator; +-5 pt is > 4 sigma by far.
    for n in measured:
        got = 100.0 * measured[n] / m_total
        want = 100.0 * cpu[n] / t_total
        assert abs(got - want) <= 5.0, f"{n}: {got:.2f} % vs thread_time truth {want:.2f} % (+-5)\n{rows}"
    spin_native = prof.sec(mk["spin"], "native")
    assert spin_native >= 0.9 * measured["main_spin"], (
        f"main thread's spin: native {spin_native:.4f} s of {measured['main_spin']:.4f} s (want >= 90 %)")


def test_offcpu_waits_are_system(tmp_path):
    """Blocking in os.read and time.sleep is system time on those lines."""
    prof, truth, _ = run_profiled(tmp_path, "offcpu.py")
    mk = markers("offcpu.py")
    rows = prof.describe([mk["read"], mk["sleep"], mk["busy"], mk["busy"] + 1])
    print(f"\noffcpu: truth {truth}\n{rows}")
    for name in ("read", "sleep"):
        wall = truth[f"{name}_wall"]
        sys_sec = prof.sec(mk[name], "sys")
        python = prof.sec(mk[name], "python")
        cpu = python + prof.sec(mk[name], "native")
        # Off-CPU samples every ~10 ms of wall time over a single 0.5 s wait:
        # < 2 intervals of error at its ends (0.024 s), plus the sampler
        # thread's own scheduling delay on a busy host: [0.7, 1.3] x wall.
        assert 0.7 * wall <= sys_sec <= 1.3 * wall + 0.03, (
            f"{name}: system {sys_sec:.4f} s for a {wall:.4f} s wait (want 0.7-1.3 x)\n{rows}")
        # Not Python: the thread was blocked, only edge samples may be CPU.
        assert python <= 0.05 and cpu <= 0.1 * sys_sec, (
            f"{name}: python {python:.4f} s, python+native {cpu:.4f} s next to system "
            f"{sys_sec:.4f} s (want python <= 0.05 and CPU <= 10 % of system)\n{rows}")
    busy = prof.span_sec(*function_ranges("offcpu.py")["busy"])
    # The control proves samples were taken: a single ~0.25 s CPU segment.
    assert busy >= 0.5 * truth["busy_cpu"], (
        f"control: busy line {busy:.4f} s vs {truth['busy_cpu']:.4f} s CPU (want >= 50 %)\n{rows}")


def test_offcpu_absent_with_virtual_time(tmp_path):
    """With --use-virtual-time, waiting is not charged at all."""
    prof, truth, _ = run_profiled(tmp_path, "offcpu.py", options=("--use-virtual-time",))
    mk = markers("offcpu.py")
    rows = prof.describe([mk["read"], mk["sleep"], mk["busy"], mk["busy"] + 1])
    print(f"\noffcpu (virtual time): truth {truth}\n{rows}")
    for name in ("read", "sleep"):
        # Only the CPU time of one system call (microseconds) is real here;
        # one stray sample weight is W = 0.012 s; 0.03 s vs 0.5 s if counted.
        got = prof.sec(mk[name])
        assert got <= 0.03, f"{name}: {got:.4f} s charged with --use-virtual-time (want <= 0.03)\n{rows}"
    busy = prof.span_sec(*function_ranges("offcpu.py")["busy"])
    # The control proves samples were taken: a single ~0.25 s CPU segment.
    assert busy >= 0.5 * truth["busy_cpu"], (
        f"control: busy line {busy:.4f} s vs {truth['busy_cpu']:.4f} s CPU (want >= 50 %)\n{rows}")


def test_devzero_reads_are_never_short(tmp_path):
    """os.read(fd, 1 MiB) on /dev/zero returns 1 MiB every time while sampled."""
    count = 20000
    prof, _, stdout = run_profiled(tmp_path, "devzero.py", args=(count,), truth=False,
                                   options=("--cpu-sampling-rate", "0.004"))
    mk = markers("devzero.py")
    rows = prof.describe([mk["read"]])
    print(f"\ndevzero: {stdout.strip()}\n{rows}")
    # The program exits 1 on the first short read (checked by run_profiled).
    assert f"{count} reads of 1048576 bytes" in stdout, stdout
    # The test only means something if the timer fired during the reads:
    # they take ~0.5 s of system time, i.e. ~60-125 samples at 4-8 ms.
    assert prof.samples(mk["read"]) >= 10, (
        f"only {prof.samples(mk['read'])} samples on the read line: the timer did not "
        f"fire during the reads\n{rows}")
