"""report.html in a real headless browser (Debian's chromium through Playwright): loads, plots render,
no console errors. Skipped with the reason where chromium or playwright is absent."""

import shutil
from pathlib import Path

import pytest

from edgekd.report.html import write_html

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def test_report_html_renders_in_headless_chromium_without_console_errors(synthetic_matrix, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install "
                                                                   "playwright; no browser download needed)")
    path = write_html(synthetic_matrix, tmp_path / "report.html")
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            assert page.title() == "edgekd build report"
            figures = page.locator("figure svg")
            assert figures.count() == 3
            for i in range(figures.count()):
                box = figures.nth(i).bounding_box()
                assert box and box["width"] > 200 and box["height"] > 100, f"plot {i} did not render: {box}"
            assert page.locator("table tbody tr").count() >= 5
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [path.as_uri()]  # self-contained: nothing else fetched
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000


def test_report_html_in_chromium_shows_speedups_in_short_rows_and_no_none(synthetic_matrix, search_summary,
                                                                           tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    synthetic_matrix.results[0].report["search"] = search_summary
    path = write_html(synthetic_matrix, tmp_path / "report.html")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(path.as_uri(), wait_until="load")
            text = page.inner_text("body")
            # rendered lines per table row: (row height - cell padding) / the cells' line height
            lines = page.evaluate("""() => [...document.querySelectorAll('table tr')].filter(r => r.offsetParent)
                .map(r => { const c = r.cells[0], s = getComputedStyle(c);
                            const pad = parseFloat(s.paddingTop) + parseFloat(s.paddingBottom);
                            return [r.innerText.slice(0, 40), (r.getBoundingClientRect().height - pad)
                                    / parseFloat(s.lineHeight)]; })""")
        finally:
            browser.close()
    assert "2.10×" in text and "9.12×" in text and "Versus the teacher compiled for the same runtime" in text
    assert "None" not in text
    assert lines and all(n < 3.5 for _, n in lines), [x for x in lines if x[1] >= 3.5]  # 3 lines + borders
