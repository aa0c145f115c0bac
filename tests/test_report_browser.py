"""The report page in a real browser: `vgf-ray report` writes HTML that headless Chromium opens with no console
error, every image loaded and the budget table present. Chromium is Debian's package (`.ci/run` installs it when
missing), driven by Playwright through its executable path: no browser download. Where Chromium or Playwright is
missing the test is skipped and says which."""

from __future__ import annotations

import json
import shutil

import pytest

from vgf_ray.metrics import GRAD_STEPS, RETURN, budget_metric
from vgf_ray.report import write_report

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    path = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    if path is None:
        pytest.skip(f"no Chromium here (looked for {', '.join(CHROMIUM_NAMES)}; .ci/run installs Debian's chromium)")
    return path


def a_run_folder(tmp_path):
    """A run's history as `vgf-ray train` writes it: two evaluations at budgets 0..3."""
    rows = []
    for i, steps in enumerate((1000, 2000)):
        row = {"iteration": i + 1, GRAD_STEPS: steps, "online_env_steps": 0}
        for budget in range(4):
            row[budget_metric(budget)] = 0.1 * (i + 1) / (budget + 1)
            row[budget_metric(budget, RETURN)] = -150.0 - 10 * budget
        rows.append(row)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "history.json").write_text(json.dumps(rows))
    return folder


def test_report_opens_in_chromium_with_its_images_and_budget_table(tmp_path):
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    page_path = write_report(a_run_folder(tmp_path))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(page_path.as_uri())
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
        headers = page.eval_on_selector_all("th", "cells => cells.map(c => c.textContent.trim())")
        budget_rows = page.eval_on_selector_all("tr", "rows => rows.length")
        browser.close()
    assert not errors, errors
    assert len(images) >= 2 and all(done and width > 0 for done, width in images), images
    assert headers[:3] == ["L_test", "success", "return"] and budget_rows >= 5, (headers, budget_rows)
