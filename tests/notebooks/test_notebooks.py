"""Every notebook in notebooks/ runs top to bottom from a fresh evcxr kernel, renders to a book page,
and the page works in headless Chromium with the network blocked. One test per notebook. The same
for every solutions notebook in notebooks/solutions/, which must show each exercise's checker
accepting the solution and rejecting a typical wrong answer.

The runner's own honesty is tested first, on fixtures that must fail: a panicking cell, a cell whose
top-level `?` meets an `Err`, and a compile error, each reported with the cell and the error text.
"""
import json
import re
from pathlib import Path

import book
import nbformat
import pytest
import run_notebook
from conftest import REPORTS, ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
# Lessons with exercises: all but the course map.
LESSONS = [p for p in NOTEBOOKS if p.name != "00-course-map.ipynb"]
FIXTURES = ROOT / "tests" / "notebooks" / "fixtures"
FIXTURE_OUT = ROOT / "build" / "fixtures"
_first_run = [True]


def execute(path: Path, out_dir: Path) -> run_notebook.NotebookReport:
    """Runs a notebook; the first run of the session may find evcxr's compile cache cold."""
    cold, _first_run[0] = _first_run[0], False
    report = run_notebook.run(path, cold_cache=cold, out_dir=out_dir)
    REPORTS.append(report)
    print(run_notebook.describe(report))
    return report


@pytest.fixture(scope="session")
def assets():
    book.write_assets()
    return book.BOOK / "assets"


@pytest.mark.parametrize(
    "fixture, cell, message",
    [
        ("fail_panic.ipynb", 3, "index out of bounds: the len is 0 but the index is 0"),
        ("fail_question_mark.ipynb", 2, "invalid sigma = -1: must be finite and > 0"),
        ("fail_compile.ipynb", 2, "mismatched types"),
    ],
)
def test_runner_reports_a_failing_cell(fixture, cell, message):
    report = execute(FIXTURES / fixture, FIXTURE_OUT)
    assert report.failure, f"{fixture} should have failed"
    assert f"code cell {cell} " in report.failure, report.failure
    assert message in report.failure, report.failure
    assert "\x1b[" not in report.failure, "ANSI codes must be stripped"
    # The run stops at the failing cell: nothing after it ran.
    assert report.cells[-1].code_index == cell


def test_runner_passes_a_good_notebook(assets):
    report = execute(FIXTURES / "pass_minimal.ipynb", FIXTURE_OUT)
    assert report.failure is None, report.failure
    executed = report.executed_path.read_text()
    assert "sigma ok" in executed, "the cell's printed output is kept in the executed notebook"
    # Its slider figure, on a book page: the check moves the slider with the mouse and sees the
    # drawing change (the helper that does it is tested to fail below).
    page = book.render(report.executed_path, page_name="fixture-slider.html")
    found, state = book.check_pages([page])[page.name]
    assert state["sliders"] == [0], state
    assert not found, "\n".join(found)


def test_slider_check_catches_a_slider_that_moves_nothing(assets):
    """A slider whose steps all show the same traces is reported, and so is one step only."""
    spec = {
        "data": [{"x": [0, 1], "y": [0, 1], "type": "scatter"}, {"x": [0, 1], "y": [1, 0], "type": "scatter"}],
        "layout": {"sliders": [{"active": 0, "steps": [
            {"label": "a", "method": "restyle", "args": [{"visible": [True, True]}]},
            {"label": "b", "method": "restyle", "args": [{"visible": [True, True]}]}]}]},
    }
    one = {"data": spec["data"], "layout": {"sliders": [{"active": 0, "steps": spec["layout"]["sliders"][0]["steps"][:1]}]}}
    plots = "".join(
        f'<div id="p{i}" class="vaelab-plot"></div><script>Plotly.newPlot("p{i}", {json.dumps(s)}.data, {json.dumps(s)}.layout);</script>'
        for i, s in enumerate([spec, one]))
    page = book.BOOK / "fixture-dead-slider.html"
    page.write_text('<html><head><script src="assets/plotly.min.js"></script><script src="assets/tex-svg.js"></script>'
                    f'</head><body>{plots}</body></html>')
    found, state = book.check_pages([page])[page.name]
    assert state["sliders"] == [0, 1], state
    assert "plot 1's slider: moving it did not change what is drawn" in found, found
    assert "plot 2's slider has 1 step(s): nothing to move" in found, found


def test_page_check_catches_a_broken_page(tmp_path, assets):
    """A page that loads from a CDN, leaves TeX raw and has an undrawn plot must be reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><head><script src="https://cdn.example.org/plotly.js"></script></head><body>'
        '<div class="jp-RenderedMarkdown">$$x^2$$</div><div class="vaelab-plot"></div>'
        "<script>undefined_function();</script></body></html>"
    )
    found, state = book.check_pages([page])["broken.html"]
    text = "\n".join(found)
    assert "blocked a network request: https://cdn.example.org/plotly.js" in text
    assert "MathJax did not start" in text
    assert "1 of 1 plots not drawn" in text
    assert "uncaught exception" in text and "undefined_function" in text
    assert "2 pieces of raw TeX" in text  # the opening and the closing $$


def test_page_check_sees_chinese_drawn_without_a_cjk_font(tmp_path):
    """With fontconfig limited to DejaVu (no CJK glyphs), the Chinese of a page is reported; with the
    machine's fonts it is drawn (setup.sh installs fonts-noto-cjk)."""
    import os

    page = tmp_path / "zh.html"
    page.write_text('<html><head><meta charset="utf-8"></head><body><div class="jp-RenderedMarkdown">'
                    "原文 · 逆变换采样</div></body></html>", encoding="utf-8")
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                    f"<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{tmp_path}/fc</cachedir></fontconfig>")
    hidden = {**os.environ, "FONTCONFIG_FILE": str(conf)}
    found, state = book.check_pages([page], env=hidden)["zh.html"]
    assert state["cjk"] == {"chars": 7, "missing": True}
    assert any("render as missing glyphs" in f for f in found), found
    found, state = book.check_pages([page])["zh.html"]
    assert state["cjk"] == {"chars": 7, "missing": False}, "no CJK font: run tools/setup.sh test"


DISPLAY_CALL = re.compile(r"\.show\(\)|\bshow\(&|\bshow_all\(")


@pytest.mark.parametrize("notebook", NOTEBOOKS + SOLUTIONS, ids=[p.name for p in NOTEBOOKS] + [f"solutions/{p.name}" for p in SOLUTIONS])
def test_one_display_per_cell(notebook):
    """evcxr keeps only the last display of a cell (measured: a cell with two `show` calls kept one
    plot), so a second call silently drops a plot. Several plots go through `plot::show_all`."""
    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    bad = [(i + 1, n) for i, c in enumerate(code) if (n := len(DISPLAY_CALL.findall(c.source))) > 1]
    assert not bad, f"{notebook.name}: code cells with more than one display call (cell, calls): {bad}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook(notebook, assets):
    report = execute(notebook, run_notebook.BUILD)
    assert report.failure is None, report.failure
    claims = claim_lines(report.executed_path)
    least = MIN_CLAIMS.get(notebook.name, 0)
    assert len(claims) >= least, f"{notebook.name}: {len(claims)} checked claims, at least {least} expected"
    if notebook in LESSONS:
        verdicts = verdict_lines(report.executed_path)
        assert len(verdicts) >= MIN_EXERCISES, (
            f"{notebook.name}: {len(verdicts)} checked exercises, at least {MIN_EXERCISES} expected")
        # The lesson ships the exercises unanswered: its solutions live in notebooks/solutions/.
        answered = [v for v in verdicts if " — no answer yet: " not in v]
        assert not answered, f"{notebook.name} holds answers to its exercises: {answered}"
    names = [f"{p.stem}.html" for p in NOTEBOOKS]
    i = NOTEBOOKS.index(notebook)
    solved = {p.name for p in SOLUTIONS}
    page = book.render(
        report.executed_path,
        prev=names[i - 1] if i > 0 else None,
        next_=names[i + 1] if i + 1 < len(names) else None,
        solutions=book.solutions_page(notebook.stem) if notebook.name in solved else None,
    )
    found, state = book.check_pages([page], screenshots=ROOT / "build" / "screenshots")[page.name]
    assert not found, "\n".join(found)
    markdown = " ".join(c.source for c in report_cells(report) if c.cell_type == "markdown")
    if "$" in markdown:
        assert state["formulas"] > 0, "the lesson has TeX but no formula was typeset"


@pytest.mark.parametrize("notebook", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_solutions(notebook, assets):
    """A solutions notebook runs, shows at least MIN_EXERCISES checkers accepting the solution and as
    many rejecting a typical wrong answer (`.expect_correct()?` / `.expect_wrong()?` fail the cell
    otherwise), and renders to a page linked back to its lesson."""
    report = execute(notebook, run_notebook.BUILD / "solutions")
    assert report.failure is None, report.failure
    verdicts = verdict_lines(report.executed_path)
    correct = [v for v in verdicts if " — correct: " in v]
    wrong = [v for v in verdicts if " — not yet: " in v]
    assert len(correct) >= MIN_EXERCISES, f"{notebook.name}: {len(correct)} accepted solutions"
    assert len(wrong) >= MIN_EXERCISES, f"{notebook.name}: {len(wrong)} rejected wrong answers"
    page = book.render(report.executed_path, lesson=f"{notebook.stem}.html",
                       page_name=book.solutions_page(notebook.stem))
    found, _ = book.check_pages([page], screenshots=ROOT / "build" / "screenshots")[page.name]
    assert not found, "\n".join(found)


def test_every_lesson_has_its_solutions():
    """notebooks/solutions/ holds one notebook per lesson, under the lesson's file name, and nothing else."""
    lessons = {p.name for p in LESSONS}
    solved = {p.name for p in SOLUTIONS}
    assert lessons - solved == set(), f"lessons without solutions: {sorted(lessons - solved)}"
    assert solved - lessons == set(), f"solutions for no lesson: {sorted(solved - lessons)}"


def report_cells(report):
    return nbformat.read(report.executed_path, as_version=4).cells


def test_book_index(assets):
    """The index lists every lesson in order and links to its page."""
    titles = [(f"{p.stem}.html", book.lesson_title(nbformat.read(p, as_version=4))) for p in NOTEBOOKS]
    solved = {book.solutions_page(p.stem) for p in SOLUTIONS}
    index = book.render_index(titles, solutions=solved)
    text = index.read_text()
    positions = [text.index(f'href="{name}"') for name, _ in titles]
    assert positions == sorted(positions)
    for name in solved:
        assert f'href="{name}"' in text, f"the index does not link {name}"
    found, _ = book.check_pages([index])["index.html"]
    assert not found, "\n".join(found)


def test_plot_is_drawn_in_jupyterlab_offline(tmp_path):
    """`Figure::show` draws an interactive plot inside JupyterLab itself, with the network blocked,
    and a `SliderFigure`'s slider moves what is drawn there.

    Starts JupyterLab on loopback in a temporary folder (so autosave never touches the repo), opens a
    notebook of one plot and one slider figure in headless Chromium, runs all cells through
    JupyterLab's own command, waits for plotly's SVG in both outputs, then clicks the end of the
    slider's rail as a reader would and checks, with the book's own check (`book._check_sliders`),
    that the slider reached its last step, shows that step's traces, and changed what is drawn.
    """
    import secrets
    import socket
    import subprocess
    import time

    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    meta = {"kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"}}
    nb = nbformat.v4.new_notebook(metadata=meta)
    nb.cells = [
        nbformat.v4.new_code_cell(f':dep vaelab = {{ path = "{ROOT}" }}'),
        nbformat.v4.new_code_cell(
            'vaelab::plot::Figure::new("a line in JupyterLab").line("y = x", &[0.0, 1.0], &[0.0, 1.0]).show();'
        ),
        nbformat.v4.new_code_cell(
            "{\n"
            '    let mut fig = vaelab::plot::Figure::new("a slider in JupyterLab").axes("x", "x²")'
            '.line("x²", &[0.0, 2.0], &[0.0, 4.0]).slider("x");\n'
            "    for k in 0..3 {\n"
            "        let x = k as f64;\n"
            '        fig = fig.step(&k.to_string(), vaelab::plot::Figure::new("").points("(x, x²)", &[x], &[x * x]));\n'
            "    }\n"
            "    fig.show();\n"
            "}"
        ),
    ]
    nbformat.write(nb, tmp_path / "plot_in_lab.ipynb")
    env = run_notebook.kernel_env()
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "jupyter"), "lab", "--no-browser", "--allow-root",
         f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={tmp_path}", "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=open(tmp_path / "lab.log", "w"), stderr=subprocess.STDOUT,
    )
    external: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(60):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=book.CHROMIUM, args=book.CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1200, "height": 900})

            def route(r):
                if r.request.url.startswith(base) or r.request.url.startswith(("data:", "blob:")):
                    r.continue_()
                else:
                    external.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.goto(f"{base}/lab/tree/plot_in_lab.ipynb?token={token}", timeout=60_000)
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext",
                timeout=60_000,
            )
            page.evaluate(
                "async () => { const w = window.jupyterapp.shell.currentWidget;"
                " await w.context.ready; await w.sessionContext.ready;"
                " await window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
            )
            page.wait_for_function(
                "() => document.querySelectorAll('.jp-OutputArea .vaelab-plot .main-svg').length >= 2",
                timeout=600_000,
            )
            sliders = page.evaluate(
                "() => [...document.querySelectorAll('.vaelab-plot')]"
                ".map((p, i) => (p.layout && p.layout.sliders && p.layout.sliders.length) ? i : -1)"
                ".filter(i => i >= 0)"
            )
            assert sliders == [1], f"expected the second plot to carry the one slider, found sliders at {sliders}"
            moved = book._check_sliders(page, sliders)
            page.screenshot(path=str(ROOT / "build" / "screenshots" / "jupyterlab-plot.png"))
            browser.close()
            assert not moved, "\n".join(moved)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not external, f"JupyterLab page tried to reach the network: {external}"


def test_links_between_lessons_reach_the_pages(tmp_path):
    """A markdown link `[...](10-cvae.ipynb)` becomes `href="10-cvae.html"` on the book page."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "rust", "display_name": "Rust", "language": "rust"}})
    nb.cells = [nbformat.v4.new_markdown_cell(
        "# Links\n\n[lesson 10](10-cvae.ipynb), [its step 2](10-cvae.ipynb#Step-2), "
        "[a page elsewhere](https://example.org/a.ipynb), [a folder](../notebooks/10-cvae.ipynb), "
        "[its solutions](solutions/10-cvae.ipynb), [back to the lesson](../10-cvae.ipynb#Exercises)"
    )]
    path = tmp_path / "links.ipynb"
    nbformat.write(nb, path)
    text = book.render(path, tmp_path / "book").read_text()
    assert 'href="10-cvae.html"' in text
    assert 'href="10-cvae.html#Step-2"' in text
    # Only sibling notebooks are pages of the book; other links are left as they are.
    assert 'href="https://example.org/a.ipynb"' in text
    assert 'href="../notebooks/10-cvae.ipynb"' in text
    # Solutions pages sit beside the lessons' as solutions-<name>.html.
    assert 'href="solutions-10-cvae.html"' in text
    assert 'href="10-cvae.html#Exercises"' in text


# Lessons written in parallel branches, linked from the course map before they are merged. Remove a
# name once its notebook is in notebooks/ (the test then checks it like the others).
PENDING_LESSONS: set[str] = set()


def test_course_map_links_every_lesson():
    """00-course-map links every lesson in notebooks/, and every link it holds names a lesson that
    exists (or one of PENDING_LESSONS)."""
    import re

    course_map = nbformat.read(ROOT / "notebooks" / "00-course-map.ipynb", as_version=4)
    text = "\n".join(c.source for c in course_map.cells if c.cell_type == "markdown")
    linked = set(re.findall(r"\]\(([\w.-]+\.ipynb)\)", text))
    lessons = {p.name for p in NOTEBOOKS} - {"00-course-map.ipynb"}
    assert lessons <= linked, f"lessons missing from the course map: {sorted(lessons - linked)}"
    unknown = linked - lessons - PENDING_LESSONS
    assert not unknown, f"course map links to notebooks that do not exist: {sorted(unknown)}"


# ---- The original text in every lesson, and the lessons' claims (issue: every claim proved) ----

SEED = ROOT.parent / "shared" / "seed" / "000_d5691cb8003e3eb6.txt"
SEED_COPY = ROOT / "data" / "text" / "vae-guide-2020-10-29.md"

# Each lesson and the section of the text it opens with (by its `###` heading); 00 quotes the whole
# text, 04 (not a section of the text) the paragraph that states the goal the engine serves; 03a and
# 03b (what the text uses without saying) the lines they serve, as ranges of line numbers (1-based,
# inclusive) of data/text/vae-guide-2020-10-29.md, each quoted verbatim.
QUOTED_SECTIONS = {
    "00-course-map.ipynb": None,
    "01-inverse-transform-sampling.ipynb": "逆变换采样",
    "02-derivation-1-jensen.ipynb": "VAE推导方法1",
    "03-derivation-2-kl-gap.ipynb": "VAE推导方法2",
    # The ELBO as an expectation under Q (derivation 1) and the objective over the data set.
    "03a-gradients-of-an-expectation.ipynb": [(28, 30), (54, 58)],
    # "Q(z|x) can be any distribution — what is its effect?" and "the choice of Q matters".
    "03b-amortised-inference.ipynb": [(33, 33), (44, 44)],
    "04-vae-from-scratch.ipynb": "VAE的目标就是通过auto encoder的形式，找到这个映射函数。",
    "05-prior-and-aggregate-posterior.ipynb": "先验分布",
    "06-minibatch-kl-weight.ipynb": "mini-batch",
    "07-noisy-channel.ipynb": "VAE解释1",
    "08-minimal-representation.ipynb": "VAE解释2",
    "09-two-collapses.ipynb": "两种collapse",
    "10-cvae.ipynb": "CVAE",
}


def _squash(text: str) -> str:
    """The text as its Markdown renders it, without layout: the `\\_` escapes are `_`, blockquote
    markers and all whitespace dropped (a quote may be re-wrapped or set as a blockquote)."""
    text = text.replace("\\_", "_")
    text = "\n".join(line.lstrip().removeprefix(">") for line in text.splitlines())
    return re.sub(r"\s+", "", text)


def seed_sections() -> dict[str, str]:
    text = SEED_COPY.read_text(encoding="utf-8")
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_the_shipped_text_is_the_course_text():
    """data/text/ ships the course text unchanged (it is what the quote checks compare with)."""
    if SEED.exists():
        assert SEED_COPY.read_bytes() == SEED.read_bytes()
    assert "### VAE推导方法1" in SEED_COPY.read_text(encoding="utf-8")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_lesson_opens_with_its_section_of_the_text(notebook):
    """Every lesson quotes its section verbatim under a 原文 heading near its top (first 4 cells)."""
    assert notebook.name in QUOTED_SECTIONS, f"{notebook.name}: say which section of the text it quotes"
    key = QUOTED_SECTIONS[notebook.name]
    whole = SEED_COPY.read_text(encoding="utf-8")
    sections = seed_sections()
    if key is None:
        wanted = [whole.split("\n", 2)[2]]  # the whole text below its date line
    elif isinstance(key, list):
        lines = whole.splitlines()
        wanted = ["\n".join(lines[a - 1:b]) for a, b in key]
    elif key in sections:
        wanted = [sections[key]]
    else:
        wanted = [key]
    nb = nbformat.read(notebook, as_version=4)
    top = "\n".join(c.source for c in nb.cells[:4] if c.cell_type == "markdown")
    assert "原文" in top, f"{notebook.name}: no 原文 heading in its first cells"
    for part in wanted:
        assert _squash(part) in _squash(top), f"{notebook.name}: the text is not quoted verbatim: {part[:60]}…"


# Lessons whose experiment states outcomes: the least number of checked claims (`✓ …` lines printed
# by vaelab::base::claim) each must show. Every outcome sentence needs one; these are floors.
MIN_CLAIMS = {
    "01-inverse-transform-sampling.ipynb": 2,
    "02-derivation-1-jensen.ipynb": 10,
    "03-derivation-2-kl-gap.ipynb": 8,
    "03a-gradients-of-an-expectation.ipynb": 12,
    "03b-amortised-inference.ipynb": 8,
    "04-vae-from-scratch.ipynb": 3,
    "05-prior-and-aggregate-posterior.ipynb": 3,
    "06-minibatch-kl-weight.ipynb": 2,
    "07-noisy-channel.ipynb": 3,
    "08-minimal-representation.ipynb": 3,
    "09-two-collapses.ipynb": 3,
    "10-cvae.ipynb": 3,
}


# Every lesson's checked exercises (issue 14): each prints one verdict line, `Exercise 2.1 — …`.
MIN_EXERCISES = 3
VERDICT = re.compile(r"^Exercise [0-9]+[a-z]?\.[0-9]+ — (correct|not yet|no answer yet): ")


def verdict_lines(executed: Path) -> list[str]:
    """The verdict lines (vaelab::exercises) a notebook printed on stdout."""
    lines = []
    for cell in nbformat.read(executed, as_version=4).cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                lines += [line for line in out["text"].splitlines() if VERDICT.match(line)]
    return lines


def claim_lines(executed: Path) -> list[str]:
    lines = []
    for cell in nbformat.read(executed, as_version=4).cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                lines += [line for line in out["text"].splitlines() if line.startswith("✓ ")]
    return lines


def test_verdict_lines_are_counted_from_stdout(tmp_path):
    """The counter sees the checkers' verdict lines on stdout only, with lesson numbers like 3a."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=(
            "Exercise 2.1 — correct: x\nExercise 3a.2 — not yet: y. Hint: z\n"
            "Exercise 4.1 — no answer yet: w\nExercise 5 is about…\n")),
        nbformat.v4.new_output("stream", name="stderr", text="Exercise 2.2 — correct: not counted\n"),
    ]
    nb.cells = [cell]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert [v.split(" — ")[0] for v in verdict_lines(path)] == ["Exercise 2.1", "Exercise 3a.2", "Exercise 4.1"]


def test_claim_lines_are_counted_from_stdout(tmp_path):
    """The counter sees `✓` lines of stdout only."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="✓ a — x = 1 < y = 2\nnot a claim\n"),
        nbformat.v4.new_output("stream", name="stderr", text="✓ not counted\n"),
    ]
    nb.cells = [cell]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert claim_lines(path) == ["✓ a — x = 1 < y = 2"]
