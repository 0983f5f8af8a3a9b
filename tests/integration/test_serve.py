"""`sweeper serve` in a real headless Chromium: the page loads, shows progress, follows a running sweep
to its end and shows the verdict."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.live_sweep import RUNS, start, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Chromium (apt-get install -y chromium; .ci/run installs it)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs playwright (pip install -e '.[test]')"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def serve(folder: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeper", "serve", str(folder), "--port", "0", "--every", "0.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline() if proc.stdout else ""
    assert "http://127.0.0.1:" in first, first
    return proc, first.split(" at ", 1)[1].split()[0]


def test_live_page_follows_a_running_sweep_to_its_verdict(tmp_path, browser):
    driver, folder, gate = start(tmp_path)
    server = None
    try:
        wait_for(lambda: (folder / "trials").is_dir() and any((folder / "trials").iterdir()), "first rows")
        server, url = serve(folder)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        banner = page.locator("#progress")
        assert banner.inner_text().startswith("running")
        first = int(banner.inner_text().split("runs ")[1].split("/")[0])
        assert 0 < first < RUNS
        assert "Report: live" in page.inner_text("h1")
        gate.unlink()  # let the sweep finish; the open tab must follow without the test reloading it
        page.wait_for_function(
            "document.querySelector('#progress') &&"
            " document.querySelector('#progress').innerText.startsWith('finished')"
            " && document.querySelector('.verdict') !== null",
            timeout=120_000,
        )
        assert f"runs {RUNS}/{RUNS}" in page.locator("#progress").inner_text()
        assert "supported" in page.locator(".verdict.yes").inner_text()
        shots = os.environ.get("SWEEPER_SCREENSHOTS")
        if shots:
            page.screenshot(path=str(Path(shots) / "live-page.png"), full_page=True)
        assert driver.wait(timeout=120) == 0
    finally:
        if server is not None:
            server.terminate()
            server.communicate(timeout=30)
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def test_serve_refuses_a_folder_that_holds_no_results(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "sweeper", "serve", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "not a results folder" in out.stderr and "fix:" in out.stderr
