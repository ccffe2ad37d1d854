"""Profiling control from inside a program, as in Scalene:

    from scalene import scalene_profiler
    scalene_profiler.start()
    ...                     # profiled
    scalene_profiler.stop()

Under ``python3 -m scalene run`` (usually with ``--off``), start() and
stop() turn sampling on and off; the profile is written once, when the
program ends, and its elapsed time counts only the intervals when profiling
was on.

In a plain interpreter (not started by ``scalene run``), start() begins a
session with the defaults of ``run`` -- CPU, memory and copy profiling, the
program's code being the main script's directory (or the current directory
when there is no script) -- with no re-execution: the allocators are hooked
in this very process.  stop() stops it, removes every hook and writes the
profile atomically to $SCALENE_OUTFILE, or to scalene-profile.json in the
current directory, and says so on stderr.  A later start() continues the
same profile and the next stop() rewrites the file.  A session still on
when the interpreter exits is stopped and written then.
"""

import contextlib
import os
import sys

_session = None      # the session of `scalene run`, or the standalone one
_standalone = False  # _session was made here, in a plain interpreter
_profile_ranges = []  # (co_filename, first line, last line) of @profile functions


def _attach(session):
    """Called by scalene.cli around the program's run."""
    global _session, _standalone
    _session = session
    _standalone = False


def _fail(message):
    sys.stderr.write("scalene: error: %s\n" % " ".join(str(message).split()))
    sys.stderr.flush()
    sys.exit(1)


def _standalone_session():
    """The session of a plain interpreter, made at the first start()."""
    global _session, _standalone
    from scalene import cli, profiler
    try:
        profiler.load_core()
    except profiler.CoreUnavailable as e:
        _fail(e)
    options = cli.resolve_kinds(cli.run_parser().parse_args([]))
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script:
        program_path = os.path.dirname(os.path.abspath(script))
        program = os.path.abspath(script)
    else:
        program_path = os.getcwd()
        program = sys.argv[0] if sys.argv and sys.argv[0] else "<stdin>"
    try:
        session = profiler.Session(options, program_path)
        session.set_program(program, sys.argv)
    except profiler.core_error_types() as e:
        _fail(e)
    _session = session
    _standalone = True
    import atexit
    atexit.register(_at_exit)
    return session


def _outfile():
    return os.environ.get("SCALENE_OUTFILE") or "scalene-profile.json"


def _write_standalone():
    from scalene import cli, profiler
    outfile = _outfile()
    _session.profiler.drain()
    cli._flush_stdout()
    try:
        _session.write(os.path.abspath(outfile))
    except profiler.core_error_types() as e:
        reason = str(e)
        if outfile not in reason:
            reason = "%s: %s" % (outfile, reason)
        cli._error("cannot save the profile: %s" % reason)
        return
    cli._stderr(cli.saved_message(outfile))


def _at_exit():
    if _standalone and _session is not None and _session.running \
            and not _session.is_forked_child:
        _session.stop()
        _write_standalone()


def start():
    """Starts (or resumes) profiling."""
    session = _session if _session is not None else _standalone_session()
    if _standalone and session.is_forked_child:
        return
    try:
        session.start()
    except Exception as e:  # _core.Error: the signal is taken, another Profiler runs
        from scalene import profiler
        if isinstance(e, profiler.core_error_types()):
            _fail(e)
        raise


def stop():
    """Stops (pauses) profiling; in a plain interpreter, also writes the
    profile."""
    if _session is None:
        return
    if _standalone:
        if _session.is_forked_child or not _session.running:
            return
        _session.stop()
        _write_standalone()
    else:
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


def _code_lines(code):
    """The first and last line of a code object and the code nested in it
    (inner functions, comprehensions, lambdas)."""
    first = last = code.co_firstlineno
    stack = [code]
    while stack:
        c = stack.pop()
        for _, _, line in c.co_lines():
            if line is not None:
                first = min(first, line)
                last = max(last, line)
        stack.extend(k for k in c.co_consts if hasattr(k, "co_lines"))
    return first, last


def profile(func):
    """The @profile decorator (under ``scalene run`` also ``builtins.profile``,
    as in Scalene): once any function is decorated, only the lines of
    decorated functions are charged; time elsewhere goes to the innermost
    decorated caller, or to no line.  Returns func unchanged.  Classes,
    builtins and other callables without Python code are returned as they
    are, not registered."""
    target = func
    for attr in ("__func__", "__wrapped__"):  # methods, functools.wraps
        while hasattr(target, attr) and not hasattr(target, "__code__"):
            target = getattr(target, attr)
    code = getattr(target, "__code__", None)
    if code is None or not hasattr(code, "co_lines"):
        return func
    first, last = _code_lines(code)
    entry = (code.co_filename, first, last)
    if entry not in _profile_ranges:
        _profile_ranges.append(entry)
        if _session is not None:
            _session.add_profile_range(*entry)
    return func

