"""The draw-a-digit page in a real browser: Debian's Chromium driven by Playwright, against a real
`digitrec serve` process with the shipped model. Strokes are drawn with the mouse, as a person would."""

import math
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import on_paper, serve_process, wait_until_up

CHROMIUM = os.environ.get("DIGITREC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("DIGITREC_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
# Flags for a headless Chromium in a sandbox with no outside network (scripts/setup --dev installs it).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

try:
    from playwright import sync_api
except ImportError:  # the dev extra; the browser fixture then fails saying so, rather than skipping unseen
    sync_api = None


@pytest.fixture(scope="module")
def server():
    proc, url = serve_process()
    wait_until_up(proc, url)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    if sync_api is None:
        pytest.fail("Playwright is not installed: pip install -e '.[dev]' (bash scripts/test does)", pytrace=False)
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium as root (bash scripts/test does), "
                    "or set DIGITREC_CHROMIUM", pytrace=False)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# Digits as strokes in the pad's unit square, the way a person draws them.
def _ellipse(cx, cy, rx, ry, n=40):
    return [(cx + rx * math.sin(2 * math.pi * t / n), cy - ry * math.cos(2 * math.pi * t / n)) for t in range(n + 1)]


STROKES = {
    1: [[(0.52, 0.18), (0.48, 0.82)]],
    7: [[(0.25, 0.22), (0.75, 0.22), (0.42, 0.84)]],
    0: [_ellipse(0.5, 0.5, 0.2, 0.3)],
    4: [[(0.35, 0.18), (0.3, 0.55), (0.72, 0.55)], [(0.62, 0.2), (0.62, 0.85)]],
}


def _draw(page, strokes):
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        for (a, b), (c, d) in zip(stroke, stroke[1:]):
            for t in range(1, 9):  # intermediate points, as a real pointer reports them
                page.mouse.move(box["x"] + (a + (c - a) * t / 8) * box["width"], box["y"] + (b + (d - b) * t / 8) * box["height"])
        page.mouse.up()


def _answer_becomes(page, digit: str):
    """Wait until the page has the answer to the final drawing (no request pending), then check it."""
    page.wait_for_function("document.body.dataset.busy === '0'", timeout=15000)
    shown = page.locator("#answer").inner_text()
    assert shown == digit, f"page shows {shown!r}, expected {digit!r}; status: {page.locator('#status').inner_text()!r}"
    page.wait_for_timeout(250)  # let the bars finish their transition before anything is captured


def _view_is_an_empty_28x28_image(page):
    """The 28x28 view shows a loaded, all-black image (the model's view of a blank pad), never a
    broken-image icon with its alt text."""
    view = page.locator("#view")
    assert view.evaluate("v => v.complete && v.naturalWidth") == 28, "the view is not a loaded image"
    assert view.evaluate("v => v.naturalHeight") == 28
    box = view.bounding_box()
    assert box["width"] == box["height"] == 112
    dark = view.evaluate("""v => { const c = document.createElement('canvas'); c.width = c.height = 28;
        const g = c.getContext('2d'); g.drawImage(v, 0, 0);
        return g.getImageData(0, 0, 28, 28).data.every((x, i) => i % 4 === 3 ? x === 255 : x === 0); }""")
    assert dark, "the empty view is not black"


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_view_before_drawing_is_an_empty_28x28_image(server, browser, screen):
    phone = screen == "phone"
    page = (browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True) if phone
            else browser.new_page(viewport={"width": 900, "height": 760}))
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('model')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-empty-{screen}.png"), full_page=True)
    _view_is_an_empty_28x28_image(page)
    _draw(page, STROKES[7])
    _answer_becomes(page, "7")
    page.click("#clear")  # and back to the empty view, not to no image
    _view_is_an_empty_28x28_image(page)
    page.close()


def test_drawn_digits_and_an_uploaded_photo_are_read(server, browser, tmp_path, one_of_each):
    page = browser.new_page(viewport={"width": 900, "height": 760})
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('model')")
    for digit, strokes in STROKES.items():
        page.click("#clear")
        assert page.locator("#answer").inner_text() == "?"
        _draw(page, strokes)
        _answer_becomes(page, str(digit))
        bars = page.locator("#bars li")
        assert bars.count() == 10
        assert "top" in bars.nth(digit).get_attribute("class")
        assert page.locator("#view").get_attribute("src").startswith("data:image/png;base64,")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-drawn.png"), full_page=True)

    photo = tmp_path / "three.jpg"
    on_paper(one_of_each[3][0]).convert("RGB").save(photo, quality=90)
    page.click("#clear")
    page.set_input_files("#file", str(photo))
    page.wait_for_function("document.getElementById('answer').textContent !== '?'", timeout=15000)
    _answer_becomes(page, "3")
    assert page.locator("#photo").is_visible()
    page.screenshot(path=str(ARTIFACTS / "page-upload.png"), full_page=True)
    page.close()


def test_page_fits_a_phone_screen(server, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True, is_mobile=True)
    page.goto(server + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    box = page.locator("#pad").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 250
    _draw(page, STROKES[7])
    _answer_becomes(page, "7")
    page.screenshot(path=str(ARTIFACTS / "page-phone.png"), full_page=True)
    page.close()


def test_number_mode_reads_a_written_number(server, browser):
    page = browser.new_page(viewport={"width": 900, "height": 760})
    page.goto(server + "/")
    page.click("#mode-number")
    assert page.locator("#pad").evaluate("c => c.width / c.height") > 2
    strokes = [[(0.2, 0.15), (0.19, 0.85)],
               [(0.3, 0.15), (0.44, 0.15), (0.35, 0.85)],
               _ellipse(0.6, 0.5, 0.06, 0.35)]
    _draw(page, strokes)
    _answer_becomes(page, "170")
    page.screenshot(path=str(ARTIFACTS / "page-number.png"), full_page=True)
    page.close()


def test_api_docs_render_without_the_internet(server, browser):
    # Every request that leaves this machine is blocked, as on an air-gapped machine: Swagger UI and
    # ReDoc must come from the server itself.
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    outside = []

    def local_only(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", local_only)
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock", timeout=15000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/v1/predict", "/v1/read", "/v1/model", "/healthz"} <= {p.strip() for p in paths}, paths
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs.png"), full_page=True)
    assert outside == [], outside
    page.goto(server + "/redoc")  # ReDoc too (its footer's "by Redocly" logo is the one thing it asks outside for)
    page.get_by_text("Read the digit in one or more images").first.wait_for(timeout=15000)
    page.close()
