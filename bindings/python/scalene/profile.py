"""Turning profiling on and off in a running ``scalene run`` process:

    python3 -m scalene.profile --on  --pid PID
    python3 -m scalene.profile --off --pid PID

as in Scalene.  The profiled process listens for two real-time signals
(ON_SIGNAL and OFF_SIGNAL, installed by ``scalene run`` unless the program
has its own handlers for them); --off also writes the profile at once.
Before it sends one, this command checks that PID exists, belongs to the
same user and catches both signals (``SigCgt`` in /proc/PID/status): a
process that is not being profiled would be killed by a real-time signal's
default action, so it is never sent one.  Errors are one line and exit 1;
a malformed command line exits 2.

Scalene sends SIGILL and SIGBUS; those are fault signals, which our crash
note handles, so we use SIGRTMIN+5 and SIGRTMIN+6 (the CPU sampler uses
SIGRTMIN+4).
"""

import argparse
import os
import signal
import sys

ON_SIGNAL = signal.SIGRTMIN + 5
OFF_SIGNAL = signal.SIGRTMIN + 6

_installed = {}  # signal -> the disposition it had before install()


def install(on, off):
    """Called by ``scalene run``: on() and off() run when the signals come
    (in the main thread, between two bytecodes).  A signal the program (or
    anything before us) already handles is left alone."""
    for sig, action in ((ON_SIGNAL, on), (OFF_SIGNAL, off)):
        try:
            previous = signal.getsignal(sig)
        except ValueError:
            continue
        if previous not in (signal.SIG_DFL, None):
            continue

        def handler(signum, frame, action=action):
            action()

        signal.signal(sig, handler)
        _installed[sig] = (previous, handler)


def uninstall():
    """Puts back what install() replaced, unless the program has changed it
    since."""
    for sig, (previous, handler) in list(_installed.items()):
        try:
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        except ValueError:
            pass
        del _installed[sig]


class ControlError(Exception):
    """A one-line reason why the signal was not sent."""


def _status_fields(pid):
    try:
        with open("/proc/%d/status" % pid, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        raise ControlError("no process %d" % pid) from None
    except OSError as e:
        raise ControlError("cannot read /proc/%d/status: %s" % (pid, e.strerror)) from None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def check_target(pid):
    """Raises ControlError unless pid is a process of this user that
    catches both control signals."""
    if pid <= 0:
        raise ControlError("--pid must be a process id above 0, not %d" % pid)
    fields = _status_fields(pid)
    try:
        uid = int(fields["Uid"].split()[0])
        caught = int(fields["SigCgt"], 16)
    except (KeyError, ValueError, IndexError):
        raise ControlError("cannot read the owner and signals of process %d" % pid) from None
    if uid != os.getuid():
        raise ControlError("process %d belongs to another user (uid %d); only your own "
                           "processes can be switched" % (pid, uid))
    for sig in (ON_SIGNAL, OFF_SIGNAL):
        if not caught & (1 << (sig - 1)):
            raise ControlError("process %d is not being profiled by `scalene run` "
                               "(it does not listen for the on/off signals)" % pid)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python3 -m scalene.profile",
        description="Turn profiling on or off in a running `scalene run` process "
                    "of yours (--off also writes its profile).")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--on", action="store_true", help="turn profiling on")
    which.add_argument("--off", action="store_true",
                       help="turn profiling off and write the profile")
    p.add_argument("--pid", type=int, required=True, metavar="PID",
                   help="the process id of the profiled program")
    options = p.parse_args(argv)
    try:
        check_target(options.pid)
        os.kill(options.pid, ON_SIGNAL if options.on else OFF_SIGNAL)
    except ControlError as e:
        sys.stderr.write("scalene.profile: error: %s\n" % e)
        return 1
    except ProcessLookupError:
        sys.stderr.write("scalene.profile: error: no process %d\n" % options.pid)
        return 1
    except PermissionError:
        sys.stderr.write("scalene.profile: error: not allowed to signal process %d\n"
                         % options.pid)
        return 1
    print("Scalene: profiling turned %s in process %d"
          % ("on" if options.on else "off", options.pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
