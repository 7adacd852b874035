"""The HTML report rendered by a real browser (headless Chromium): every embedded image loads."""

from __future__ import annotations

import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from emocontext.report import write_html_report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")

# Appended to a test copy of the report only (the report itself has no JavaScript): on load,
# count the images that decoded (complete with a natural width) and publish the result.
CHECK_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var state = (ok === imgs.length ? "images-ok:" + ok : "images-bad:" + ok + "/" + imgs.length);
  document.title = state;
  document.body.setAttribute("data-check", state);
});
</script>
"""


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (shutil.which('chromium') is None)")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def report(tmp_path, context_prediction):
    path = write_html_report(context_prediction, tmp_path / "report.html")
    n_images = len(re.findall(r'<img [^>]*src="data:image/png;base64,', path.read_text("utf-8")))
    assert n_images >= 6
    return path, n_images


def test_browser_loads_every_image(tmp_path, report):
    path, n_images = report
    checked = tmp_path / "report_checked.html"
    checked.write_text(path.read_text("utf-8").replace("</body>", CHECK_SCRIPT + "</body>"), "utf-8")
    proc = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", checked.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f'data-check="images-ok:{n_images}"' in proc.stdout, re.findall(r"images-\w+:[\d/]+", proc.stdout)


def test_browser_screenshot_is_not_blank(tmp_path, report):
    path, _ = report
    shot = tmp_path / "report.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", path.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (3000, 1200)
    assert float(img.std()) > 10
    packed = img.reshape(-1, 3).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    assert np.unique(packed).size > 100  # plots and frames, not a flat page
