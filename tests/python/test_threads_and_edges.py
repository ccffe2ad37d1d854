"""Edge cases of the command line and of thread coverage.

- A thread started from C that never runs Python (a C library's worker)
  still counts: its CPU time is in the profile's totals, at no line.
- A program that only waits is profiled (off-CPU samples), and the run does
  not claim that no samples were taken.
- `---` right after `-m module` is Scalene's separator and is dropped, as
  after a script.
- `view` refuses a file that is not a regular file (a device would be read
  without end).
- Threads with the smallest stack Python allows are sampled and their
  allocations hooked without overflowing it.
"""
import json

from conftest import run_scalene, stderr_lines, write

# _scalenetest sits in the build tree's pybuild/, which is on PYTHONPATH.
C_THREAD_PROG = """\
import json
import _scalenetest
used = _scalenetest.spin_in_c_thread(500)
with open("truth.json", "w") as f:
    json.dump({"c_thread_cpu": used}, f)
"""


def test_c_thread_without_python_counts(tmp_path):
    write(tmp_path / "cthread.py", C_THREAD_PROG)
    proc = run_scalene("run", "--use-virtual-time", "-o", "p.json", "cthread.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    truth = json.loads((tmp_path / "truth.json").read_text())["c_thread_cpu"]
    data = json.loads((tmp_path / "p.json").read_text())
    # The C thread's time is sampled on its own CPU clock; every sample
    # weighs the CPU time since the previous one, so at most one interval
    # (10 ms, 20 ms with the kernel's tick) is lost at its end.  At its
    # start, what it ran before the sampler's next scan of the threads
    # found it (one interval, plus however late the sampler's thread
    # wakes on a loaded machine) is lost too.
    assert data["unattributed_cpu_sec"] >= truth - 0.1, (data["unattributed_cpu_sec"], truth)
    assert data["total_cpu_sec"] >= truth - 0.1, (data["total_cpu_sec"], truth)


def test_waiting_program_has_samples(tmp_path):
    write(tmp_path / "wait.py", "import time\ntime.sleep(0.5)\n")
    proc = run_scalene("run", "-o", "w.json", "wait.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = stderr_lines(proc)
    assert not any("no samples" in line for line in lines), lines
    data = json.loads((tmp_path / "w.json").read_text())
    line2 = [entry for entry in next(iter(data["files"].values()))["lines"] if entry["lineno"] == 2]
    assert line2 and line2[0]["n_sys_percent"] > 50, line2


def test_separator_after_module_dropped(tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "__main__.py", "import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    proc = run_scalene("run", "-m", "pkg", "---", "a", "--b", "---", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == ["a", "--b", "---"]
    proc = run_scalene("run", "---", "-m", "pkg", "---", "c", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == ["c"]


def test_view_refuses_a_device(tmp_path):
    proc = run_scalene("view", "--cli", "/dev/zero", cwd=tmp_path, timeout=30)
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "/dev/zero" in lines[0] and "not a regular file" in lines[0], lines


SMALL_STACK_PROG = """\
import json, threading, time

threading.stack_size(32768)  # the smallest Python allows


def churn(n):
    return len(bytearray(n)) + len([0] * 64)  # CHURN


def work(seconds, out, i):
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += churn(4096)
    out[i] = time.thread_time()


out = [0.0, 0.0]
threads = [threading.Thread(target=work, args=(0.6, out, i)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open("truth.json", "w") as f:
    json.dump({"thread_cpu": sum(out)}, f)
"""


def test_threads_with_the_smallest_stack(tmp_path):
    # The CPU sampler's handler and the allocation hooks run on the stack of
    # the thread they sample, walking its frames there (a few KiB, with the
    # read windows and --stacks): threads with the smallest stack Python
    # allows, sampled often by the CPU and heap samplers, must run to the
    # end.  (When this was written, 12 KiB more on the handler's stack still
    # passed and 18 KiB more crashed the program.)
    write(tmp_path / "small.py", SMALL_STACK_PROG)
    proc = run_scalene("run", "--stacks", "--cpu-sampling-rate", "0.002",
                       "--allocation-sampling-window", "8192", "-o", "p.json", "small.py",
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    truth = json.loads((tmp_path / "truth.json").read_text())["thread_cpu"]
    data = json.loads((tmp_path / "p.json").read_text())
    path = str(tmp_path / "small.py")
    churn_line = next(i for i, text in enumerate(SMALL_STACK_PROG.splitlines(), 1)
                      if text.endswith("# CHURN"))
    lines = {e["lineno"]: e for e in data["files"][path]["lines"]}
    sec = sum(e["n_cpu_sec_python"] + e["n_cpu_sec_c"] + e["n_sys_sec"] for e in lines.values())
    # Most of the threads' time is on their lines (the loop's own lines
    # and churn's): 2 x 0.6 s at 2 ms (4 ms with a 250 Hz kernel tick) is
    # 300 to 600 samples.
    assert sec >= 0.5 * truth, (sec, truth)
    assert lines[churn_line]["n_mallocs"] > 0, lines[churn_line]
    assert any(frames[-1].startswith(path + " churn:") for frames, _ in data["stacks"])
