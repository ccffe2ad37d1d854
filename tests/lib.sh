# Shared by quickstart.sh, run-tests.sh and the scripts under tests/.
# Installs the Debian packages the project needs when one is missing.
scalene_install_deps() {
  pkgs=$(grep -v '^#' "$1")
  missing=""
  for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "run-tests: missing Debian packages:$missing (run as root, or install them)" >&2
    return 1
  fi
  echo "Installing Debian packages:$missing"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
}
