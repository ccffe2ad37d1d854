"""`scalene run -c FILE`: options from a YAML file (docs/config.md).

End to end through the real CLI (`python3 -m scalene run …` in a
subprocess), plus in-process checks of scalene.config against the run
parser itself."""

import json
import os

import pytest

from conftest import SPIN_SOURCE, run_scalene, stderr_lines, write

# Spins on the CPU for 0.5 s in prog.py and 0.3 s in helper.py, then prints
# a marker: a run that must not start never prints it.
PROG = SPIN_SOURCE + '''
import helper

spin(0.5)
helper.spin(0.3)
print("PROGRAM RAN")
'''
HELPER = SPIN_SOURCE
MARKER = b"PROGRAM RAN"


@pytest.fixture
def prog(tmp_path):
    write(tmp_path / "prog.py", PROG)
    write(tmp_path / "helper.py", HELPER)
    return tmp_path


def _profile(path):
    """The profile at path, after checking that `view --cli` shows it."""
    proc = run_scalene("view", "--cli", str(path), cwd=os.path.dirname(str(path)))
    assert proc.returncode == 0, proc.stderr
    with open(path) as f:
        return json.load(f)


def _files(profile):
    return sorted(os.path.basename(f) for f in profile["files"])


# ---------------------------------------------------------------- the keys take effect

def test_dash_keys_take_effect(prog):
    write(prog / "scalene.yaml",
          "# options\n"
          "outfile: from-yaml.json\n"
          "cpu-only: true\n"
          "use-virtual-time: yes\n"
          "cpu-sampling-rate: 0.1\n"
          "profile-only:\n"
          "  - prog\n"
          "  - nothing-else\n")
    proc = run_scalene("run", "-c", "scalene.yaml", "prog.py", cwd=prog)
    assert proc.returncode == 0, stderr_lines(proc)
    assert MARKER in proc.stdout
    assert not (prog / "scalene-profile.json").exists()
    p = _profile(prog / "from-yaml.json")
    # cpu-only: no memory profile.
    assert p["memory"] is False
    assert p["alloc_samples"] == 0
    # profile-only: prog.py only, not helper.py.
    assert _files(p) == ["prog.py"]
    # cpu-sampling-rate 0.1 s on the CPU clock (use-virtual-time): every
    # sample carries at least 0.1 s of its thread's CPU time, so there are
    # at most total/0.1 + one per thread (the default 0.01 s gives ~80).
    assert 1 <= p["cpu_samples"] <= p["total_cpu_sec"] / 0.1 + 3, \
        (p["cpu_samples"], p["total_cpu_sec"])


def test_underscore_keys_and_output_alias(prog):
    write(prog / "conf.yml",
          "output: under.json\n"
          "cpu_only: True\n"
          "use_virtual_time: on\n"
          "cpu_sampling_rate: 1e-1\n"
          "profile_only: helper\n"
          "profile_exclude: [nothing]\n")
    proc = run_scalene("run", "--config", "conf.yml", "prog.py", cwd=prog)
    assert proc.returncode == 0, stderr_lines(proc)
    assert MARKER in proc.stdout
    p = _profile(prog / "under.json")
    assert p["memory"] is False
    assert _files(p) == ["helper.py"]
    assert 1 <= p["cpu_samples"] <= p["total_cpu_sec"] / 0.1 + 3


def test_command_line_wins(prog):
    write(prog / "scalene.yaml",
          "outfile: from-yaml.json\n"
          "cpu-only: true\n"
          "profile-only: [nothing-matches]\n"
          "off: true\n")
    proc = run_scalene("run", "-c", "scalene.yaml", "-o", "from-cli.json",
                       "--profile-only", "prog", "--on", "prog.py", cwd=prog)
    assert proc.returncode == 0, stderr_lines(proc)
    assert MARKER in proc.stdout
    assert not (prog / "from-yaml.json").exists()
    p = _profile(prog / "from-cli.json")
    assert _files(p) == ["prog.py"]     # the command line's profile-only
    assert p["cpu_samples"] > 0         # --on beat off: true
    assert p["memory"] is False         # cpu-only from the file (not on the command line)


def test_bool_switched_off(prog):
    # on: false starts with profiling off (Scalene can only switch keys on).
    write(prog / "scalene.yaml", "on: false\ncpu-only: false\n")
    proc = run_scalene("run", "-c", "scalene.yaml", "prog.py", cwd=prog)
    assert proc.returncode == 0, stderr_lines(proc)
    assert MARKER in proc.stdout
    assert "profiling was never turned on" in proc.stderr.decode()
    p = _profile(prog / "scalene-profile.json")
    assert p.get("cpu_samples", 0) == 0


# ---------------------------------------------------------------- errors

def _config_error(prog, text, *args, name="conf/bad.yaml"):
    """Runs with the config file `name` holding text; returns the one
    stderr line after checking status 2 and that nothing ran."""
    if text is not None:
        write(prog / name, text)
    proc = run_scalene("run", "-c", name, *args, "prog.py", cwd=prog)
    lines = stderr_lines(proc)
    assert proc.returncode == 2, lines
    assert len(lines) == 1, lines
    assert MARKER not in proc.stdout
    assert proc.stdout == b""
    assert not (prog / "scalene-profile.json").exists()
    assert lines[0].startswith("scalene: error: ")
    return lines[0][len("scalene: error: "):]


@pytest.mark.parametrize("text, message", [
    ("outfile: x.json\ncpu_onlyy: true\n", 'conf/bad.yaml:2:1: unknown key "cpu_onlyy"'),
    ("cpu-sampling-rate: fast\n",
     'conf/bad.yaml:1:20: "cpu-sampling-rate" must be a number, not "fast"'),
    ('cpu-only: "true"\n',
     'conf/bad.yaml:1:11: "cpu-only" must be a bool (true or false), '
     'not the quoted string "true"'),
    ("outfile: [a, b]\n", 'conf/bad.yaml:1:10: "outfile" must be a string, not a list'),
    ("malloc-threshold: 1.5\n",
     'conf/bad.yaml:1:19: "malloc-threshold" must be an integer, not "1.5"'),
    ("outfile: a.json\n\noutfile: b.json\n",
     'conf/bad.yaml:3:1: "outfile" is given twice (first at line 1)'),
    ("- outfile: x.json\n",
     "conf/bad.yaml:1:1: the top level must be a mapping of options, not a list"),
    ("", "conf/bad.yaml:1:1: empty file: expected a mapping of options"),
    ("outfile: a\n---\noutfile: b\n",
     "conf/bad.yaml:2:1: a second document is not allowed: the file is one mapping of options"),
    ("outfile: x.json\ncpu-only\n",
     "conf/bad.yaml:3:1: could not find expected ':' "
     "(while scanning a simple key at line 2, column 1)"),
    ("config: other.yaml\n", 'conf/bad.yaml:1:1: unknown key "config"'),
])
def test_file_errors(prog, text, message):
    assert _config_error(prog, text) == message


@pytest.mark.parametrize("text, message", [
    # The option's own validator, as on the command line.
    ("cpu-sampling-rate: -1\n",
     'conf/bad.yaml:1:20: "cpu-sampling-rate": -1 must be more than 0 and at most 10 seconds'),
    ("cpu_sampling_rate: 10.5\n",
     'conf/bad.yaml:1:20: "cpu-sampling-rate": 10.5 must be more than 0 and at most 10 seconds'),
    ("allocation-sampling-window: 0\n",
     'conf/bad.yaml:1:29: "allocation-sampling-window": 0 must be a positive number of '
     'bytes (at most 2**40)'),
    ("cpu-percent-threshold: 101\n",
     'conf/bad.yaml:1:24: "cpu-percent-threshold": 101 is not between 0 and 100'),
    # One option twice, exclusive options together.
    ("outfile: a.json\noutput: b.json\n",
     'conf/bad.yaml:2:9: "output" is the same option as "outfile" (line 1)'),
    ("on: true\noff: true\n", 'conf/bad.yaml:2:6: "off" is not allowed with "on" (line 1)'),
    ("on: false\noff: false\n", 'conf/bad.yaml:2:6: "off" is not allowed with "on" (line 1)'),
    ("memory-leak-detector: yes\nno-memory-leak-detector: yes\n",
     'conf/bad.yaml:2:26: "no-memory-leak-detector" is not allowed with '
     '"memory-leak-detector" (line 1)'),
])
def test_value_errors(prog, text, message):
    assert _config_error(prog, text) == message


def test_range_error_matches_the_command_line(prog):
    line = _config_error(prog, "cpu-sampling-rate: -1\n")
    proc = run_scalene("run", "--cpu-sampling-rate", "-1", "prog.py", cwd=prog)
    cli = [l for l in stderr_lines(proc) if "error:" in l]
    assert proc.returncode == 2 and len(cli) == 1
    assert cli[0].endswith("argument --cpu-sampling-rate: -1 must be more than 0 and at "
                           "most 10 seconds")
    assert line.endswith(cli[0].split("--cpu-sampling-rate: ", 1)[1])


def test_bad_value_refused_even_when_the_command_line_gives_it(prog):
    # The file is checked whole: the command line wins, but does not hide a broken file.
    assert _config_error(prog, "cpu-sampling-rate: 0\n", "--cpu-sampling-rate", "0.5") == \
        'conf/bad.yaml:1:20: "cpu-sampling-rate": 0 must be more than 0 and at most 10 seconds'


def test_missing_file(prog):
    assert _config_error(prog, None, name="nope.yaml") == \
        "nope.yaml: cannot open: No such file or directory"


def test_directory(prog):
    (prog / "adir").mkdir()
    assert _config_error(prog, None, name="adir") == "adir: cannot read: is a directory"


def test_config_error_before_program_checks(prog):
    # The config is read first: a bad file is reported even with no program.
    write(prog / "bad.yaml", "nope: 1\n")
    proc = run_scalene("run", "-c", "bad.yaml", cwd=prog)
    assert proc.returncode == 2
    assert stderr_lines(proc) == ['scalene: error: bad.yaml:1:1: unknown key "nope"']


# ---------------------------------------------------------------- in process

def test_schema_is_the_run_options():
    from scalene import cli, config
    parser = cli.run_parser()
    keys = dict(config.schema(parser))
    longs = {opt[2:] for a in parser._actions for opt in a.option_strings
             if opt.startswith("--")}
    assert set(keys) == (longs - {"help", "help-advanced", "config"}) | {"output"}
    assert "m" not in keys and "module" not in keys
    assert keys["outfile"] == keys["output"] == keys["program-path"] == "string"
    for name in ("cpu-only", "cpu", "gpu", "memory", "use-virtual-time", "profile-all",
                 "reduced-profile", "on", "off", "stacks", "no-stacks",
                 "memory-leak-detector", "no-memory-leak-detector"):
        assert keys[name] == "bool", name
    for name in ("allocation-sampling-window", "copy-sampling-window", "malloc-threshold"):
        assert keys[name] == "int", name
    for name in ("cpu-sampling-rate", "cpu-percent-threshold", "profile-interval"):
        assert keys[name] == "float", name
    assert keys["profile-only"] == keys["profile-exclude"] == "list"


@pytest.mark.parametrize("argv", [
    [],
    ["-o", "x.json", "--cpu-only"],
    ["--off", "--no-stacks", "--no-memory-leak-detector"],
    ["--on", "--memory", "--cpu-sampling-rate", "0.5", "--profile-only", "a,b"],
    ["--malloc-threshold", "3", "--profile-interval", "2", "--allocation-sampling-window", "4096"],
])
def test_unset_then_defaults_is_plain_argparse(argv):
    from scalene import cli, config
    parser = cli.run_parser()
    plain = vars(parser.parse_args(argv))
    ns = parser.parse_args(argv, namespace=config.unset_namespace(parser))
    assert vars(config.fill_defaults(parser, ns)) == plain


def test_apply_sets_only_unset(tmp_path):
    from scalene import cli, config
    path = write(tmp_path / "c.yaml",
                 "outfile: f.json\n"
                 "no-stacks: true\n"
                 "memory-leak-detector: false\n"
                 "profile-exclude: [a, 'b c']\n"
                 "malloc-threshold: 7\n"
                 "profile-interval: 3\n"
                 "off: yes\n")
    parser = cli.run_parser()
    ns = parser.parse_args(["-o", "cli.json", "--on"],
                           namespace=config.unset_namespace(parser))
    config.apply(parser, ns, str(path))
    config.fill_defaults(parser, ns)
    assert ns.outfile == "cli.json"
    assert ns.off is False
    assert ns.stacks is False
    assert ns.memory_leak_detector is False
    assert ns.profile_exclude == "a,b c"
    assert ns.malloc_threshold == 7 and type(ns.malloc_threshold) is int
    assert ns.profile_interval == 3.0 and type(ns.profile_interval) is float
    assert ns.cpu_sampling_rate == 0.01  # the default: neither file nor command line
    assert ns.config is None


def test_load_config_binding(tmp_path):
    from scalene import _core
    path = write(tmp_path / "c.yaml", "b: yes\ni: -3\nf: 2\ns: 'x'\nl: [p, q]\n")
    got = _core.load_config(str(path), [("b", "bool"), ("i", "int"), ("f", "float"),
                                        ("s", "string"), ("l", "list")])
    assert got == [("b", True, 1, 4), ("i", -3, 2, 4), ("f", 2.0, 3, 4), ("s", "x", 4, 4),
                   ("l", ["p", "q"], 5, 4)]
    assert type(got[2][1]) is float
    with pytest.raises(_core.Error) as e:
        _core.load_config(str(path), [("b", "bool")])
    assert str(e.value) == '%s:2:1: unknown key "i"' % path
    assert e.value.code == _core.EFORMAT
    with pytest.raises(_core.Error) as e:
        _core.load_config(str(tmp_path / "none.yaml"), [])
    assert e.value.code == _core.ENOENT
    with pytest.raises(ValueError):
        _core.load_config(str(path), [("b", "boolean")])
    with pytest.raises(TypeError):
        _core.load_config(str(path), [("b",)])
    with pytest.raises(TypeError):
        _core.load_config(str(path), 5)
