#!/bin/sh
# The README's first command: installs the Debian packages libscaleneprof
# needs, builds and installs it (under /usr/local, for Debian's python3),
# then profiles the bundled example and shows the profile in the terminal.
# Run as root on Debian 12.
set -eu
top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
. tests/lib.sh
scalene_install_deps debian-packages.txt
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }
mkdir -p build/release && cd build/release
"$top/configure" -q PYTHON=/usr/bin/python3
make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
make install >/dev/null
ldconfig
cd "$top/examples/python"
/usr/bin/python3 -m scalene run -o "$top/scalene-profile.json" demo.py
/usr/bin/python3 -m scalene view --cli "$top/scalene-profile.json"
