"""Real-browser test of the built book: headless Chromium opens every page of ``book/_build/html``.

Runs only when ``MMC_TEACH_SITE_TEST=1`` (the plain ``pytest --nbval`` run comes before the book is built,
so there it is skipped); then a missing site is a failure, not a skip. ``.ci/site_test.sh`` installs
Chromium from Debian and runs it after ``jupyter-book build``::

    MMC_TEACH_SITE_TEST=1 pytest tests/site

The site is served on 127.0.0.1 (an ephemeral port); every request to another host is aborted (the test
must not depend on the network; MathJax is served by the site itself). For every page it checks:

- HTTP 200 for the page, and no same-origin request (scripts, styles, fonts, images) answered >= 400 or failed;
- no JavaScript error (uncaught exceptions and console errors, except those of the aborted external requests);
- equations rendered by MathJax where the page has math: every ``.math`` element holds an ``mjx-container``,
  none is a TeX error (``mjx-merror``), and no raw ``$$`` is left in the text outside code;
- every image loaded (``naturalWidth > 0``);
- Markdown tables that cells display (``display(Markdown(...))``) are rendered as tables, not as text;
- every link to another page of the site points to a file that exists;
- exercise solutions start hidden, and their toggle button shows them;
- on notebook pages, the Binder and Colab launch buttons link to this very notebook, and the Colab install
  guard cell is not shown.

One screenshot per chapter (and of the intro) goes to ``$MMC_TEACH_SCREENSHOTS`` (default ``screenshots/``).
Environment: ``MMC_TEACH_SITE_HTML`` (site folder), ``MMC_TEACH_CHROMIUM`` (browser, default
``/usr/bin/chromium``).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("MMC_TEACH_SITE_HTML", ROOT / "book" / "_build" / "html"))
SHOTS = Path(os.environ.get("MMC_TEACH_SCREENSHOTS", ROOT / "screenshots"))
CHROMIUM = os.environ.get("MMC_TEACH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
]
MATH_TIMEOUT_MS = 30_000
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static"}

pytestmark = pytest.mark.skipif(
    os.environ.get("MMC_TEACH_SITE_TEST") != "1",
    reason="browser test of the built site: set MMC_TEACH_SITE_TEST=1 after `jupyter-book build book/`",
)


def site_pages() -> list[str]:
    if not HTML.is_dir():
        return []
    pages = []
    for path in sorted(HTML.rglob("*.html")):
        rel = path.relative_to(HTML)
        if rel.parts[0] not in SKIP_DIRS:
            pages.append(rel.as_posix())
    return pages


PAGES = site_pages()


def launch_urls(stem: str) -> dict[str, str]:
    """The Binder and Colab URLs the launch buttons of notebook ``stem`` must have (from _config.yml)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo, launch = config["repository"], config["launch_buttons"]
    org_repo = urlsplit(repo["url"]).path.strip("/")
    branch, book = repo.get("branch", "main"), repo.get("path_to_book", "").strip("/")
    notebook = f"{book}/{stem}.ipynb" if book else f"{stem}.ipynb"
    interface = "lab/tree" if launch.get("notebook_interface") == "jupyterlab" else "tree"
    return {
        "Binder": f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{org_repo}/{branch}?urlpath={interface}/{notebook}",
        "Colab": f"{launch['colab_url'].rstrip('/')}/github/{org_repo}/blob/{branch}/{notebook}",
    }


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def base_url():
    if not (HTML / "index.html").is_file():
        pytest.fail(f"no built site at {HTML}: run `jupyter-book build book/` first (or set MMC_TEACH_SITE_HTML)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    from playwright import sync_api  # in the `dev` extra; missing, the (explicitly requested) test errors
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no browser at {CHROMIUM}: `apt-get install -y chromium` (or set MMC_TEACH_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
            service_workers="block",
        )
        yield context
        context.close()


def test_site_was_built():
    assert (HTML / "index.html").is_file(), f"no built site at {HTML}: run `jupyter-book build book/` first"
    assert "intro.html" in PAGES


# JavaScript run in the page (each returns plain data for the assertions).
_MATH_STATE = """() => {
  const nodes = [...document.querySelectorAll('.math')];
  return {
    total: nodes.length,
    unrendered: nodes.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    errors: [...document.querySelectorAll('mjx-merror')].map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120)),
  };
}"""
_RAW_DOLLARS = """() => {
  const main = document.querySelector('main') || document.body;
  const copy = main.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight, textarea').forEach(e => e.remove());
  const text = copy.textContent;
  const at = text.indexOf('$$');
  return at < 0 ? null : text.slice(Math.max(0, at - 60), at + 60).replace(/\\s+/g, ' ');
}"""
# A Markdown table that a cell displayed but the site did not parse: a paragraph holding a "|---|" rule.
_RAW_TABLES = """() => [...document.querySelectorAll('.cell_output p')]
  .map(p => p.innerText).filter(t => /\\|\\s*:?-{3,}/.test(t)).map(t => t.slice(0, 80))"""
_IMAGES = """() => [...document.images].map(img => ({src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0}))"""
_LINKS = """() => [...document.querySelectorAll('a[href]')].map(a => a.href)"""


@pytest.mark.parametrize("page_path", PAGES)
def test_page(page_path, base_url, browser_context):
    origin = base_url.rstrip("/")
    problems: list[str] = []
    blocked: list[str] = []

    def same_origin(url: str) -> bool:
        return url.startswith(origin + "/") or url == origin

    def route(r):
        if same_origin(r.request.url) or r.request.url.startswith(("data:", "blob:", "about:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    def on_console(msg):
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if where and not same_origin(where):
            return  # an aborted external request (counted in `blocked`), or a script from outside
        if "net::ERR_FAILED" in msg.text and blocked:
            return
        problems.append(f"console error: {msg.text} ({where})")

    page = browser_context.new_page()
    page.route("**/*", route)
    page.on("pageerror", lambda exc: problems.append(f"JavaScript exception: {exc}"))
    page.on("console", on_console)
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status} for {resp.url}")
            if same_origin(resp.url) and resp.status >= 400 else None)
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} ({req.failure})")
            if same_origin(req.url) else None)
    try:
        response = page.goto(base_url + page_path, wait_until="load")
        assert response is not None and response.status == 200, f"{page_path}: HTTP {response and response.status}"
        if page_path == "index.html":  # a redirect page: it must lead to the intro
            page.wait_for_url(re.compile(r".*/intro\.html$"), timeout=10_000)
            page.wait_for_load_state("load")
        page.wait_for_load_state("networkidle")

        # Equations.
        if page.evaluate("() => document.querySelectorAll('.math').length") > 0:
            try:
                page.wait_for_function(
                    "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
                    " && MathJax.startup.document && MathJax.startup.document.processed !== undefined",
                    timeout=MATH_TIMEOUT_MS,
                )
                page.evaluate("() => MathJax.startup.promise.then(() => true)")
            except Exception as exc:  # noqa: BLE001 - any failure here means MathJax did not start
                problems.append(f"MathJax did not load or start ({type(exc).__name__}); blocked external: {blocked}")
            state = page.evaluate(_MATH_STATE)
            if state["unrendered"]:
                problems.append(f"{len(state['unrendered'])} of {state['total']} equations not rendered by MathJax, "
                                f"first: {state['unrendered'][0]!r}")
            for error in state["errors"]:
                problems.append(f"MathJax TeX error: {error!r}")
        raw = page.evaluate(_RAW_DOLLARS)
        if raw is not None:
            problems.append(f"raw '$$' left in the text (math not parsed): ...{raw}...")

        # Tables that cells display as Markdown are rendered as tables.
        for text in page.evaluate(_RAW_TABLES):
            problems.append(f"a Markdown table shown as text, not rendered as a table: {text!r}")

        # Images (scroll first so that lazily loaded images start loading).
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_load_state("networkidle")
        try:
            page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=10_000)
        except Exception:  # noqa: BLE001 - reported image by image below
            pass
        for image in page.evaluate(_IMAGES):
            if not image["ok"]:
                problems.append(f"image not loaded: {image['src']}")

        # Internal links point to existing files.
        current = page.url
        for href in page.evaluate(_LINKS):
            if not same_origin(href):
                continue
            target = urlsplit(urljoin(current, href)).path.lstrip("/")
            if target and not (HTML / target).exists():
                problems.append(f"broken internal link: {href}")

        # Launch buttons on notebook pages.
        stem = page_path[: -len(".html")]
        links = set(page.evaluate(_LINKS))
        is_notebook = any(h.endswith(f"_sources/{stem}.ipynb") for h in links)
        if is_notebook:
            if page.evaluate("() => document.body.innerText.includes('google.colab')"):
                problems.append("the Colab install guard cell is shown (book/_ext/mmc_site.py should drop it)")
            for name, url in launch_urls(stem).items():
                if url not in links:
                    near = sorted(h for h in links if urlsplit(url).netloc in h)
                    problems.append(f"{name} launch button missing or wrong: expected {url}, found {near}")

        # Exercise solutions start hidden (sphinx-togglebutton), and the toggle opens them.
        hidden = page.evaluate("() => [...document.querySelectorAll('.solution')].map(s => s.classList.contains('toggle-hidden'))")
        if not all(hidden):
            problems.append(f"{hidden.count(False)} of {len(hidden)} exercise solutions are not hidden behind a toggle")
        elif hidden:
            page.click(".solution .toggle-button")
            page.wait_for_timeout(300)
            if page.evaluate("() => document.querySelector('.solution').classList.contains('toggle-hidden')"):
                problems.append("clicking the first solution's toggle button does not show the solution")

        if re.match(r"^(intro|\d\d_[\w-]+)$", stem):
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.evaluate("() => window.scrollTo(0, 0)")
            page.screenshot(path=str(SHOTS / f"{stem}.png"))
    finally:
        page.close()
    assert not problems, f"{page_path}:\n  " + "\n  ".join(problems)
