#!/usr/bin/env bash
# Installs what the course needs, skipping whatever is already there.
#   tools/setup.sh lab    rust-src, evcxr_jupyter, JupyterLab in .venv, the Rust kernel registration
#   tools/setup.sh test   the same, plus the test tools in .venv and Debian's chromium
# Every step checks first, so a second run installs nothing.
# For tests of the virtualenv step (tests/setup_script.rs), without touching the machine:
#   VAELAB_SETUP_STEP=venv  run only step 3a (make or repair the virtualenv) and stop
#   VAELAB_VENV=DIR         the virtualenv's folder (default .venv)
#   VAELAB_PYTHON3=CMD      the python3 that makes it (default python3)
#   VAELAB_APT_GET=CMD      a stand-in for apt-get, run without sudo
# and of the Rust steps (the same file), with stand-in rustc/rustup/cargo first on PATH:
#   VAELAB_SETUP_STEP=rust-src  run only step 1 (the rust-src component) and stop
#   VAELAB_SETUP_STEP=evcxr     run only step 2 (evcxr_jupyter at the pinned version) and stop
set -euo pipefail
cd "$(dirname "$0")/.."

EVCXR_VERSION=0.22.0
VENV=${VAELAB_VENV:-.venv}
PYTHON3=${VAELAB_PYTHON3:-python3}
what=${1:-lab}
say() { printf 'setup: %s\n' "$*" >&2; }

# apt_install PACKAGE...: installs Debian packages (with sudo unless root); fails when there is no
# apt-get, or no sudo for a user who is not root.
apt_install() {
  local apt=${VAELAB_APT_GET:-apt-get} sudo_=""
  command -v "$apt" >/dev/null 2>&1 || return 1
  if [ -z "${VAELAB_APT_GET:-}" ] && [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || return 1
    sudo_=sudo
  fi
  $sudo_ "$apt" update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ "$apt" install -y -qq "$@" >/dev/null
}

# 3a. The virtualenv, whole: one whose pip does not run (Debian's `python3 -m venv` without the
# python3-venv package stops at "ensurepip is not available" and leaves a .venv without pip) is
# removed and made again; python3-venv is installed with apt when python3 lacks ensurepip.
ensure_venv() {
  if [ -e "$VENV" ] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    say "$VENV is broken (its pip does not run): making it again"
    rm -rf "$VENV"
  fi
  [ -e "$VENV" ] && return 0
  if ! "$PYTHON3" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    say "python3 has no venv/ensurepip: installing Debian's python3-venv"
    if ! apt_install python3-venv || ! "$PYTHON3" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      say "cannot make $VENV: python3 lacks the venv module (install it, e.g. sudo apt-get install python3-venv, and run again)"
      exit 1
    fi
  fi
  say "creating $VENV"
  if ! "$PYTHON3" -m venv "$VENV" || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    say "cannot make $VENV: \`$PYTHON3 -m venv\` failed (see above); nothing was left behind"
    exit 1
  fi
}

# 1. rust-src: evcxr reads the standard library's source to infer the types of variables. Added
# with rustup when rustup is there; otherwise (a distribution's Rust) one line says how.
ensure_rust_src() {
  local sysroot src
  if ! sysroot=$(rustc --print sysroot 2>/dev/null); then
    say "cannot find rustc: install Rust (https://rustup.rs) and run again"
    exit 1
  fi
  # The crate's rust-version (Cargo.toml): an older compiler fails deep in the build, so say it
  # here (bash alone: this step runs before anything else is known to be installed).
  local need="" have="" line
  while IFS= read -r line; do
    [[ $line =~ ^rust-version\ =\ \"([0-9]+)\.([0-9]+) ]] && need="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
  done < Cargo.toml
  [[ $(rustc --version 2>/dev/null) =~ ^rustc\ ([0-9]+)\.([0-9]+) ]] && have="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
  if [ -n "$need" ] && [ -n "$have" ]; then
    local n=($need) h=($have)
    if (( h[0] < n[0] || (h[0] == n[0] && h[1] < n[1]) )); then
      say "rustc ${h[0]}.${h[1]} is older than the ${n[0]}.${n[1]} this crate needs (Cargo.toml's rust-version): update it (rustup update stable) and run again"
      exit 1
    fi
  fi
  src=$sysroot/lib/rustlib/src/rust/library
  [ -d "$src" ] && return 0
  if command -v rustup >/dev/null 2>&1; then
    say "adding the rust-src component"
    rustup component add rust-src || true
  fi
  if [ ! -d "$src" ]; then
    say "cannot find the standard library's source (rust-src) under $sysroot, which evcxr needs: add it (rustup component add rust-src, or with Debian's Rust sudo apt-get install rust-src) and run again"
    exit 1
  fi
}

# 2. The evcxr Jupyter kernel, pinned: installed when missing, reinstalled when cargo lists another
# version (or none: a binary cargo did not install, which `cargo install` overwrites only with
# --force).
evcxr_bin="${CARGO_HOME:-$HOME/.cargo}/bin/evcxr_jupyter"
evcxr_listed() {
  cargo install --list 2>/dev/null | grep -qx "evcxr_jupyter v$EVCXR_VERSION:"
}
ensure_evcxr() {
  [ -x "$evcxr_bin" ] && evcxr_listed && return 0
  say "installing evcxr_jupyter $EVCXR_VERSION (cargo install --locked; about 6 minutes on 2 cores)"
  if ! cargo install --locked --force evcxr_jupyter --version "$EVCXR_VERSION" || ! [ -x "$evcxr_bin" ] \
    || ! evcxr_listed; then
    say "cannot install evcxr_jupyter $EVCXR_VERSION (see above): run cargo install --locked --force evcxr_jupyter --version $EVCXR_VERSION, then this again"
    exit 1
  fi
}

case "${VAELAB_SETUP_STEP:-}" in
  venv) ensure_venv; exit 0 ;;
  rust-src) ensure_rust_src; exit 0 ;;
  evcxr) ensure_evcxr; exit 0 ;;
esac

ensure_rust_src
ensure_evcxr

# 3. A project-local virtualenv with pinned Python packages.
req=tools/requirements-$what.txt
stamp=$VENV/.installed-$what-$(cat tools/requirements-*.txt | sha256sum | cut -c1-12)
ensure_venv
if [ ! -f "$stamp" ]; then
  say "installing $req into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  rm -f "$VENV"/.installed-"$what"-*
  touch "$stamp"
fi

# 4. Register the kernel inside the virtualenv (not in the user's home), started through
# tools/evcxr/kernel.py, which gives each running kernel a build folder of its own under build/evcxr/
# that outlives it (read its docstring for why).
kernel_json=$VENV/share/jupyter/kernels/rust/kernel.json
launcher=$PWD/tools/evcxr/kernel.py
if [ ! -f "$kernel_json" ] || ! grep -q "$evcxr_bin" "$kernel_json" || ! grep -q "$launcher" "$kernel_json"; then
  say "registering the Rust kernel in $VENV"
  JUPYTER_PATH="$PWD/$VENV/share/jupyter" "$evcxr_bin" --install >/dev/null
  "$VENV/bin/python" - "$kernel_json" "$PWD/$VENV/bin/python" "$launcher" <<'PY'
import json, sys
path, python, launcher = sys.argv[1:]
spec = json.load(open(path))
spec["argv"] = [python, launcher, *spec["argv"]]
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
    f.write("\n")
PY
fi

# 4b. JupyterLab's news announcements would ask to fetch from the network: off for this project.
page_config=$VENV/etc/jupyter/labconfig/page_config.json
if [ ! -f "$page_config" ] || ! grep -q announcements "$page_config"; then
  "$VENV/bin/jupyter" labextension disable --level=sys_prefix "@jupyterlab/apputils-extension:announcements" >/dev/null 2>&1
fi

# 5. For the page checks: Debian's chromium (Playwright drives it; it downloads no browser).
if [ "$what" = test ] && ! command -v chromium >/dev/null; then
  say "installing Debian's chromium"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi

# 5b. A CJK font, so the pages (and their screenshots) show the text's Chinese, not empty boxes; the
# page check fails when a page's Chinese renders as missing glyphs.
if [ "$what" = test ] && ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  say "installing Debian's fonts-noto-cjk (the course text is Chinese)"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq fonts-noto-cjk >/dev/null
fi

# 6. The crate's dependencies, fetched once, so notebook kernels resolve them offline.
cargo fetch --quiet
