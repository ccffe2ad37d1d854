"""Child processes: os.fork(), multiprocessing (fork, spawn, forkserver;
Pool.map and Process) and Python children started with subprocess are
profiled and merged into the parent's profile, each process listed in
"processes" with its own totals.  End to end through the CLI; every
profile is also shown with `view --cli`.

Truth: each child spins a known CPU time (time.process_time) or allocates
a known number of bytes; the bounds follow from the sampling (docs/
sampling-math.md): at 10 ms a sample, 0.4 s of CPU is ~40 samples, and
the tests ask for a third of that at least; allocations use a 64 KiB
window, so that 160 MiB is ~2560 samples and +-10 % is beyond 4 sigma."""

import json
import os
import textwrap
import time

import pytest

from conftest import SPIN_SOURCE, run_scalene, subprocess_env, write

SPIN = SPIN_SOURCE


def load(path):
    with open(path) as f:
        return json.load(f)


def procs(prof):
    return prof.get("processes", [])


def line_of(tmp_path, fname, text):
    lines = (tmp_path / fname).read_text().splitlines()
    return lines.index(text) + 1


def line_stat(prof, fname, lineno, key):
    for name, f in prof["files"].items():
        if os.path.basename(name) == fname:
            for ln in f["lines"]:
                if ln["lineno"] == lineno:
                    return ln[key]
    return 0.0


def view_ok(tmp_path, profile, fname):
    proc = run_scalene("view", "--cli", profile, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert fname in proc.stdout.decode(errors="replace")


def run(tmp_path, *args):
    """`scalene run ARGS` with its own TMPDIR, which must be left empty:
    the children's directory is removed, and multiprocessing's helpers,
    which outlive the parent, leave nothing in it."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    proc = run_scalene("run", *args, cwd=tmp_path, timeout=180,
                       env=subprocess_env(TMPDIR=str(tmpdir)))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    time.sleep(0.2)  # the helpers end when the parent has
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("scalene-")] == []
    return proc


def test_os_fork_child_is_profiled_and_merged(tmp_path):
    write(tmp_path / "fk.py", SPIN + '''
pid = os.fork()
if pid == 0:
    spin(0.4)                     # the child's line
    os._exit(0)
spin(0.2)                         # the parent's line
_, status = os.waitpid(pid, 0)
print("child status", status)
''')
    proc = run(tmp_path, "--cpu-only", "-o", "p.json", "fk.py")
    assert proc.stdout.decode().split() == ["child", "status", "0"]
    prof = load(tmp_path / "p.json")
    ps = procs(prof)
    assert len(ps) == 2, ps
    assert ps[0]["pid"] == prof["pid"] and ps[1]["pid"] != ps[0]["pid"]
    assert ps[1]["cpu_samples"] >= 13, ps  # 0.4 s is ~40 samples
    loop = line_of(tmp_path, "fk.py", "    while time.process_time() < end:")
    assert sum(line_stat(prof, "fk.py", ln, k) for ln in (loop, loop + 1)
               for k in ("n_cpu_percent_python", "n_cpu_percent_c", "n_sys_percent")) > 50
    assert prof["elapsed_time_sec"] == ps[0]["elapsed_time_sec"]  # the parent's
    view_ok(tmp_path, "p.json", "fk.py")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool_map(tmp_path, method):
    # A Pool.map of 8 tasks of 0.1 s of CPU each finishes normally, and the
    # workers' time is in the parent's profile.
    write(tmp_path / "pool.py", SPIN + '''
import multiprocessing as mp

def task(x):
    spin(0.1)
    return x * x

if __name__ == "__main__":
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        print(sum(pool.map(task, range(8))))
''')
    proc = run(tmp_path, "--cpu-only", "-o", "p.json", "pool.py", method)
    assert proc.stdout.decode().strip() == "140"
    prof = load(tmp_path / "p.json")
    ps = procs(prof)
    assert len(ps) >= 3, ps  # the parent and its two workers
    workers = sum(p["cpu_samples"] for p in ps[1:])
    assert workers >= 27, ps  # 0.8 s of tasks is ~80 samples
    view_ok(tmp_path, "p.json", "pool.py")


def test_spawn_process_memory_is_merged(tmp_path):
    # Two spawned Processes keep 80 MiB each on one line: 160 MiB there.
    write(tmp_path / "memp.py", '''
import multiprocessing as mp

def task(n):
    keep = [bytearray(1 << 20) for _ in range(n)]
    return len(keep)

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    ps = [ctx.Process(target=task, args=(80,)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print([p.exitcode for p in ps])
''')
    proc = run(tmp_path, "--allocation-sampling-window", "65536", "-o", "p.json", "memp.py")
    assert proc.stdout.decode().strip() == "[0, 0]"
    prof = load(tmp_path / "p.json")
    assert len(procs(prof)) == 3, procs(prof)
    line = line_of(tmp_path, "memp.py", "    keep = [bytearray(1 << 20) for _ in range(n)]")
    mb = line_stat(prof, "memp.py", line, "n_malloc_mb")
    assert 160 * 0.9 <= mb <= 160 * 1.1, mb
    view_ok(tmp_path, "p.json", "memp.py")


def test_subprocess_python_child(tmp_path):
    write(tmp_path / "child.py", SPIN + '''
spin(0.4)                          # the child program's line
''')
    write(tmp_path / "parent.py", SPIN + '''
import subprocess
subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "child.py")],
               check=True)
spin(0.1)
''')
    run(tmp_path, "--cpu-only", "-o", "p.json", "parent.py")
    prof = load(tmp_path / "p.json")
    ps = procs(prof)
    assert [os.path.basename(p["program"]) for p in ps] == ["parent.py", "child.py"], ps
    assert ps[1]["cpu_samples"] >= 13, ps
    names = {os.path.basename(n) for n in prof["files"]}
    assert "child.py" in names, names
    view_ok(tmp_path, "p.json", "child.py")


def test_no_deadlock_forking_while_threads_hold_locks(tmp_path):
    # Threads allocate (the heap hooks and drains busy) and hold a lock
    # while the main thread forks 20 children, with the profile rewritten
    # every 20 ms (the writer holds the profile's lock): every child ends.
    write(tmp_path / "dl.py", textwrap.dedent('''
        import os, threading, time
        lock = threading.Lock()
        stop = False

        def churn():
            while not stop:
                with lock:
                    junk = [bytearray(4096) for _ in range(200)]
                    del junk

        threads = [threading.Thread(target=churn) for _ in range(3)]
        for t in threads:
            t.start()
        codes = []
        for i in range(20):
            pid = os.fork()
            if pid == 0:
                x = [bytearray(8192) for _ in range(100)]
                os._exit(len(x) % 7)
            codes.append(os.waitpid(pid, 0)[1] >> 8)
        stop = True
        for t in threads:
            t.join()
        print(codes.count(100 % 7))
        '''))
    proc = run(tmp_path, "--profile-interval", "0.02", "-o", "p.json", "dl.py")
    assert proc.stdout.decode().strip() == "20"
    prof = load(tmp_path / "p.json")
    assert len(procs(prof)) == 21, len(procs(prof))
    view_ok(tmp_path, "p.json", "dl.py")
