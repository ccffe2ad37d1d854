"""The profile survives every way a program ends, and the program's own
signals work as without the profiler (docs/cli.md, "How `run` ends").

- --profile-interval rewrites the profile while the program runs; a reader
  polling the file never sees a partial one.
- The final profile is written at a normal end, an uncaught exception,
  sys.exit(n), os._exit(n), SIGINT and SIGTERM, with the program's own exit
  status (or death by the same signal); a program's own SIGTERM handler is
  kept.
- SIGALRM, SIGPROF, SIGVTALRM and their interval timers, and blocking
  sleep/select/poll, behave as without the profiler.
- A crash in native code (SIGSEGV) prints one note, keeps the last
  periodic profile and ends by the same signal.

Every profile written here is also shown with `view --cli`.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import TIMEOUT, run_python, run_scalene, stderr_lines, subprocess_env, write

SAVED = "Scalene: profile saved to "

# Each program first spins 0.2 s, so that its file has samples and shows
# in `view --cli`.
SPIN = """\
import time as _t
_t0 = _t.monotonic()
while _t.monotonic() - _t0 < 0.2:
    pass
"""

# Waits for a signal that the test sends once "ready" is printed.
WAIT_FOR_SIGNAL = SPIN + """\
import sys, time
print("ready", flush=True)
print("unflushed")
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    sum(range(100))
print("not reached", flush=True)
"""


def _load(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def _check_profile(tmp_path, name, program):
    """The profile is valid JSON naming the program, and `view --cli`
    shows the program's file."""
    data = _load(tmp_path / name)
    assert data["program"] == str(tmp_path / program), data["program"]
    assert str(tmp_path / program) in data["files"], list(data["files"])
    view = run_scalene("view", "--cli", name, cwd=tmp_path)
    assert view.returncode == 0, view.stderr.decode()
    assert str(tmp_path / program) in view.stdout.decode(), view.stdout.decode()[:2000]
    return data


def _no_temporaries(tmp_path, name):
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(name + ".")]
    assert not left, left


def _popen(*args, cwd, env=None):
    return subprocess.Popen([sys.executable, "-m", "scalene", *map(str, args)], cwd=str(cwd),
                            env=env or subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _signal_when_ready(proc, signum):
    """Sends signum once the program printed "ready"; returns (stdout,
    stderr) as bytes, the ready line included."""
    first = proc.stdout.readline()
    assert first == b"ready\n", (first, proc.stderr.read())
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=TIMEOUT)
    return first + out, err


# ---------------------------------------------------------------- periodic writes

PERIODIC = SPIN + """\
import time
t0 = time.monotonic()
while time.monotonic() - t0 < 1.0:
    sum(range(1000))
"""


def test_periodic_writes_are_whole_and_sensible(tmp_path):
    write(tmp_path / "prog.py", PERIODIC)
    out = tmp_path / "p.json"
    seen = []        # (elapsed, program) of every distinct version read
    bad = []
    stop = threading.Event()

    def reader():
        last = None
        while not stop.is_set():
            try:
                with open(out, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                continue
            if raw == last:
                continue
            last = raw
            try:
                data = json.loads(raw)
            except ValueError as e:
                bad.append((len(raw), str(e)))
                continue
            seen.append((data["elapsed_time_sec"], data["program"]))

    t = threading.Thread(target=reader, daemon=True)
    started = time.monotonic()
    t.start()
    proc = run_scalene("run", "--profile-interval", "0.1", "-o", "p.json", "prog.py",
                       cwd=tmp_path)
    wall = time.monotonic() - started
    stop.set()
    t.join(TIMEOUT)
    assert proc.returncode == 0, proc.stderr.decode()
    assert not bad, bad
    # About 11 writes in 1.2 s; a loaded machine may delay some and the
    # reader miss a few, but not most of them.
    assert len(seen) >= 3, seen
    elapsed = [e for e, _ in seen]
    assert all(p == str(tmp_path / "prog.py") for _, p in seen), seen
    assert elapsed == sorted(elapsed), elapsed
    assert 0 < elapsed[0] and elapsed[-1] <= wall, (elapsed, wall)
    final = _check_profile(tmp_path, "p.json", "prog.py")
    # The final write is the last one: nothing older replaced it.
    assert final["elapsed_time_sec"] >= max(elapsed), (final["elapsed_time_sec"], elapsed)
    assert final["elapsed_time_sec"] >= 1.2 - 0.05, final["elapsed_time_sec"]
    _no_temporaries(tmp_path, "p.json")
    assert stderr_lines(proc)[0] == SAVED + "p.json", stderr_lines(proc)


THREADS_SEEN = SPIN + """\
import json, sys, threading, time
time.sleep(0.25)  # two periodic writes
print(json.dumps([threading.active_count(), [t.name for t in threading.enumerate()],
                  sys.getswitchinterval()]))
"""


def test_writer_thread_unseen_and_not_charged(tmp_path):
    # The writer is not among the program's threads, the program ends
    # as soon as its last line ran, and no time lands on our files even
    # with --profile-all.
    write(tmp_path / "prog.py", THREADS_SEEN)
    plain = run_python("prog.py", cwd=tmp_path)
    ours = run_scalene("run", "--profile-all", "--profile-interval", "0.1", "-o", "p.json",
                       "prog.py", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr.decode()
    assert ours.stdout == plain.stdout
    data = _check_profile(tmp_path, "p.json", "prog.py")
    import scalene
    ours_dir = os.path.dirname(os.path.abspath(scalene.__file__)) + os.sep
    assert not [f for f in data["files"] if f.startswith(ours_dir)], list(data["files"])


# ---------------------------------------------------------------- how the program ends

def test_normal_end(tmp_path):
    write(tmp_path / "prog.py", SPIN + "print('done')\n")
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"done\n"
    assert stderr_lines(proc)[0] == SAVED + "p.json"
    _check_profile(tmp_path, "p.json", "prog.py")


def test_uncaught_exception(tmp_path):
    write(tmp_path / "prog.py", SPIN + "def f():\n    raise ValueError('boom')\nf()\n")
    plain = run_python("prog.py", cwd=tmp_path)
    ours = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert plain.returncode == ours.returncode == 1
    err = ours.stderr.decode()
    assert err.startswith(plain.stderr.decode()), (err, plain.stderr.decode())
    assert err[len(plain.stderr):].startswith(SAVED + "p.json\n")
    _check_profile(tmp_path, "p.json", "prog.py")


def test_sys_exit_status(tmp_path):
    write(tmp_path / "prog.py", SPIN + "import sys\nsys.exit(5)\n")
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 5, proc.stderr.decode()
    _check_profile(tmp_path, "p.json", "prog.py")


OS_EXIT = SPIN + """\
import os, atexit
atexit.register(print, "atexit ran")
print("flushed", flush=True)
print("buffered, lost at os._exit")
os._exit(7)
"""


def test_os_exit_writes_profile_first(tmp_path):
    # Buffered output is lost, as with plain Python (stdout is a pipe).
    env = subprocess_env()
    env.pop("PYTHONUNBUFFERED", None)
    write(tmp_path / "prog.py", OS_EXIT)
    plain = run_python("prog.py", cwd=tmp_path, env=env)
    ours = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path, env=env)
    assert plain.returncode == ours.returncode == 7, ours.stderr.decode()
    assert ours.stdout == plain.stdout == b"flushed\n"
    assert stderr_lines(ours)[0] == SAVED + "p.json", stderr_lines(ours)
    _check_profile(tmp_path, "p.json", "prog.py")


def test_os_exit_of_a_module(tmp_path):
    # -m: the profile names the module's file even before runpy returns.
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "__main__.py", OS_EXIT)
    proc = run_scalene("run", "-o", "p.json", "-m", "pkg", cwd=tmp_path)
    assert proc.returncode == 7, proc.stderr.decode()
    data = _check_profile(tmp_path, "p.json", "pkg/__main__.py")
    assert data["args"] == [str(tmp_path / "pkg" / "__main__.py")], data["args"]


OS_EXIT_THREAD = SPIN + """\
import os, threading, time
threading.Thread(target=os._exit, args=(9,)).start()
time.sleep(5)
"""


def test_os_exit_from_a_thread(tmp_path):
    write(tmp_path / "prog.py", OS_EXIT_THREAD)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 9, proc.stderr.decode()
    assert stderr_lines(proc)[0] == SAVED + "p.json", stderr_lines(proc)
    _check_profile(tmp_path, "p.json", "prog.py")


def test_os_exit_restored_after_the_run(tmp_path):
    # The program's atexit handlers run after the run: os._exit is the
    # interpreter's again, and the profile is not written twice.
    write(tmp_path / "prog.py", SPIN + "import atexit, os, posix\n"
          "atexit.register(lambda: print(os._exit is posix._exit, flush=True) or os._exit(4))\n"
          "print(os._exit is posix._exit, flush=True)\n")
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr.decode()
    assert proc.stdout == b"False\nTrue\n"
    assert [line for line in stderr_lines(proc) if line.startswith(SAVED)] == [SAVED + "p.json"]
    _check_profile(tmp_path, "p.json", "prog.py")


def test_sigint(tmp_path):
    write(tmp_path / "prog.py", WAIT_FOR_SIGNAL)
    proc = _popen("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    out, err = _signal_when_ready(proc, signal.SIGINT)
    assert proc.returncode == -signal.SIGINT, err.decode()
    assert b"KeyboardInterrupt" in err and b"not reached" not in out
    assert SAVED + "p.json" in err.decode()
    _check_profile(tmp_path, "p.json", "prog.py")


def test_sigterm_default(tmp_path):
    # Dies of SIGTERM, as without us, after the profile is written; the
    # program's buffered output is lost as it would be.
    env = subprocess_env()
    env.pop("PYTHONUNBUFFERED", None)
    write(tmp_path / "prog.py", WAIT_FOR_SIGNAL)
    proc = _popen("run", "-o", "p.json", "prog.py", cwd=tmp_path, env=env)
    out, err = _signal_when_ready(proc, signal.SIGTERM)
    assert proc.returncode == -signal.SIGTERM, err.decode()
    assert out == b"ready\n"
    assert err.decode().splitlines()[0] == SAVED + "p.json", err.decode()
    data = _check_profile(tmp_path, "p.json", "prog.py")
    assert data["elapsed_time_sec"] > 0.2


OWN_SIGTERM = SPIN + """\
import signal, sys, time
got = []
signal.signal(signal.SIGTERM, lambda s, f: got.append(s))
print("ready", flush=True)
deadline = time.monotonic() + 10
while not got and time.monotonic() < deadline:
    time.sleep(0.01)
print("handled", got, flush=True)
sys.exit(3)
"""


def test_own_sigterm_handler_kept(tmp_path):
    write(tmp_path / "prog.py", OWN_SIGTERM)
    proc = _popen("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    out, err = _signal_when_ready(proc, signal.SIGTERM)
    assert proc.returncode == 3, err.decode()
    assert out == b"ready\nhandled [15]\n"
    _check_profile(tmp_path, "p.json", "prog.py")


FORKED_CHILD_SIGTERM = SPIN + """\
import os, signal, time
pid = os.fork()
if pid == 0:
    time.sleep(10)
    os._exit(0)
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
_, st = os.waitpid(pid, 0)
print(os.WIFSIGNALED(st) and os.WTERMSIG(st))
"""


def test_forked_child_dies_of_sigterm_after_saving_its_own(tmp_path):
    # The child still dies of SIGTERM; its profile goes into the parent's
    # (docs/cli.md, "Child processes"), and only the parent says "saved".
    write(tmp_path / "prog.py", FORKED_CHILD_SIGTERM)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"15\n"
    assert [line for line in stderr_lines(proc) if line.startswith(SAVED)] == [SAVED + "p.json"]
    data = _check_profile(tmp_path, "p.json", "prog.py")
    assert len(data["processes"]) == 2, data.get("processes")


# The program sends itself SIGTERM from native code and then blocks in
# pause(): the signal's C handler has run and its Python handler has not,
# as when SIGTERM lands between SemLock.acquire's sem_trywait and sem_wait
# (Pool.terminate() and a worker about to take a queue's lock).  CPython
# alone would block there for good; the guard (_core_term.c) sends SIGTERM
# again to the main thread 50 ms later, its pause() fails with EINTR, and
# ("check") the handler runs as after any EINTR in CPython, or ("deaf")
# EINTR is ignored, and after the grace SIGTERM kills the process as
# SIG_DFL.  The program notes the time just before it raises.
RAISE_THEN_BLOCK = SPIN + """\
import signal, sys, time, _scalenetest
with open("t0", "w") as f:
    f.write(repr(time.monotonic()))
_scalenetest.raise_then_block(signal.SIGTERM, sys.argv[1] == "check")
"""

# Each test waits for the program; a hang fails it after this many seconds.
HANG = 60
GRACE_RUN = 5.0  # profiler.Session.TERM_GRACE_RUN


def test_sigterm_just_before_a_block_saves(tmp_path):
    write(tmp_path / "prog.py", RAISE_THEN_BLOCK)
    proc = run_scalene("run", "-o", "p.json", "prog.py", "check", cwd=tmp_path, timeout=HANG)
    assert proc.returncode == -signal.SIGTERM, proc.stderr.decode()
    assert stderr_lines(proc)[0] == SAVED + "p.json", proc.stderr.decode()
    _check_profile(tmp_path, "p.json", "prog.py")


def test_sigterm_never_handled_kills_after_the_grace(tmp_path):
    write(tmp_path / "prog.py", RAISE_THEN_BLOCK)
    proc = run_scalene("run", "-o", "p.json", "prog.py", "deaf", cwd=tmp_path, timeout=HANG)
    took = time.monotonic() - float((tmp_path / "t0").read_text())
    assert proc.returncode == -signal.SIGTERM, proc.stderr.decode()
    assert stderr_lines(proc) == [
        "Scalene: at SIGTERM the program's main thread did not get back to Python code "
        "within 5 s to save the profile; the process ends without it"]
    assert took >= GRACE_RUN, took
    assert not (tmp_path / "p.json").exists()
    _no_temporaries(tmp_path, "p.json")


SIGTERM_ON_ANOTHER_THREAD = SPIN + """\
import signal, threading, time, _scalenetest

def poke():
    time.sleep(0.5)  # the main thread is in pause() by then
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

threading.Thread(target=poke).start()
_scalenetest.raise_then_block(0, True)  # no signal: pause() only
"""


def test_sigterm_on_another_thread_while_the_main_one_blocks_saves(tmp_path):
    # CPython's handler runs on the thread that took the signal and wakes
    # nothing; the guard's resend goes to the main thread.
    write(tmp_path / "prog.py", SIGTERM_ON_ANOTHER_THREAD)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path, timeout=HANG)
    assert proc.returncode == -signal.SIGTERM, proc.stderr.decode()
    assert stderr_lines(proc)[0] == SAVED + "p.json", proc.stderr.decode()
    _check_profile(tmp_path, "p.json", "prog.py")


# A fork()ed child blocks right after SIGTERM, either while the program
# runs or at its exit, after the runner's end of the run (an atexit
# handler of the program's, which runs before ours).
FORKED_CHILD_RAISE_THEN_BLOCK = SPIN + """\
import atexit, os, signal, sys, time, _scalenetest
pid = os.fork()
if pid == 0:
    if sys.argv[1] == "now":
        _scalenetest.raise_then_block(signal.SIGTERM, True)
    atexit.register(_scalenetest.raise_then_block, signal.SIGTERM, True)
else:
    deadline = time.monotonic() + %d
    while time.monotonic() < deadline:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            print(os.WIFSIGNALED(st) and os.WTERMSIG(st))
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        print("the child hung")
""" % (HANG // 2)


@pytest.mark.parametrize("when", ["now", "at_exit"])
def test_forked_child_sigterm_just_before_a_block_saves(tmp_path, when):
    # Each profiled child has a SIGTERM handler of ours (scalene.children)
    # and the same guard, which the runner's end in the child leaves alone.
    write(tmp_path / "prog.py", FORKED_CHILD_RAISE_THEN_BLOCK)
    proc = run_scalene("run", "-o", "p.json", "prog.py", when, cwd=tmp_path, timeout=HANG)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"15\n"
    data = _check_profile(tmp_path, "p.json", "prog.py")
    assert len(data["processes"]) == 2, data.get("processes")


def test_periodic_writes_allocate_nothing_for_the_program(tmp_path):
    # A program that allocates nothing, profiled twice with a 16 KiB
    # sampling window: once plain, once with its profile rewritten every
    # 10 ms (~200 writes in its 2 s).  The writer's own allocations
    # (Python's and json-c's, ~7 KiB a write: ~1.4 MB) are not charged to
    # the program, so both runs estimate the same few hundred KB that the
    # interpreter allocates after profiling starts.  An estimate of ~0.3 MB
    # at 16 KiB rests on ~20 samples; between two runs it moved by at most
    # 0.2 MB in 10 tries, and 0.5 MB is far enough from both that and the
    # ~1.4 MB of charged writes.  (One run against a fixed 0.25 MB bound at
    # 64 KiB failed whenever 4 of its ~3 expected samples came up.)
    write(tmp_path / "prog.py", "import time\ntime.sleep(2.0)\n")
    totals = []
    for extra in ([], ["--profile-interval", "0.01"]):
        proc = run_scalene("run", *extra, "--allocation-sampling-window", "16384",
                           "-o", "p.json", "prog.py", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
        with open(tmp_path / "p.json") as f:
            totals.append(json.load(f)["total_alloc_mb"])
    assert totals[1] - totals[0] < 0.5, totals


HANDLERS_DURING_RUN = SPIN + """\
import atexit
def caught():
    with open("/proc/self/status") as f:
        mask = int(next(l for l in f if l.startswith("SigCgt:")).split()[1], 16)
    return [bool(mask >> (s - 1) & 1) for s in (11, 7, 4, 8, 6, 15)]
print(caught(), flush=True)
atexit.register(lambda: print(caught(), flush=True))
"""


def test_our_handlers_only_during_the_run(tmp_path):
    # SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT and SIGTERM are caught while
    # the program runs, and no longer in its atexit handlers.
    write(tmp_path / "prog.py", HANDLERS_DURING_RUN)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"[True, True, True, True, True, True]\n" + \
        b"[False, False, False, False, False, False]\n"
    _check_profile(tmp_path, "p.json", "prog.py")


# ---------------------------------------------------------------- the program's signals

ALARM = """\
import json, signal, time
calls = []
signal.signal(signal.SIGALRM, lambda s, f: calls.append(s))
t0 = time.monotonic()
for _ in range(10):
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    signal.pause()
print(json.dumps([len(calls), time.monotonic() - t0]))
"""


def test_sigalrm_and_pause(tmp_path):
    write(tmp_path / "prog.py", ALARM)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()
    calls, took = json.loads(proc.stdout)
    assert calls == 10
    assert took < 3.0, took  # about 1 s: a hang, not a speed, check
    _check_profile(tmp_path, "p.json", "prog.py")


CPU_TIMERS = SPIN + """\
import json, signal, time
result = {}
for name, sig, which in (("prof", signal.SIGPROF, signal.ITIMER_PROF),
                         ("virtual", signal.SIGVTALRM, signal.ITIMER_VIRTUAL)):
    calls = []
    signal.signal(sig, lambda s, f: calls.append(s))
    signal.setitimer(which, 0.01, 0.01)
    deadline = time.monotonic() + 3
    while len(calls) < 10 and time.monotonic() < deadline:
        sum(range(100))
    signal.setitimer(which, 0)
    result[name] = len(calls)
print(json.dumps(result))
"""


def test_sigprof_and_sigvtalrm_timers(tmp_path):
    write(tmp_path / "prog.py", CPU_TIMERS)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == {"prof": 10, "virtual": 10}
    _check_profile(tmp_path, "p.json", "prog.py")


BLOCKING = SPIN + """\
import json, select, threading, time

def calls():
    took = {}
    for name, f in (("sleep", lambda: time.sleep(0.5)),
                    ("select", lambda: select.select([], [], [], 0.5)),
                    ("poll", lambda: select.poll().poll(500))):
        t0 = time.monotonic()
        f()
        took[name] = time.monotonic() - t0
    return took

seen = {}
def worker():
    sum(range(300000))  # on the CPU first: its timer is armed and firing
    seen["worker"] = calls()
t = threading.Thread(target=worker)
t.start()
seen["main"] = calls()
t.join()
print(json.dumps(seen))
"""


def test_blocking_calls_not_cut_short(tmp_path):
    write(tmp_path / "prog.py", BLOCKING)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    seen = json.loads(proc.stdout)
    for thread, took in seen.items():
        for name, sec in took.items():
            assert sec >= 0.45, (thread, name, sec)
    _check_profile(tmp_path, "p.json", "prog.py")


# ---------------------------------------------------------------- crashes

CRASH = SPIN + """\
import ctypes, time
t0 = time.monotonic()
while time.monotonic() - t0 < 0.5:
    sum(range(1000))
print("crashing", flush=True)
ctypes.string_at(0)
"""


def _note(err):
    lines = [line for line in err.decode(errors="replace").splitlines()
             if line.startswith("Scalene: the program was killed")]
    assert len(lines) == 1, err.decode(errors="replace")
    return lines[0]


def test_segfault_keeps_last_periodic_profile(tmp_path):
    write(tmp_path / "prog.py", CRASH)
    # The same program without us dies of SIGSEGV too.
    assert run_python("prog.py", cwd=tmp_path).returncode == -signal.SIGSEGV
    proc = run_scalene("run", "--profile-interval", "0.2", "-o", "p.json", "prog.py",
                       cwd=tmp_path)
    assert proc.returncode == -signal.SIGSEGV, proc.stderr.decode()
    assert proc.stdout == b"crashing\n"
    # Nothing but our note on stderr (faulthandler is off).
    lines = stderr_lines(proc)
    assert len(lines) == 1, lines
    note = _note(proc.stderr)
    assert note.startswith("Scalene: the program was killed by signal 11 (SIGSEGV); "
                           "the profile saved at "), note
    assert note.endswith(" is kept: p.json"), note
    data = _check_profile(tmp_path, "p.json", "prog.py")
    # Written at 0.2, 0.4, 0.6 s; the crash comes at 0.7 s.
    assert 0.15 <= data["elapsed_time_sec"] <= 0.7 + 0.5, data["elapsed_time_sec"]


def test_segfault_without_periodic_profile(tmp_path):
    write(tmp_path / "prog.py", CRASH)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == -signal.SIGSEGV, proc.stderr.decode()
    assert _note(proc.stderr) == (
        "Scalene: the program was killed by signal 11 (SIGSEGV); no profile was saved "
        "before it (--profile-interval SEC saves one periodically)")
    assert not (tmp_path / "p.json").exists()


def test_segfault_with_faulthandler(tmp_path):
    # Python's faulthandler, on before us, still dumps the traceback.
    write(tmp_path / "prog.py", CRASH)
    proc = run_scalene("run", "--profile-interval", "0.2", "-o", "p.json", "prog.py",
                       cwd=tmp_path, env=subprocess_env(PYTHONFAULTHANDLER="1"))
    assert proc.returncode == -signal.SIGSEGV
    err = proc.stderr.decode(errors="replace")
    assert _note(proc.stderr).startswith("Scalene: the program was killed by signal 11")
    assert "Fatal Python error: Segmentation fault" in err, err
    line = CRASH.splitlines().index("ctypes.string_at(0)") + 1
    assert 'prog.py", line %d in <module>' % line in err, err
    _check_profile(tmp_path, "p.json", "prog.py")


def test_faulthandler_enabled_by_the_program(tmp_path):
    # faulthandler enabled during the run chains to our handler.
    write(tmp_path / "prog.py", "import faulthandler\nfaulthandler.enable()\n" + CRASH)
    proc = run_scalene("run", "--profile-interval", "0.2", "-o", "p.json", "prog.py",
                       cwd=tmp_path)
    assert proc.returncode == -signal.SIGSEGV
    err = proc.stderr.decode(errors="replace")
    assert "Fatal Python error: Segmentation fault" in err, err
    assert _note(proc.stderr).endswith(" is kept: p.json")
    _check_profile(tmp_path, "p.json", "prog.py")


def test_abort(tmp_path):
    write(tmp_path / "prog.py", SPIN + "import os\nos.abort()\n")
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == -signal.SIGABRT, proc.stderr.decode()
    assert _note(proc.stderr).startswith("Scalene: the program was killed by signal 6 (SIGABRT); ")


CHILD_CRASH = SPIN + """\
import ctypes, os
pid = os.fork()
if pid == 0:
    ctypes.string_at(0)
_, st = os.waitpid(pid, 0)
print(os.WIFSIGNALED(st) and os.WTERMSIG(st))
"""


def test_forked_child_crash_has_no_note(tmp_path):
    write(tmp_path / "prog.py", CHILD_CRASH)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"11\n"
    assert "killed by signal" not in proc.stderr.decode(), proc.stderr.decode()
    _check_profile(tmp_path, "p.json", "prog.py")


@pytest.mark.parametrize("interval", ["0", "-1", "nan", "x"])
def test_bad_profile_interval(tmp_path, interval):
    write(tmp_path / "prog.py", "")
    proc = run_scalene("run", "--profile-interval", interval, "prog.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--profile-interval" in proc.stderr.decode()
