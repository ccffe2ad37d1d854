"""Memory and copy profiling from Python, tested against truth.

Programs with lines that allocate (or copy) a known number of bytes run
under the real CLI (`python3 -m scalene run`, where memory is on by
default), or in a plain interpreter that calls scalene_profiler.start(); the per-line members of the JSON
profile (Scalene's names: n_malloc_mb, n_peak_mb, n_python_fraction, and
the top-level max_footprint_mb) must match what the lines did.

Tolerances follow from the heap sampler's statistics (docs/heap.md): with a
mean of R bytes between samples, a block of s bytes is sampled with
p = 1 - exp(-s/R) and then counts s/p bytes, an unbiased estimate whose
relative standard deviation over n such blocks is sqrt((1 - p) / (n p)).
Each test computes that sigma for its blocks and the window it uses and
checks that 4 sigma fits inside the tolerance before checking the profile,
so a passing test is not luck of the draw.  Truth is the bytes the line
allocated since profiling began (blocks made before start are not tracked).
"""

import json
import math

import pytest

from conftest import run_scalene, write

MIB = 1 << 20
WINDOW = 128 << 10  # --allocation-sampling-window for the accuracy tests


def rel_sigma(block, count, window):
    """Relative standard deviation of the estimated bytes of `count` blocks
    of `block` bytes each, sampled with mean `window` (docs/heap.md)."""
    p = 1.0 - math.exp(-block / window)
    return math.sqrt((1.0 - p) / (count * p))


def profile(tmp_path, source, *extra, window=WINDOW):
    """Runs `source` as prog.py with memory profiling; returns the JSON."""
    write(tmp_path / "prog.py", source)
    args = ["run", "--memory", "-o", "prof.json"]
    if window is not None:
        args += ["--allocation-sampling-window", str(window)]
    proc = run_scalene(*args, *extra, "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"not available" not in proc.stderr
    return json.loads((tmp_path / "prof.json").read_text())


def line(prof, lineno):
    """The JSON record of prog.py's line `lineno`."""
    files = [f for name, f in prof["files"].items() if name.endswith("prog.py")]
    assert len(files) == 1, sorted(prof["files"])
    for rec in files[0]["lines"]:
        if rec["lineno"] == lineno:
            return rec
    raise AssertionError("line %d not in the profile" % lineno)


def near(value, truth, tol):
    return abs(value - truth) <= tol * truth


KEEP = """\
import _scalenetest
keep200 = bytearray(200 << 20)
keep50 = [bytearray(1 << 20) for _ in range(50)]
_scalenetest.malloc_keep(100 << 20)
print("done")
"""


def test_kept_lines_volume_peak_and_python_share(tmp_path):
    # One 200 MiB block: p = 1, counted exactly.  50 blocks of 1 MiB at
    # R = 128 KiB: sigma 0.26 %.
    assert 4 * rel_sigma(MIB, 50, WINDOW) < 0.05
    prof = profile(tmp_path, KEEP)
    assert prof["memory"] is True
    big, small, native = line(prof, 2), line(prof, 3), line(prof, 4)
    print("200 MiB line:", big["n_malloc_mb"], big["n_peak_mb"], big["n_python_fraction"])
    print("50 MiB line:", small["n_malloc_mb"], small["n_peak_mb"], small["n_python_fraction"])
    print("C malloc line:", native["n_malloc_mb"], native["n_python_fraction"])
    assert near(big["n_malloc_mb"], 200, 0.05), big
    assert near(big["n_peak_mb"], 200, 0.05), big
    assert near(small["n_malloc_mb"], 50, 0.05), small
    assert near(small["n_peak_mb"], 50, 0.05), small
    # bytearray allocates through PyObject/PyMem: Python's; the helper's
    # malloc is native.
    assert abs(big["n_python_fraction"] - 1.0) <= 0.1, big
    assert abs(small["n_python_fraction"] - 1.0) <= 0.1, small
    assert near(native["n_malloc_mb"], 100, 0.05), native
    assert native["n_python_fraction"] <= 0.1, native


NUMPY = """\
import numpy as np
a = np.ones(25 << 20)
print(a.nbytes)
"""


def test_numpy_imported_while_profiling(tmp_path):
    pytest.importorskip("numpy")
    # numpy is imported (dlopen'ed) after profiling began: its GOT must be
    # patched on arrival, and its data buffer (PyDataMem: malloc) is native.
    prof = profile(tmp_path, NUMPY)
    rec = line(prof, 2)
    print("numpy line:", rec["n_malloc_mb"], rec["n_python_fraction"])
    assert near(rec["n_malloc_mb"], 200, 0.05), rec
    assert 1.0 - rec["n_python_fraction"] >= 0.9, rec


FOOTPRINT = """\
a = bytearray(100 << 20)
b = bytearray(150 << 20)
del a
del b
c = bytearray(50 << 20)
print(len(c))
"""


def test_max_footprint(tmp_path):
    # Live bytes peak at 250 MiB (lines 1 and 2), then fall; every block is
    # counted exactly (p = 1); the interpreter's own allocations after start
    # are a few hundred KiB.
    prof = profile(tmp_path, FOOTPRINT)
    print("max_footprint_mb:", prof["max_footprint_mb"])
    assert near(prof["max_footprint_mb"], 250, 0.05), prof["max_footprint_mb"]
    # The location of the allocation that set the peak: line 2 (or line 1,
    # should an unattributed allocation top it while line 1 was the last
    # attributed one); never null.
    assert prof["max_footprint_fname"] is not None
    assert prof["max_footprint_fname"].endswith("prog.py"), prof["max_footprint_fname"]
    assert prof["max_footprint_lineno"] in (1, 2), prof["max_footprint_lineno"]
    assert prof["final_footprint_mb"] == pytest.approx(50, rel=0.05)


CHURN = """\
for _ in range(32768):
    b = bytearray(64 << 10)
print("done")
"""


def test_churn_2gib_in_64k_pieces(tmp_path):
    # 32768 blocks of 64 KiB at the default R = 1 MiB: sigma 2.2 %, 4 sigma
    # 8.8 % < 10 %.  Each block is freed by the next iteration.
    window = 1 << 20
    assert 4 * rel_sigma(64 << 10, 32768, window) < 0.10
    prof = profile(tmp_path, CHURN, window=None)
    rec = line(prof, 2)
    print("churn line:", rec["n_malloc_mb"], rec["n_peak_mb"])
    assert near(rec["n_malloc_mb"], 2048, 0.10), rec
    assert rec["n_peak_mb"] < 64, rec  # freed as it goes: no 2 GiB of live memory


def test_memory_flag_and_view_columns(tmp_path):
    write(tmp_path / "prog.py", "keep = bytearray(20 << 20)\nprint(len(keep))\n")
    proc = run_scalene("run", "--memory", "-o", "m.json", "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert json.loads((tmp_path / "m.json").read_text())["memory"] is True
    view = run_scalene("view", "--cli", "m.json", cwd=tmp_path)
    assert view.returncode == 0, view.stderr.decode(errors="replace")
    text = view.stdout.decode(errors="replace")
    assert "Memory" in text and "peakMB" in text and "net MB" in text, text
    assert "Copy" in text and "MB/s" in text, text
    # CPU only: --cpu-only (which wins over --memory), or --cpu alone.
    for args in (["--cpu-only"], ["--cpu-only", "--memory"], ["--cpu"]):
        proc = run_scalene("run", *args, "-o", "c.json", "prog.py", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert json.loads((tmp_path / "c.json").read_text())["memory"] is False, args
        view = run_scalene("view", "--cli", "c.json", cwd=tmp_path)
        assert "peakMB" not in view.stdout.decode(errors="replace")


@pytest.mark.parametrize("option,value", [
    ("--allocation-sampling-window", "0"), ("--allocation-sampling-window", "-5"),
    ("--allocation-sampling-window", "abc"), ("--allocation-sampling-window", "1.5"),
    ("--allocation-sampling-window", str((1 << 40) + 1)),
    ("--copy-sampling-window", "0"), ("--copy-sampling-window", "1e6"),
    ("--malloc-threshold", "-1"), ("--malloc-threshold", "abc"),
    ("--malloc-threshold", "2.5"), ("--malloc-threshold", str((1 << 40) + 1)),
])
def test_bad_memory_option(tmp_path, option, value):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", option, value, "prog.py", cwd=tmp_path)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.decode().splitlines() if "error" in ln]
    assert len(errors) == 1 and option in errors[0], proc.stderr
    assert b"ran" not in proc.stdout


def test_start_stop_leaves_no_hook(tmp_path):
    # In-process: the binding's Profiler, started and stopped repeatedly,
    # leaves neither Python's allocators nor a GOT entry hooked.
    src = """\
import json, sys
from scalene import _core, profiler
p = _core.Profiler(memory=True, malloc_sampling_bytes=65536, program_path=sys.argv[1],
                   own_prefix=profiler.own_prefix())
out = []
for i in range(5):
    p.start()
    x = bytearray(4 << 20)
    h = p.stats()["heap"]
    out.append((h["python_hooks"], h["hooked_objects"] > 0))
    p.stop()
    h = p.stats()["heap"]
    out.append((h["python_hooks"], h["hooked_objects"]))
print(json.dumps(out))
"""
    from conftest import run_python
    write(tmp_path / "inproc.py", src)
    proc = run_python("inproc.py", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = json.loads(proc.stdout)
    assert out == [[1, True], [0, 0]] * 5, out
