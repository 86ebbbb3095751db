#!/usr/bin/env python3
"""Execute Rust notebooks headlessly on the evcxr kernel, honestly.

    .venv/bin/python tools/run_notebook.py notebooks/01-inverse-transform-sampling.ipynb [more.ipynb ...]

Each notebook runs top to bottom in a fresh kernel and stops at the first failing cell. A cell fails when:
  - it has an `error` output: a compile error, or a panic (with `:preserve_vars_on_panic 0` a panic
    aborts the evcxr subprocess and the kernel reports it);
  - it writes to stderr: that is the only trace evcxr leaves of a top-level `?` on an `Err`
    (it prints the error with eprintln! and carries on), and the course's code never writes to stderr
    otherwise;
  - it runs over its time budget (see BUDGETS below; the README states the same numbers).
The executed notebook (with outputs) goes to build/notebooks/; the source notebook is never modified.
The report names the cell (index, first line) and the error text with ANSI codes stripped.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import re
import sys
from pathlib import Path

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "notebooks"

# Seconds of wall time per cell (compile + run). The first cell is the `:dep vaelab` line: it builds
# the crate and its dependencies inside the kernel; when the kernel's build folder (tools/evcxr/kernel.py)
# already holds them that takes well under a minute, from an empty folder several minutes.
BUDGETS = {
    # Every cell after the first. The goal, reported as a warning when exceeded, is 2 s; the hard limit
    # leaves room for a busy machine: at load 8.5 on 2 cores the slowest ordinary cell measured 13.8 s
    # (the first cell that defines a variable: evcxr then starts rust-analyzer on the crate and its
    # dependencies for type inference, ~10 s once per kernel, so every notebook's first cell defines one).
    "cell": 20.0,
    "cell_goal": 2.0,
    "first_warm": 60.0,
    "first_cold": 900.0,
}

# evcxr_jupyter forwards a cell's stdout/stderr lines from a separate thread, so a line can reach the
# client after the cell's `idle` status, where nbclient no longer listens: a `?` error (stderr only)
# would then pass unseen and a printed number would be missing from the page (measured). After each
# cell we keep reading until the kernel has been quiet this long.
LATE_OUTPUT_QUIET_S = 0.3

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


@dataclasses.dataclass
class CellReport:
    index: int  # position among all cells of the notebook (0-based)
    code_index: int  # position among code cells (1-based), as a reader counts them
    head: str  # first line of the cell's source
    seconds: float
    error: str | None = None  # what failed, ANSI-stripped


@dataclasses.dataclass
class NotebookReport:
    path: Path
    executed_path: Path
    cells: list[CellReport]
    failure: str | None  # the first failure, formatted for a human; None when the notebook passed
    warnings: list[str]

    def slowest(self, n: int = 3) -> list[CellReport]:
        return sorted(self.cells, key=lambda c: c.seconds, reverse=True)[:n]


def kernel_env() -> dict[str, str]:
    """Environment for the kernel: the kernel registered in .venv. Its launcher (tools/evcxr/kernel.py)
    sets the course's evcxr settings and the build folder: the runner starts one kernel at a time, so
    every notebook of a run builds in build/evcxr/kernel-0 and finds the crate and its dependencies
    already built (measured: 70-80 s per notebook without it)."""
    env = dict(os.environ)
    env["JUPYTER_PATH"] = str(ROOT / ".venv" / "share" / "jupyter")
    env.setdefault("RUST_BACKTRACE", "0")
    return env


def crate_compiles(kernel_log: str) -> int:
    """How many times cargo compiled the vaelab crate in a kernel, from the kernel's stderr."""
    return len(re.findall(r"^\s*Compiling vaelab v", kernel_log, flags=re.MULTILINE))


def _seconds(cell) -> float:
    ex = cell.metadata.get("execution", {})
    start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def cell_error(cell) -> str | None:
    """The failure a cell's outputs show, or None. See the module docstring for the rules."""
    problems = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            trace = "\n".join(out.get("traceback") or [])
            text = strip_ansi(trace) or f"{out.get('ename')}: {out.get('evalue')}"
            problems.append(text)
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            problems.append(strip_ansi(out.get("text", "")))
    if not problems:
        return None
    text = "".join(p if p.endswith("\n") else p + "\n" for p in problems)
    # A panic's message is the useful part; the backtrace that may follow is not.
    m = re.search(r"panicked at [^\n]*\n[^\n]*", text)
    if m:
        text = m.group(0) + "\n" + text[-300:] if len(text) > 2000 else text
    return text.strip()


def _drain_late_outputs(client: NotebookClient, cell, index: int, parent_msg_id: str) -> None:
    """Adds to `cell` the outputs of its request that arrive after its `idle` status."""
    get = run_sync(client.kc.get_iopub_msg)
    while True:
        try:
            msg = get(timeout=LATE_OUTPUT_QUIET_S)
        except Exception:  # queue.Empty: quiet for the whole period
            return
        if msg["parent_header"].get("msg_id") != parent_msg_id:
            continue
        if msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
            try:
                client.process_message(msg, cell, index)
            except CellExecutionComplete:
                pass


def run(path: Path, *, cold_cache: bool = False, out_dir: Path | None = None, timeout: int = 1200) -> NotebookReport:
    """Execute one notebook in a fresh kernel; stop at the first failing cell. The executed copy goes
    to `out_dir`: by default build/notebooks/, and build/notebooks/solutions/ for a notebook of
    notebooks/solutions/ (a lesson and its solutions share a file name)."""
    path = Path(path).resolve()
    if out_dir is None:
        out_dir = BUILD / "solutions" if path.parent.name == "solutions" else BUILD
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="rust",
        record_timing=True,
        allow_errors=True,  # we judge each cell ourselves (stderr counts too) and stop at the first failure
        resources={"metadata": {"path": str(path.parent)}},
    )
    # nbclient starts the kernel from the current environment.
    out_dir.mkdir(parents=True, exist_ok=True)
    # The kernel's own stderr (cargo's "Compiling ..." lines) goes to a log beside the executed notebook.
    kernel_log = open(out_dir / f"{path.stem}.kernel.log", "w")
    saved_env, env = dict(os.environ), kernel_env()
    os.environ.clear()
    os.environ.update(env)
    cells: list[CellReport] = []
    failure = None
    warnings: list[str] = []
    code_index = 0
    try:
        with client.setup_kernel(stderr=kernel_log):
            # Remember each request's id, to pick up its late outputs.
            sent = []
            execute = client.kc.execute
            client.kc.execute = lambda *a, **k: sent.append(execute(*a, **k)) or sent[-1]
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                code_index += 1
                client.execute_cell(cell, index)
                _drain_late_outputs(client, cell, index, sent[-1])
                head = (cell.source.strip().splitlines() or [""])[0][:80]
                report = CellReport(index, code_index, head, _seconds(cell), cell_error(cell))
                cells.append(report)
                where = f"{path.name}, code cell {code_index} (cell {index}: `{head}`)"
                if report.error:
                    failure = f"{where} failed:\n{report.error}"
                    break
                budget = (
                    BUDGETS["first_cold" if cold_cache else "first_warm"]
                    if code_index == 1
                    else BUDGETS["cell"]
                )
                if report.seconds > budget:
                    failure = f"{where} took {report.seconds:.1f} s, over its budget of {budget:.0f} s"
                    break
                if code_index > 1 and report.seconds > BUDGETS["cell_goal"]:
                    warnings.append(f"{where} took {report.seconds:.1f} s (goal {BUDGETS['cell_goal']:.0f} s)")
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        kernel_log.close()
    # Only the `:dep` cell may compile the crate. A kernel whose later cells rebuild it pays seconds per
    # cell (it happened: evcxr's compile cache made cargo rebuild the crate and its serde family for
    # every cell; see tools/evcxr/kernel.py), and nothing else would notice.
    compiles = crate_compiles((out_dir / f"{path.stem}.kernel.log").read_text(errors="replace"))
    if failure is None and compiles > 1:
        failure = (f"{path.name}: cargo compiled vaelab {compiles} times in one kernel (its lines are in "
                   f"{path.stem}.kernel.log); only the `:dep` cell may, later cells must find it built")
    executed = out_dir / path.name
    nbformat.write(nb, executed)
    return NotebookReport(path, executed, cells, failure, warnings)


def describe(report: NotebookReport) -> str:
    lines = [f"{report.path.name}: {'FAILED' if report.failure else 'ok'}, {len(report.cells)} code cells, "
             f"{sum(c.seconds for c in report.cells):.1f} s"]
    for c in report.slowest():
        lines.append(f"  {c.seconds:6.2f} s  code cell {c.code_index}: {c.head}")
    lines += [f"  warning: {w}" for w in report.warnings]
    if report.failure:
        lines.append(report.failure)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--cold-cache", action="store_true", help="allow the first cell the cold-cache budget")
    parser.add_argument("--cell-budget", type=float, help=f"seconds per cell (default {BUDGETS['cell']}; for exploring)")
    args = parser.parse_args(argv)
    if args.cell_budget:
        BUDGETS["cell"] = args.cell_budget
    failed = 0
    for i, nb in enumerate(args.notebooks):
        report = run(nb, cold_cache=args.cold_cache and i == 0)
        print(describe(report))
        failed += bool(report.failure)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
