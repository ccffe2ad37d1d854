"""`scalene run --stacks`: the profile's "stacks" member.

A program main -> outer -> inner spins 0.6 s of CPU in inner and then
0.2 s in outer itself, measuring both with its own CPU clock; the profile
must hold the stacks <module> -> main -> outer -> inner and <module> -> main
-> outer, outermost first, in Scalene 2.x's form
([[frame, ...], {count, python_time, c_time, cpu_samples}], each frame
"<file> <qualname>:<line>;").

What is asserted:
  - every sample charged to a line carries the stack that ends at that line
    (the same records feed both), so per line, the stacks ending there add
    up to the line's samples exactly and to its seconds up to float
    rounding;
  - inner's share of the two stacks is the program's measured share within
    a 4-sigma binomial bound over the samples the two stacks hold
    (sigma = sqrt(p (1 - p) / n); ~80 samples at 10 ms: +-0.19);
  - without --stacks the member is [], and `view --cli` renders the file;
    `stacks: true` in a -c YAML file turns them on too.
"""
import json
import math
import sys

from conftest import run_scalene, stderr_lines, write

PROGRAM = '''
import json, sys, time

def inner():
    end = time.process_time() + 0.6
    n = 0
    while time.process_time() < end:  # INNER
        n += 1  # INNER
    return n

def outer(truth):
    t0 = time.process_time()
    inner()  # CALL
    t1 = time.process_time()
    end = t1 + 0.2
    n = 0
    while time.process_time() < end:  # OUTER
        n += 1  # OUTER
    truth["inner"] = t1 - t0
    truth["outer"] = time.process_time() - t1

def main():
    truth = {}
    outer(truth)  # MAIN
    with open(sys.argv[1], "w") as f:
        json.dump(truth, f)

main()  # MODULE
'''


def _lines(tag):
    """The line numbers of PROGRAM marked with # TAG."""
    return {i for i, text in enumerate(PROGRAM.splitlines(), 1) if text.endswith("# " + tag)}


def _frame(path, func, line):
    return "%s %s:%d;" % (path, func, line)


def _run(tmp_path, *opts):
    prog = write(tmp_path / "prog.py", PROGRAM)
    out = tmp_path / "out.json"
    proc = run_scalene("run", "--cpu-only", *opts, "-o", out, prog, "---",
                       tmp_path / "truth.json", cwd=tmp_path)
    assert proc.returncode == 0, stderr_lines(proc)
    assert not any("not available" in ln for ln in stderr_lines(proc)), stderr_lines(proc)
    return prog, json.loads(out.read_text()), out


def test_stacks(tmp_path):
    prog, prof, out = _run(tmp_path, "--stacks")
    truth = json.loads((tmp_path / "truth.json").read_text())
    path = str(prog)
    stacks = prof["stacks"]
    assert stacks, "no stacks"
    for frames, st in stacks:
        assert frames and all(isinstance(f, str) and f.endswith(";") for f in frames), frames
        assert set(st) >= {"count", "python_time", "c_time", "cpu_samples"}, st
        assert isinstance(st["count"], int) and st["count"] > 0, st
        assert 0 <= st["python_time"] + st["c_time"] <= st["cpu_samples"] + 1e-12, st

    (module_line,), (main_line,), (call_line,) = _lines("MODULE"), _lines("MAIN"), _lines("CALL")
    head = [_frame(path, "<module>", module_line), _frame(path, "main", main_line)]
    inner_stacks = [s for s in stacks
                    if s[0][:-1] == head + [_frame(path, "outer", call_line)] and
                    any(s[0][-1] == _frame(path, "inner", ln) for ln in _lines("INNER"))]
    outer_stacks = [s for s in stacks
                    if s[0][:-1] == head and
                    any(s[0][-1] == _frame(path, "outer", ln) for ln in _lines("OUTER"))]
    assert inner_stacks, stacks
    assert outer_stacks, stacks

    # Per line: the stacks that end there hold its samples and seconds.
    lines = {e["lineno"]: e for e in prof["files"][path]["lines"]}
    ends = {}
    for frames, st in stacks:
        fpath, rest = frames[-1][:-1].rsplit(" ", 1)
        assert fpath == path, frames
        ln = int(rest.rsplit(":", 1)[1])
        acc = ends.setdefault(ln, [0, 0.0])
        acc[0] += st["count"]
        acc[1] += st["n_cpu_sec_python"] + st["n_cpu_sec_c"] + st["n_sys_sec"]
    for ln, e in lines.items():
        sec = e["n_cpu_sec_python"] + e["n_cpu_sec_c"] + e["n_sys_sec"]
        count, ssec = ends.get(ln, [0, 0.0])
        assert count == e["cpu_samples"], (ln, count, e["cpu_samples"])
        assert math.isclose(ssec, sec, rel_tol=1e-9, abs_tol=1e-12), (ln, ssec, sec)

    # Fractions: of all CPU time (total_cpu_sec).
    total = prof["total_cpu_sec"]
    for frames, st in stacks:
        sec = st["n_cpu_sec_python"] + st["n_cpu_sec_c"] + st["n_sys_sec"]
        assert math.isclose(st["cpu_samples"], sec / total, rel_tol=1e-9), st
        assert math.isclose(st["python_time"], st["n_cpu_sec_python"] / total, rel_tol=1e-9), st

    a = sum(st["cpu_samples"] for _, st in inner_stacks)
    b = sum(st["cpu_samples"] for _, st in outer_stacks)
    n = sum(st["count"] for _, st in inner_stacks + outer_stacks)
    p = truth["inner"] / (truth["inner"] + truth["outer"])
    sigma = math.sqrt(p * (1 - p) / n)
    share = a / (a + b)
    print("inner share %.4f, truth %.4f, %d samples, 4 sigma %.3f" % (share, p, n, 4 * sigma))
    assert abs(share - p) <= 4 * sigma, (share, p, n)

    view = run_scalene("view", "--cli", out, cwd=tmp_path)
    assert view.returncode == 0, stderr_lines(view)
    assert b"prog.py" in view.stdout


def test_no_stacks(tmp_path):
    for opts in ((), ("--no-stacks",)):
        _, prof, _ = _run(tmp_path, *opts)
        assert prof["stacks"] == [], opts


def test_stacks_from_config(tmp_path):
    write(tmp_path / "c.yaml", "stacks: true\n")
    _, prof, _ = _run(tmp_path, "-c", tmp_path / "c.yaml")
    assert prof["stacks"], "no stacks with stacks: true"
