"""Shared fixtures for the Python tests.

The tests exercise the package built in this tree: `make check-python` sets
SCALENE_BUILD_PYTHONPATH (and PYTHONPATH) to $builddir/pybuild, which holds
our scalene/ package and the freshly built scalene._core.  Debian also ships
a `scalene` (1.5.16, /usr/lib/python3/dist-packages); if that one, or any
other, would be imported instead of ours, the whole run stops with an error
rather than testing the wrong thing.

The CLI is always started as a subprocess (`sys.executable -m scalene …`)
with the same environment, exactly as a user would start it.
"""

import os
import subprocess
import sys

import pytest

BUILD = os.environ.get("SCALENE_BUILD_PYTHONPATH", "")


def _abort(msg):
    raise pytest.UsageError("tests/python: " + msg)


if not BUILD or not os.path.isdir(os.path.join(BUILD, "scalene")):
    _abort("SCALENE_BUILD_PYTHONPATH must name the built package directory "
           "(pybuild/, containing scalene/); run the tests with `make check-python`. "
           "Got %r." % BUILD)

BUILD = os.path.realpath(BUILD)
if sys.path[:1] != [BUILD]:
    sys.path.insert(0, BUILD)


def _under(path, prefix):
    path = os.path.realpath(path)
    return path == prefix or path.startswith(prefix + os.sep)


def subprocess_env(**extra):
    """The environment for subprocesses: ours first on PYTHONPATH."""
    env = dict(os.environ)
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
            if p and os.path.realpath(p) != BUILD]
    env["PYTHONPATH"] = os.pathsep.join([BUILD] + rest)
    env["SCALENE_BUILD_PYTHONPATH"] = BUILD
    env.pop("PYTHONSAFEPATH", None)
    env.update(extra)
    return env


# In this process ...
import scalene  # noqa: E402

if not _under(scalene.__file__, BUILD):
    _abort("imported the wrong scalene: %s (expected one under %s)"
           % (scalene.__file__, BUILD))

# ... and in the subprocesses the tests start.
_probe = subprocess.run(
    [sys.executable, "-c", "import scalene, scalene.cli; print(scalene.__file__)"],
    env=subprocess_env(), cwd="/", capture_output=True, text=True, timeout=60)
if _probe.returncode != 0 or not _under(_probe.stdout.strip(), BUILD):
    _abort("a subprocess imports the wrong scalene (%r, status %d, stderr %r); "
           "expected one under %s" % (_probe.stdout.strip(), _probe.returncode,
                                      _probe.stderr.strip(), BUILD))


TIMEOUT = 120

# The start of a test program whose cost is known: spin(seconds) burns that
# much CPU time of the calling thread (time.process_time), in Python.
SPIN_SOURCE = '''
import os, sys, time

def spin(seconds):
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    return n
'''


def run_scalene(*args, cwd, env=None, timeout=TIMEOUT):
    """`python3 -m scalene ARGS` in cwd; a CompletedProcess with bytes output."""
    return subprocess.run([sys.executable, "-m", "scalene", *map(str, args)],
                          cwd=str(cwd), env=env or subprocess_env(), capture_output=True,
                          timeout=timeout)


def run_python(*args, cwd, env=None, timeout=TIMEOUT):
    """Plain `python3 ARGS` in cwd, for comparison."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=str(cwd),
                          env=env or subprocess_env(), capture_output=True, timeout=timeout)


def write(path, text):
    """Writes text to path (creating directories); returns path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def stderr_lines(proc):
    return proc.stderr.decode(errors="replace").splitlines()


@pytest.fixture
def scalene_cmd():
    return run_scalene


@pytest.fixture
def python_cmd():
    return run_python
