#!/usr/bin/env python3
"""Starts the evcxr kernel with a build folder of its own that outlives it.

The Rust kernel registered in `.venv` (tools/setup.sh, step 4) runs this script, which then becomes
`evcxr_jupyter`:

    .venv/bin/python tools/evcxr/kernel.py /path/to/evcxr_jupyter --control_file {connection_file}

Every evcxr cell is compiled by cargo in the kernel's build folder (`EVCXR_TMPDIR`). Left alone,
evcxr makes a new temporary folder per kernel and deletes it on exit, so each notebook opened would
compile the crate and its ~60 dependencies again (70-80 s here). This script gives each running
kernel one of a few folders under `build/evcxr/` (`kernel-0`, `kernel-1`, ...; the first one no
other kernel holds), so a notebook's `:dep` cell finds everything already built by the last kernel
that used the folder, and two notebooks open at once never build in the same folder. A kernel holds
its folder by an exclusive `flock` on `kernel-N.lock`, inherited by evcxr across `exec` and released
by the system when the kernel exits, however it exits.

Why not evcxr's own compile cache (`:cache`) instead: it stores each dependency's compiler output,
including the dep-info file, which names the build-script output the crate includes by absolute path
(e.g. serde_core's and thiserror's `.../build/<crate>-<hash>/out/private.rs`) in the folder of the
kernel that first compiled it. Once that folder is gone (a temporary folder, another clone), cargo
finds the file missing after every cache hit, so it rebuilds those crates and everything above them,
vaelab included, for every cell: +2 s per cell, measured (CI run 12: "Compiling vaelab" 28 times in
lesson 01; `cargo build -v` says `Dirty serde_core v1.0.229: the file
/tmp/ci10/build/evcxr/target/.../out/private.rs is missing`). Hence `:cache` is off in
tools/evcxr/init.evcxr and the folders here keep what was built.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX (Windows): no shared folders, evcxr makes its own per kernel
    fcntl = None

ROOT = Path(__file__).resolve().parent.parent.parent
# Build folders per checkout: one per notebook open at the same time. Each holds a full build of the
# crate's dependencies (about 0.8 GB).
SLOTS = 8


def claim_folder(base: Path, slots: int = SLOTS) -> tuple[Path, int] | None:
    """The first of `base/kernel-0 .. kernel-{slots-1}` that no other process holds, and the open
    lock file descriptor that holds it (keep it open while the folder is in use). None when all are
    held, or on a system without `flock`."""
    if fcntl is None:
        return None
    base.mkdir(parents=True, exist_ok=True)
    for n in range(slots):
        fd = os.open(base / f"kernel-{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        folder = base / f"kernel-{n}"
        folder.mkdir(exist_ok=True)
        return folder, fd
    return None


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: kernel.py EVCXR_JUPYTER [ARGS...]")
    env = dict(os.environ)
    # The course's kernel settings (tools/evcxr/init.evcxr), however JupyterLab was started.
    env["EVCXR_CONFIG_DIR"] = str(ROOT / "tools" / "evcxr")
    claimed = claim_folder(ROOT / "build" / "evcxr")
    if claimed is None:
        why = (f"all {SLOTS} build folders in {ROOT / 'build' / 'evcxr'} are in use"
               if fcntl is not None else "this system has no flock to share build folders safely")
        print(f"vaelab kernel: {why}; this kernel builds in a temporary folder (its first cell "
              "compiles everything)", file=sys.stderr)
        env.pop("EVCXR_TMPDIR", None)
    else:
        folder, fd = claimed
        os.set_inheritable(fd, True)
        env["EVCXR_TMPDIR"] = str(folder)
    os.execve(argv[1], argv[1:], env)


if __name__ == "__main__":
    main(sys.argv)
