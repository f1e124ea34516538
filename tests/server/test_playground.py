"""The browser playground at ``/``, in a real browser against a real server.

Headless Chromium from Debian's ``chromium`` package, driven by Playwright for Python (which
downloads no browser here: it is given ``executable_path``). The server is the real app on a
real socket (``live_server``): :class:`SlowBackend` where a slow, cancellable, previewing engine
makes the test deterministic, the tiny Diffusers pipeline for the real-engine runs (slow-marked).
Every test also checks that the page logged no console error and asked nothing of another origin.
"""

from __future__ import annotations

import base64
import io
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from abstractvision.testing.slow import SlowBackend, SlowConfig

CHROMIUM = Path("/usr/bin/chromium")
#: Where the screenshot test also writes its picture (the docs' image): set to refresh it.
SCREENSHOT_ENV = "PLAYGROUND_SCREENSHOT"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.timeout(120),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason='needs Playwright for Python (pip install playwright; "abstractvision[test]")'
)
expect = sync_api.expect
WAIT_MS = 20_000


class RecordingSlow(SlowBackend):
    """A slow backend that keeps every edit request it ran (to see what the page sent)."""

    def __init__(self, config: SlowConfig | None = None):
        super().__init__(config)
        self.edits: list[Any] = []

    def edit_image_with_progress(self, request, progress_callback=None):
        self.edits.append(request)
        return super().edit_image_with_progress(request, progress_callback)


class TextOnlySlow(SlowBackend):
    """A slow backend that only does text->image and takes no masks."""

    def get_capabilities(self):
        from dataclasses import replace

        return replace(super().get_capabilities(), supported_tasks=("text_to_image",), supports_mask=False)


@dataclass
class Playground:
    """One browser tab on the playground, with what it logged and requested."""

    page: Any
    url: str
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, *, connected: bool = True) -> Playground:
        self.page.goto(self.url)
        if connected:
            expect(self.page.locator("#generate")).to_be_enabled(timeout=WAIT_MS)
        return self

    def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        steps: int | None = None,
        size: tuple[int, int] | None = None,
        count: int = 1,
    ) -> Any:
        """Fill the form and press Generate; the job's card."""
        page = self.page
        page.fill("#prompt", prompt)
        page.fill("#steps", "" if steps is None else str(steps))
        page.fill("#count", str(count))
        if seed is not None:
            page.fill("#seed", str(seed))  # typing a seed chooses Keep
        if size is not None:
            page.select_option("#size", "custom")
            page.fill("#width", str(size[0]))
            page.fill("#height", str(size[1]))
        page.get_by_role("button", name="Generate").click()
        card = page.locator(".job", has_text=prompt)
        expect(card).to_have_count(1, timeout=WAIT_MS)
        return card

    def gallery_card(self, prompt: str) -> Any:
        return self.page.locator(".card", has_text=prompt)

    def wait_for_picture(self, card: Any) -> dict[str, int]:
        image = card.locator(".card-image img")
        expect(image).to_be_visible(timeout=WAIT_MS)
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            size = image.evaluate("img => ({width: img.naturalWidth, height: img.naturalHeight})")
            if size["width"]:
                return size
            time.sleep(0.05)
        raise AssertionError("the gallery picture never loaded")

    def assert_clean(self, allowed: str | None = None) -> None:
        """No console error or warning (but ``allowed``, a regex), no request outside the server's origin."""
        problems = [m for m in self.console if not (allowed and re.search(allowed, m))]
        assert not problems, problems
        origin = self.url.rstrip("/")
        outside = [u for u in self.requests if not u.startswith((origin + "/", f"blob:{origin}/", "data:"))]
        assert not outside, outside


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def playground(browser):
    """``playground(server, **context_options)``: a fresh browser profile's tab on ``server``."""
    contexts = []

    def open_tab(server: Any, **options: Any) -> Playground:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return tab(context, server.url)

    yield open_tab
    for context in contexts:
        context.close()


def tab(context: Any, url: str) -> Playground:
    page = context.new_page()
    view = Playground(page, url + "/")

    def on_console(message: Any) -> None:
        if message.type in ("error", "warning"):
            view.console.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: view.console.append(f"pageerror: {exc}"))
    page.on("request", lambda r: view.requests.append(r.url))
    return view


def png(width: int, height: int, colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def paint(page: Any, points: list[tuple[float, float]]) -> None:
    """Drag the mouse over the mask canvas through ``points`` (fractions of its width and height)."""
    canvas = page.locator("#mask-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    where = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*where[0])
    page.mouse.down()
    for x, y in where[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def job_view(server: Any, job_id: str, key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    reply = httpx.get(f"{server.base_url}/jobs/{job_id}", headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


# ---- the page --------------------------------------------------------------------------------
def test_the_page_shows_what_is_served_and_loads_cleanly(live_server, playground):
    server = live_server(SlowBackend(), served_model_name="slow-model")
    reply = httpx.get(server.url + "/", timeout=10)
    assert reply.status_code == 200 and "text/html" in reply.headers["content-type"]
    assert "default-src 'self'" in reply.headers["content-security-policy"]
    assert "/" not in httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]

    view = playground(server).open()
    page = view.page
    expect(page.locator("#server-summary")).to_have_text("slow · slow-model")
    page.get_by_text("What this server offers").click()
    info = page.locator("#server-info")
    expect(info).to_contain_text("text_to_image, image_to_image")
    expect(info).to_contain_text("16,777,216")  # the server's pixel limit
    expect(page.get_by_label("Image → image")).to_be_visible()
    assert page.locator("#size option").all_inner_texts()[:3] == ["Default (the model's)", "256 × 256", "512 × 512"]
    assert page.locator("#count").get_attribute("max") == "8"
    view.assert_clean()


def test_controls_follow_what_the_backend_can_do(live_server, playground):
    server = live_server(TextOnlySlow(), max_n=2)
    view = playground(server).open()
    expect(view.page.get_by_label("Text → image")).to_be_visible()
    expect(view.page.locator("#task-i2i")).to_be_hidden()
    expect(view.page.locator("#i2i-controls")).to_be_hidden()
    assert view.page.locator("#count").get_attribute("max") == "2"
    expect(view.page.locator("#lora-controls")).to_be_hidden()  # no adapters: no picker
    view.assert_clean()


def test_text_to_image_shows_progress_then_the_picture_and_its_seed(live_server, playground):
    backend = SlowBackend(SlowConfig(step_s=0.2, previews=True))
    server = live_server(backend)
    view = playground(server).open()
    job = view.generate("a lighthouse at dusk", seed=4242, steps=12, size=(48, 40))

    expect(job.locator(".job-status")).to_have_text(re.compile(r"step ([1-9]|1[01]) of 12"), timeout=WAIT_MS)
    bar = job.locator("progress")
    assert bar.get_attribute("max") == "12" and float(bar.get_attribute("value")) >= 1
    expect(job.locator(".job-preview")).to_be_visible()  # the backend sends previews
    expect(job).to_have_count(0, timeout=WAIT_MS)  # done: the card leaves, the picture is in the gallery

    card = view.gallery_card("a lighthouse at dusk")
    expect(card.locator(".card-seed")).to_have_text("4242")
    expect(card).to_contain_text("48 × 40")
    assert view.wait_for_picture(card) == {"width": 48, "height": 40}
    with view.page.expect_download() as download:
        card.get_by_role("button", name=re.compile("Download")).click()
    assert download.value.suggested_filename == "abstractvision-4242.png"
    stored = httpx.get(f"{server.base_url}/files/{card.get_attribute('data-file-id')}", timeout=10).content
    assert Path(download.value.path()).read_bytes() == stored
    view.assert_clean()


def test_cancel_stops_that_job_only(live_server, playground):
    backend = SlowBackend(SlowConfig(step_s=0.1))
    server = live_server(backend)
    view = playground(server).open()
    first = view.generate("a long one", steps=400)
    expect(first.locator(".job-status")).to_have_text(re.compile(r"step \d+ of 400"))
    second = view.generate("a short one", steps=3)
    expect(second.locator(".job-status")).to_have_text(re.compile("Queued"))

    first.get_by_role("button", name="Cancel").click()
    expect(first.locator(".job-status")).to_have_text(re.compile(r"Cancelled at step \d+ of 400"))
    assert job_view(server, first.get_attribute("data-job-id"))["status"] == "cancelled"
    assert len(backend.stopped_at) == 1 and backend.stopped_at[0] < 400  # the engine stopped mid-run

    expect(second).to_have_count(0, timeout=WAIT_MS)  # the other job ran to the end
    expect(view.gallery_card("a short one")).to_have_count(1)
    expect(view.gallery_card("a long one")).to_have_count(0)
    assert backend.runs == 2 and backend.stopped_at == backend.stopped_at[:1]
    view.assert_clean()


def test_a_painted_mask_reaches_the_server_at_the_image_size(live_server, playground):
    from PIL import Image

    backend = RecordingSlow()
    server = live_server(backend)
    view = playground(server).open()
    page = view.page
    page.get_by_label("Image → image").check()
    original = png(96, 64)
    page.set_input_files("#image-file", {"name": "input.png", "mimeType": "image/png", "buffer": original})
    expect(page.locator("#image-info")).to_have_text("input.png: 96 × 64")
    expect(page.locator("#mask-tools")).to_be_visible()

    paint(page, [(0.1, 0.5), (0.9, 0.5)])  # a stroke across the middle
    page.get_by_label("Eraser").check()
    paint(page, [(0.25, 0.5), (0.25, 0.5)])  # erase a dot of it
    page.fill("#strength", "0.5")
    page.fill("#prompt", "repaint the middle")
    page.get_by_role("button", name="Generate").click()
    expect(view.gallery_card("repaint the middle")).to_have_count(1, timeout=WAIT_MS)

    request = backend.edits[-1]
    assert request.image == original
    mask = Image.open(io.BytesIO(request.mask)).convert("L")
    assert mask.size == (96, 64)
    assert mask.getpixel((72, 32)) == 255  # painted: repaint
    assert mask.getpixel((24, 32)) == 0  # erased again
    assert mask.getpixel((2, 2)) == mask.getpixel((93, 61)) == 0  # never painted
    assert set(mask.tobytes()) == {0, 255}
    assert request.extra["strength"] == 0.5
    view.assert_clean()


def test_edit_this_image_sends_a_result_to_image_to_image(live_server, playground):
    backend = RecordingSlow()
    server = live_server(backend)
    view = playground(server).open()
    view.generate("a red door", seed=11, size=(64, 48))
    card = view.gallery_card("a red door")
    view.wait_for_picture(card)

    card.get_by_role("button", name=re.compile("Edit this image")).click()
    page = view.page
    expect(page.get_by_label("Image → image")).to_be_checked()
    expect(page.locator("#image-info")).to_contain_text("64 × 48")
    expect(page.locator("#prompt")).to_have_value("a red door")
    expect(page.locator("#prompt")).to_be_focused()
    page.fill("#prompt", "a blue door")
    page.get_by_role("button", name="Generate").click()
    expect(view.gallery_card("a blue door")).to_have_count(1, timeout=WAIT_MS)

    file_id = card.get_attribute("data-file-id")
    stored = httpx.get(f"{server.base_url}/files/{file_id}", timeout=10).content
    assert backend.edits[-1].image == stored and backend.edits[-1].mask is None
    view.assert_clean()


def test_dropping_an_image_on_the_page_starts_image_to_image(live_server, playground):
    server = live_server(SlowBackend())
    view = playground(server).open()
    page = view.page
    expect(page.get_by_label("Text → image")).to_be_checked()
    transfer = page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            return transfer;
        }""",
        base64.b64encode(png(50, 30)).decode(),
    )
    page.dispatch_event("main", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("main", "drop", {"dataTransfer": transfer})
    expect(page.get_by_label("Image → image")).to_be_checked()
    expect(page.locator("#image-info")).to_have_text("dropped.png: 50 × 30")
    view.assert_clean()


def test_with_keys_the_page_asks_for_one_and_works_once_given(live_server, playground):
    server = live_server(SlowBackend(), api_keys=("sesame",))
    view = playground(server).open(connected=False)
    page = view.page
    expect(page.locator("#key-panel")).to_be_visible()
    expect(page.get_by_label("Key", exact=True)).to_be_focused()
    expect(page.locator("#generate")).to_be_disabled()

    page.get_by_label("Key", exact=True).fill("wrong")
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#key-message")).to_contain_text("invalid API key")
    expect(page.locator("#generate")).to_be_disabled()

    page.get_by_label("Key", exact=True).fill("sesame")
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#generate")).to_be_enabled()
    expect(page.locator("#key-panel")).to_be_hidden()
    view.generate("a locked garden", seed=3)
    card = view.gallery_card("a locked garden")
    view.wait_for_picture(card)  # fetched from /v1/files with the key
    assert page.evaluate("() => localStorage.getItem('abstractvision.playground.key')") == "sesame"

    page.reload()
    expect(page.locator("#generate")).to_be_enabled()
    expect(page.locator("#key-panel")).to_be_hidden()
    view.wait_for_picture(view.gallery_card("a locked garden"))
    # the wrong key's refusals are the only complaints: the browser logs each 401 it got
    view.assert_clean(allowed=r"status of 401")
    assert sum("401" in m for m in view.console) == 2  # capabilities and models, with the wrong key


def test_the_gallery_survives_a_reload(live_server, playground):
    server = live_server(SlowBackend())
    view = playground(server).open()
    view.generate("first picture", steps=2, count=2)
    expect(view.page.locator(".card")).to_have_count(2, timeout=WAIT_MS)
    view.generate("second picture", seed=78, steps=3, size=(40, 24))
    expect(view.page.locator(".card")).to_have_count(3, timeout=WAIT_MS)
    first_seeds = {view.page.locator(".card").nth(i).get_attribute("data-seed") for i in (1, 2)}
    assert len(first_seeds) == 2 and "" not in first_seeds  # a random seed each, shown

    view.page.reload()
    expect(view.page.locator("#generate")).to_be_enabled()
    cards = view.page.locator(".card")
    expect(cards).to_have_count(3)
    expect(cards.first).to_contain_text("second picture")  # newest first
    assert view.wait_for_picture(cards.first) == {"width": 40, "height": 24}
    assert {cards.nth(i).get_attribute("data-seed") for i in (1, 2)} == first_seeds
    view.wait_for_picture(cards.nth(2))

    cards.first.get_by_role("button", name=re.compile("Use these settings")).click()
    page = view.page
    expect(page.locator("#prompt")).to_have_value("second picture")
    expect(page.locator("#seed")).to_have_value("78")
    expect(page.get_by_label("Keep")).to_be_checked()
    expect(page.locator("#steps")).to_have_value("3")
    expect(page.locator("#size")).to_have_value("custom")
    expect(page.locator("#width")).to_have_value("40")
    view.assert_clean()


def test_a_reload_follows_a_running_job_again(live_server, playground):
    server = live_server(SlowBackend(SlowConfig(step_s=0.1)))
    view = playground(server).open()
    job = view.generate("still running", steps=40)
    expect(job.locator(".job-status")).to_have_text(re.compile(r"step \d+ of 40"))
    view.page.reload()
    expect(view.page.locator(".job", has_text="still running")).to_have_count(1)
    expect(view.gallery_card("still running")).to_have_count(1, timeout=WAIT_MS)
    expect(view.page.locator(".job")).to_have_count(0)
    view.assert_clean()


def test_errors_show_the_api_message(live_server, playground):
    server = live_server(SlowBackend(SlowConfig(fail="engine")), max_pixels=64 * 64)
    view = playground(server).open()
    page = view.page
    page.fill("#prompt", "too big")
    page.select_option("#size", "custom")
    page.fill("#width", "64")
    page.fill("#height", "72")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#form-error")).to_contain_text("over this server's 4,096 pixels")
    expect(page.locator("#width")).to_be_focused()

    page.fill("#height", "64")
    page.fill("#steps", "0")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#form-error")).to_contain_text("Steps: a whole number from 1")

    job = view.generate("an engine that fails", steps=2)
    expect(job.locator(".job-error")).to_have_text("the slow engine failed on purpose (fail=engine)")
    expect(job.locator(".job-status")).to_have_text("Failed")
    job.get_by_role("button", name="Dismiss").click()
    expect(job).to_have_count(0)
    view.assert_clean()


def test_lora_adapters_are_picked_from_the_servers_list(live_server, playground, lora_folder):
    from abstractvision import VisionManager
    from fixtures.loras import pixel

    server = live_server(SlowBackend(SlowConfig(step_s=0.01, lora_dir=str(lora_folder))))
    view = playground(server).open()
    page = view.page
    expect(page.locator("#lora-list li > label:not(.visually-hidden)")).to_have_text(["glow", "ink"])
    page.get_by_label("ink", exact=True).check()
    page.get_by_label("Strength of ink").fill("20")
    page.fill("#prompt", "inked")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#form-error")).to_contain_text("Strength of ink: a number from -10 to 10")
    expect(page.get_by_label("Strength of ink")).to_be_focused()

    page.get_by_label("Strength of ink").fill("0.5")
    card = view.gallery_card("inked")
    view.generate("inked", seed=7, steps=2)
    expect(card).to_contain_text("ink × 0.5")
    made = httpx.get(f"{server.base_url}/files/{card.get_attribute('data-file-id')}", timeout=10).content
    direct = VisionManager(backend=SlowBackend(SlowConfig(step_s=0, lora_dir=str(lora_folder))))
    assert pixel(made) == pixel(direct.generate_image("a", seed=7, lora_adapters=["ink:0.5"]).data)

    page.get_by_label("ink", exact=True).uncheck()
    page.get_by_label("Strength of ink").fill("1")
    card.get_by_role("button", name="Use these settings").click()
    expect(page.get_by_label("ink", exact=True)).to_be_checked()
    expect(page.get_by_label("Strength of ink")).to_have_value("0.5")
    expect(page.get_by_label("glow", exact=True)).not_to_be_checked()
    view.assert_clean()


def test_a_refused_job_says_why(live_server, playground):
    server = live_server(SlowBackend(SlowConfig(step_s=0.2)), max_queue=1)
    view = playground(server).open()
    view.generate("running", steps=30)
    expect(view.page.locator(".job", has_text="running").locator(".job-status")).to_contain_text("step")
    view.generate("waiting", steps=1)
    view.page.fill("#prompt", "one too many")
    view.page.get_by_role("button", name="Generate").click()
    expect(view.page.locator("#form-error")).to_contain_text("the queue is full (1 jobs waiting)")
    view.page.locator(".job", has_text="running").get_by_role("button", name="Cancel").click()
    expect(view.gallery_card("waiting")).to_have_count(1, timeout=WAIT_MS)
    view.assert_clean(allowed=r"status of 429")


def test_usable_at_phone_width_by_touch_and_by_keyboard(live_server, playground):
    backend = RecordingSlow()
    server = live_server(backend)
    view = playground(server, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True).open()
    page = view.page
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(el => !el.closest('[hidden], template') && !el.labels?.length
                          && !el.getAttribute('aria-label') && !el.textContent.trim())
            .map(el => el.id || el.name || el.outerHTML)"""
    )
    assert unlabelled == []

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the prompt")).to_be_focused()
    page.locator("#prompt").focus()
    page.keyboard.type("typed, not clicked")
    page.keyboard.press("Tab")
    expect(page.locator("#negative-prompt")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Control+Enter")
    expect(view.gallery_card("typed, not clicked")).to_have_count(1, timeout=WAIT_MS)

    page.get_by_label("Image → image").check()  # a mask painted with a finger
    page.set_input_files("#image-file", {"name": "photo.png", "mimeType": "image/png", "buffer": png(300, 200)})
    expect(page.locator("#image-info")).to_have_text("photo.png: 300 × 200")
    canvas = page.locator("#mask-canvas")
    canvas.scroll_into_view_if_needed()
    canvas.tap(position={"x": 20, "y": 20})
    page.fill("#prompt", "touched")
    page.get_by_role("button", name="Generate").click()
    expect(view.gallery_card("touched")).to_have_count(1, timeout=WAIT_MS)
    from PIL import Image

    mask = Image.open(io.BytesIO(backend.edits[-1].mask)).convert("L")
    assert mask.size == (300, 200) and mask.getpixel((21, 21)) == 255 and mask.getpixel((299, 199)) == 0
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    view.assert_clean()


# ---- the real engine: the tiny Diffusers pipeline ---------------------------------------------
@pytest.mark.slow
def test_text_to_image_on_diffusers(live_server, playground, tiny_diffusers_backend):
    server = live_server(tiny_diffusers_backend, served_model_name="tiny-sd")
    view = playground(server).open()
    # enough steps that the run outlasts the page's first progress update, however busy the machine
    job = view.generate("a tiny random picture", seed=5, steps=60, size=(64, 64))
    expect(job.locator(".job-status")).to_have_text(re.compile(r"step \d+ of 60"), timeout=60_000)
    expect(job).to_have_count(0, timeout=60_000)
    card = view.gallery_card("a tiny random picture")
    expect(card.locator(".card-seed")).to_have_text("5")
    expect(card).to_contain_text("Steps60")
    assert view.wait_for_picture(card) == {"width": 64, "height": 64}
    view.assert_clean()


@pytest.mark.slow
def test_cancel_stops_a_diffusers_run(live_server, playground, tiny_diffusers_backend):
    server = live_server(tiny_diffusers_backend)
    view = playground(server).open()
    job = view.generate("never finished", steps=900, size=(64, 64))
    expect(job.locator(".job-status")).to_have_text(re.compile(r"step ([2-9]|\d{2,}) of 900"), timeout=60_000)
    job.get_by_role("button", name="Cancel").click()
    status = job.locator(".job-status")
    expect(status).to_have_text(re.compile(r"Cancelled at step \d+ of 900"), timeout=30_000)
    assert int(re.search(r"step (\d+)", status.inner_text()).group(1)) < 900
    # a running job is recorded cancelled only once its engine has returned (the step callback stopped it)
    assert job_view(server, job.get_attribute("data-job-id"))["status"] == "cancelled"
    view.generate("next in line", steps=2, size=(64, 64))  # the engine is free for the next job
    expect(view.gallery_card("next in line")).to_have_count(1, timeout=60_000)
    view.assert_clean()


@pytest.mark.slow
def test_inpainting_on_diffusers(live_server, playground, tiny_diffusers_backend):
    server = live_server(tiny_diffusers_backend)
    view = playground(server).open()
    page = view.page
    page.get_by_label("Image → image").check()
    page.set_input_files("#image-file", {"name": "in.png", "mimeType": "image/png", "buffer": png(64, 64)})
    expect(page.locator("#mask-tools")).to_be_visible()
    paint(page, [(0.2, 0.2), (0.8, 0.8)])
    page.fill("#steps", "4")
    page.fill("#prompt", "inpainted")
    page.get_by_role("button", name="Generate").click()
    card = view.gallery_card("inpainted")
    expect(card).to_have_count(1, timeout=60_000)
    assert view.wait_for_picture(card) == {"width": 64, "height": 64}
    view.assert_clean()


@pytest.mark.slow
def test_screenshot_after_a_generation(live_server, playground, tiny_diffusers_backend, tmp_path):
    """The docs' picture of the playground, taken here: ``PLAYGROUND_SCREENSHOT=docs/images/playground.png``
    (see scripts/playground_screenshot.py) writes it there too."""
    from PIL import Image

    server = live_server(tiny_diffusers_backend, served_model_name="tiny-sd (random weights)")
    view = playground(server, viewport={"width": 1280, "height": 860}).open()
    for seed, prompt in ((3, "a lighthouse on a cliff at dusk"), (4, "a harbour at dawn, watercolour")):
        view.generate(prompt, seed=seed, steps=4, size=(128, 128))
        view.wait_for_picture(view.gallery_card(prompt))
    view.page.locator("details#server-details summary").click()
    view.page.locator("#prompt").fill("a lighthouse on a cliff at dusk")
    shot = tmp_path / "playground.png"
    view.page.screenshot(path=str(shot))
    assert Image.open(shot).size == (1280, 860)
    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(shot.read_bytes())
    view.assert_clean()
