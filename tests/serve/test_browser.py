"""The page at ``/`` in a real browser: Debian's headless Chromium driven by Playwright, against a real server.

Upload a CREMA-D clip with the keyboard, wait for the result, check the label, the plotted
timeline (its colours those of the server's palette) and a key frame picture, the links, and that a
phone-width window needs no sideways scrolling and draws chart labels at least 10 px tall; save a
screenshot (``EMOCONTEXT_SERVE_SCREENSHOT=path`` keeps it, see ``benchmarks/serve.md``). Upload a text
file named ``.mp4`` and check the error shown. Choosing and dropping a file do the same. On a server
with an API key, the page asks for it once (kept for the tab), and the multi-person photo shows one
face thumbnail per person, their numbered boxes on the picture, bars per person and no time chart.
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
    from emocontext.labels import emotion_hex

    strokes = series.evaluate_all("ps => ps.map(p => [p.dataset.label, p.getAttribute('stroke')])")
    assert all(color == emotion_hex(name) for name, color in strokes)  # the report's and the video's colours
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

    # a phone-width window: everything fits without scrolling sideways, the chart's labels stay readable
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(600)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    heights = page.eval_on_selector_all("#timeline-0 text", "ts => ts.map(t => t.getBoundingClientRect().height)")
    assert heights and min(heights) >= 10, heights
    assert page.eval_on_selector("#clip-confidence", "e => e.getClientRects().length") == 1  # "100.0 %" on one line
    page.close()


def test_choose_and_drop_do_the_same(browser, server, tmp_path):
    clip = tmp_path / "a clip.mp4"
    clip.write_bytes(b"not read by this test")
    page = browser.new_page()
    page.goto(server.url + "/")
    page.set_input_files("#file", str(clip))
    assert page.text_content("#chosen") == "Chosen: a clip.mp4" and page.text_content("#status") == ""
    page.goto(server.url + "/")
    dt = page.evaluate_handle(
        "() => { const d = new DataTransfer(); d.items.add(new File(['x'], 'b.mp4', {type: 'video/mp4'})); return d; }"
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dt})
    assert page.text_content("#chosen") == "Chosen: b.mp4" and page.text_content("#status") == ""
    assert page.is_enabled("#submit") and page.is_hidden("#result")  # neither starts the upload by itself
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


KEY = "browser-key-0123456789abcdef"


def test_key_once_and_every_person_of_a_photo(browser, tmp_path_factory):
    photo = data_path("images", "multi_face.jpg")
    tmp = tmp_path_factory.mktemp("serve_keyed") / "tmp"
    with running_server(tmp, env={"EMOCONTEXT_API_KEYS": KEY}, key=KEY) as server:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(server.url + "/")
        page.wait_for_selector("#key-form:not([hidden])")
        page.fill("#api-key", KEY)
        page.press("#api-key", "Enter")
        page.wait_for_function("document.querySelectorAll('#model option').length >= 1")
        page.reload()  # the key is kept for the tab: not asked again
        page.wait_for_function("document.querySelectorAll('#model option').length >= 1")
        assert page.is_hidden("#key-form")

        page.set_input_files("#file", str(photo))
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=RESULT_TIMEOUT_MS)
        job_id = page.evaluate("document.querySelector('#download-json').getAttribute('href')").split("/")[3]
        job = server.client.get(f"/v1/jobs/{job_id}").json()
        persons = [p for p in job["result"]["persons"] if p["frames_with_face"]]
        assert len(persons) >= 2 and len(job["persons"]) == len(persons)
        # one face thumbnail per person, loaded (with the key) from the server
        page.wait_for_function(
            f"[...document.querySelectorAll('img.thumb')].filter(i => i.complete && i.naturalWidth).length"
            f" === {len(persons)}"
        )
        heads = page.eval_on_selector_all(".person h3", "hs => hs.map(h => h.textContent)")
        assert [h.split()[1] for h in heads] == [str(p["person_id"]) for p in persons]
        # a picture: bars per person, no time chart, image words
        assert page.locator("svg.timeline").count() == 0
        assert page.locator(".person .bars").count() == len(persons)
        facts = page.text_content("#facts")
        assert facts.startswith("image 1000 × 667") and f"{len(persons)} faces" in facts and "sampled" not in facts
        assert page.text_content("#key-frames-title") == "The picture"
        assert "Numbered boxes" in page.text_content("#key-frames-note")
        page.wait_for_function("document.querySelector('#keyframe-0 img').naturalWidth > 0")
        assert job["key_frames"][0]["persons"] == [p["person_id"] for p in persons]
        shot = tmp_path_factory.mktemp("shots") / "multi.png"
        page.screenshot(path=str(shot), full_page=True)
        keep = os.environ.get("EMOCONTEXT_SERVE_SCREENSHOT_MULTI")
        if keep:
            shutil.copy(shot, keep)
        page.close()
