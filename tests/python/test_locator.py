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
