"""The locator against CPython's own answers, in each of its read modes.

The locator reads frames, code objects, strings and line tables through
core_fetch: safe reads (scalene_safe_read) in the signal handler and in
remote mode, plain loads inside the heap and copy samplers' hooks.  Both
must give what CPython gives: the line of code.co_lines() for each code
unit, the frame's f_lineno, the code object's qualified name."""

import os
import sys
import textwrap

from conftest import run_python


def write(path, text):
    path.write_text(textwrap.dedent(text))


def run_with_libs(tmp_path, libs, prog):
    """Writes libs ({file name: source}) to lib/ and prog to app/prog.py,
    outside and inside the program's directory, and runs prog.py with
    those two directories as its arguments.  Returns what it printed, as
    JSON, its path, and the line of each "  # TAG" comment by TAG."""
    import json
    (tmp_path / "lib").mkdir()
    (tmp_path / "app").mkdir()
    for name, text in libs.items():
        write(tmp_path / "lib" / name, text)
    path = tmp_path / "app" / "prog.py"
    write(path, prog)
    proc = run_python("app/prog.py", str(tmp_path / "app"), str(tmp_path / "lib"),
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    source = path.read_text().splitlines()
    line_of = {text.rsplit("# ", 1)[1]: i for i, text in enumerate(source, 1) if "  # " in text}
    return json.loads(proc.stdout), str(path), line_of


def test_addr2line_matches_co_lines_in_both_modes():
    from scalene import _core
    import json as mod  # a stdlib module: long functions, many line changes

    codes = []

    def collect(code):
        codes.append(code)
        for c in code.co_consts:
            if hasattr(c, "co_lines"):
                collect(c)

    for name in ("decoder", "encoder", "scanner"):
        src_mod = sys.modules.get("json." + name)
        if src_mod is None:
            src_mod = __import__("json." + name, fromlist=["_"])
        for obj in vars(src_mod).values():
            code = getattr(obj, "__code__", None)
            if code is not None:
                collect(code)
    collect(write.__code__)
    assert len(codes) > 10
    checked = 0
    for code in codes:
        for start, end, line in code.co_lines():
            for off in range(start, end, 2):
                unit = off // 2
                want = line if line is not None else None
                plain = _core._addr2line(code, unit)
                safe = _core._addr2line(code, unit, remote=True)
                assert plain == safe, (code, unit, plain, safe)
                if want is not None:
                    assert plain == want, (code.co_qualname, unit, plain, want)
                    checked += 1
    assert checked > 500
    assert mod.dumps  # keep the import used


def test_probe_hook_mode_reads_what_the_handler_reads(tmp_path):
    # A program probes itself at known lines, three calls deep, in both
    # modes: the file, the function's qualified name, the line and the
    # function's first line must be CPython's, and the same in both.
    write(tmp_path / "prog.py", """\
        import json, sys
        from scalene import _core, profiler

        P = _core.Profiler(program_path=sys.argv[1], own_prefix=profiler.own_prefix())


        class Outer:
            def method(self, out):
                f = sys._getframe()
                out.append(("handler", P._probe(), f.f_lineno, f.f_code.co_firstlineno))
                out.append(("hook", P._probe(hook=True), f.f_lineno,
                            f.f_code.co_firstlineno))


        def middle(out):
            gen = (Outer().method(out) for _ in range(1))
            list(gen)


        out = []
        middle(out)
        print(json.dumps(out))
        """)
    proc = run_python("prog.py", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    import json
    rows = json.loads(proc.stdout)
    assert [r[0] for r in rows] == ["handler", "hook"]
    results = [tuple(r[1]) for r in rows]
    for (_, (res, fname, func, line, first), lineno, firstlineno) in rows:
        assert res == 1, rows
        assert os.path.basename(fname) == "prog.py"
        assert func == "Outer.method"
        assert first == firstlineno
        # each probe is on the line f_lineno was read on, the second one
        # line (its continuation) further down
        assert line == lineno, rows
    assert results[0][:3] == results[1][:3]
    assert results[1][3] == results[0][3] + 1


def test_probe_hook_mode_refuses_another_thread(tmp_path):
    write(tmp_path / "prog.py", """\
        import sys, threading
        from scalene import _core, profiler
        P = _core.Profiler(program_path=sys.argv[1], own_prefix=profiler.own_prefix())
        try:
            P._probe(threading.get_ident(), hook=True)
        except ValueError as e:
            print("refused:", e)
        """)
    proc = run_python("prog.py", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.decode().startswith("refused: hook=True"), proc.stdout


def test_probe_through_a_deep_library_stack(tmp_path):
    # Time spent some 190 frames deep in a library (copy.deepcopy, a
    # parser, a framework) is charged to the user's line that called into
    # it, in all three read modes.  The walk reads each code object and
    # file name once however often its frames recur, and safe reads fetch a
    # window of frames at a time (core_code_get, core_fetch): each of those
    # shortcuts has to give what reading frame by frame gives.  Two library
    # files, so that the memo keeps their verdicts apart.
    deeplib = """\
        import deeplib2

        def a(n, at_bottom):
            return b(n, at_bottom)

        def b(n, at_bottom):
            if n == 0:
                return deeplib2.bottom(at_bottom)
            return c(n - 1, at_bottom)

        def c(n, at_bottom):
            return a(n, at_bottom)
        """
    deeplib2 = """\
        def bottom(at_bottom):
            return at_bottom()

        def wait_at_bottom(ready, done):
            ready.set()
            done.wait()
        """
    libs = {"deeplib.py": deeplib, "deeplib2.py": deeplib2}
    out, prog, line_of = run_with_libs(tmp_path, libs, """\
        import functools, json, sys, threading
        sys.path.insert(0, sys.argv[2])
        import deeplib, deeplib2
        from scalene import _core, profiler

        P = _core.Profiler(program_path=sys.argv[1], own_prefix=profiler.own_prefix())
        out = {}


        def callback():
            return P._probe()  # CALLBACK


        def main():
            out["handler"] = deeplib.a(60, P._probe)  # HANDLER
            out["hook"] = deeplib.a(60, functools.partial(P._probe, hook=True))  # HOOK
            out["callback"] = deeplib.a(60, callback)
            ready, done = threading.Event(), threading.Event()
            ident = threading.get_ident()

            def probe_main():
                ready.wait()
                out["remote"] = P._probe(ident)
                done.set()

            t = threading.Thread(target=probe_main)
            t.start()
            deeplib.a(60, functools.partial(deeplib2.wait_at_bottom, ready, done))  # REMOTE
            t.join()


        main()
        print(json.dumps(out))
        """)
    expect = {"handler": ("main", line_of["HANDLER"]), "hook": ("main", line_of["HOOK"]),
              "callback": ("callback", line_of["CALLBACK"]),
              "remote": ("main", line_of["REMOTE"])}
    for mode, (func, line) in expect.items():
        res, fname, got_func, got_line, _ = out[mode]
        assert (res, fname, got_func, got_line) == (1, prog, func, line), (mode, out[mode])


def test_stack_through_recursions_longer_and_shorter_than_the_memo(tmp_path):
    # --stacks walks every frame.  In the long ring each round of a
    # recursion passes through 13 library functions in two files (left out)
    # and one of the user's (kept): more code objects than the walk's memo
    # holds (CORE_CODE_MEMO), so its slots are taken over by other
    # functions and files again and again.  In the short ring a library
    # function and a user's function alternate, each staying in the memo
    # for the whole walk.  Either way each frame must be kept or left out
    # by its own file's verdict, in all three read modes.
    ring = ["def f%d(n, relay, bottom):\n    return f%d(n, relay, bottom)\n" % (i, i + 1)
            for i in range(9)]
    ring.append("import ring2\n\ndef f9(n, relay, bottom):\n"
                "    return ring2.g0(n, relay, bottom)\n")
    ring2 = """\
        def g0(n, relay, bottom):
            return g1(n, relay, bottom)

        def g1(n, relay, bottom):
            return g2(n, relay, bottom)

        def g2(n, relay, bottom):
            if n == 0:
                return bottom()
            return relay(n - 1, bottom)

        def wait(ready, done):
            ready.set()
            done.wait()
        """
    libs = {"ring.py": "\n".join(ring), "ring2.py": ring2}
    out, prog, line_of = run_with_libs(tmp_path, libs, """\
        import functools, json, sys, threading
        sys.path.insert(0, sys.argv[2])
        import ring, ring2
        from scalene import _core, profiler

        P = _core.Profiler(program_path=sys.argv[1], own_prefix=profiler.own_prefix())
        out = {}


        def long(n, bottom):
            return ring.f0(n, long, bottom)  # LONG


        def short(n, bottom):
            return ring2.g2(n, short, bottom)  # SHORT


        def main():
            for name, start in (("long", long), ("short", short)):
                out[name, "handler"] = start(5, functools.partial(P._probe, stack=True))  # HANDLER
                out[name, "hook"] = start(5, functools.partial(P._probe, hook=True,  # HOOK
                                                               stack=True))
                ready, done = threading.Event(), threading.Event()
                ident = threading.get_ident()

                def probe_main():
                    ready.wait()
                    out[name, "remote"] = P._probe(ident, stack=True)
                    done.set()

                t = threading.Thread(target=probe_main)
                t.start()
                start(5, functools.partial(ring2.wait, ready, done))  # REMOTE
                t.join()


        main()  # MODULE
        print(json.dumps([[k, v] for k, v in out.items()]))
        """)
    out = {tuple(k): v for k, v in out}
    assert len(out) == 6, out
    for (ring_name, mode), (res, fname, func, line, _, stack) in out.items():
        relay_line = line_of[ring_name.upper()]
        assert (res, fname, func, line) == (1, prog, ring_name, relay_line), \
            (ring_name, mode, res, fname, func, line)
        # start(5) .. start(0): six rounds, outermost first.
        expect = ("%s <module>:%d;%s main:%d;" % (prog, line_of["MODULE"], prog,
                                                  line_of[mode.upper()])
                  + "%s %s:%d;" % (prog, ring_name, relay_line) * 6)
        assert stack == expect, (ring_name, mode, stack)


def test_long_names_are_cut_at_a_character_boundary(tmp_path):
    # A function name longer than a location holds (127 bytes) is cut
    # where a character starts, also when it is read from the str's cached
    # UTF-8 (which PyUnicode_AsUTF8 fills): of 100 two-byte characters, 63
    # are kept, never half of the 64th.
    name = "\u00e9" * 100
    (tmp_path / "prog.py").write_text(textwrap.dedent("""\
        import ctypes, functools, json, os, sys
        from scalene import _core, profiler

        P = _core.Profiler(program_path=os.path.dirname(os.path.abspath(__file__)),
                           own_prefix=profiler.own_prefix())


        def NAME(probe):
            return probe()


        as_utf8 = ctypes.pythonapi.PyUnicode_AsUTF8
        as_utf8.restype = ctypes.c_char_p
        assert as_utf8(ctypes.py_object(NAME.__code__.co_qualname)) is not None
        out = {"handler": NAME(P._probe), "hook": NAME(functools.partial(P._probe, hook=True))}
        print(json.dumps(out))
        """).replace("NAME", name), encoding="utf-8")
    proc = run_python("prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    import json
    out = json.loads(proc.stdout)
    for mode, (res, fname, func, line, _) in out.items():
        assert (res, func) == (1, name[:63]), (mode, res, func)
