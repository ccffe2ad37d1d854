#!/bin/sh
# Builds the binding for every supported CPython other than Debian's that is
# installed (pyenv's 3.12 and 3.13 on the development machines) in $1/<ver>
# and runs the Python tests with it.  An interpreter that is absent is
# reported as skipped by name; at least one must be present for this stage
# to count, otherwise it exits 77.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build/matrix}
ran=0
# pyenv's interpreters have no pytest and PyPI is out of reach: lend them
# Debian's (pure Python) pytest and its dependencies, and nothing else.
shim=$dir/pytest-shim
rm -rf "$shim" && mkdir -p "$shim"
for m in pytest _pytest pluggy iniconfig packaging py py.py attr attrs; do
  [ -e "/usr/lib/python3/dist-packages/$m" ] && ln -s "/usr/lib/python3/dist-packages/$m" "$shim/$m"
done
export SCALENE_EXTRA_PYTHONPATH="$shim"
# Debian's pytest 7.2 predates 3.12's ast deprecations: keep its warnings out of the log.
export PYTEST_ADDOPTS="-p no:warnings"
for v in 3.12 3.13; do
  py=""
  for cand in "${PYENV_ROOT:-/root/.pyenv}"/versions/$v.*/bin/python$v; do
    [ -x "$cand" ] && py=$cand
  done
  if [ -z "$py" ]; then
    echo "matrix: Python $v not installed: skipped"
    continue
  fi
  echo "matrix: Python $v ($py)"
  rm -rf "$dir/$v" && mkdir -p "$dir/$v" && cd "$dir/$v"
  "$top/configure" -q PYTHON="$py"
  make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
  make check-python
  ran=$((ran + 1))
  cd "$top"
done
[ $ran -gt 0 ] || exit 77
