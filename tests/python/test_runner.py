"""The program must not notice that it runs under `scalene run`.

Each test runs a small program twice, with plain `python3` and with
`python3 -m scalene run`, and compares what the program sees and prints,
its exit status and (byte for byte) its traceback.  These runs go through
the real profiler: a broken scalene._core fails them.
"""

import json
import os
import signal

import pytest

from conftest import run_python, run_scalene, stderr_lines, write

SAVED = b"Scalene: profile saved to "

SEES = r'''
import json, sys
main = sys.modules["__main__"]
print(json.dumps({
    "argv": sys.argv,
    "name": __name__,
    "file": __file__,
    "path": sys.path,
    "globals": sorted(k for k in globals() if k.startswith("__")),
    "main_is_me": main.__dict__ is globals(),
    "spec": None if __spec__ is None else __spec__.name,
    "package": __package__,
    "loader": type(__loader__).__name__,
    "cached": __cached__,
}))
'''


def _seen(proc):
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout.decode().splitlines()[-1])


def _split_saved(stderr):
    """(program's stderr, our trailer) of a `scalene run`."""
    at = stderr.rfind(SAVED)
    assert at >= 0, stderr.decode(errors="replace")
    return stderr[:at], stderr[at:]


def test_script_sees_plain_python_view(tmp_path):
    write(tmp_path / "sub" / "prog.py", SEES)
    args = ["sub/prog.py", "a b", "-o", "--cpu-only", "---", "--version"]
    plain = _seen(run_python(*args, cwd=tmp_path))
    ours = _seen(run_scalene("run", "-o", "out.json", "sub/prog.py", "---", *args[1:],
                             cwd=tmp_path))
    assert ours == plain
    assert ours["argv"] == args
    assert ours["name"] == "__main__"
    assert ours["file"] == str(tmp_path / "sub" / "prog.py")
    assert ours["path"][0] == os.path.realpath(tmp_path / "sub")
    assert ours["main_is_me"] is True
    assert (tmp_path / "out.json").is_file()


def test_args_after_program_without_separator(tmp_path):
    write(tmp_path / "prog.py", SEES)
    ours = _seen(run_scalene("run", "prog.py", "--profile-all", "-m", "x", "---", "y",
                             cwd=tmp_path))
    assert ours["argv"] == ["prog.py", "--profile-all", "-m", "x", "---", "y"]


def test_symlinked_directory_resolved_in_sys_path(tmp_path):
    write(tmp_path / "real" / "prog.py", SEES)
    os.symlink(tmp_path / "real", tmp_path / "link")
    plain = _seen(run_python("link/prog.py", cwd=tmp_path))
    ours = _seen(run_scalene("run", "link/prog.py", cwd=tmp_path))
    assert ours == plain
    assert ours["path"][0] == os.path.realpath(tmp_path / "real")
    assert ours["file"] == str(tmp_path / "link" / "prog.py")


def _package(tmp_path):
    pkg = tmp_path / "pkg"
    write(pkg / "__init__.py", "")
    write(pkg / "helper.py", "VALUE = 'helper'\n")
    write(pkg / "sub" / "__init__.py", "")
    write(pkg / "sub" / "thing.py", "from ..helper import VALUE\nTHING = VALUE + '+thing'\n")
    body = "from .helper import VALUE\nfrom .sub.thing import THING\nprint(THING)\n" + SEES
    write(pkg / "__main__.py", body)
    write(pkg / "tool.py", body)
    return pkg


@pytest.mark.parametrize("module", ["pkg", "pkg.tool"])
def test_module_with_relative_imports(tmp_path, module):
    _package(tmp_path)
    plain = run_python("-m", module, "x", "--cpu-only", cwd=tmp_path)
    ours = run_scalene("run", "-m", module, "x", "--cpu-only", cwd=tmp_path)
    assert ours.stdout.splitlines()[0] == b"helper+thing"
    assert _seen(ours) == _seen(plain)
    seen = _seen(ours)
    assert seen["name"] == "__main__"
    assert seen["path"][0] == str(tmp_path)
    assert seen["argv"][1:] == ["x", "--cpu-only"]
    assert seen["argv"][0] == seen["file"]
    assert seen["package"] == "pkg"


def test_module_after_separator(tmp_path):
    _package(tmp_path)
    ours = run_scalene("run", "--", "-m", "pkg.tool", "--off", cwd=tmp_path)
    assert _seen(ours)["argv"][1:] == ["--off"]


DATASTACK = '''
import json
import _scalenetest

def down(n):
    if n == 0:
        return _scalenetest.datastack()
    return down(n - 1)

top = _scalenetest.datastack()
deep = down(300)  # more frames than one 16 KiB chunk holds
after = _scalenetest.datastack()
print(json.dumps([top, deep, after]))
'''


@pytest.mark.parametrize("how", ["script", "module"])
def test_frames_lie_where_plain_python_puts_them(tmp_path, how):
    # CPython keeps frames in 16 KiB chunks and maps and unmaps a chunk
    # each time a call crosses a chunk's end: a program's speed depends on
    # where its frames start.  Under the profiler they must start where
    # they do in a plain run -- on the thread's root chunk, at the same
    # slot -- and not after the runner's frames.
    write(tmp_path / "prog.py", DATASTACK)
    args = ["prog.py"] if how == "script" else ["-m", "prog"]
    plain = run_python(*args, cwd=tmp_path)
    ours = run_scalene("run", "--cpu-only", "-o", "out.json", *args, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr.decode()
    assert ours.returncode == 0, ours.stderr.decode()
    top, deep, after = json.loads(plain.stdout)
    assert top[0] is True and deep[0] is False and after == top
    assert json.loads(ours.stdout) == [top, deep, after]


RAISES = '''
import sys

def inner(x):
    return {"a": 1}[x]

def outer():
    try:
        inner("b")
    except KeyError as e:
        raise ValueError("bad value " + str(len(sys.argv))) from e

print("before", flush=True)
outer()
'''


def test_traceback_byte_for_byte(tmp_path):
    write(tmp_path / "prog.py", RAISES)
    plain = run_python("prog.py", "x", cwd=tmp_path)
    ours = run_scalene("run", "prog.py", "x", cwd=tmp_path)
    assert plain.returncode == 1
    assert ours.returncode == 1
    assert ours.stdout == plain.stdout == b"before\n"
    program_err, trailer = _split_saved(ours.stderr)
    assert program_err == plain.stderr
    assert b"Traceback (most recent call last):" in program_err
    assert b"scalene" not in program_err
    assert (tmp_path / "scalene-profile.json").is_file()


def test_module_traceback_byte_for_byte(tmp_path):
    pkg = _package(tmp_path)
    write(pkg / "boom.py", "from .helper import VALUE\n" + RAISES)
    plain = run_python("-m", "pkg.boom", cwd=tmp_path)
    ours = run_scalene("run", "-m", "pkg.boom", cwd=tmp_path)
    assert ours.returncode == plain.returncode == 1
    program_err, _ = _split_saved(ours.stderr)
    assert program_err == plain.stderr
    assert b'File "<frozen runpy>"' in program_err


def test_syntax_error_byte_for_byte(tmp_path):
    write(tmp_path / "bad.py", "x = 1\ny = (\n")
    plain = run_python("bad.py", cwd=tmp_path)
    ours = run_scalene("run", "bad.py", cwd=tmp_path)
    assert ours.returncode == plain.returncode == 1
    program_err, _ = _split_saved(ours.stderr)
    assert program_err == plain.stderr
    assert b"SyntaxError" in program_err


@pytest.mark.parametrize("call, status, message", [
    ("sys.exit()", 0, b""),
    ("sys.exit(None)", 0, b""),
    ("sys.exit(0)", 0, b""),
    ("sys.exit(3)", 3, b""),
    ("sys.exit(True)", 1, b""),
    ("sys.exit('it failed')", 1, b"it failed\n"),
    ("raise SystemExit(42)", 42, b""),
])
def test_sys_exit(tmp_path, call, status, message):
    write(tmp_path / "prog.py", "import sys\ndef f():\n    %s\nf()\nprint('not reached')\n" % call)
    plain = run_python("prog.py", cwd=tmp_path)
    ours = run_scalene("run", "-o", "p.json", "prog.py", cwd=tmp_path)
    assert plain.returncode == status
    assert ours.returncode == status
    assert ours.stdout == plain.stdout == b""
    program_err, trailer = _split_saved(ours.stderr)
    assert program_err == plain.stderr == message
    assert trailer.startswith(SAVED + b"p.json\n")
    assert json.loads((tmp_path / "p.json").read_text())["files"] is not None


def test_os_exit(tmp_path):
    write(tmp_path / "prog.py", "import os, sys\nprint('out', flush=True)\nos._exit(7)\n")
    ours = run_scalene("run", "prog.py", cwd=tmp_path)
    assert ours.returncode == 7
    assert ours.stdout == b"out\n"


HOOK = '''
import sys

def hook(etype, value, tb):
    first = tb.tb_frame.f_code.co_filename if tb is not None else None
    print("HOOK", etype.__name__, value, first == __file__, file=sys.stderr)

sys.excepthook = hook
raise RuntimeError("custom")
'''


def test_custom_excepthook(tmp_path):
    write(tmp_path / "prog.py", HOOK)
    plain = run_python("prog.py", cwd=tmp_path)
    ours = run_scalene("run", "prog.py", cwd=tmp_path)
    assert ours.returncode == plain.returncode == 1
    program_err, _ = _split_saved(ours.stderr)
    assert program_err == plain.stderr == b"HOOK RuntimeError custom True\n"


def test_keyboard_interrupt_ends_by_sigint(tmp_path):
    write(tmp_path / "prog.py",
          "import atexit\natexit.register(print, 'atexit ran')\nraise KeyboardInterrupt\n")
    plain = run_python("prog.py", cwd=tmp_path)
    ours = run_scalene("run", "prog.py", cwd=tmp_path)
    assert plain.returncode == ours.returncode == -signal.SIGINT
    assert ours.stdout == plain.stdout == b"atexit ran\n"
    program_err, _ = _split_saved(ours.stderr)
    assert program_err == plain.stderr
    assert (tmp_path / "scalene-profile.json").is_file()


THREADS = '''
import threading, time

def work():
    time.sleep(0.3)
    print("thread done", flush=True)

threading.Thread(target=work).start()
print("main done", flush=True)
'''


def test_waits_for_non_daemon_threads(tmp_path):
    write(tmp_path / "prog.py", THREADS)
    ours = run_scalene("run", "prog.py", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr.decode()
    assert ours.stdout == b"main done\nthread done\n"
    assert ours.stderr.startswith(SAVED)


def test_program_may_chdir(tmp_path):
    write(tmp_path / "prog.py", "import os\nos.makedirs('elsewhere')\nos.chdir('elsewhere')\n")
    ours = run_scalene("run", "-o", "kept.json", "prog.py", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr.decode()
    assert (tmp_path / "kept.json").is_file()
    assert not (tmp_path / "elsewhere" / "kept.json").exists()


CONTROL = '''
from scalene import scalene_profiler
print(scalene_profiler.is_profiling())
scalene_profiler.start()
print(scalene_profiler.is_profiling())
scalene_profiler.stop()
print(scalene_profiler.is_profiling())
'''


def test_start_stop_under_run_off(tmp_path):
    write(tmp_path / "prog.py", CONTROL)
    ours = run_scalene("run", "--off", "prog.py", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr.decode()
    assert ours.stdout == b"False\nTrue\nFalse\n"
    ours = run_scalene("run", "--on", "prog.py", cwd=tmp_path)
    assert ours.stdout == b"True\nTrue\nFalse\n"


def test_start_stop_in_a_plain_interpreter(tmp_path):
    # Outside `scalene run`, start() begins a session of its own and stop()
    # writes the profile (tests/python/test_memory.py checks its contents).
    write(tmp_path / "prog.py", CONTROL)
    plain = run_python("prog.py", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr.decode()
    assert plain.stdout == b"False\nTrue\nFalse\n"
    assert stderr_lines(plain)[0] == "Scalene: profile saved to scalene-profile.json"
    assert json.loads((tmp_path / "scalene-profile.json").read_text())["memory"] is True
