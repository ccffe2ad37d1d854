"""Profiling control from inside a program, as in Scalene:

    from scalene import scalene_profiler
    scalene_profiler.start()
    ...                     # profiled
    scalene_profiler.stop()

Usually with ``python3 -m scalene run --off prog.py``, so that only the code
between start() and stop() is profiled.  These work only under
``scalene run``; anywhere else they print an error and exit 1, as Scalene
does.  stop() only pauses sampling here: the profile is written once, when
the program ends (Scalene writes at stop(); that comes in a later version),
and elapsed time counts only the intervals when profiling was on.
"""

import contextlib
import sys

_session = None


def _attach(session):
    """Called by scalene.cli around the program's run."""
    global _session
    _session = session


def _not_under_scalene(what):
    sys.stderr.write(
        "scalene: error: scalene_profiler.%s() works only in a program run by "
        "Scalene, as in `python3 -m scalene run --off your_program.py`\n" % what)
    sys.stderr.flush()
    sys.exit(1)


def start():
    """Starts (or resumes) profiling."""
    if _session is None:
        _not_under_scalene("start")
    _session.start()


def stop():
    """Stops (pauses) profiling."""
    if _session is None:
        _not_under_scalene("stop")
    _session.stop()


def is_profiling():
    """True while samples are being taken."""
    return _session is not None and _session.running


@contextlib.contextmanager
def enable_profiling():
    """Profiles the body of a with statement."""
    start()
    try:
        yield
    finally:
        stop()
