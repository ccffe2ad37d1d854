"""The bridge between the command line and the C extension scalene._core.

This is the only module that imports scalene._core, and it does so lazily
(load_core), so that the command line can report argument errors, and
scalene.runner can run programs, where the extension is absent or broken.

It also decides the default profiling scope (what counts as the user's
code), which is policy of the command line, not of the library:

* program_path: --program-path if given, else the script's directory, or for
  ``-m pkg.mod`` the directory of the top-level package (``pkg/``), or of
  the module file for a plain ``-m mod``.
* exclude_prefixes: the interpreter's library directories (the standard
  library, site.getsitepackages(), the user site directory: see
  library_prefixes), each in its given and its symlink-resolved form.  A
  prefix that contains program_path is left out, so that profiling a
  program that lives inside site-packages (or the standard library) still
  profiles that program; everything else in that prefix stays outside
  program_path and so is still not user code.  A library directory inside
  program_path (a virtualenv in the project directory) stays excluded.
* own_prefix: this package's directory; our own code is never profiled.

--profile-all lifts the program_path and exclude_prefixes limits (the
library applies them); --profile-only / --profile-exclude are substring
filters applied by the library.
"""

import os
import site

_core = None

# Mean bytes between heap samples when --allocation-sampling-window is not
# given (heap.h's default).
DEFAULT_SAMPLING_WINDOW = 1 << 20


class CoreUnavailable(Exception):
    """scalene._core cannot be imported; str() is the one-line reason."""


def load_core():
    """Imports scalene._core once; raises CoreUnavailable with the reason."""
    global _core
    if _core is None:
        try:
            from scalene import _core as core
        except ImportError as e:
            raise CoreUnavailable(" ".join(str(e).split()) or repr(e)) from None
        _core = core
    return _core


def core_error_types():
    """The exception types a failing _core call raises (for except clauses)."""
    core = load_core()
    return (core.Error,)


def _is_under(path, prefix):
    """True if path is prefix or lies inside it (both absolute)."""
    prefix = prefix.rstrip(os.sep) or os.sep
    return path == prefix or path.startswith(prefix + os.sep) or prefix == os.sep


def library_prefixes():
    """The interpreter's library directories, absolute, without duplicates:
    the standard library (the directory of os.py; sysconfig's paths when
    that is unknown: importing sysconfig costs a few ms at every start) and
    the site-packages directories (site.getsitepackages() holds sysconfig's
    purelib and platlib, in a venv as in Debian's and pyenv's layouts)."""
    found = []
    if getattr(os, "__file__", None):
        found.append(os.path.dirname(os.__file__))
    else:
        import sysconfig
        paths = sysconfig.get_paths()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                found.append(paths[key])
    try:
        found.extend(site.getsitepackages())
    except AttributeError:  # virtualenv's old site.py
        pass
    try:
        user_site = site.getusersitepackages()
        if isinstance(user_site, str):
            found.append(user_site)
    except AttributeError:
        pass
    out = []
    for p in found:
        for q in (os.path.abspath(p), os.path.realpath(p)):
            if q not in out:
                out.append(q)
    return out


def own_prefix():
    """The directory of this package."""
    return os.path.dirname(os.path.abspath(__file__))


def default_scope(program_path):
    """(program_path, exclude_prefixes) for an absolute program_path."""
    real = os.path.realpath(program_path)
    excludes = [
        p for p in library_prefixes()
        if not _is_under(program_path, p) and not _is_under(real, p)
    ]
    return program_path, tuple(excludes)


def split_list(value):
    """'a,b,,c' -> ('a', 'b', 'c'): the --profile-only/-exclude syntax."""
    if not value:
        return ()
    return tuple(s for s in (part.strip() for part in value.split(",")) if s)


class Session:
    """One profiling run: owns the _core.Profiler.

    The runner calls begin() right before the program's first instruction
    and end() right after its last one; scalene_profiler.start()/stop()
    toggle the profiler in between.  write() saves the profile.  A forked
    child does not write the parent's file: it saves its own profile for
    the parent to merge (scalene.children).

    keep() names the run's profile file; then, from begin() to end():
    * a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) prints one
      line on stderr saying which profile is left (_core's fault note,
      _core_fault.c) before the process dies of it;
    * with a finite interval, a thread of ours rewrites the profile every
      interval seconds of wall time (atomically, as every write).  It is a
      bare _thread, unseen by threading.enumerate(), threading.settrace()
      and interpreter shutdown; its frames are ours, which the locator
      never charges to a line.  end() stops it, waiting for a write under
      way, before the final write; a forked child has no such thread.
    """

    def __init__(self, options, program_path):
        core = load_core()
        path, excludes = default_scope(program_path)
        includes = ()
        if getattr(options, "profile_system_libraries", False):
            # the library directories count as the program's; the rest of
            # --profile-all's code (other directories) stays out
            includes, excludes = excludes, ()
        self.options = options
        self.program_path = path
        self.exclude_prefixes = excludes
        self.pid = os.getpid()
        self.ended = False
        self._kept = None      # (path, shown, interval, describe): see keep()
        self._writer = None    # (wake, done) locks of the periodic writer
        self._faults = False   # the fault note is installed
        self._last_saved = None  # (time.time(), wall s since begin, profiled s) of the
        #                          last periodic write
        self._began = None     # time.monotonic() at begin()
        # options.memory is resolved by the command line (cli.resolve_kinds):
        # on by default, off with --cpu-only, or --cpu / --gpu without --memory.
        self.memory = bool(getattr(options, "memory", False))
        self.leaks = bool(getattr(options, "memory_leak_detector", True))
        self.malloc_threshold = int(getattr(options, "malloc_threshold", 0) or 0)
        window = getattr(options, "allocation_sampling_window", None)
        window = int(window) if window else DEFAULT_SAMPLING_WINDOW
        copy_window = getattr(options, "copy_sampling_window", None)
        copy_window = int(copy_window) if copy_window else window
        self.profiler = core.Profiler(
            interval=options.cpu_sampling_rate,
            signum=0,
            offcpu=not options.use_virtual_time,
            program_path=path,
            profile_all=options.profile_all,
            profile_only=split_list(options.profile_only),
            profile_exclude=split_list(options.profile_exclude),
            exclude_prefixes=excludes,
            own_prefix=own_prefix(),
            memory=self.memory,
            malloc_sampling_bytes=window,
            copy_sampling_bytes=copy_window,
            include_prefixes=includes,
            stacks=bool(getattr(options, "stacks", False)),
        )
        self.profiler.set_pid(self.pid)
        from scalene import scalene_profiler
        for filename, first, last in scalene_profiler._profile_ranges:
            self.profiler.add_profile_range(filename, first, last)

    def add_profile_range(self, filename, first, last):
        """Restricts profiling to @profile functions (see scalene_profiler.profile)."""
        self.profiler.add_profile_range(filename, first, last)

    def set_program(self, program, argv):
        self.profiler.set_program(program, list(argv))

    @property
    def running(self):
        return bool(self.profiler.running)

    def start(self):
        if not self.ended and not self.profiler.running:
            self.profiler.start()

    def stop(self):
        if self.profiler.running:
            self.profiler.stop()

    def reset_after_fork(self):
        """In a fork()ed child (scalene.children): the session becomes the
        child's own, on a fresh profile, sampling if the parent was; the
        parent's periodic writes and fault note stay the parent's."""
        import time
        self.pid = os.getpid()
        self.ended = False
        self._writer = None  # the writer thread stayed in the parent
        self._kept = None
        self._faults = False
        self._last_saved = None
        self._began = time.monotonic()
        was_running = self.profiler._reset_after_fork()  # the profile gets this pid
        if was_running:
            self.profiler.start()

    def keep(self, path, shown, interval, describe):
        """The run's profile: path (absolute) is where the writes go, shown
        the name to print; interval in seconds (inf: only the final write);
        describe() gives (program, argv) for a periodic write.  Call before
        begin()."""
        self._kept = (path, shown, interval, describe)

    def begin(self, on=True):
        import time
        self._began = time.monotonic()
        if self._kept is not None:
            self._install_fault_note()
            interval = self._kept[2]
            if interval != float("inf"):
                self._start_writer(interval)
        if on:
            self.start()

    def end(self):
        """Stops profiling for good; idempotent (also the atexit net).  The
        periodic writer has finished when it returns."""
        if self.ended or os.getpid() != self.pid:
            return
        self.ended = True  # start() refuses from here on
        try:
            self._stop_writer()
        finally:
            try:
                self.stop()
                self.profiler.drain()
            finally:
                self._remove_fault_note()

    # ------------------------------------------------ the fault note

    def _install_fault_note(self):
        core = load_core()
        try:
            core._fault_install()
        except (AttributeError, OSError):
            return
        self._faults = True
        self._update_fault_note()

    def _update_fault_note(self):
        if not self._faults:
            return
        _, shown, interval, _ = self._kept
        if self._last_saved is None:
            text = "; no profile was saved before it"
            if interval == float("inf"):
                text += " (--profile-interval SEC saves one periodically)"
        else:
            import time
            at, elapsed, _ = self._last_saved
            text = ("; the profile saved at %s (%.1f s into the run) is kept: %s"
                    % (time.strftime("%H:%M:%S", time.localtime(at)), elapsed, shown))
        load_core()._fault_note(text + "\n")

    def _remove_fault_note(self):
        if self._faults:
            self._faults = False
            load_core()._fault_remove()

    # ------------------------------------------------ the SIGTERM guard

    # Seconds a SIGTERM may wait for our Python-level handler to start
    # before it kills the process as SIG_DFL would (_core_term.c): in
    # `scalene run`, whose profile a SIGTERM is often sent to get, long
    # enough for most native calls to return and within the 10 s that
    # container runtimes wait before SIGKILL; in a child (Pool.terminate()
    # joins its workers), short.
    TERM_GRACE_RUN = 5.0
    TERM_GRACE_CHILD = 2.0

    @staticmethod
    def call_on_fresh_stack(fn, *args):
        """fn(*args) with the calling thread's frame stack started afresh,
        so that the program's frames lie in memory where they would without
        the profiler (_core.c: core_call_on_fresh_stack)."""
        return load_core()._call_on_fresh_stack(fn, *args)

    @staticmethod
    def guard_sigterm(grace, say=False):
        """Called right after signal.signal(SIGTERM, handler) installs one of
        our handlers, on the main thread: the handler then runs even if the
        signal lands just before the main thread blocks (sem_wait ...), or
        the process dies of SIGTERM after grace seconds, with a line on
        stderr if say.  Without the guard (no timer to be had) the handler
        works as CPython's does."""
        note = None
        if say:
            note = ("Scalene: at SIGTERM the program's main thread did not get back "
                    "to Python code within %g s to save the profile; the process "
                    "ends without it\n" % grace)
        try:
            load_core()._term_guard(grace, note)
        except (OSError, ValueError):
            pass

    @staticmethod
    def sigterm_taken():
        """The first thing the guarded handler does."""
        load_core()._term_taken()

    @staticmethod
    def unguard_sigterm():
        """Before our handler is taken down."""
        load_core()._term_unguard()

    # ------------------------------------------------ the periodic writer

    def _start_writer(self, interval):
        import _thread
        wake = _thread.allocate_lock()
        done = _thread.allocate_lock()
        wake.acquire()
        done.acquire()
        try:
            _thread.start_new_thread(self._writer_loop, (interval, wake, done))
        except RuntimeError as e:  # cannot start a thread
            _warn("cannot save the profile periodically: %s" % e)
            return
        self._writer = (wake, done)

    def _stop_writer(self):
        if self._writer is None:
            return
        wake, done = self._writer
        self._writer = None
        wake.release()
        interrupted = None
        while True:  # a write under way finishes first, even after Ctrl-C
            try:
                done.acquire()
                break
            except KeyboardInterrupt as e:
                interrupted = e
        if interrupted is not None:
            raise interrupted

    def _writer_loop(self, interval, wake, done):
        import _thread
        import time
        try:
            load_core()._ignore_thread()  # its own allocations are not the program's
            step = min(interval, _thread.TIMEOUT_MAX)
            due = time.monotonic() + step
            warned = False
            while not wake.acquire(timeout=min(max(due - time.monotonic(), 0.0),
                                               _thread.TIMEOUT_MAX)):
                if self.ended or os.getpid() != self.pid:
                    break
                try:
                    self.save_kept()
                except Exception as e:  # _core.Error: a full disk, a removed directory
                    if not warned:
                        warned = True
                        _warn("cannot save the profile periodically: %s" % e)
                now = time.monotonic()
                due += step
                if due <= now:  # a write longer than the interval: skip the missed ones
                    due = now + step
        finally:
            done.release()

    def save_kept(self):
        """Writes the profile to the file of keep(), named as keep()'s
        describe() names the program: a periodic write, or one asked for
        from outside (scalene.profile --off); skipped when profiling has
        been paused since the last such write.  Raises _core.Error."""
        import time
        path, _, _, describe = self._kept
        elapsed = self.profiler.elapsed
        if (self._last_saved is not None and not self.profiler.running
                and elapsed == self._last_saved[2]):
            return  # paused since the last write: nothing new
        program, argv = describe()
        self.set_program(program, argv)
        self.write(path)
        self._last_saved = (time.time(), time.monotonic() - self._began, elapsed)
        self._update_fault_note()

    def write(self, path):
        """Writes the profile atomically; raises _core.Error."""
        self.profiler.write_json(path, memory=self.memory,
                                 reduced=bool(getattr(self.options, "reduced_profile", False)),
                                 leaks=self.leaks, malloc_threshold=self.malloc_threshold)

    def samples(self):
        """Samples taken so far (on the CPU and off it), or None if the
        extension cannot tell."""
        try:
            st = self.profiler.stats()
            return int(st["samples"]) + int(st.get("offcpu_samples", 0))
        except (KeyError, TypeError, ValueError, load_core().Error):
            return None

    def memory_samples_lost(self):
        """{"heap": (lost, kept), "copy": (lost, kept)} for the samplers
        that ran: records lost (the sample ring overflowed; for the heap
        sampler also a full table of live sampled blocks, and lost frees)
        and samples kept; {} without memory profiling or if the extension
        cannot tell."""
        try:
            st = self.profiler.stats()
            return {k: (int(st[k]["dropped"]), int(st[k]["samples"]))
                    for k in ("heap", "copy") if k in st}
        except (KeyError, TypeError, ValueError, load_core().Error):
            return {}

    @property
    def is_forked_child(self):
        return os.getpid() != self.pid


def _warn(text):
    """One line on stderr, from any thread."""
    import sys
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    if stream is not None:
        try:
            stream.write("Scalene: warning: %s\n" % " ".join(str(text).split()))
            stream.flush()
        except (OSError, ValueError):
            pass
