"""The command line: options, errors and exit statuses, the saved profile,
and `view`.  Runs the real CLI (`python3 -m scalene`) in subprocesses; the
runs that profile go through the real scalene._core."""

import json
import os
import re
import shutil

import pytest

import scalene
from conftest import (
    BUILD, SPIN_SOURCE, run_python, run_scalene, stderr_lines, subprocess_env, write)

ARGV_PROG = "import json, sys\nprint(json.dumps(sys.argv[1:]))\n"

# Scalene 1.5.16's layout (SCALENE-COMPAT.md section 2): ours may add keys.
TOP_KEYS = {"alloc_samples", "elapsed_time_sec", "files", "gpu", "growth_rate",
            "max_footprint_fname", "max_footprint_lineno", "max_footprint_mb",
            "memory", "program", "samples"}
FILE_KEYS = {"functions", "leaks", "lines", "percent_cpu_time"}
LINE_KEYS = {"line", "lineno", "memory_samples", "n_avg_mb", "n_copy_mb_s",
             "n_cpu_percent_c", "n_cpu_percent_python", "n_gpu_avg_memory_mb",
             "n_gpu_peak_memory_mb", "n_gpu_percent", "n_growth_mb", "n_malloc_mb",
             "n_mallocs", "n_peak_mb", "n_python_fraction", "n_sys_percent",
             "n_usage_fraction"}

BUSY = SPIN_SOURCE + '''
spin(0.5)
print("done")
'''


def _one_error_line(proc, status):
    lines = stderr_lines(proc)
    assert proc.returncode == status, (proc.returncode, lines)
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, lines
    return errors[0]


# ---------------------------------------------------------------- errors of `run`

def test_unknown_option_before_program(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "--frobnicate", "prog.py", cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert err.startswith("usage: scalene run")
    assert "--frobnicate" in _one_error_line(proc, 2)
    assert proc.stdout == b""
    assert not (tmp_path / "scalene-profile.json").exists()


@pytest.mark.parametrize("abbrev", ["--cpu-samp", "--out", "--reduced", "--profile-a"])
def test_abbreviations_rejected(tmp_path, abbrev):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", abbrev, "0.5", "prog.py", cwd=tmp_path)
    assert abbrev in _one_error_line(proc, 2)
    assert proc.stdout == b""


def test_missing_script(tmp_path):
    proc = run_scalene("run", "nope.py", "arg", cwd=tmp_path)
    line = _one_error_line(proc, 2)
    assert len(stderr_lines(proc)) == 1
    assert line == ("scalene: error: can't open file '%s': [Errno 2] No such file or directory"
                    % (tmp_path / "nope.py"))


@pytest.mark.parametrize("module", ["no_such_module_xyz", "json.no_such_submodule"])
def test_missing_module(tmp_path, module):
    proc = run_scalene("run", "-m", module, cwd=tmp_path)
    assert len(stderr_lines(proc)) == 1
    line = _one_error_line(proc, 2)
    assert line.startswith("scalene: error: No module named ")
    assert module in line
    assert not (tmp_path / "scalene-profile.json").exists()


def test_no_program(tmp_path):
    proc = run_scalene("run", "--profile-all", cwd=tmp_path)
    assert "no program" in _one_error_line(proc, 2)


@pytest.mark.parametrize("value", ["0", "-1", "10.5", "abc", "nan", "inf"])
def test_bad_cpu_sampling_rate(tmp_path, value):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "--cpu-sampling-rate", value, "prog.py", cwd=tmp_path)
    assert "--cpu-sampling-rate" in _one_error_line(proc, 2)
    assert proc.stdout == b""


@pytest.mark.parametrize("value", ["-0.5", "100.1", "x"])
def test_bad_cpu_percent_threshold(tmp_path, value):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "--cpu-percent-threshold=" + value, "prog.py", cwd=tmp_path)
    assert "--cpu-percent-threshold" in _one_error_line(proc, 2)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan"])
def test_bad_profile_interval(tmp_path, value):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "--profile-interval=" + value, "prog.py", cwd=tmp_path)
    assert "--profile-interval" in _one_error_line(proc, 2)
    assert proc.stdout == b""


def test_on_and_off_exclusive(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "--on", "--off", "prog.py", cwd=tmp_path)
    assert "--off" in _one_error_line(proc, 2)


def test_program_path_must_exist(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "--program-path", "nodir", "prog.py", cwd=tmp_path)
    assert "--program-path" in _one_error_line(proc, 2)


# ---------------------------------------------------------------- top level

def test_version(tmp_path):
    proc = run_scalene("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    from scalene import _core
    assert out == "Scalene version %s (libscaleneprof %s)\n" % (
        scalene.__version__, _core.library_version())
    assert _core.library_version() == scalene.__version__


def test_legacy_form(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("prog.py", cwd=tmp_path)
    assert _one_error_line(proc, 1) == "scalene: error: did you mean `scalene run prog.py`?"
    assert proc.stdout == b""
    proc = run_scalene("--cpu", "prog.py", "x", cwd=tmp_path)
    assert (_one_error_line(proc, 1)
            == "scalene: error: did you mean `scalene run --cpu prog.py --- x`?")


def test_no_verb(tmp_path):
    proc = run_scalene(cwd=tmp_path)
    assert "run or view" in _one_error_line(proc, 2)


def test_main_returns_status(tmp_path):
    code = "import sys\nfrom scalene.cli import main\nr = main(['run', 'nope.py'])\nprint(repr(r))\n"
    proc = run_python("-c", code, cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == b"2\n"


# ---------------------------------------------------------------- `run` output

def test_run_writes_scalene_profile(tmp_path):
    prog = write(tmp_path / "busy.py", BUSY)
    proc = run_scalene("run", "busy.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"done\n"
    assert "no samples" not in proc.stderr.decode()
    profile = json.loads((tmp_path / "scalene-profile.json").read_text())
    assert TOP_KEYS <= set(profile), TOP_KEYS - set(profile)
    assert profile["program"] == str(prog)
    assert profile["memory"] is True  # memory is profiled by default, as in Scalene
    assert profile["elapsed_time_sec"] > 0.3
    assert str(prog) in profile["files"], list(profile["files"])
    detail = profile["files"][str(prog)]
    assert FILE_KEYS <= set(detail)
    lines = detail["lines"]
    assert [ln["lineno"] for ln in lines] == list(range(1, len(BUSY.splitlines()) + 1))
    for ln in lines:
        assert LINE_KEYS <= set(ln), LINE_KEYS - set(ln)
    assert lines[6]["line"].strip() == "while time.process_time() < end:"
    # Nothing outside the program's directory is reported by default.
    for name in profile["files"]:
        assert name.startswith(str(tmp_path)), name


def test_saved_message_and_outfile_kept(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    (tmp_path / "out").mkdir()
    proc = run_scalene("run", "-o", "out/my.prof", "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert stderr_lines(proc)[:3] == [
        "Scalene: profile saved to out/my.prof",
        "  To view in the terminal: python3 -m scalene view --cli out/my.prof",
        "  To view: python3 -m scalene view out/my.prof",
    ]
    for line in stderr_lines(proc)[3:]:
        assert line.startswith("Scalene: note: no samples were taken"), line
    assert (tmp_path / "out" / "my.prof").is_file()
    assert not (tmp_path / "out" / "my.json").exists()
    assert not (tmp_path / "scalene-profile.json").exists()
    json.loads((tmp_path / "out" / "my.prof").read_text())


def test_outfile_long_form_and_threshold_in_hint(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "--outfile=p q.json", "--cpu-percent-threshold", "5",
                       "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "p q.json").is_file()
    assert ("  To view in the terminal: python3 -m scalene view --cli "
            "--cpu-percent-threshold 5 'p q.json'") in stderr_lines(proc)


def test_unwritable_outfile(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "-o", "no/such/dir/p.json", "prog.py", cwd=tmp_path)
    assert proc.stdout == b"ran\n"
    assert "no/such/dir/p.json" in _one_error_line(proc, 1)


def test_separator_args_untouched(tmp_path):
    write(tmp_path / "prog.py", ARGV_PROG)
    args = ["-o", "x.json", "--cpu-only", "--version", "-m", "mod", "---", "--", "-h", ""]
    proc = run_scalene("run", "--profile-all", "prog.py", "---", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == args
    assert (tmp_path / "scalene-profile.json").is_file()
    assert not (tmp_path / "x.json").exists()


def test_separator_before_program(tmp_path):
    write(tmp_path / "prog.py", ARGV_PROG)
    proc = run_scalene("run", "-o", "a.json", "---", "prog.py", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == ["--help"]
    assert (tmp_path / "a.json").is_file()


def test_cpu_only_silent_gpu_noted(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    quiet = run_scalene("run", "--cpu-only", "--cpu", "prog.py", cwd=tmp_path)
    assert quiet.returncode == 0
    assert stderr_lines(quiet)[0].startswith("Scalene: profile saved to")
    noted = run_scalene("run", "--memory", "--gpu", "prog.py", cwd=tmp_path)
    assert noted.returncode == 0
    lines = stderr_lines(noted)
    assert "not available yet" in lines[0] and "--gpu" in lines[0]
    assert "--memory" not in lines[0]
    assert lines[1].startswith("Scalene: profile saved to")
    assert json.loads((tmp_path / "scalene-profile.json").read_text())["memory"] is True


def test_all_options_accepted(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "--cpu-sampling-rate", "0.005", "--use-virtual-time",
                       "--profile-all", "--profile-only", "prog,other", "--profile-exclude",
                       "nothing", "--program-path", ".", "--reduced-profile", "--on",
                       "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"ran\n"


def test_help(tmp_path):
    proc = run_scalene("run", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    out = proc.stdout.decode()
    for opt in ("--outfile", "--cpu-only", "--profile-all", "--profile-only",
                "--profile-exclude", "--program-path", "--off", "---", "--help-advanced"):
        assert opt in out, opt
    proc = run_scalene("run", "--help-advanced", cwd=tmp_path)
    assert proc.returncode == 0
    out = proc.stdout.decode()
    for opt in ("--outfile", "--cpu-only", "--cpu-sampling-rate", "--use-virtual-time",
                "--profile-all", "--profile-only", "--profile-exclude", "--program-path",
                "--reduced-profile", "--cpu-percent-threshold", "--off", "---"):
        assert opt in out, opt


# ---------------------------------------------------------------- `view`

def test_view_missing_file(tmp_path):
    proc = run_scalene("view", "--cli", "nope.json", cwd=tmp_path)
    assert len(stderr_lines(proc)) == 1
    line = _one_error_line(proc, 1)
    assert line.startswith("scalene: error:") and "nope.json" in line
    proc = run_scalene("view", cwd=tmp_path)
    assert "scalene-profile.json" in _one_error_line(proc, 1)


def test_view_malformed_json(tmp_path):
    write(tmp_path / "bad.json", '{\n  "files": {,\n}\n')
    proc = run_scalene("view", "--cli", "bad.json", cwd=tmp_path)
    assert len(stderr_lines(proc)) == 1
    line = _one_error_line(proc, 1)
    assert line.startswith("scalene: error:")
    assert re.search(r"bad\.json:2:\d+", line), line
    assert proc.stdout == b""


@pytest.mark.parametrize("text", ["[1, 2]\n", '"text"\n', '{"files": 3}\n',
                                  '{"files": {"x.py": 5}}\n'])
def test_view_foreign_json(tmp_path, text):
    write(tmp_path / "other.json", text)
    proc = run_scalene("view", "--cli", "other.json", cwd=tmp_path)
    assert len(stderr_lines(proc)) == 1
    line = _one_error_line(proc, 1)
    assert line.startswith("scalene: error:") and "other.json" in line
    assert proc.stdout == b""


def test_view_own_profile(tmp_path):
    write(tmp_path / "busy.py", BUSY)
    assert run_scalene("run", "-o", "p.json", "busy.py", cwd=tmp_path).returncode == 0
    proc = run_scalene("view", "--cli", "p.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    out = proc.stdout.decode()
    assert "busy.py" in out
    assert "\x1b[" not in out  # not a terminal: no colour
    reduced = run_scalene("view", "--cli", "-r", "p.json", cwd=tmp_path)
    assert reduced.returncode == 0
    assert len(reduced.stdout) <= len(proc.stdout)
    # No flag and no display to open a browser on: the HTML is saved and
    # the same table printed (tests/python/test_view_html.py has the rest).
    env = subprocess_env()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        env.pop(name, None)
    plain = run_scalene("view", "p.json", cwd=tmp_path, env=env)
    assert plain.returncode == 0
    assert plain.stdout == proc.stdout
    assert "HTML profile saved to scalene-profile.html" in plain.stderr.decode()
    assert (tmp_path / "scalene-profile.html").is_file()


def test_view_html_empty_profile(tmp_path):
    write(tmp_path / "p.json", "{}\n")
    proc = run_scalene("view", "--html", "p.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert stderr_lines(proc) == ["Scalene: HTML profile saved to scalene-profile.html"]
    page = (tmp_path / "scalene-profile.html").read_text()
    assert "The profile is empty" in page and page.endswith("</html>\n")


# ---------------------------------------------------------------- without _core

@pytest.fixture
def package_without_core(tmp_path):
    """A copy of our package without the extension."""
    root = tmp_path / "nocore"
    (root / "scalene").mkdir(parents=True)
    for name in os.listdir(os.path.join(BUILD, "scalene")):
        if name.endswith(".py") and not name.startswith("_core"):
            shutil.copy(os.path.join(BUILD, "scalene", name), root / "scalene" / name)
    assert not any(n.startswith("_core") for n in os.listdir(root / "scalene"))
    return subprocess_env(PYTHONPATH=str(root))


def test_without_core(tmp_path, package_without_core):
    env = package_without_core
    write(tmp_path / "prog.py", "print('ran')\n")
    proc = run_scalene("run", "prog.py", cwd=tmp_path, env=env)
    line = _one_error_line(proc, 1)
    assert line.startswith("scalene: error:") and "_core" in line
    assert proc.stdout == b""
    # Argument errors and --version still work.
    assert "--bogus" in _one_error_line(
        run_scalene("run", "--bogus", "prog.py", cwd=tmp_path, env=env), 2)
    assert "can't open file" in _one_error_line(
        run_scalene("run", "nope.py", cwd=tmp_path, env=env), 2)
    version = run_scalene("--version", cwd=tmp_path, env=env)
    assert version.returncode == 0
    assert version.stdout.decode().startswith("Scalene version %s (libscaleneprof unavailable"
                                              % scalene.__version__)
    assert "_core" in _one_error_line(
        run_scalene("view", "--cli", "prog.py", cwd=tmp_path, env=env), 1)


# ---------------------------------------------------------------- options reach the profiler

SLEEPY = '''
import time

def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

spin(0.2)
time.sleep(0.4)
'''


def _profile_of(tmp_path, *options):
    proc = run_scalene("run", "-o", "p.json", *options, "sleepy.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads((tmp_path / "p.json").read_text())


def test_off_cpu_time_and_virtual_time(tmp_path):
    prog = str(write(tmp_path / "sleepy.py", SLEEPY))
    sleep_line = 10
    wall = _profile_of(tmp_path)
    line = wall["files"][prog]["lines"][sleep_line - 1]
    assert line["line"].strip() == "time.sleep(0.4)"
    assert line["n_sys_percent"] > 20, line
    virtual = _profile_of(tmp_path, "--use-virtual-time")
    line = virtual["files"][prog]["lines"][sleep_line - 1]
    assert line["n_sys_percent"] + line["n_cpu_percent_python"] < 5, line


def test_profile_exclude_and_only(tmp_path):
    prog = str(write(tmp_path / "sleepy.py", SLEEPY))
    assert prog in _profile_of(tmp_path, "--profile-only", "nothing,sleepy")["files"]
    assert prog not in _profile_of(tmp_path, "--profile-exclude", "sleepy")["files"]
    assert prog not in _profile_of(tmp_path, "--profile-only", "nothing")["files"]


def test_off_without_start_takes_no_samples(tmp_path):
    write(tmp_path / "sleepy.py", SLEEPY)
    proc = run_scalene("run", "--off", "sleepy.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = stderr_lines(proc)
    assert lines[0] == "Scalene: profile saved to scalene-profile.json"
    assert lines[-1].startswith("Scalene: note: no samples were taken")
