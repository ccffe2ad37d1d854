"""`view` and the HTML page: a program profiled end to end with the real CLI,
then `view --html`, `--standalone`, no flag (with and without a browser),
and the errors.  The page is checked against the JSON profile it was made
from: every source line, the function summary, the CPU shares."""

import json
import os
import stat
import sys
from html.parser import HTMLParser

import pytest

from conftest import SPIN_SOURCE, run_scalene, stderr_lines, subprocess_env, write

TRICKY = """if a < b and "x" > '<y>':"""

PROGRAM = SPIN_SOURCE + '''

def compare(a, b):
    ''' + TRICKY + '''
        return "<&>"
    return None


def main():
    compare("a", "b")
    spin(0.4)


main()
'''


def escaped(text):
    """The page's escaping of text from the profile (output_html.c)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def no_display_env(**extra):
    """The environment with no display and no BROWSER, then extra."""
    env = subprocess_env()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        env.pop(name, None)
    env.update(extra)
    return env


class Page(HTMLParser):
    """Collects the tables of a page (class, rows of (class, data-v, text)
    cells) and checks that every element but the void ones is closed in
    order and that no id repeats."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack = []
        self.problems = []
        self.ids = set()
        self.tables = []  # [class, [row, ...]]
        self.cell = None  # [class, data-v, text]
        self.starts = 0

    def handle_starttag(self, tag, attrs):
        self.starts += 1
        a = dict(attrs)
        if "id" in a:
            if a["id"] in self.ids:
                self.problems.append("id %r twice" % a["id"])
            self.ids.add(a["id"])
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if tag == "table":
            self.tables.append([a.get("class", ""), []])
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self.cell = [a.get("class", ""), a.get("data-v"), ""]

    def handle_startendtag(self, tag, attrs):
        self.starts += 1

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append("</%s> closes %r" % (tag, self.stack[-1:]))
            return
        self.stack.pop()
        if tag in ("td", "th"):
            self.tables[-1][1][-1].append(tuple(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[2] += data


def parse(text):
    page = Page()
    page.feed(text)
    page.close()
    assert page.problems == [], page.problems[:5]
    assert page.stack == [], page.stack
    assert page.starts > 50
    return page


def assert_self_contained(text):
    assert text.startswith("<!DOCTYPE html>\n")
    assert text.endswith("</html>\n")
    for needle in ("http://", "https://", "src=", "url(", "@import", "<link", "<iframe"):
        assert needle not in text, needle
    assert text.count("<script") == 1  # ours, inline


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """One run of the program; the directory with prog.py and p.json."""
    d = tmp_path_factory.mktemp("html")
    write(d / "prog.py", PROGRAM)
    proc = run_scalene("run", "-o", "p.json", "prog.py", cwd=d)
    assert proc.returncode == 0, proc.stderr.decode()
    return d


def test_view_html(profiled, tmp_path):
    d = tmp_path
    for name in ("prog.py", "p.json"):
        (d / name).write_bytes((profiled / name).read_bytes())
    proc = run_scalene("view", "--html", "p.json", cwd=d, env=no_display_env())
    assert proc.returncode == 0, proc.stderr.decode()
    assert stderr_lines(proc) == ["Scalene: HTML profile saved to scalene-profile.html"]
    assert proc.stdout == b""
    text = (d / "scalene-profile.html").read_text(encoding="utf-8")
    assert_self_contained(text)
    page = parse(text)

    profile = json.loads((d / "p.json").read_text())
    prog = str(profiled / "prog.py")
    assert list(profile["files"]) == [prog]
    assert "<h2>%s</h2>" % escaped(prog) in text

    # Every source line, in order, escaped; the tricky one never raw.
    source = PROGRAM.splitlines()
    assert TRICKY not in text
    assert escaped(TRICKY) in text
    tables = [t for t in page.tables if t[0] == "prof sortable"]
    assert len(tables) == 2  # the lines, the functions
    rows = tables[0][1][1:]
    assert [row[-1][2] for row in rows] == source
    assert [row[0][2] for row in rows] == [str(n) for n in range(1, len(source) + 1)]

    # The CPU cells are the JSON's shares (data-v, to 6 digits).
    entries = {e["lineno"]: e for e in profile["files"][prog]["lines"]}
    busy = 0
    for row in rows:
        e = entries[int(row[0][2])]
        for cell, key in zip(row[1:4], ("n_cpu_percent_python", "n_cpu_percent_c",
                                        "n_sys_percent")):
            assert float(cell[1]) == pytest.approx(e[key], rel=1e-5, abs=1e-9), (row, key)
        busy += float(row[4][1]) > 0
    assert busy >= 1

    # The function summary: the functions of the JSON at or above 1 % of
    # the time or 1 MB allocated, with their names escaped.
    shown = [row[-1][2] for row in tables[1][1][1:]]
    memory = profile["memory"]
    want = [f["line"] for f in profile["files"][prog]["functions"]
            if f["n_cpu_percent_python"] + f["n_cpu_percent_c"] + f["n_sys_percent"] >= 1.0
            or (memory and f["n_malloc_mb"] >= 1.0)]
    assert shown == want
    assert "spin" in shown
    for name in shown:
        assert "<td class=\"t\">%s</td>" % escaped(name) in text


def test_standalone_is_the_same_page(profiled, tmp_path):
    env = no_display_env()
    a = run_scalene("view", "--html", "-o", tmp_path / "a.html", profiled / "p.json",
                    cwd=tmp_path, env=env)
    b = run_scalene("view", "--standalone", "-o", tmp_path / "b.html", profiled / "p.json",
                    cwd=tmp_path, env=env)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert stderr_lines(b) == ["Scalene: HTML profile saved to %s" % (tmp_path / "b.html")]
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    assert not (tmp_path / "scalene-profile.html").exists()


def test_reduced_page(profiled, tmp_path):
    proc = run_scalene("view", "--html", "-r", "-o", "r.html", profiled / "p.json",
                       cwd=tmp_path, env=no_display_env())
    assert proc.returncode == 0, proc.stderr.decode()
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert_self_contained(text)
    page = parse(text)
    rows = [t for t in page.tables if t[0] == "prof sortable"][0][1][1:]
    profile = json.loads((profiled / "p.json").read_text())
    entries = profile["files"][str(profiled / "prog.py")]["lines"]
    active = [str(e["lineno"]) for e in entries
              if e["n_cpu_percent_python"] + e["n_cpu_percent_c"] + e["n_sys_percent"] > 0
              or e["cpu_samples"] > 0 or e["n_malloc_mb"] > 0 or e["n_freed_mb"] > 0
              or e["n_copy_mb"] > 0]
    assert [row[0][2] for row in rows] == active
    assert 0 < len(rows) < len(PROGRAM.splitlines())


def test_view_without_a_browser(profiled, tmp_path):
    """No flag and no display: the page is saved, the table printed."""
    env = no_display_env()
    cli = run_scalene("view", "--cli", profiled / "p.json", cwd=tmp_path, env=env)
    assert cli.returncode == 0 and cli.stdout
    proc = run_scalene("view", profiled / "p.json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == cli.stdout
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "scalene-profile.html" in lines[0], lines
    assert_self_contained((tmp_path / "scalene-profile.html").read_text(encoding="utf-8"))


def test_view_opens_a_browser(profiled, tmp_path):
    """No flag with a display: the page is handed to the browser (BROWSER,
    here a script that records the address it is given)."""
    record = tmp_path / "opened.txt"
    browser = write(tmp_path / "fake-browser",
                    "#!%s\nimport sys\nopen(%r, 'w').write(sys.argv[1])\n"
                    % (sys.executable, str(record)))
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    env = no_display_env(DISPLAY=":99", BROWSER=str(browser))
    proc = run_scalene("view", "-o", "page.html", profiled / "p.json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    assert record.read_text() == (tmp_path / "page.html").as_uri()
    assert len(stderr_lines(proc)) == 1


def test_view_missing_file(tmp_path):
    proc = run_scalene("view", "--html", "nope.json", cwd=tmp_path, env=no_display_env())
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert lines == ["scalene: error: can't open file 'nope.json': [Errno 2] "
                     "No such file or directory"]
    assert proc.stdout == b""
    assert os.listdir(tmp_path) == []


def test_view_bad_json(tmp_path):
    write(tmp_path / "bad.json", '{"files": \n')
    proc = run_scalene("view", "--html", "bad.json", cwd=tmp_path, env=no_display_env())
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("scalene: error: bad.json:"), lines
    assert sorted(os.listdir(tmp_path)) == ["bad.json"]


@pytest.mark.parametrize("where", ["missing-dir/x.html", "a-directory"])
def test_view_unwritable_outfile(profiled, tmp_path, where):
    (tmp_path / "a-directory").mkdir()
    proc = run_scalene("view", "--html", "-o", where, profiled / "p.json", cwd=tmp_path,
                       env=no_display_env())
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert len(lines) == 1, lines
    assert lines[0].startswith("scalene: error: %s: " % where), lines
    assert proc.stdout == b""
    assert sorted(os.listdir(tmp_path)) == ["a-directory"]
    assert os.listdir(tmp_path / "a-directory") == []


def test_view_will_not_replace_the_profile(profiled, tmp_path):
    (tmp_path / "p.json").write_bytes((profiled / "p.json").read_bytes())
    before = (tmp_path / "p.json").read_bytes()
    proc = run_scalene("view", "--html", "-o", "p.json", "p.json", cwd=tmp_path,
                       env=no_display_env())
    assert proc.returncode == 1
    assert len(stderr_lines(proc)) == 1
    assert (tmp_path / "p.json").read_bytes() == before
