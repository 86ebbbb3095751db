#!/usr/bin/env bash
# Installs what the course needs, skipping whatever is already there.
#   tools/setup.sh lab    rust-src, evcxr_jupyter, JupyterLab in .venv, the Rust kernel registration
#   tools/setup.sh test   the same, plus the test tools in .venv and Debian's chromium
# Every step checks first, so a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

EVCXR_VERSION=0.22.0
VENV=.venv
what=${1:-lab}
say() { printf 'setup: %s\n' "$*" >&2; }

# 1. rust-src: evcxr reads the standard library's source to infer the types of variables.
sysroot=$(rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/src/rust/library" ]; then
  say "adding the rust-src component"
  rustup component add rust-src
fi

# 2. The evcxr Jupyter kernel, pinned.
evcxr_bin="${CARGO_HOME:-$HOME/.cargo}/bin/evcxr_jupyter"
if [ ! -x "$evcxr_bin" ] || ! cargo install --list | grep -qx "evcxr_jupyter v$EVCXR_VERSION:"; then
  say "installing evcxr_jupyter $EVCXR_VERSION (cargo install --locked; about 6 minutes on 2 cores)"
  cargo install --locked evcxr_jupyter --version "$EVCXR_VERSION"
fi

# 3. A project-local virtualenv with pinned Python packages.
req=tools/requirements-$what.txt
stamp=$VENV/.installed-$what-$(cat tools/requirements-*.txt | sha256sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
  say "installing $req into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  rm -f "$VENV"/.installed-"$what"-*
  touch "$stamp"
fi

# 4. Register the kernel inside the virtualenv (not in the user's home).
kernel_json=$VENV/share/jupyter/kernels/rust/kernel.json
if [ ! -f "$kernel_json" ] || ! grep -q "$evcxr_bin" "$kernel_json"; then
  say "registering the Rust kernel in $VENV"
  JUPYTER_PATH="$PWD/$VENV/share/jupyter" "$evcxr_bin" --install >/dev/null
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
