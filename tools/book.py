#!/usr/bin/env python3
"""The course book: executed notebooks rendered to HTML pages that work with no network, and a
check of each page in headless Chromium with the network blocked.

    .venv/bin/python tools/book.py build/notebooks/*.ipynb --solutions build/notebooks/solutions/*.ipynb
                                                              # render pages + index into build/book/
    .venv/bin/python tools/book.py --check build/book/*.html  # open each page offline and check it

Pages load only files next to them: assets/plotly.min.js and assets/tex-svg.js (MathJax 3), both
copied from the `plotly` crate by `vaelab book-assets`. A plot's output carries plotly.js inline the
first time in a kernel session (see src/plot/mod.rs); the page drops that copy and loads the shared one.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "build" / "book"
# A link from one lesson to another, `[...](10-cvae.ipynb)` in markdown, must reach the page, not the
# notebook: relative links to a .ipynb file (no folder, optionally #anchor) are rewritten to .html.
# Solutions notebooks live in notebooks/solutions/ and their pages beside the lessons' as
# `solutions-<name>.html`: a lesson's `solutions/02-x.ipynb` and a solution's `../02-x.ipynb` are
# rewritten to those flat names too.
IPYNB_LINK = re.compile(r'href="(?:\./)?(solutions/|\.\./)?([\w.-]+)\.ipynb(#[^"]*)?"')
SOLUTIONS_PREFIX = "solutions-"
PLOTLY_JS_SCRIPT = re.compile(r'<script type="text/javascript" class="vaelab-plotly-js">.*?</script>\n?', re.S)
CHROMIUM = "/usr/bin/chromium"
# The flags this workplace's machines need for a quiet headless Chromium (no background connections).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def write_assets(book: Path = BOOK) -> None:
    """plotly.min.js and MathJax's tex-svg.js, from the crate (which has them from the plotly crate)."""
    subprocess.run(
        ["cargo", "run", "--quiet", "--bin", "vaelab", "--", "book-assets", "--out", str(book / "assets")],
        cwd=ROOT,
        check=True,
    )


def lesson_title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "(untitled)"


def link_pages(body: str) -> str:
    """Rewrites relative links to sibling notebooks (`href="10-cvae.ipynb"`) to their pages (`10-cvae.html`),
    `solutions/10-cvae.ipynb` to `solutions-10-cvae.html` and `../10-cvae.ipynb` to `10-cvae.html`."""

    def page(m: re.Match) -> str:
        prefix = SOLUTIONS_PREFIX if m.group(1) == "solutions/" else ""
        return f'href="{prefix}{m.group(2)}.html{m.group(3) or ""}"'

    return IPYNB_LINK.sub(page, body)


def solutions_page(lesson_stem: str) -> str:
    """The page name of a lesson's solutions: `solutions-02-derivation-1-jensen.html`."""
    return f"{SOLUTIONS_PREFIX}{lesson_stem}.html"


def render(
    executed: Path,
    book: Path = BOOK,
    prev: str | None = None,
    next_: str | None = None,
    *,
    solutions: str | None = None,
    lesson: str | None = None,
    page_name: str | None = None,
) -> Path:
    """Renders one executed notebook to book/<name>.html (or book/<page_name>). A lesson page links to
    its `solutions` page; a solutions page links back to its `lesson`."""
    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data:
                text = data["text/html"]
                text = "".join(text) if isinstance(text, list) else text
                data["text/html"] = PLOTLY_JS_SCRIPT.sub("", text)
    exporter = HTMLExporter(template_name="vaelab", extra_template_basedirs=[str(ROOT / "tools" / "book")])
    body, _ = exporter.from_notebook_node(
        nb,
        resources={
            "metadata": {"name": lesson_title(nb)},
            "vaelab_prev": prev,
            "vaelab_next": next_,
            "vaelab_solutions": solutions,
            "vaelab_lesson": lesson,
        },
    )
    body = link_pages(body)
    book.mkdir(parents=True, exist_ok=True)
    page = book / (page_name or f"{executed.stem}.html")
    page.write_text(body, encoding="utf-8")
    return page


def render_index(pages: list[tuple[str, str]], book: Path = BOOK, solutions: set[str] = frozenset()) -> Path:
    """The book's front page: the lessons in order, each with its solutions page when it is in
    `solutions` (page names). `pages` holds (file name, title)."""

    def row(name: str, title: str) -> str:
        extra = ""
        sol = solutions_page(name.removesuffix(".html"))
        if sol in solutions:
            extra = f' · <a href="{html.escape(sol)}">solutions</a>'
        return f'<li><a href="{html.escape(name)}">{html.escape(title)}</a>{extra}</li>'

    rows = "\n".join(row(name, title) for name, title in pages)
    index = book / "index.html"
    index.write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaelab: the course</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5; }}</style>
</head><body>
<h1>vaelab: variational autoencoders, derived and measured</h1>
<p>Each lesson follows one section of the course text, derives its claim and checks it with numbers
computed by the <code>vaelab</code> crate. These pages were produced by <code>make test</code>, which
executed every notebook from a fresh kernel.</p>
<ol>
{rows}
</ol>
</body></html>
""",
        encoding="utf-8",
    )
    return index


def build(executed: list[Path], book: Path = BOOK, solutions: list[Path] = ()) -> list[Path]:
    """Renders every executed lesson (in name order), linked prev/next and to its solutions page,
    every executed solutions notebook (linked back to its lesson), plus the index."""
    executed = sorted(executed)
    write_assets(book)
    names = [f"{p.stem}.html" for p in executed]
    solved = {p.stem for p in solutions}
    pages, titles = [], []
    for sol in sorted(solutions):
        pages.append(render(sol, book, lesson=f"{sol.stem}.html", page_name=solutions_page(sol.stem)))
    for i, nb_path in enumerate(executed):
        prev = names[i - 1] if i > 0 else None
        next_ = names[i + 1] if i + 1 < len(names) else None
        sol = solutions_page(nb_path.stem) if nb_path.stem in solved else None
        pages.append(render(nb_path, book, prev, next_, solutions=sol))
        titles.append((names[i], lesson_title(nbformat.read(nb_path, as_version=4))))
    pages.append(render_index(titles, book, {solutions_page(s) for s in solved}))
    return pages


# Each plot with a slider (vaelab::plot::SliderFigure), as the page draws it: its slider's active step,
# which traces are visible, what the step says should be, and the drawn SVG of its axes area.
_SLIDER_STATE_JS = """
(i) => {
  const el = [...document.querySelectorAll('.vaelab-plot')][i];
  const slider = el.layout.sliders[0];
  return {
    steps: slider.steps.length,
    active: slider.active,
    visible: el._fullData.map(t => t.visible === true),
    wanted: slider.steps.map(s => s.args[0].visible),
    drawn: (el.querySelector('.cartesianlayer') || el).innerHTML,
  };
}
"""

# What the page must show once loaded: every plot drawn, every formula typeset, nothing left raw.
_PAGE_STATE_JS = """
async () => {
  // Chinese text drawn with the page's font: a missing glyph draws the same box for every character,
  // so "原" drawn like an unassigned code point (U+10FFFD), or like "文", means no CJK font was found.
  const cjkState = (text) => {
    const chars = text.match(/[\\u4e00-\\u9fff]/g) || [];
    if (!chars.length) return { chars: 0, missing: false };
    const cell = document.querySelector('.jp-RenderedMarkdown') || document.body;
    const font = `32px ${getComputedStyle(cell).fontFamily}`;
    const draw = (s) => {
      const c = document.createElement('canvas'); c.width = 48; c.height = 48;
      const g = c.getContext('2d'); g.font = font; g.fillStyle = '#000'; g.fillText(s, 4, 36);
      return Array.from(g.getImageData(0, 0, 48, 48).data).join(',');
    };
    const yuan = draw('原'), wen = draw('文'), none = draw('\\u{10FFFD}');
    return { chars: chars.length, missing: yuan === none || yuan === wen };
  };
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const plots = [...document.querySelectorAll('.vaelab-plot')];
  const markdown = [...document.querySelectorAll('.jp-MarkdownCell, .jp-RenderedMarkdown')]
      .map(e => e.innerText).join('\\n');
  return {
    plots: plots.length,
    plots_drawn: plots.filter(p => p.querySelector('.main-svg')).length,
    sliders: plots.map((p, i) => (p.layout && p.layout.sliders && p.layout.sliders.length) ? i : -1)
        .filter(i => i >= 0),
    formulas: document.querySelectorAll('mjx-container').length,
    formula_errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    raw_tex: (markdown.match(/\\$\\$|\\\\begin\\{|\\\\\\(|\\\\\\[/g) || []).length,
    has_mathjax: typeof window.MathJax === 'object' && !!window.MathJax.startup,
    cjk: cjkState(markdown),
  };
}
"""


def check_pages(
    pages: list[Path], screenshots: Path | None = None, env: dict[str, str] | None = None
) -> dict[str, tuple[list[str], dict]]:
    """Opens each page in headless Chromium with every non-file request blocked.

    Returns, per page name, the problems found (empty when the page is fine: no request that tried
    to leave the machine, no console error or uncaught exception, every plot drawn, every formula
    typeset, Chinese drawn with a CJK font) and the counts the page showed (plots, formulas, ...).
    `env` replaces Chromium's environment (the tests use it to hide the CJK fonts).
    """
    from playwright.sync_api import sync_playwright

    problems: dict[str, tuple[list[str], dict]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)
        try:
            for page_path in pages:
                problems[page_path.name] = _check_page(browser, page_path, screenshots)
        finally:
            browser.close()
    return problems


def _check_page(browser, page_path: Path, screenshots: Path | None) -> tuple[list[str], dict]:
    found: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            found.append(f"blocked a network request: {r.request.url}")
            r.abort()

    def console(message):
        if message.type == "error":
            found.append(f"console error: {message.text}")

    def request_failed(request):
        if request.url.startswith("file://"):
            found.append(f"missing file: {request.url}")

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        context.route("**/*", route)
        page = context.new_page()
        page.on("console", console)
        page.on("pageerror", lambda error: found.append(f"uncaught exception: {error}"))
        page.on("requestfailed", request_failed)
        page.goto(page_path.resolve().as_uri(), wait_until="load", timeout=60_000)
        state = page.evaluate(_PAGE_STATE_JS)
        if page_path.name != "index.html":
            if not state["has_mathjax"]:
                found.append("MathJax did not start")
            if state["plots_drawn"] != state["plots"]:
                found.append(f"{state['plots'] - state['plots_drawn']} of {state['plots']} plots not drawn")
            if state["formula_errors"]:
                found.append(f"{state['formula_errors']} formulas with TeX errors")
            if state["raw_tex"]:
                found.append(f"{state['raw_tex']} pieces of raw TeX ($$, \\begin, \\(, \\[) left in the text")
        found += _check_sliders(page, state["sliders"])
        if state["cjk"]["missing"]:
            found.append(
                f"the page's {state['cjk']['chars']} Chinese characters render as missing glyphs (no CJK font: "
                "install Debian's fonts-noto-cjk)"
            )
        if screenshots:
            screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshots / f"{page_path.stem}.png"), full_page=False)
    finally:
        context.close()
    return found, state


def _check_sliders(page, sliders: list[int]) -> list[str]:
    """Moves every slider of the page to its last step with the mouse, as a reader would (a click at
    the right end of its rail, handled by plotly.js itself), and checks that the slider says so,
    that the traces that step names are the ones visible, and that what is drawn changed."""
    found = []
    for i in sliders:
        before = page.evaluate(_SLIDER_STATE_JS, i)
        where = f"plot {i + 1}'s slider"
        if before["steps"] < 2:
            found.append(f"{where} has {before['steps']} step(s): nothing to move")
            continue
        if before["visible"] != before["wanted"][before["active"]]:
            found.append(f"{where}: the traces drawn before it moves are not those of its step {before['active']}")
        rail = page.locator(".vaelab-plot").nth(i).locator(".slider-rail-touch-rect").first
        rail.scroll_into_view_if_needed()
        box = rail.bounding_box()
        if box is None:
            found.append(f"{where} is not drawn")
            continue
        page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(300)
        after = page.evaluate(_SLIDER_STATE_JS, i)
        last = after["steps"] - 1
        if after["active"] != last:
            found.append(f"{where}: a click at the end of its rail left it at step {after['active']}, not {last}")
        elif after["visible"] != after["wanted"][last]:
            found.append(f"{where}: at step {last} the visible traces are not the step's")
        if after["drawn"] == before["drawn"]:
            found.append(f"{where}: moving it did not change what is drawn")
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="check pages instead of rendering notebooks")
    parser.add_argument("--screenshots", type=Path, help="with --check: save a PNG of each page here")
    parser.add_argument("--solutions", nargs="*", type=Path, default=[],
                        help="executed solutions notebooks (build/notebooks/solutions/*.ipynb)")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if not args.check:
        for page in build(args.paths, solutions=args.solutions):
            print(page)
        return 0
    bad = 0
    for name, (found, state) in check_pages(args.paths, args.screenshots).items():
        print(f"{name}: {json.dumps(state)}")
        for problem in found:
            print(f"{name}: {problem}")
        bad += bool(found)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
