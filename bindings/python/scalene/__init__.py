"""scalene: a Scalene-compatible Python profiler built on libscaleneprof.

    python3 -m scalene run prog.py --- args     profile a program
    python3 -m scalene view --cli               show the profile in the terminal

Importing this package is cheap and never loads the C extension: the
extension (scalene._core) is imported only when a profile is taken or shown
(see scalene.profiler).  The command line lives in scalene.cli; the code that
runs the user's program exactly as plain Python would lives in
scalene.runner; scalene.scalene_profiler gives programs start() and stop()
(also as scalene.start() and scalene.stop()).
"""

__version__ = "0.1.0"


def start():
    """scalene.scalene_profiler.start(): see there."""
    from scalene import scalene_profiler
    scalene_profiler.start()


def stop():
    """scalene.scalene_profiler.stop(): see there."""
    from scalene import scalene_profiler
    scalene_profiler.stop()
