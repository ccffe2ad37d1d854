"""The command line: ``scalene run …``, ``scalene view …``, ``--version``.

``python3 -m scalene`` and the ``scalene`` console script both call main(),
which returns the exit status:

  0..255  run: the program's own exit status
  1       scalene: error: … (cannot start profiling, cannot read a profile,
          the legacy form without a verb)
  2       usage errors: unknown or malformed option, missing program, script
          or module not found

See docs/cli.md for every option and where we differ from Scalene on
purpose.  Unlike Scalene, an unknown option before the program is an error
(never handed to the program), abbreviations are not accepted, and -o keeps
the file name exactly as given.
"""

import argparse
import os
import shlex
import sys

from scalene import __version__

PROG = "scalene"
DEFAULT_OUTFILE = "scalene-profile.json"
DEFAULT_THRESHOLD = 1.0

RUN_USAGE = (
    "%(prog)s [options] prog.py [--- prog_args ...]\n"
    "       %(prog)s [options] -m module [module_args ...]"
)


def _terminal_width():
    """The terminal's width as argparse would take it (COLUMNS, then the
    terminal), without importing shutil."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter given its width: left to itself it imports
    shutil for it, which imports bz2 and lzma, on every parser made, help
    or not (~5 ms of every profiled run's start)."""

    def __init__(self, prog, **kw):
        kw.setdefault("width", max(_terminal_width(), 11) - 2)
        super().__init__(prog, **kw)


class Parser(argparse.ArgumentParser):
    """argparse with our error format: usage, then 'scalene run: error: …'."""

    def __init__(self, *a, **kw):
        kw.setdefault("allow_abbrev", False)
        kw.setdefault("formatter_class", _Formatter)
        super().__init__(*a, **kw)


def _error(msg, status=1):
    """Prints 'scalene: error: msg' (one line) and returns status."""
    _stderr("%s: error: %s\n" % (PROG, " ".join(str(msg).split())))
    return status


def _stderr(text):
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    if stream is None:
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        stream = sys.__stderr__
        if stream is not None and stream is not sys.stderr:
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not (0 < value <= 10):
        raise argparse.ArgumentTypeError(
            "%s must be more than 0 and at most 10 seconds" % text)
    return value


def _positive_bytes(text):
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text) from None
    if not 0 < value <= 1 << 40:
        raise argparse.ArgumentTypeError(
            "%s must be a positive number of bytes (at most 2**40)" % text)
    return value


DEFAULT_MALLOC_THRESHOLD = 100


def _count(text):
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text) from None
    if not 0 <= value <= 1 << 40:
        raise argparse.ArgumentTypeError(
            "%s must be a number of allocations from 0 to 2**40" % text)
    return value


def _percent(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not (0 <= value <= 100):
        raise argparse.ArgumentTypeError("%s is not between 0 and 100" % text)
    return value


# ---------------------------------------------------------------- top level

def top_parser():
    p = Parser(
        prog=PROG,
        usage="%(prog)s [-h] [--version] {run,view} ...",
        description="Scalene-compatible line-level CPU profiler for Python, "
                    "built on libscaleneprof.",
        epilog="Run `%(prog)s run -h` or `%(prog)s view -h` for a verb's options.",
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("command", nargs="?", metavar="{run,view}",
                   help="run: profile a program; view: show a saved profile")
    return p


def version_text():
    try:
        from scalene import profiler
        lib = profiler.load_core().library_version()
    except Exception as e:  # --version works without the extension
        lib = "unavailable: %s" % " ".join(str(e).split())
    return "Scalene version %s (libscaleneprof %s)" % (__version__, lib)


def main(argv=None):
    """The entry point of `scalene` and `python3 -m scalene`; returns the
    exit status."""
    if argv is None:
        argv = sys.argv[1:]
    argv = list(argv)
    if argv and argv[0] == "run":
        return run_command(argv[1:])
    if argv and argv[0] == "view":
        return view_command(argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        top_parser().print_help()
        return 0
    if argv and argv[0] == "--version":
        if len(argv) > 1:
            top_parser().error("--version takes no other arguments")
        print(version_text())
        return 0
    if not argv:
        top_parser().print_usage(sys.stderr)
        return _error("a verb is required: run or view", 2)
    if _looks_like_legacy(argv):
        return _error("did you mean `%s run %s`?" % (PROG, _legacy_suggestion(argv)))
    top_parser().print_usage(sys.stderr)
    if argv[0].startswith("-"):
        return _error("unrecognized option %r: options of run and view go after "
                      "the verb, as in `%s run %s …`" % (argv[0], PROG, argv[0]), 2)
    return _error("unknown verb %r: use run or view" % argv[0], 2)


def _looks_like_legacy(argv):
    """Scalene 1.x form: `scalene [options] prog.py …` or `scalene -m mod`."""
    for a in argv:
        if a in ("-m", "---") or a.endswith(".py"):
            return True
    return not argv[0].startswith("-") and os.path.exists(argv[0])


def _legacy_suggestion(argv):
    out = []
    for i, a in enumerate(argv):
        out.append(a)
        if a.endswith(".py") and not (i > 0 and argv[i - 1] == "-m"):
            rest = argv[i + 1:]
            if rest and rest[0] != "---":
                out.append("---")
            out.extend(rest)
            break
    return shlex.join(out)


# ---------------------------------------------------------------- run

def _interval(text):
    """--profile-interval: seconds above 0; inf (the default) is never."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError("%s must be a number of seconds above 0" % text)
    return value


class _HelpAdvanced(argparse.Action):
    """--help-advanced: the help with every option, advanced ones included."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default,
                         nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        run_parser(advanced=True).print_help()
        parser.exit()


def run_parser(advanced=False):
    """The parser of `run`.  Options marked advanced are left out of -h and
    shown by --help-advanced (as in Scalene 2.x)."""
    p = Parser(
        prog="%s run" % PROG,
        usage=RUN_USAGE,
        description="Profile a Python program and save the profile as JSON "
                    "(Scalene's format). Everything after the program path, or "
                    "after ---, is the program's own.",
        epilog=None if advanced else "More options: %s run --help-advanced" % PROG,
    )

    def adv(text):
        return text if advanced else argparse.SUPPRESS

    p.add_argument("--help-advanced", action=_HelpAdvanced,
                   help="show every option, the advanced ones too, and exit")
    p.add_argument("-o", "--outfile", default=DEFAULT_OUTFILE, metavar="FILE",
                   help="where to save the profile, kept exactly as given "
                        "(default: %(default)s)")
    p.add_argument("-c", "--config", default=None, metavar="FILE",
                   help="read options from this YAML file (keys are the long "
                        "option names; the command line wins)")
    p.add_argument("--cpu-only", dest="cpu_only", action="store_true",
                   help="profile CPU time only: no memory or copy profiling "
                        "(wins over --memory)")
    p.add_argument("--cpu", action="store_true", default=None,
                   help="profile CPU time; naming any of --cpu, --gpu, --memory "
                        "profiles only what is named (CPU always); naming none "
                        "profiles everything")
    p.add_argument("--gpu", action="store_true", default=None,
                   help="GPU profiling: not available yet in this version "
                        "(a note is printed; GPU stays off)")
    p.add_argument("--memory", action="store_true", default=None,
                   help="profile memory and copies (the default when none of "
                        "--cpu, --gpu, --memory is named)")
    p.add_argument("--allocation-sampling-window", type=_positive_bytes,
                   default=None, metavar="BYTES",
                   help=adv("mean bytes allocated (and copied) between memory (and "
                            "copy) samples, a positive integer, at most 2**40 "
                            "(default: 1048576)"))
    p.add_argument("--copy-sampling-window", type=_positive_bytes,
                   default=None, metavar="BYTES",
                   help=adv("mean bytes copied between copy samples (default: the "
                            "allocation sampling window)"))
    p.add_argument("--malloc-threshold", type=_count, default=DEFAULT_MALLOC_THRESHOLD,
                   metavar="N",
                   help=adv("a line is listed as a likely leak only if it has at "
                            "least N sampled allocations or allocated at least 1 MiB "
                            "(default: %(default)s)"))
    leak = p.add_mutually_exclusive_group()
    leak.add_argument("--memory-leak-detector", dest="memory_leak_detector",
                      action="store_true",
                      help=adv("report lines whose memory keeps growing (the default)"))
    leak.add_argument("--no-memory-leak-detector", dest="memory_leak_detector",
                      action="store_false", help=adv("do not report likely leaks"))
    p.add_argument("--cpu-sampling-rate", type=_positive_seconds, default=0.01,
                   metavar="SEC",
                   help=adv("mean CPU time between samples, in seconds, more than 0 "
                            "and at most 10 (default: %(default)s)"))
    p.add_argument("--use-virtual-time", action="store_true",
                   help=adv("measure CPU time only: no samples of time spent off "
                            "the CPU (waiting, I/O, sleeping)"))
    p.add_argument("--profile-all", action="store_true",
                   help="profile all code, not only the program's directory tree "
                        "(the standard library and site-packages included)")
    p.add_argument("--profile-only", default="", metavar="S1,S2",
                   help="profile only files whose path contains one of these substrings")
    p.add_argument("--profile-exclude", default="", metavar="S1,S2",
                   help="do not profile files whose path contains one of these substrings")
    p.add_argument("--program-path", default="", metavar="DIR",
                   help="the root of the code to profile (default: the "
                        "program's directory; for -m, its top-level package)")
    p.add_argument("--reduced-profile", action="store_true",
                   help=adv("save only lines that have data"))
    p.add_argument("--cpu-percent-threshold", type=_percent, default=DEFAULT_THRESHOLD,
                   metavar="PCT",
                   help=adv("files and functions below PCT %% of the time are left out "
                            "of the terminal view; carried into the view command "
                            "printed after the run (default: %(default)s)"))
    p.add_argument("--profile-interval", type=_interval, default=float("inf"),
                   metavar="SEC",
                   help=adv("also write the profile every SEC seconds of wall time "
                            "while the program runs, atomically (default: only at "
                            "the end)"))
    p.add_argument("--profile-system-libraries", action="store_true",
                   help=adv("also profile the standard library and site-packages "
                            "(the rest of --profile-all's code stays out)"))
    stacks = p.add_mutually_exclusive_group()
    stacks.add_argument("--stacks", dest="stacks", action="store_true",
                        help=adv("also record the stack of every CPU sample: the "
                                 "profile's \"stacks\" member, the program's frames "
                                 "outermost first"))
    stacks.add_argument("--no-stacks", dest="stacks", action="store_false",
                        help=adv("do not collect stacks (the default here)"))
    onoff = p.add_mutually_exclusive_group()
    onoff.add_argument("--on", dest="off", action="store_false",
                       help="start with profiling on (the default)")
    onoff.add_argument("--off", dest="off", action="store_true",
                       help="start with profiling off; the program turns it on "
                            "with scalene.scalene_profiler.start()")
    p.add_argument("-m", dest="module", metavar="module",
                   help="run a library module as a script, as python3 -m does")
    p.set_defaults(off=False, memory_leak_detector=True, stacks=False)
    return p


def resolve_kinds(options):
    """Scalene's rule: naming any of --cpu, --gpu, --memory profiles CPU
    (always) and what is named; naming none profiles everything.
    --cpu-only turns memory and GPU off whatever else is named.  Sets
    options.memory and options.gpu to booleans; GPU stays off (not built)."""
    named = bool(options.cpu or options.gpu or options.memory)
    memory = bool(options.memory) if named else True
    options.memory = memory and not options.cpu_only
    options.gpu = bool(options.gpu)  # named: a note says it is not available
    options.cpu = True
    return options


def split_run_args(parser, argv):
    """Splits `run`'s arguments into (ours, program) at the program.

    The program starts at the first argument that is neither an option of
    ours nor the value of one: a script path (`---` right after it is
    dropped), `-m module`, or whatever follows `---` or `--`.  Everything
    from there on is the program's, untouched.  An unknown option before
    the program stays in `ours`, where argparse rejects it.

    Returns (ours, kind, target, program_args); kind is None if there is no
    program.
    """
    value_options = {opt: action.nargs != 0
                     for action in parser._actions for opt in action.option_strings}
    ours = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("---", "--"):
            rest = argv[i + 1:]
            if not rest:
                return ours, None, None, []
            if rest[0] == "-m":
                if len(rest) < 2:
                    return ours + ["-m"], None, None, []
                return ours, "module", rest[1], _after_program(rest[2:])
            if rest[0].startswith("-m") and len(rest[0]) > 2 and not rest[0].startswith("--"):
                return ours, "module", rest[0][2:], _after_program(rest[1:])
            return ours, "script", rest[0], rest[1:]
        if a == "-m":
            if i + 1 >= len(argv):
                return ours + ["-m"], None, None, []
            return ours, "module", argv[i + 1], _after_program(argv[i + 2:])
        if a.startswith("-m") and not a.startswith("--"):
            return ours, "module", a[2:], _after_program(argv[i + 1:])
        if a.startswith("-") and a != "-":
            if a.startswith("--"):
                name, has_value = a.split("=", 1)[0], "=" in a
            else:
                name, has_value = a[:2], len(a) > 2
            ours.append(a)
            if value_options.get(name) and not has_value and i + 1 < len(argv):
                ours.append(argv[i + 1])
                i += 1
            i += 1
            continue
        return ours, "script", a, _after_program(argv[i + 1:])
    return ours, None, None, []


def _after_program(rest):
    """The program's arguments: a `---` right after the program (script or
    -m module) is Scalene's separator and is dropped; any later one is the
    program's."""
    return rest[1:] if rest[:1] == ["---"] else rest


def run_command(argv):
    from scalene import runner

    parser = run_parser()
    ours, kind, target, prog_args = split_run_args(parser, argv)
    # Parsed into UNSET so that -c's file fills only what the command line
    # left out (docs/config.md); then the defaults.
    from scalene import config
    options = parser.parse_args(ours, namespace=config.unset_namespace(parser))
    if options.config not in (config.UNSET, None):
        try:
            config.apply(parser, options, options.config)
        except config.ConfigError as e:
            return _error(e, 2)
    options = resolve_kinds(config.fill_defaults(parser, options))
    if kind is None:
        parser.print_usage(sys.stderr)
        return _error("no program to run: give a script path or -m module", 2)
    if kind == "module" and not target:
        parser.print_usage(sys.stderr)
        return _error("-m needs a module name", 2)
    if options.program_path and not os.path.isdir(options.program_path):
        parser.print_usage(sys.stderr)
        return _error("--program-path %r is not a directory" % options.program_path, 2)
    if options.gpu:
        _stderr("Scalene: note: --gpu profiling is not available yet in this version; "
                "profiling without it.\n")

    program = runner.Program(kind, target, prog_args)
    if kind == "script":
        try:
            program.prepare()
        except runner.RunError as e:
            return _error(e, 2)

    from scalene import profiler
    try:
        profiler.load_core()
    except profiler.CoreUnavailable as e:
        return _error(e, 1)

    if kind == "module":
        try:
            program.prepare()
        except runner.RunError as e:
            return _error(e, 2)

    program_path = program.default_program_path
    if options.program_path:
        program_path = os.path.abspath(options.program_path)

    outfile = options.outfile
    outfile_abs = os.path.abspath(outfile)  # the program may chdir
    try:
        session = profiler.Session(options, program_path)
    except profiler.core_error_types() as e:
        return _error(e, 1)

    from scalene import scalene_profiler
    import atexit
    scalene_profiler._attach(session)
    import builtins
    if not hasattr(builtins, "profile"):  # kernprof's, if any, is left alone
        builtins.profile = scalene_profiler.profile

    from scalene import children as children_mod
    kids = children_mod.Children(session, options)  # child processes are profiled too
    save = _Saver(session, program, options, outfile, outfile_abs, kids)

    def _switched_off():  # python3 -m scalene.profile --off --pid N
        if session.ended:
            return
        session.stop()
        session.profiler.drain()
        try:
            session.save_kept()  # the file and program name of save's session.keep
        except profiler.core_error_types() as e:
            _error("cannot save the profile: %s" % e)

    from scalene import profile as control
    control.install(session.start, _switched_off)
    atexit.register(session.end)
    try:
        outcome = runner.execute(program, session, on=not options.off, save=save)
    except runner.RunError as e:  # -m: runpy could not find the module
        scalene_profiler._attach(None)
        return _error(e, 2)
    except profiler.core_error_types() as e:
        scalene_profiler._attach(None)
        return _error(e, 1)
    finally:
        session.end()
        kids.close()  # the parent's only: a forked child leaves it be
    scalene_profiler._attach(None)
    if outcome.interrupted and not session.is_forked_child:
        runner.exit_by_sigint()
    return outcome.status


class _Saver:
    """Saves the run's profile, once, when the program ends (runner.execute
    calls it; see there for when).  Made before the program starts, it
    also tells the session where the profile goes, so that the periodic
    writes (--profile-interval) and the crash note name the same file."""

    def __init__(self, session, program, options, outfile, outfile_abs, children=None):
        self.session = session
        self.children = children
        self.program = program
        self.options = options
        self.outfile = outfile
        self.outfile_abs = outfile_abs
        session.keep(outfile_abs, outfile, options.profile_interval, program.identity)

    def __call__(self, status, abrupt):
        """Writes the profile and says so on stderr; returns status, or 1
        for a status of 0 if the profile could not be written.  abrupt
        (os._exit, SIGTERM): the program's stdout is left unflushed."""
        from scalene import profiler
        session, options, outfile = self.session, self.options, self.outfile
        if not abrupt:
            _flush_stdout()
        try:
            if self.children is not None:
                # merged, then removed here: an os._exit or a SIGTERM ends
                # the process right after this save, without run_command's
                # own clean-up
                self.children.merge()
                self.children.close()
            session.set_program(*self.program.identity())
            session.write(self.outfile_abs)
        except profiler.core_error_types() as e:
            reason = str(e)
            if outfile not in reason and self.outfile_abs not in reason:
                reason = "%s: %s" % (outfile, reason)
            _error("cannot save the profile: %s" % reason)
            return status or 1
        _stderr(saved_message(outfile, options.cpu_percent_threshold,
                              leaks=options.memory_leak_detector or not options.memory,
                              malloc_threshold=options.malloc_threshold))
        if session.samples() == 0:
            _stderr("Scalene: note: no samples were taken: the program did not run "
                    "long enough to profile%s.\n"
                    % (" or profiling was never turned on" if options.off else ""))
        lost = session.memory_samples_lost()
        if lost.get("heap", (0, 0))[0] > 0:
            _stderr("Scalene: note: %d allocation or free samples were lost (too many "
                    "at once; %d allocations sampled): allocation figures may be low, "
                    "and a lost free leaves its memory counted as live; a larger "
                    "--allocation-sampling-window takes fewer samples.\n" % lost["heap"])
        if lost.get("copy", (0, 0))[0] > 0:
            _stderr("Scalene: note: %d copy samples were lost (too many at once; %d "
                    "kept): copy figures may be low; a larger --copy-sampling-window "
                    "takes fewer samples.\n" % lost["copy"])
        return status


def saved_message(outfile, threshold=DEFAULT_THRESHOLD, leaks=True,
                  malloc_threshold=DEFAULT_MALLOC_THRESHOLD):
    q = shlex.quote(outfile)
    extra = ""
    if threshold != DEFAULT_THRESHOLD:
        extra = "--cpu-percent-threshold %g " % threshold
    if not leaks:
        extra += "--no-memory-leak-detector "
    elif malloc_threshold != DEFAULT_MALLOC_THRESHOLD:
        extra += "--malloc-threshold %d " % malloc_threshold
    return ("Scalene: profile saved to %s\n"
            "  To view in the terminal: python3 -m scalene view --cli %s%s\n"
            "  To view: python3 -m scalene view %s%s\n" % (outfile, extra, q, extra, q))


def _flush_stdout():
    for stream in (sys.stdout, sys.__stdout__):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


# ---------------------------------------------------------------- view

DEFAULT_HTML = "scalene-profile.html"


def view_parser():
    p = Parser(
        prog="%s view" % PROG,
        description="Show a saved profile (ours, or one written by Scalene "
                    "1.5.16 or 2.x).  Without --cli or --html the HTML view is "
                    "saved and opened in a web browser, or, when there is none "
                    "(no DISPLAY), the terminal table is printed instead.",
    )
    p.add_argument("profile", nargs="?", default=DEFAULT_OUTFILE,
                   help="the profile to show (default: %(default)s)")
    p.add_argument("--cli", action="store_true",
                   help="show the line-level table in the terminal")
    p.add_argument("--html", action="store_true",
                   help="save the HTML view (to %s, or -o PATH) without opening "
                        "a browser" % DEFAULT_HTML)
    p.add_argument("--standalone", action="store_true",
                   help="the same as --html: our HTML view is always one "
                        "self-contained file that needs no network")
    p.add_argument("-o", "--outfile", metavar="PATH", default=None,
                   help="where the HTML view is saved (default: %s in the current "
                        "directory); not used with --cli" % DEFAULT_HTML)
    p.add_argument("-r", "--reduced", action="store_true",
                   help="show only the lines that have data")
    p.add_argument("--cpu-percent-threshold", type=_percent, default=DEFAULT_THRESHOLD,
                   metavar="PCT",
                   help="leave out files and functions below PCT %% of the "
                        "time (default: %(default)s)")
    p.add_argument("--no-memory-leak-detector", dest="leaks", action="store_false",
                   help="do not show the likely leaks")
    p.add_argument("--malloc-threshold", type=_count, default=DEFAULT_MALLOC_THRESHOLD,
                   metavar="N",
                   help="show a likely leak only if its line has at least N sampled "
                        "allocations or allocated at least 1 MiB (default: %(default)s)")
    return p


def _browser():
    """The web browser that `view` opens the page with, or None: Python's
    webbrowser choice, if there is a display to show it on (Unix other than
    macOS: DISPLAY or WAYLAND_DISPLAY), and not a console browser (lynx,
    w3m) taking over the terminal unless BROWSER names it."""
    if sys.platform not in ("darwin", "win32", "cygwin") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    import webbrowser
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return None
    if type(browser) is webbrowser.GenericBrowser and not os.environ.get("BROWSER"):
        return None
    return browser


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _print_text(text):
    """Writes the terminal table to stdout; 0, or 1 when stdout is gone."""
    try:
        sys.stdout.write(text)
        if text and not text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 1
    return 0


def view_command(argv):
    options = view_parser().parse_args(argv)
    path = options.profile
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        return _error("can't open file '%s': [Errno %d] %s" % (path, e.errno, e.strerror))
    if not os.path.isfile(path):
        # A device or a pipe (/dev/zero) would be read without end.
        return _error("'%s' is not a regular file" % path)
    from scalene import profiler
    try:
        core = profiler.load_core()
    except profiler.CoreUnavailable as e:
        return _error(e)

    if not options.cli:
        out = options.outfile or DEFAULT_HTML
        if _same_file(out, path):
            return _error("the HTML view would replace the profile '%s': choose "
                          "another path with -o" % path)
        try:
            core.render_html(path, out, reduced=options.reduced,
                             cpu_percent_threshold=options.cpu_percent_threshold,
                             leaks=options.leaks,
                             malloc_threshold=options.malloc_threshold)
        except core.Error as e:
            return _error(e)
        if options.html or options.standalone:
            _stderr("Scalene: HTML profile saved to %s\n" % out)
            return 0
        browser = _browser()
        if browser is not None:
            import pathlib
            try:
                opened = browser.open(pathlib.Path(out).resolve().as_uri())
            except Exception:  # webbrowser lets its helpers' errors through
                opened = False
            if opened:
                _stderr("Scalene: HTML profile saved to %s and opened in a web browser\n"
                        % out)
                return 0

    tty = _isatty(sys.stdout)
    width = 132
    if tty:
        import shutil
        width = max(80, shutil.get_terminal_size((132, 24)).columns)
    try:
        text = core.render_text(path, reduced=options.reduced, color=tty, width=width,
                                cpu_percent_threshold=options.cpu_percent_threshold,
                                leaks=options.leaks,
                                malloc_threshold=options.malloc_threshold)
    except core.Error as e:
        return _error(e)
    if not options.cli:
        _stderr("Scalene: HTML profile saved to %s; no web browser to open it, "
                "so here is the terminal view.\n" % out)
    return _print_text(text)


def _isatty(stream):
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False
