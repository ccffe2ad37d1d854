"""Control of what is profiled: @profile, --profile-system-libraries,
--help-advanced, --stacks (no note), and `python3 -m scalene.profile --on|--off --pid`
on a running process.  End to end through the CLI; every profile made here
is also shown with `view --cli`."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import SPIN_SOURCE, TIMEOUT, run_scalene, stderr_lines, subprocess_env, write

SPIN = SPIN_SOURCE


def load(path):
    with open(path) as f:
        return json.load(f)


def line_cpu(prof, fname, lineno):
    for name, f in prof["files"].items():
        if os.path.basename(name) == fname:
            for ln in f["lines"]:
                if ln["lineno"] == lineno:
                    return ln["n_cpu_percent_python"] + ln["n_cpu_percent_c"]
    return 0.0


def functions(prof, fname):
    for name, f in prof["files"].items():
        if os.path.basename(name) == fname:
            return {fn["line"].split(".")[0] for fn in f["functions"]}
    return set()


def view_ok(tmp_path, profile, fname):
    proc = run_scalene("view", "--cli", profile, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert fname in proc.stdout.decode(errors="replace")


def test_profile_decorator_reports_only_decorated_functions(tmp_path):
    # Scalene's smoketest: doit1 and doit3 are decorated, doit2 is not.
    write(tmp_path / "deco.py", SPIN + '''
@profile
def doit1():
    return spin(0.4)

def doit2():
    return spin(0.4)

@profile
def doit3():
    return [spin(0.15) for _ in range(3)]

doit1()
doit2()
doit3()
''')
    proc = run_scalene("run", "--cpu-only", "-o", "p.json", "deco.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    prof = load(tmp_path / "p.json")
    funcs = functions(prof, "deco.py")
    assert "doit1" in funcs and "doit3" in funcs, funcs
    assert "doit2" not in funcs and "spin" not in funcs, funcs
    text = (tmp_path / "deco.py").read_text().splitlines()
    doit2_line = text.index("    return spin(0.4)", text.index("def doit2():")) + 1
    assert line_cpu(prof, "deco.py", doit2_line) == 0
    for body in ("    return spin(0.4)", "    return [spin(0.15) for _ in range(3)]"):
        assert line_cpu(prof, "deco.py", text.index(body) + 1) > 0
    view_ok(tmp_path, "p.json", "deco.py")


def test_profile_decorator_is_a_no_op_without_profiling(tmp_path):
    # The program runs the same under `scalene run`, and the decorator
    # hands back the very function.
    write(tmp_path / "same.py", '''
def f(x):
    return x + 1
g = profile(f)
print(g is f, g(1))
''')
    proc = run_scalene("run", "--cpu-only", "-o", "p.json", "same.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == ["True", "2"]


def test_profile_system_libraries(tmp_path):
    # Time spent inside the standard library (json's pure-Python encoder)
    # lands on json/encoder.py with the flag, and on the calling line
    # without it.
    write(tmp_path / "lib.py", SPIN + '''
import json, json.encoder
json.encoder.c_make_encoder = None   # the pure-Python encoder
enc = json.JSONEncoder(indent=1)
data = [{"k%d" % i: [i, str(i)]} for i in range(300)]
end = time.process_time() + 0.6
while time.process_time() < end:
    enc.encode(data)
''')
    for flag, expect in (("--profile-system-libraries", True), (None, False)):
        args = ["run", "--cpu-only", "-o", "p.json"] + ([flag] if flag else []) + ["lib.py"]
        proc = run_scalene(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        prof = load(tmp_path / "p.json")
        names = {os.path.basename(n) for n in prof["files"]}
        assert ("encoder.py" in names) == expect, (flag, names)
        # without the flag the encoder's time is the calling line's; with
        # it lib.py keeps so little that the JSON may leave it out (files
        # under 1 % of the time, as Scalene does)
        assert expect or "lib.py" in names, names
        # the view leaves out files below 1 % of the time: with the flag,
        # lib.py's own lines have almost none
        view_ok(tmp_path, "p.json", "encoder.py" if expect else "lib.py")


def test_help_advanced_shows_what_help_hides():
    basic = run_scalene("run", "-h", cwd="/")
    adv = run_scalene("run", "--help-advanced", cwd="/")
    assert basic.returncode == 0 and adv.returncode == 0
    b, a = basic.stdout.decode(), adv.stdout.decode()
    for opt in ("--profile-interval", "--cpu-sampling-rate", "--malloc-threshold",
                "--profile-system-libraries", "--no-stacks", "--use-virtual-time"):
        assert opt in a and opt not in b, opt
    for opt in ("--outfile", "--config", "--cpu-only", "--profile-only", "--off",
                "--help-advanced"):
        assert opt in b and opt in a, opt


def test_stacks_no_note(tmp_path):
    # --stacks works (test_stacks.py): no note any more.
    write(tmp_path / "p.py", "print('ran')\n")
    proc = run_scalene("run", "--stacks", "-o", "p.json", "p.py", cwd=tmp_path)
    assert proc.returncode == 0
    assert not any("not available" in ln for ln in stderr_lines(proc))
    proc = run_scalene("run", "--no-stacks", "-o", "p.json", "p.py", cwd=tmp_path)
    assert proc.returncode == 0
    assert not any("stacks" in ln for ln in stderr_lines(proc))


def _wait_for(path, proc, seconds=30):
    end = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out waiting for %s" % path
        time.sleep(0.02)


def _control(*args):
    return subprocess.run([sys.executable, "-m", "scalene.profile", *map(str, args)],
                          env=subprocess_env(), capture_output=True, timeout=TIMEOUT)


def test_on_off_by_pid(tmp_path):
    # The program starts with profiling off and spins in busy_off() until
    # the test switches it to busy_on(), then turns profiling on by pid;
    # --off writes the profile at once, while the program still runs.
    write(tmp_path / "ctl.py", SPIN + '''
import os

def busy_off():
    end = time.process_time() + 0.01
    while time.process_time() < end: pass

def busy_on():
    end = time.process_time() + 0.01
    while time.process_time() < end: pass

open("ready", "w").close()
while not os.path.exists("stop"):
    if os.path.exists("phase2"):
        busy_on()
    else:
        busy_off()
''')
    proc = subprocess.Popen([sys.executable, "-m", "scalene", "run", "--off", "--cpu-only",
                             "-o", "p.json", "ctl.py"], cwd=str(tmp_path),
                            env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        _wait_for(tmp_path / "ready", proc)
        time.sleep(0.3)
        (tmp_path / "phase2").touch()
        time.sleep(0.1)
        on = _control("--on", "--pid", proc.pid)
        assert on.returncode == 0, on.stderr
        assert on.stdout.decode().strip() == "Scalene: profiling turned on in process %d" % proc.pid
        time.sleep(0.6)
        off = _control("--off", "--pid", proc.pid)
        assert off.returncode == 0, off.stderr
        _wait_for(tmp_path / "p.json", proc)  # written on --off, before the end
        assert proc.poll() is None
        (tmp_path / "stop").touch()
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    prof = load(tmp_path / "p.json")
    text = (tmp_path / "ctl.py").read_text().splitlines()
    loop = "    while time.process_time() < end: pass"
    off_line = text.index(loop, text.index("def busy_off():")) + 1
    on_line = text.index(loop, text.index("def busy_on():")) + 1
    assert line_cpu(prof, "ctl.py", on_line) > 0
    assert line_cpu(prof, "ctl.py", off_line) == 0
    # on for about 0.6 s of a run of over 1 s: elapsed counts the on-interval
    assert 0.4 < prof["elapsed_time_sec"] < 5, prof["elapsed_time_sec"]
    view_ok(tmp_path, "p.json", "ctl.py")


def test_control_errors(tmp_path):
    # a process that does not exist
    dead = subprocess.Popen(["true"])
    dead.wait()
    r = _control("--on", "--pid", dead.pid)
    assert r.returncode == 1
    assert r.stderr.decode().splitlines() == ["scalene.profile: error: no process %d" % dead.pid]
    # a process of ours that is not profiled: never sent a signal that
    # would kill it
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        r = _control("--off", "--pid", sleeper.pid)
        assert r.returncode == 1
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1 and "not being profiled" in lines[0], lines
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    # a process of another user: one started as nobody (as root), or init
    other = subprocess.Popen(["sleep", "30"], user="nobody") if os.getuid() == 0 else None
    try:
        r = _control("--on", "--pid", other.pid if other else 1)
        assert r.returncode == 1
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1 and "another user" in lines[0], lines
        assert other is None or other.poll() is None
    finally:
        if other:
            other.kill()
            other.wait()
    # malformed command lines
    for args in ((), ("--on",), ("--on", "--off", "--pid", "1"), ("--on", "--pid", "x")):
        r = _control(*args)
        assert r.returncode == 2, args
