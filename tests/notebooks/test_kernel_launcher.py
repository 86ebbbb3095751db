"""The kernel's launcher (tools/evcxr/kernel.py) and the runner's count of crate compiles: each running
kernel gets a build folder no other running kernel has, a folder is reused once its kernel is gone,
and a kernel whose later cells rebuild the crate is caught. No kernel is started here."""
import importlib.util
import json
import os

import run_notebook
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("kernel_launcher", ROOT / "tools" / "evcxr" / "kernel.py")
kernel = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kernel)


def test_each_running_kernel_gets_its_own_folder_and_a_freed_one_is_reused(tmp_path):
    first = kernel.claim_folder(tmp_path, slots=2)
    second = kernel.claim_folder(tmp_path, slots=2)
    assert first is not None and second is not None
    assert first[0] == tmp_path / "kernel-0" and second[0] == tmp_path / "kernel-1"
    assert first[0].is_dir() and second[0].is_dir()
    # Both held: a third kernel gets none (it then builds in evcxr's own temporary folder).
    assert kernel.claim_folder(tmp_path, slots=2) is None
    # The first kernel exits (its lock file descriptor closes): the next kernel gets its folder.
    os.close(first[1])
    again = kernel.claim_folder(tmp_path, slots=2)
    assert again is not None and again[0] == tmp_path / "kernel-0"
    os.close(second[1])
    os.close(again[1])


def test_the_registered_kernel_starts_through_the_launcher():
    spec = json.loads((ROOT / ".venv" / "share" / "jupyter" / "kernels" / "rust" / "kernel.json").read_text())
    assert spec["argv"][1] == str(ROOT / "tools" / "evcxr" / "kernel.py"), spec["argv"]
    assert spec["argv"][2].endswith("evcxr_jupyter"), spec["argv"]


def test_the_runner_counts_the_crate_compiles_of_a_kernel():
    log = "\n".join([
        "   Compiling serde_core v1.0.229",
        "   Compiling vaelab v0.1.0 (/tmp/clone)",
        "   Compiling serde_core v1.0.229",
        "   Compiling vaelab v0.1.0 (/tmp/clone)",
        "warning: Compiling vaelab v0.1.0 is not a line of cargo's",
    ])
    assert run_notebook.crate_compiles(log) == 2
    assert run_notebook.crate_compiles("   Compiling vaelab v0.1.0 (/x)\n    Finished") == 1
    assert run_notebook.crate_compiles("") == 0
