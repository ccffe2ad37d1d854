"""Profiling the processes a profiled program starts, and merging them.

``scalene run`` names a private directory for the children's profiles
(made by the first child that saves one: a program without children, or
one killed by a signal before its end, leaves nothing behind) and tells
its children about it through the environment:

* SCALENE_CHILD_CONFIG: JSON with the directory, the parent's pid and the
  run's settings (what to profile, sampling rates, program_path, ...);
* PYTHONPATH: first our ``_children`` directory, whose ``sitecustomize``
  starts profiling in every Python process that inherits the environment
  (``subprocess`` with ``sys.executable``, multiprocessing's spawn and
  forkserver start methods), then the directory our package lives in.

A ``fork()``ed child (os.fork, multiprocessing's fork method, the children
of a forkserver) inherits the session instead: at the fork it drops the
parent's samplers and profile and starts afresh on its own
(Profiler._reset_after_fork).

Every child, however it was made, saves its profile as
``<dir>/child-<pid>.json`` when it ends: at normal exit (atexit), at
os._exit (wrapped), or at SIGTERM while that signal's disposition is the
default (multiprocessing's Pool.terminate() ends its workers so; the
session's SIGTERM guard makes that handler run even when the signal lands
just before the worker blocks on a lock).  A child that has nothing to
save, or whose parent has ended, saves nothing and says nothing: a
child's output is its program's.

At its end the parent merges every saved child profile into its own
(Profiler.merge_child: samples and records added, one entry per process
in the JSON's "processes") and removes the directory.  A child still
running then is not waited for.
"""

import json
import os
import signal
import sys

CONFIG_ENV = "SCALENE_CHILD_CONFIG"
_SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_children")
_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The settings a child takes from the parent's options (argparse dests).
_FORWARDED = ("memory", "use_virtual_time", "profile_all", "profile_only",
              "profile_exclude", "cpu_sampling_rate", "allocation_sampling_window",
              "copy_sampling_window", "profile_system_libraries", "memory_leak_detector",
              "malloc_threshold", "stacks")

_real_exit = os._exit


class Children:
    """The parent's side: the directory, the environment, the merge."""

    def __init__(self, session, options):
        self.session = session
        self.pid = os.getpid()
        self.dir = _private_name("scalene-children-%d-" % self.pid)
        config = {
            "dir": self.dir,
            "parent": os.getpid(),
            "program_path": session.program_path,
            "off": bool(getattr(options, "off", False)),
            "options": {k: getattr(options, k, None) for k in _FORWARDED},
        }
        self._saved_env = {k: os.environ.get(k) for k in (CONFIG_ENV, "PYTHONPATH")}
        os.environ[CONFIG_ENV] = json.dumps(config)
        path = os.environ.get("PYTHONPATH", "")
        parts = [_SHIM_DIR, _PKG_PARENT] + [p for p in path.split(os.pathsep) if p]
        os.environ["PYTHONPATH"] = os.pathsep.join(parts)
        _Forks.watch(session, self.dir, self.pid)

    def merge(self):
        """Adds every saved child profile to the session's profile (after
        the session ended); returns how many were merged.  Unreadable files
        are skipped with a note on stderr."""
        from scalene import profiler
        merged = 0
        try:
            names = sorted(os.listdir(self.dir))
        except OSError:  # no child saved a profile
            return 0
        for name in names:
            if not (name.startswith("child-") and name.endswith(".json")):
                continue  # a child's temporary file, mid-write
            path = os.path.join(self.dir, name)
            try:
                self.session.profiler.merge_child(path)
                merged += 1
            except profiler.core_error_types() as e:
                sys.stderr.write("Scalene: note: the profile of a child process was left "
                                 "out: %s\n" % " ".join(str(e).split()))
        return merged

    def close(self):
        """Removes the directory and restores the environment (in the
        process that made them: not in a forked child)."""
        if os.getpid() != self.pid:
            return
        import stat
        try:  # flat: the children's profiles and what a killed one left
            st = os.lstat(self.dir)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                raise FileNotFoundError(self.dir)  # not ours: left alone
            with os.scandir(self.dir) as entries:
                for entry in entries:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass
            os.rmdir(self.dir)
        except OSError:
            pass
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _private_name(prefix):
    """An unguessable path in $TMPDIR or /tmp for a directory that the first
    child to save makes (_ChildEnd._directory)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(base, prefix + os.urandom(12).hex())


def _parent_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's: not our parent
        return False


class _ChildEnd:
    """Saves a child's profile once, however the child ends.  A SIGTERM
    that comes while the profile is being saved (multiprocessing's
    Pool.terminate() races a worker that is already exiting) waits for the
    save to end."""

    def __init__(self, session, directory, parent, program):
        self.session = session
        self.directory = directory
        self.parent = parent  # the pid of `scalene run`, which merges
        self.path = os.path.join(directory, "child-%d.json" % os.getpid())
        self.program = program  # () -> (program, argv)
        self.pid = os.getpid()
        self.state = "running"  # then "saving", then "saved"
        self.pending = None     # a signal to die of once saved

    def save(self):
        if self.state != "running" or os.getpid() != self.pid:
            return
        self.state = "saving"
        try:
            if self._directory():  # else the parent is gone
                self.session.end()
                prog, argv = self.program()
                self.session.set_program(prog, argv)
                self.session.write(self.path)
        except Exception:
            _debug("saving the child's profile")  # never the child's problem
        finally:
            self.state = "saved"

    def _directory(self):
        """Makes the directory if no child did yet; False when the parent
        has ended (it would not merge) or the path is not a directory of
        this user's (someone else's file in the way)."""
        import stat
        if not _parent_alive(self.parent):
            return False
        try:
            os.mkdir(self.directory, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(self.directory)
        return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()

    def _die_of_pending(self):
        if self.pending is not None:
            signal.signal(self.pending, signal.SIG_DFL)
            os.kill(os.getpid(), self.pending)
            _real_exit(128 + self.pending)

    def _at_exit(self):
        self.save()
        self._die_of_pending()

    def _on_term(self, signum, frame):
        self.session.sigterm_taken()
        if self.state == "saving":
            self.pending = signum  # the save under way ends first
            return
        self.save()
        self.pending = signum
        self._die_of_pending()

    def install(self):
        import atexit
        atexit.register(self._at_exit)

        def _exit(status):
            self.save()
            _real_exit(status)

        _exit.__name__ = _exit.__qualname__ = "_exit"
        _exit.__doc__ = _real_exit.__doc__
        os._exit = _exit
        try:
            current = signal.getsignal(signal.SIGTERM)
            # the default, or a handler of ours that a forked child inherited
            # (`scalene run`'s, or its parent's as a child)
            if current == signal.SIG_DFL or \
                    getattr(current, "__module__", None) in ("scalene.runner",
                                                             "scalene.children"):
                signal.signal(signal.SIGTERM, self._on_term)
                self.session.guard_sigterm(self.session.TERM_GRACE_CHILD)
        except ValueError:  # not the main thread: SIGTERM stays as it is
            pass


class _Forks:
    """A fork()ed child of a profiled process starts its own profile."""

    session = None
    directory = None
    parent = None
    registered = False

    @classmethod
    def watch(cls, session, directory, parent):
        cls.session, cls.directory, cls.parent = session, directory, parent
        if not cls.registered:
            os.register_at_fork(after_in_child=cls._after_fork_in_child)
            cls.registered = True

    @classmethod
    def _after_fork_in_child(cls):
        session = cls.session
        if session is None or session.ended:
            return
        try:
            session.reset_after_fork()
        except Exception:
            _debug("resetting the session after fork")
            cls.session = None
            return
        _ChildEnd(session, cls.directory, cls.parent, _argv_program).install()


def _debug(what):
    """With SCALENE_DEBUG_CHILDREN=1 in the environment, a child's failure
    is printed (it is silent otherwise)."""
    if os.environ.get("SCALENE_DEBUG_CHILDREN") == "1":
        import traceback
        sys.stderr.write("Scalene: debug: pid %d: %s failed:\n%s"
                         % (os.getpid(), what, traceback.format_exc()))


def _argv_program():
    argv = list(sys.argv)
    main = sys.modules.get("__main__")
    prog = getattr(main, "__file__", None) or (argv[0] if argv else "") or "<child>"
    return prog, argv


def start_child():
    """In a Python process started by a profiled one (sitecustomize): starts
    profiling it with the parent's settings.  Does nothing without the
    environment, or when profiling cannot start (a child running another
    Python version, for one)."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        return None
    # multiprocessing's helpers outlive the parent, which could not merge
    # what they saved: the resource tracker is not profiled, and the
    # forkserver only hands its session on to the children it forks.
    command = " ".join(getattr(sys, "orig_argv", ()))
    if "multiprocessing.resource_tracker" in command:
        return None
    forkserver = "multiprocessing.forkserver" in command
    try:
        config = json.loads(raw)
        directory = config["dir"]
        parent = int(config["parent"])
        if not _parent_alive(parent):
            return None
        import argparse
        from scalene import profiler, scalene_profiler
        profiler.load_core()
        options = argparse.Namespace(**config["options"])
        options.off = bool(config.get("off", False))
        session = profiler.Session(options, config["program_path"])
    except Exception:
        return None
    scalene_profiler._attach(session)
    _Forks.watch(session, directory, parent)
    if not forkserver:
        _ChildEnd(session, directory, parent, _argv_program).install()
    if not options.off:
        try:
            session.start()
        except Exception:
            return None
    return session
