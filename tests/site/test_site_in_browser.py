"""The built website in a real browser: a chapter page loads from localhost in headless Chromium,
its figures are decoded images and its equations are typeset by the local MathJax.

Run by `make test-site` after `make html`, in the site's own venv (.venv-site, with Playwright).
Skips with a message where Chromium or the built site is missing; under CI=true a missing Chromium
fails instead (on CI a skip would look like a pass).
"""

import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "site" / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = ROOT / "build" / "site_screenshots"
CHAPTER_PAGES = sorted(
    p.relative_to(SITE).as_posix()
    for p in (SITE / "chapters").glob("[0-9][0-9]_*.html")
)


def plays_audio(notebook):
    """Whether a chapter's stored outputs hold an audio player (IPython.display.Audio's HTML)."""
    outputs = [
        o
        for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        for o in c.get("outputs", [])
    ]
    return any(
        "<audio" in "".join(o.get("data", {}).get("text/html", "")) for o in outputs
    )


AUDIO_PAGES = sorted(
    f"chapters/{notebook.stem}.html"
    for notebook in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")
    if plays_audio(notebook)
)

if CHROMIUM is None and os.environ.get("CI") == "true":
    pytest.fail(
        "Chromium is missing on CI: install it (Debian: apt-get install chromium)",
        pytrace=False,
    )
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (Debian: apt-get install chromium)",
    ),
    pytest.mark.skipif(
        not SITE.exists(), reason=f"{SITE} does not exist: run `make html` first"
    ),
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url():
    handler = functools.partial(QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    sync_playwright = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is in .venv-site"
    ).sync_playwright
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        yield browser
        browser.close()


def load(browser, url):
    """Open url; return the page and the URLs of requests that failed or left localhost."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    failed, external = [], []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on(
        "request",
        lambda request: (
            external.append(request.url)
            if not request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else None
        ),
    )
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, (
        f"{url} answered {response and response.status}"
    )
    return page, failed, external


def test_there_are_chapter_pages():
    assert CHAPTER_PAGES, f"no chapter pages in {SITE / 'chapters'}"


@pytest.mark.parametrize("chapter", CHAPTER_PAGES)
def test_chapter_renders_figures_and_equations(browser, site_url, chapter):
    page, failed, external = load(browser, f"{site_url}/{chapter}")
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
    )
    page.evaluate("() => MathJax.startup.promise")
    images = page.evaluate(
        "() => [...document.querySelectorAll('img')].filter(i =>"
        " i.src.includes('_images')).map(i => ({src: i.src, width: i.naturalWidth,"
        " complete: i.complete}))"
    )
    assert images, f"{chapter}: no figure on the page"
    broken = [
        image["src"]
        for image in images
        if not (image["complete"] and image["width"] > 100)
    ]
    assert not broken, f"{chapter}: figures that did not load: {broken}"
    typeset = page.locator("mjx-container").count()
    assert typeset > 5, f"{chapter}: only {typeset} equations typeset by MathJax"
    assert page.locator("mjx-merror").count() == 0, (
        f"{chapter}: MathJax reports TeX errors"
    )
    article = page.locator("article").inner_text()
    assert "$$" not in article, f"{chapter}: raw TeX left on the page"
    # The page starts with the title and the promise: the bootstrap cell's plumbing is not on it.
    assert article.lstrip().startswith("Chapter "), (
        f"{chapter}: the page starts with {article[:60]!r}"
    )
    assert "BOOK_REPOSITORY" not in article, (
        f"{chapter}: the bootstrap cell is on the page"
    )
    first_code = page.evaluate(
        "() => { const c = document.querySelector('article .cell'); "
        "return c ? c.innerText : ''; }"
    )
    assert "setup_book" in first_code, (
        f"{chapter}: the first code on the page is {first_code[:60]!r}, not the setup"
    )
    assert not failed, f"{chapter}: requests failed: {failed}"
    assert not external, f"{chapter}: the page asked the network for {external}"
    equation = page.locator('mjx-container[display="true"]').first
    equation_box = equation.bounding_box()
    assert (
        equation_box and equation_box["width"] > 50 and equation_box["height"] > 15
    ), "an empty display equation"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{Path(chapter).stem}.png")
    equation.screenshot(path=SCREENSHOTS / f"{Path(chapter).stem}_equation.png")
    page.locator("img[src*='_images']").first.screenshot(
        path=SCREENSHOTS / f"{Path(chapter).stem}_figure.png"
    )
    page.close()


def test_some_chapter_plays_audio():
    assert AUDIO_PAGES, (
        "no chapter's stored outputs hold an audio player (chapter 9 should)"
    )


# Each player's sound is decoded and plays: the metadata load, the duration is that of a clip, and the
# playback position moves (muted; headless Chromium plays into a fake audio device).
PLAY_EVERY_PLAYER = """async () => Promise.all([...document.querySelectorAll('article audio')].map(async audio => {
    if (audio.readyState < 1) {
        await new Promise((loaded, failed) => {
            audio.addEventListener('loadedmetadata', loaded);
            audio.addEventListener('error', () => failed(new Error('audio error ' + audio.error?.code)));
        });
    }
    audio.muted = true;
    await audio.play();
    await new Promise(wait => setTimeout(wait, 500));
    const position = audio.currentTime;
    audio.pause();
    return {duration: audio.duration, position: position};
}))"""


@pytest.mark.parametrize("chapter", AUDIO_PAGES)
def test_audio_plays_on_the_page(browser, site_url, chapter):
    page, failed, external = load(browser, f"{site_url}/{chapter}")
    players = page.evaluate(PLAY_EVERY_PLAYER)
    assert players, (
        f"{chapter}: the notebook has audio but the page has no audio player"
    )
    assert all(player["duration"] > 5 for player in players), (
        f"{chapter}: clips shorter than 5 s: {players}"
    )
    assert all(player["position"] > 0 for player in players), (
        f"{chapter}: a player did not play: {players}"
    )
    assert not failed and not external, (
        f"{chapter}: requests failed or left localhost: {failed + external}"
    )
    page.close()


def test_table_of_contents_links_every_chapter(browser, site_url):
    page, _, _ = load(browser, f"{site_url}/README.html")
    links = page.evaluate(
        "() => [...document.querySelectorAll('nav.bd-links a')].map(a => a.href)"
    )
    for chapter in CHAPTER_PAGES:
        assert any(link.endswith(chapter) for link in links), (
            f"{chapter} is missing from the navigation"
        )
    page.close()


def test_glossary_links_land_on_their_entries(browser, site_url):
    page, failed, _ = load(browser, f"{site_url}/{CHAPTER_PAGES[0]}")
    targets = page.evaluate(
        "() => [...document.querySelectorAll('a[href*=\"glossary.html#\"]')].map(a =>"
        " a.href)"
    )
    assert targets, "the first chapter links no glossary term"
    page.goto(targets[0])
    anchor = targets[0].split("#")[1]
    assert page.locator(f"[id='{anchor}']").count() == 1, (
        f"the glossary has no entry #{anchor}"
    )
    assert "中文" in page.locator("article").inner_text() and not failed
    page.close()


# The longest line of every code cell's input that does not fit its box on a 1280-pixel window.
WIDE_CODE = """() => [...document.querySelectorAll('article .cell_input pre')]
    .filter(block => block.scrollWidth > block.clientWidth + 1)
    .map(block => block.innerText.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), ''))"""


@pytest.mark.parametrize("chapter", CHAPTER_PAGES)
def test_no_code_block_scrolls_sideways(browser, site_url, chapter):
    page, _, _ = load(browser, f"{site_url}/{chapter}")
    assert page.locator("article .cell_input pre").count() > 10, (
        f"{chapter}: no code blocks found"
    )
    wide = page.evaluate(WIDE_CODE)
    page.close()
    assert not wide, (
        f"{chapter}: {len(wide)} code blocks scroll sideways, e.g. {wide[:3]}"
    )


def test_every_link_between_pages_lands(browser, site_url):
    """Every link from a chapter, the glossary or the home page to a page of the book opens it, and its
    anchor, if any, is an element of that page."""
    pages = [*CHAPTER_PAGES, "chapters/glossary.html", "README.html"]
    targets = set()
    for source in pages:
        page, _, _ = load(browser, f"{site_url}/{source}")
        hrefs = page.evaluate(
            "() => [...document.querySelectorAll('article a[href]')].map(a => a.href)"
        )
        page.close()
        targets |= {(source, href) for href in hrefs if href.startswith(site_url)}
    assert len({href for _, href in targets}) > 50, "too few links between pages found"
    context = browser.new_context()
    texts = {}
    for source, href in sorted(targets):
        address, _, anchor = href.partition("#")
        if address not in texts:
            response = context.request.get(address)
            assert response.ok, f"{source} links to {href}: {response.status}"
            texts[address] = response.text()
        if anchor:
            assert f'id="{anchor}"' in texts[address], (
                f"{source} links to {href}: no such anchor"
            )
    context.close()
