"""Runs the user's program exactly as plain Python would.

The program must not be able to tell that it runs under the profiler:

* sys.argv is the script path as given followed by its arguments (for
  ``-m``, the module's file as ``python3 -m`` sets it);
* it runs in a fresh ``__main__`` module installed as sys.modules['__main__']
  with the globals CPython gives a main module (``__file__`` absolute, as
  since Python 3.9; ``__loader__`` a SourceFileLoader; ``__spec__`` None;
  ``__annotations__`` {});
* sys.path[0] is the script's directory with symbolic links resolved (for
  ``-m``, the current directory), unless -P / PYTHONSAFEPATH is in effect;
* ``-m`` goes through runpy._run_module_as_main, the function ``python3 -m``
  calls, so its ``<frozen runpy>`` frames appear in a traceback as usual;
* an uncaught exception is printed through sys.excepthook (so a program's
  own hook is honoured) with the traceback starting at the program's first
  frame: none of our frames appear; the exit status is 1;
* SystemExit follows CPython's rules (None -> 0, an int -> itself, anything
  else is printed to stderr and gives 1); KeyboardInterrupt prints its
  traceback and, after the profile is written, the process ends by SIGINT,
  as CPython 3.8+ does;
* non-daemon threads are waited for before profiling stops, as the
  interpreter would wait for them before exiting;
* the profile is saved however the program ends (execute's save): also at
  os._exit(n), which is wrapped for the program's duration (a forked
  child's passes straight through), and at SIGTERM while its disposition
  is the default: the handler we install then saves the profile and the
  process dies of SIGTERM, as it would have.  The session's guard
  (guard_sigterm) makes that handler run even when the signal lands just
  before the main thread blocks, or else lets SIGTERM kill the process.
  A program that installs its own SIGTERM handler replaces ours.  Fatal
  signals (SIGSEGV ...) are the session's business (scalene.profiler,
  _core_fault.c).

Nothing here imports scalene._core: the session object passed to execute()
only needs begin(), end() and call_on_fresh_stack(fn, *args), which calls
the program's code with the thread's frame stack started afresh, as plain
Python starts it (_core.c: core_call_on_fresh_stack), and with a save, the
SIGTERM guard's guard_sigterm(), sigterm_taken(), unguard_sigterm() and
TERM_GRACE_RUN.
"""

import _thread
import os
import sys
import types

# Files whose frames are ours and are cut from the program's tracebacks.
_OUR_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_our_frame(frame):
    return os.path.dirname(frame.f_code.co_filename) == _OUR_DIR


class RunError(Exception):
    """The program cannot be started; str() is the one-line reason."""


class Program:
    """What to run: a script (kind 'script') or a module (kind 'module').

    target is the script path or module name as the user gave it, args the
    program's own arguments.  prepare() resolves it: path (absolute script
    path, or module origin once known), source (the script's bytes) and
    default_program_path (the root of "user code", see scalene.profiler).
    """

    def __init__(self, kind, target, args):
        self.kind = kind
        self.target = target
        self.args = list(args)
        self.path = None
        self.source = None
        self.default_program_path = None

    @property
    def argv(self):
        """sys.argv as the program will first see it."""
        if self.kind == "script":
            return [self.target] + self.args
        return [self.path or self.target] + self.args

    def identity(self):
        """(program, argv) as the profile names them, at any moment of the
        run: for -m, the module's file once runpy has set __main__.__file__
        (execute sets self.path from it only at the end)."""
        if self.kind == "module":
            main = sys.modules.get("__main__")
            path = getattr(main, "__file__", None) or self.path or self.target
            return path, [path] + self.args
        return self.path or self.target, self.argv

    def prepare(self):
        """Checks that the program exists; raises RunError.  Sets sys.path[0]."""
        if self.kind == "script":
            self._prepare_script()
        else:
            self._prepare_module()

    def _prepare_script(self):
        path = os.path.abspath(self.target)
        if os.path.isdir(path):
            raise RunError(
                "can't run directory '%s': running a directory or zip archive "
                "is not supported; run its __main__.py" % path)
        try:
            with open(path, "rb") as f:
                self.source = f.read()
        except OSError as e:
            raise RunError("can't open file '%s': [Errno %d] %s"
                           % (path, e.errno, e.strerror)) from None
        self.path = path
        directory = os.path.dirname(os.path.realpath(path))
        self.default_program_path = os.path.dirname(path)
        _set_sys_path0(directory)

    def _prepare_module(self):
        import importlib.util
        _set_sys_path0(os.getcwd())
        name = self.target
        top = name.partition(".")[0]
        # find_spec of a top-level name runs no package code.
        try:
            spec = importlib.util.find_spec(top) if top else None
        except (ImportError, ValueError) as e:
            raise RunError("Error while finding module specification for %r (%s: %s)"
                           % (name, type(e).__name__, e)) from None
        if spec is None:
            raise RunError("No module named %s" % (top or name))
        if spec.submodule_search_locations:
            root = list(spec.submodule_search_locations)[0]
        elif spec.origin and os.path.isabs(spec.origin):
            root = os.path.dirname(spec.origin)
        else:
            root = os.getcwd()  # built-in or frozen
        self.default_program_path = os.path.abspath(root)
        if top == name and spec.origin and os.path.isabs(spec.origin) \
                and not spec.submodule_search_locations:
            self.path = spec.origin


def _set_sys_path0(entry):
    """What the interpreter puts first in sys.path for a script / -m."""
    if getattr(sys.flags, "safe_path", False):
        return
    if sys.path:
        sys.path[0] = entry
    else:
        sys.path.insert(0, entry)


def _fresh_main():
    """A new __main__ module as CPython creates it, installed in sys.modules."""
    import builtins
    main = types.ModuleType("__main__")
    main.__dict__["__annotations__"] = {}
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    return main


class Outcome:
    """How the program ended: status (exit status) and interrupted (it ended
    by KeyboardInterrupt, so the process must end by SIGINT)."""

    def __init__(self, status, interrupted=False):
        self.status = status
        self.interrupted = interrupted


def _strip_our_frames(tb):
    while tb is not None and _is_our_frame(tb.tb_frame):
        tb = tb.tb_next
    return tb


def _print_exception(exc):
    """Prints exc as the interpreter prints an uncaught exception."""
    tb = _strip_our_frames(exc.__traceback__)
    exc.__traceback__ = tb
    etype = type(exc)
    sys.last_type, sys.last_value, sys.last_traceback = etype, exc, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = exc
    hook = getattr(sys, "excepthook", None)
    if hook is None:
        _write_stderr("sys.excepthook is missing\n")
        sys.__excepthook__(etype, exc, tb)
        return
    try:
        hook(etype, exc, tb)
    except BaseException as hook_exc:  # as PyErr_PrintEx does
        _write_stderr("Error in sys.excepthook:\n")
        sys.__excepthook__(type(hook_exc), hook_exc,
                           _strip_our_frames(hook_exc.__traceback__))
        _write_stderr("\nOriginal exception was:\n")
        sys.__excepthook__(etype, exc, tb)


def _write_stderr(text):
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    if stream is not None:
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass


def _system_exit_status(exc):
    """CPython's handling of an uncaught SystemExit (handle_system_exit)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    if stream is not None:
        try:
            stream.write(str(code) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass
    return 1


def _is_runpy_lookup_exit(exc):
    """True for the SystemExit runpy raises when -m cannot find the module:
    sys.exit("<executable>: <reason>") straight from _run_module_as_main."""
    if not isinstance(exc.code, str):
        return False
    prefix = "%s: " % sys.executable
    if not exc.code.startswith(prefix):
        return False
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return (last is not None
            and last.tb_frame.f_code.co_name == "_run_module_as_main")


def join_threads():
    """Waits for non-daemon threads, as interpreter shutdown does."""
    threading = sys.modules.get("threading")
    if threading is None:
        return
    me = threading.current_thread()
    try:
        while True:
            alive = [t for t in threading.enumerate()
                     if t is not me and not t.daemon and t.is_alive()]
            if not alive:
                return
            for t in alive:
                t.join()
    except KeyboardInterrupt:
        return


def execute(program, session, on=True, save=None):
    """Runs a prepared program under session; returns an Outcome.

    session.begin(on) is called right before the program's first
    instruction and session.end() after it finished (threads included);
    session may be None (run without profiling).

    save(status, abrupt), if given, saves the profile and returns the exit
    status to use (the program's, or 1 if it was 0 and the save failed).  It
    is called exactly once, after session.end(), in the process that
    started: when the program returns (then abrupt is False and the
    returned status is the Outcome's), or at os._exit / SIGTERM (abrupt
    True: the standard streams are not flushed, as the interpreter would
    not flush them; then the process ends as the program asked).  Not in
    a forked child, nor when execute raises RunError.
    """
    main = _fresh_main()
    call = session.call_on_fresh_stack if session is not None else _call
    if program.kind == "script":
        run = _script_runner(program, main, call)
    else:
        run = _module_runner(program, call)
    ending = _Ending(session, save) if save is not None and session is not None else None
    if ending is not None:
        ending.install()
    outcome = None
    claimed = False
    try:
        if session is not None:
            session.begin(on)
        try:
            outcome = run()
            join_threads()
        finally:
            if ending is not None:
                claimed = ending.claim()
                if not claimed:
                    ending.wait()  # os._exit in another thread saved: it ends the process
            if session is not None:
                session.end()
        if program.kind != "script":
            main = sys.modules.get("__main__")
            if main is not None and getattr(main, "__file__", None):
                program.path = main.__file__
        if claimed:
            outcome.status = ending.finish(outcome.status, abrupt=False)
    finally:
        if ending is not None:
            ending.remove()
            if ending.pending is not None:
                _die_by(ending.pending, _os_exit)  # SIGTERM came while saving
    return outcome


_os_exit = os._exit  # the real one, whatever the program does to os


class _Ending:
    """The end of a run, whichever way it comes.

    Exactly one thread saves the profile: the first to claim() it (the
    main thread when the program returns, the thread that calls
    os._exit, or the main thread running our SIGTERM handler).  Another
    thread that ends the program meanwhile waits for that save, then ends
    the process its own way; a SIGTERM that arrives while the main thread
    itself saves is acted on after the save.
    """

    RUNNING, SAVING, DONE = range(3)

    def __init__(self, session, save):
        self.session = session
        self.save = save
        self.pid = os.getpid()
        self.lock = _thread.allocate_lock()
        self.saved = _thread.allocate_lock()  # held until the save is over
        self.saved.acquire()
        self.state = self.RUNNING
        self.owner = None
        self.pending = None   # a signal to die of once the save is over
        self.exit_wrapper = None
        self.term_handler = None

    def install(self):
        """Wraps os._exit; handles SIGTERM if its disposition is the default
        (only the main thread can: elsewhere SIGTERM stays untouched)."""
        def _exit(status):
            return self._exit(status)
        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            try:
                setattr(_exit, attr, getattr(_os_exit, attr))
            except (AttributeError, TypeError):
                pass
        self.exit_wrapper = _exit
        os._exit = _exit
        import signal
        try:
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                def _on_sigterm(signum, frame):
                    self.session.sigterm_taken()
                    self._on_signal(signum)
                signal.signal(signal.SIGTERM, _on_sigterm)
                self.term_handler = _on_sigterm
                self.session.guard_sigterm(self.session.TERM_GRACE_RUN, say=True)
        except (ValueError, OSError):  # not the main thread
            pass

    def remove(self):
        """Undoes install(), except where the program has put its own."""
        if self.exit_wrapper is not None and os._exit is self.exit_wrapper:
            os._exit = _os_exit
        self.exit_wrapper = None
        if self.term_handler is not None:
            import signal
            if os.getpid() == self.pid:  # a forked child's guard is its own
                self.session.unguard_sigterm()
            try:
                if signal.getsignal(signal.SIGTERM) is self.term_handler:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
            except (ValueError, OSError):
                pass
            self.term_handler = None

    def claim(self):
        """True if the calling thread is to save the profile (then it must
        call finish())."""
        with self.lock:
            if self.state != self.RUNNING:
                return False
            self.state = self.SAVING
            self.owner = _thread.get_ident()
            return True

    def wait(self):
        """Waits until the thread that claimed the save is done."""
        if self.owner != _thread.get_ident():
            self.saved.acquire()
            self.saved.release()

    def finish(self, status, abrupt):
        """Ends the session and saves; returns the status to exit with."""
        try:
            self.session.end()
            if os.getpid() == self.pid:
                status = self.save(status, abrupt)
        finally:
            self.state = self.DONE
            self.saved.release()
        return status

    def _exit(self, status):
        """os._exit while the program runs: the profile first."""
        try:
            import operator
            code = operator.index(status)
            valid = -(1 << 31) <= code < (1 << 31)
        except TypeError:
            valid = False
        if valid and os.getpid() == self.pid:
            if self.claim():
                try:
                    self.finish(code, abrupt=True)
                except BaseException:
                    pass  # the program asked to exit now: it does
            else:
                self.wait()
        _os_exit(status)

    def _on_signal(self, signum):
        """Our SIGTERM handler (the main thread, between two bytecodes)."""
        if os.getpid() == self.pid:
            if self.claim():
                try:
                    self.finish(128 + signum, abrupt=True)
                except BaseException:
                    pass
            elif self.owner == _thread.get_ident():
                self.pending = signum  # we are saving: die once it is over
                return
            else:
                self.wait()
        _die_by(signum, _os_exit)


def _die_by(signum, exit_):
    """Ends the process by signum's default action, at once: no atexit
    handlers, no flushing, as if no handler had been installed."""
    import signal
    try:
        signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
        signal.raise_signal(signum)
    finally:
        exit_(128 + signum)


def _call(fn, *args):
    return fn(*args)


def _script_runner(program, main, call):
    """Prepares __main__ and sys.argv for a script; returns the function that
    runs it (through call) and gives its Outcome."""
    g = main.__dict__
    g["__file__"] = program.path
    g["__cached__"] = None
    try:
        from importlib.machinery import SourceFileLoader
        g["__loader__"] = SourceFileLoader("__main__", program.path)
    except ImportError:
        pass
    sys.argv = program.argv

    def run():
        try:
            code = compile(program.source, program.path, "exec", dont_inherit=True)
            program.source = None
            call(exec, code, g)
            return Outcome(0)
        except BaseException as e:
            return _outcome_of(e)
    return run


def _module_runner(program, call):
    """Sets sys.argv for `-m module`; returns the function that runs the
    module as python3 -m does (through call) and gives its Outcome."""
    import runpy
    sys.argv = ["-m"] + program.args

    def run():
        try:
            call(runpy._run_module_as_main, program.target, True)  # alter_argv
            return Outcome(0)
        except SystemExit as e:
            if _is_runpy_lookup_exit(e):
                raise RunError(e.code[len(sys.executable) + 2:]) from None
            return _outcome_of(e)
        except BaseException as e:
            return _outcome_of(e)
    return run


def _outcome_of(exc):
    if isinstance(exc, SystemExit):
        return Outcome(_system_exit_status(exc))
    _print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        return Outcome(130, interrupted=True)
    return Outcome(1)


def exit_by_sigint():
    """Ends the process by SIGINT after running atexit handlers and flushing
    the standard streams, as CPython does after an uncaught
    KeyboardInterrupt."""
    import atexit
    import signal
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    os._exit(130)
