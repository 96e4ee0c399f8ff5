"""``mmbench leaderboard --format html``: a static, offline site, checked as files and in headless Chromium.

The browser test needs Chromium, its driver (Debian: ``apt-get install chromium chromium-driver``, which
``.ci/run`` does) and the ``selenium`` package; it skips, saying which is missing, only where they are
not installed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from tests.leaderboard.test_bundle import published_subset
from tests.leaderboard.test_leaderboard import make_record, noisy

MD_NUMBER = re.compile(r"\d+\.\d{4} ± \d+\.\d{4}")
METRICS = ("weighted_f1", "accuracy", "macro_f1")


def make_site(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    runs = published_subset(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["leaderboard", "--runs", "runs", "--format", "html", "-o", "site"])
    assert result.exit_code == 0, result.output
    return runs, tmp_path / "site"


def records_by_fusion(runs: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path in sorted(runs.glob("*.json")):
        if not path.name.endswith(".predictions.json"):
            rec = json.loads(path.read_text())
            out.setdefault(rec["fusion"], []).append(rec)
    return out


def expected_cell(records: list[dict], metric: str) -> str:
    values = np.array([r["metrics"]["test"][metric] for r in records], dtype=float)
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def test_site_files_are_offline_and_show_the_markdown_numbers(tmp_path, monkeypatch):
    runs, site = make_site(tmp_path, monkeypatch)
    assert sorted(p.name for p in site.iterdir()) == [
        "assets",
        "index.html",
        "mfeat.html",
        "mfeat.per_class_f1.svg",
        "mfeat.records.zip",
        "mfeat.weighted_f1.svg",
    ]
    page = (site / "mfeat.html").read_text(encoding="utf-8")
    index = (site / "index.html").read_text(encoding="utf-8")
    for text in (page, index):  # nothing from a CDN or any other host: the site works offline
        links = re.findall(r'(?:src|href)="([^"]*)"', text)
        assert links and not [u for u in links if re.match(r"[a-z]+://", u) or u.startswith("//")]
        for link in links:
            assert link.startswith(("data:", "#")) or (site / link).exists(), link
    # The numbers in the page are the markdown board's, in the same order.
    md = CliRunner().invoke(app, ["leaderboard", "--runs", "runs", "--format", "md"])
    assert md.exit_code == 0
    cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>(?:<strong>)?([^<]*)", page)]
    assert [c for c in cells if MD_NUMBER.fullmatch(c)] == MD_NUMBER.findall(md.stdout)
    assert "ff5dd13180881b16" in page and "6becb06b06a525ff" in page  # provenance
    # The records download rebuilds the same board.
    from_zip = CliRunner().invoke(app, ["leaderboard", "--runs", "site/mfeat.records.zip", "--format", "csv"])
    from_dir = CliRunner().invoke(app, ["leaderboard", "--runs", "runs", "--format", "csv"])
    assert from_zip.exit_code == 0 and from_zip.stdout == from_dir.stdout
    svg = (site / "mfeat.weighted_f1.svg").read_text()
    assert re.search(r"<svg [^>]*xmlns=\"http://www.w3.org/2000/svg\"", svg) and "<text" in svg


def test_html_needs_an_output_folder(tmp_path, monkeypatch):
    make_record(tmp_path / "runs", "concat", 0, noisy(0.8, 0))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["leaderboard", "--runs", "runs", "--format", "html"])
    assert result.exit_code == 2 and "--output DIR" in result.output


def test_context_and_encoder_filters_list_the_rows_values(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        path = make_record(runs, "concat", seed, noisy(0.8, seed))
        rec = json.loads(path.read_text())
        rec["context"] = {"name": "bigru"}
        path.write_text(json.dumps(rec))
        make_record(runs, "late", seed, noisy(0.7, seed))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["leaderboard", "--runs", "runs", "--format", "html", "-o", "site"])
    assert result.exit_code == 0, result.output
    page = next((tmp_path / "site").glob("synthetic*.html")).read_text()
    assert '<option value="bigru">bigru</option>' in page and '<option value="none">none</option>' in page
    assert (
        'data-fusion="concat" data-context="bigru"' in page
        and 'data-fusion="late" data-context="none"' in page
    )
    assert '<select data-filter="encoders">' in page


# ---------------------------------------------------------------- in a real browser
def chrome_driver():
    """A headless Chromium driven by selenium, or a skip that names what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("the selenium package is not installed (pip install selenium)")
    browser = next(
        (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "Chromium or chromedriver not installed (Debian: apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def column(driver, table: str, index: int, visible_only: bool = True) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    return [
        r.find_elements(By.TAG_NAME, "td")[index].text for r in rows if r.is_displayed() or not visible_only
    ]


def test_site_in_headless_chromium(tmp_path, monkeypatch):
    runs, site = make_site(tmp_path, monkeypatch)
    records = records_by_fusion(runs)
    driver = chrome_driver()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    try:
        driver.get((site / "index.html").as_uri())
        driver.find_element(By.LINK_TEXT, "mfeat").click()
        assert driver.current_url.endswith("/mfeat.html") and driver.title.startswith("mfeat")
        screenshot = tmp_path / "mfeat.png"
        assert driver.save_screenshot(str(screenshot))
        png = screenshot.read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 20_000

        heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#board thead th")]
        fusions = column(driver, "board", heads.index("fusion"))
        assert sorted(fusions) == sorted(records) == ["concat", "late", "unimodal"]
        # The numbers shown are the records' mean ± sample std over seeds.
        for metric, title in zip(METRICS, ("weighted F1 ↑", "WA (accuracy) ↑", "macro F1 ↑"), strict=True):
            shown = column(driver, "board", heads.index(title))
            assert shown == [expected_cell(records[f], metric) for f in fusions], metric
        params = column(driver, "board", heads.index("params ↓"))
        assert params == [f"{records[f][0]['efficiency']['params']:,.0f}" for f in fusions]

        # Sorting a column reorders the rows: params ascending, then descending on a second click.
        header = driver.find_element(
            By.XPATH, "//table[@id='board']//th[normalize-space()='params ↓']//button"
        )
        header.click()
        by_params = sorted(fusions, key=lambda f: records[f][0]["efficiency"]["params"])
        assert by_params != fusions and column(driver, "board", heads.index("fusion")) == by_params
        header.click()
        assert column(driver, "board", heads.index("fusion")) == by_params[::-1]
        driver.find_element(By.XPATH, "//table[@id='board']//th[normalize-space()='rank']//button").click()
        assert column(driver, "board", heads.index("fusion")) == fusions

        # Filters hide the other rows; the count follows.
        Select(driver.find_element(By.CSS_SELECTOR, "select[data-filter='fusion']")).select_by_value("late")
        assert column(driver, "board", heads.index("fusion")) == ["late"]
        assert driver.find_element(By.CSS_SELECTOR, ".filters .shown").text == "1 of 3 rows shown"
        Select(driver.find_element(By.CSS_SELECTOR, "select[data-filter='fusion']")).select_by_value("")
        assert len(column(driver, "board", 0)) == 3

        # Tabs: one panel at a time.
        assert not driver.find_element(By.ID, "tab-per-class").is_displayed()
        driver.find_element(By.CSS_SELECTOR, "[data-tab='per-class']").click()
        assert driver.find_element(By.ID, "tab-per-class").is_displayed()
        assert not driver.find_element(By.ID, "tab-main").is_displayed()
        driver.find_element(By.CSS_SELECTOR, "[data-tab='plots']").click()
        images = driver.find_elements(By.CSS_SELECTOR, "#tab-plots img")
        assert len(images) == 2 and all(
            driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
            for i in images
        )
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        # (The log does catch console errors: a probe shows up.)
        driver.execute_script("console.error('probe from the test')")
        assert any("probe from the test" in e["message"] for e in driver.get_log("browser"))
    finally:
        driver.quit()


def test_robustness_tab_and_charts_where_runs_were_analysed(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        for fusion, relative in (("concat", 0.6), ("late", 0.5)):
            path = make_record(runs, fusion, seed, noisy(0.8, seed))
            rec = json.loads(path.read_text())
            rec["robustness"] = {
                "metric": "weighted_f1",
                "noise": {
                    "levels": [0.0, 0.5, 1.0],
                    "curves": {"all": [0.8, 0.6, 0.4]},
                    "relative_robustness": {"all": relative + 0.01 * seed},
                    "effective_robustness": {"all": 0.01},
                },
                "contributions": {"shapley": {"text": 0.3}},
            }
            path.write_text(json.dumps(rec))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["leaderboard", "--runs", "runs", "--format", "html", "-o", "site"])
    assert result.exit_code == 0, result.output
    page = next((tmp_path / "site").glob("synthetic*.html"))
    text = page.read_text()
    assert 'data-tab="robustness"' in text and 'id="tab-robustness"' in text
    assert "0.6050 ± 0.0071" in text and "0.5050 ± 0.0071" in text  # relative robustness, mean ± std
    stem = page.name.removesuffix(".html")
    for chart in ("noise", "contributions", "weighted_f1", "per_class_f1"):
        assert (tmp_path / "site" / f"{stem}.{chart}.svg").is_file() and f"{stem}.{chart}.svg" in text
