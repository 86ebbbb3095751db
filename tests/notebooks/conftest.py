"""Shared state for the notebook tests: the tools on sys.path, and the slowest cells printed at the end."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

REPORTS = []  # NotebookReport of every notebook executed in this session


def pytest_terminal_summary(terminalreporter):
    cells = [(c.seconds, r.path.name, c) for r in REPORTS for c in r.cells]
    if not cells:
        return
    terminalreporter.section("slowest notebook cells")
    for seconds, name, c in sorted(cells, key=lambda t: t[0], reverse=True)[:8]:
        terminalreporter.write_line(f"{seconds:7.2f} s  {name}, code cell {c.code_index}: {c.head}")
    for r in REPORTS:
        for w in r.warnings:
            terminalreporter.write_line(f"warning: {w}")
