"""The page at ``/`` in a real browser: Debian's headless Chromium driven by Playwright, against a real server.

Upload a CREMA-D clip with the keyboard, wait for the result, check the label, the plotted
timeline and a key frame picture, the links, and that a phone-width window needs no sideways
scrolling; save a screenshot (``EMOCONTEXT_SERVE_SCREENSHOT=path`` keeps it, see
``benchmarks/serve.md``). Then upload a text file named ``.mp4`` and check the error shown.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import data_path
from tests.serve.conftest import running_server

pytestmark = [pytest.mark.browser, pytest.mark.realdata]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: milliseconds to wait for a result (the first job on a loaded 2-core machine is slow)
RESULT_TIMEOUT_MS = float(os.environ.get("EMOCONTEXT_SERVE_START_TIMEOUT", "900")) * 1000


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium); Playwright's own browser cannot be downloaded")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (the test extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("serve_browser") / "tmp", "--max-upload-mb", "20") as s:
        yield s


def _screenshot_is_a_page(path: Path) -> None:
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 400
    packed = img.reshape(-1, 3).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    assert np.unique(packed).size > 200  # a plot and a photo, not a flat page


def test_upload_a_clip_and_see_the_answer(browser, server, tmp_path):
    clip = data_path("videos", "crema-d", "1001_DFA_HAP_XX.flv")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length >= 2")
    models = server.client.get("/v1/models").json()
    assert page.is_visible("#person-label") == bool(models["person"])  # only where the library reads persons
    page.set_input_files("#file", str(clip))
    page.focus("#submit")
    page.keyboard.press("Enter")  # keyboard only: the form submits from the focused button
    page.wait_for_selector("#result:not([hidden])", timeout=RESULT_TIMEOUT_MS)
    assert page.is_hidden("#error")

    result = server.client.get(page.get_attribute("#download-json", "href")).json()
    labels = list(result["probabilities"])
    # the shipped face model reads this clip right (benchmarks/crema_d_predictions.md)
    assert result["label"] == "happy"
    assert page.text_content("#clip-label").startswith("happy")
    shown_conf = page.text_content("#clip-confidence")
    assert shown_conf == f"{100 * result['confidence']:.1f} %"
    assert page.text_content("#file-name") == clip.name

    # the timeline: one line per emotion of the JSON, one point per sampled frame with probabilities
    series = page.locator("#timeline-0 path.series")
    assert series.count() == len(labels)
    assert sorted(series.evaluate_all("ps => ps.map(p => p.dataset.label)")) == sorted(labels)
    points = page.eval_on_selector("#timeline-0 path.series", "p => p.getAttribute('d').split(/[ML]/).length - 1")
    assert points == sum(f["probabilities"] is not None for f in result["frames"]) == result["num_frames"]

    # a key frame picture loaded, from the server
    page.wait_for_function("document.querySelector('#keyframe-0 img').complete")
    width = page.eval_on_selector("#keyframe-0 img", "i => i.naturalWidth")
    assert width == 480  # the CREMA-D frame width
    assert page.get_attribute("#download-report", "href").endswith("/report")
    assert page.get_attribute("#download-annotated", "href").endswith("/annotated")
    assert server.client.get(page.get_attribute("#download-report", "href")).status_code == 200

    shot = tmp_path / "serve_page.png"
    page.screenshot(path=str(shot), full_page=True)
    _screenshot_is_a_page(shot)
    keep = os.environ.get("EMOCONTEXT_SERVE_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)

    # a phone-width window: everything fits without scrolling sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.close()


def test_text_file_named_mp4_shows_the_error(browser, server, tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a video at all\n" * 20)
    page = browser.new_page()
    page.goto(server.url + "/")
    page.set_input_files("#file", str(fake))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    text = page.text_content("#error")
    assert "415" in text and "not_media" in text and "not a video or image" in text
    assert page.is_hidden("#result")
    assert page.is_enabled("#submit")  # ready for the next file
    page.close()
    assert server.client.get("/healthz").status_code == 200
    assert server.uploads() == []
