"""The rendered book, opened page by page in headless Chromium, as a reader would see it.

Needs the built book (`python3 tasks.py book`) and Debian's `chromium` and `chromium-driver`
(`.ci/run` installs them); without them the tests skip and say why. A screenshot of every page
is saved to `_build/screenshots/`.
"""
import functools
import http.server
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

if not (HTML / "index.html").exists():
    pytest.skip("the book is not built: run `python3 tasks.py book` first", allow_module_level=True)
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


PAGES = toc_files()
NOTEBOOK_PAGES = {f for f in PAGES if (ROOT / f"{f}.ipynb").exists()}


@pytest.fixture(scope="module")
def site():
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1600",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(browser, site, page):
    browser.get(f"{site}/{page}.html")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    n_math = len(browser.find_elements(By.CSS_SELECTOR, "main .math"))
    if n_math:  # wait for MathJax to typeset every formula
        WebDriverWait(browser, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "main .math mjx-container")) >= n_math)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return Array.from(document.images).every(i => i.complete)"))
    return n_math


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_cleanly(browser, site, page):
    browser.get_log("browser")  # drop messages of earlier pages
    n_math = open_page(browser, site, page)
    browser.save_screenshot(str(SHOTS / f"{page.replace('/', '__')}.png"))

    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"console errors: {errors}"

    broken = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img'))"
        ".filter(i => !(i.naturalWidth > 0 && i.naturalHeight > 0)).map(i => i.src)")
    assert not broken, f"figures that did not display: {broken}"

    if n_math:
        assert not browser.find_elements(By.CSS_SELECTOR, "mjx-merror"), "MathJax reported a formula error"

    tracebacks = browser.execute_script(
        "return Array.from(document.querySelectorAll('main .output.traceback'))"
        ".filter(t => !t.closest('.tag_raises-exception')).length")
    assert tracebacks == 0, "a cell shows an error traceback but is not tagged raises-exception"

    sidebar = {a.get_attribute("href").split("#")[0].split("/")[-1]
               for a in browser.find_elements(By.CSS_SELECTOR, ".bd-sidebar-primary a")}
    missing = [p for p in PAGES[1:] if f"{Path(p).name}.html" not in sidebar]
    assert not missing, f"sidebar lacks {missing}"

    if page in NOTEBOOK_PAGES:
        links = [a.get_attribute("href") or "" for a in browser.find_elements(By.CSS_SELECTOR, "a")]
        assert any("colab.research.google.com" in link for link in links), "no Colab launch button"
        assert any("mybinder.org" in link for link in links), "no Binder launch button"


def test_search_finds_a_term(browser, site):
    browser.get(f"{site}/search.html?q=modality")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results li") or
        "did not match" in d.find_element(By.ID, "search-results").text)
    hits = browser.find_elements(By.CSS_SELECTOR, "#search-results li")
    browser.save_screenshot(str(SHOTS / "search.png"))
    assert hits, "searching the book for 'modality' found nothing"
