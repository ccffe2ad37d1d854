"""`view --cli` renders a profile written by Debian's Scalene 1.5.16.

The profile is made here, by the real python3-scalene package, on a program
whose two functions have a known 3:1 cost, so that the rendering can be
checked against what Scalene itself measured (not against a fixture).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

DEBIAN_SCALENE = "/usr/lib/python3/dist-packages/scalene"

PROGRAM = textwrap.dedent(
    """\
    def heavy():
        s = 0
        for i in range(3_000_000):
            s += i * i
        return s

    def light():
        acc = 0
        for j in range(1_000_000):
            acc += j * j
        return acc

    for _ in range(3):
        heavy()
        light()
    """
)


@pytest.fixture(scope="module")
def debian_profile(tmp_path_factory):
    if not os.path.isdir(DEBIAN_SCALENE):
        pytest.skip("python3-scalene (Debian's Scalene 1.5.16) is not installed")
    work = tmp_path_factory.mktemp("debian_scalene")
    shim = work / "shim"
    shim.mkdir()
    # Only Debian's package on the path: ours shadows it otherwise.
    (shim / "scalene").symlink_to(DEBIAN_SCALENE)
    prog = work / "prog.py"
    prog.write_text(PROGRAM)
    out = work / "debian.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = str(shim)
    proc = subprocess.run(
        ["/usr/bin/python3", "-m", "scalene", "--cli", "--json", "--outfile", str(out), "prog.py"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.exists(), proc.stdout + proc.stderr
    return out


def test_debian_profile_renders(debian_profile):
    data = json.loads(debian_profile.read_text())
    files = data["files"]
    assert len(files) == 1, files.keys()
    lines = next(iter(files.values()))["lines"]
    hot = {entry["lineno"]: entry for entry in lines}
    # Scalene itself put most of the time on the two loop bodies.
    assert 4 in hot and 10 in hot, sorted(hot)

    proc = subprocess.run(
        [sys.executable, "-m", "scalene", "view", "--cli", str(debian_profile)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "prog.py" in text, text
    # The two hot lines appear with their source text and Scalene's figures.
    for lineno in (4, 10):
        src = hot[lineno]["line"].strip()
        rows = [row for row in text.splitlines() if src in row]
        assert rows, (src, text)
        pct = hot[lineno]["n_cpu_percent_python"]
        assert f"{pct:.0f}" in rows[0] or f"{pct:.1f}" in rows[0], (pct, rows[0])
    # Functions are summarised.
    assert "heavy" in text and "light" in text, text
