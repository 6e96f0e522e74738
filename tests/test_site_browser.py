"""The demo lake's audit site in a real browser: Debian's headless Chromium driven by
Selenium through the system chromedriver (no browser is downloaded).

Without Chromium these tests skip with one line saying how to install it; with CI=true
they fail instead. Screenshots of the catalog, a version page and a graph are written to
``test-output/site/`` (or ``$KFM_PROV_TEST_OUTPUT``) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kfm_prov.lake import Lake

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found: {INSTALL}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots() -> Path:
    out = Path(os.environ.get("KFM_PROV_TEST_OUTPUT", REPO / "test-output")) / "site"
    out.mkdir(parents=True, exist_ok=True)
    return out


class Page:
    """One loaded page: what the browser logged and which URLs it asked for."""

    def __init__(self, driver: Any, site: Path, rel: str) -> None:
        self.driver = driver
        self.site = site
        driver.get_log("browser")  # drop what earlier pages left
        driver.get_log("performance")
        driver.get((site / rel).as_uri())
        driver.execute_script("return document.readyState")

    def requests(self) -> list[str]:
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls

    def assert_clean(self) -> None:
        errors = [e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE",
                                                                               "WARNING")]
        assert errors == []
        prefix = self.site.as_uri() + "/"
        urls = self.requests()
        assert urls, "the performance log saw no request at all"
        outside = [u for u in urls if not (u.startswith(prefix) or u.startswith("data:"))]
        assert outside == []


def _wait(driver: Any, script: str, timeout: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def test_catalog_lists_every_family_and_search_finds_a_digest_prefix(
        browser: Any, demo_lake: Path, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    site = demo_lake / "site"
    page = Page(browser, site, "index.html")
    cells = browser.find_elements(By.CSS_SELECTOR, "table.families td:first-child a")
    names = [a.text for a in cells]
    config = Lake.open(demo_lake).config
    assert sorted(names) == sorted({config.family(r.family).title or r.family
                                    for r in Lake.open(demo_lake).runs()})
    browser.save_screenshot(str(shots / "catalog.png"))
    page.assert_clean()
    # the keyboard reaches the skip link first
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    cert = json.loads((demo_lake / "data/prov/glo_land_patents/v2.certificate.json").read_text())
    digest = cert["products"][0]["digest"]
    box = browser.find_element(By.ID, "search-q")
    box.send_keys(digest.removeprefix("sha256:")[:8])
    results = _wait(browser, "var r = document.querySelectorAll('#search-results a');"
                             " return r.length ? Array.from(r).map(a => a.href) : null;")
    assert any(r.endswith("families/glo_land_patents/v2/index.html#product-parcels.geojson")
               for r in results)
    browser.find_element(By.CSS_SELECTOR, "#search-results a").click()
    _wait(browser, "return location.pathname.endsWith('/v2/index.html')")
    page.assert_clean()


def test_version_page_shows_every_check_and_the_graph(browser: Any, demo_lake: Path,
                                                      shots: Path) -> None:
    from selenium.webdriver.common.by import By

    site = demo_lake / "site"
    cert = json.loads((demo_lake / "data/prov/glo_land_patents/v2.certificate.json").read_text())
    page = Page(browser, site, "families/glo_land_patents/v2/index.html")
    checks = browser.find_elements(By.CSS_SELECTOR, "ol.checks li.check")
    assert [c.get_attribute("data-check") for c in checks] == [c["id"] for c in cert["checks"]]
    assert all(c.is_displayed() and "pass" in c.text for c in checks)
    assert cert["merkle"]["root"] in browser.find_element(By.ID, "main").text
    drawn = _wait(browser, "return document.querySelector('.graph')"
                           ".getAttribute('data-nodes-drawn')")
    assert int(drawn) == len(Lake.open(demo_lake).trace("glo_land_patents-v2").nodes)
    browser.save_screenshot(str(shots / "version.png"))
    page.assert_clean()


def test_graph_click_on_a_raw_node_shows_its_license(browser: Any, demo_lake: Path,
                                                    shots: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    site = demo_lake / "site"
    page = Page(browser, site, "families/khri_sites/v1/graph.html")
    trace = Lake.open(demo_lake).trace("khri_sites-v1")
    drawn = _wait(browser, "return document.querySelector('.graph')"
                           ".getAttribute('data-nodes-drawn')")
    assert int(drawn) == len(trace.nodes)
    raw_id, raw = next((k, n) for k, n in sorted(trace.nodes.items())
                       if n["kind"] == "file" and n["raw"])
    canvas = browser.find_element(By.CSS_SELECTOR, ".graph")
    x, y = browser.execute_script(
        "var g = window.kfmGraphs['khri_sites/v1'].cy; var p = g.getElementById(arguments[0])"
        ".renderedPosition(); return [p.x, p.y];", raw_id)
    size = canvas.size
    ActionChains(browser).move_to_element_with_offset(
        canvas, int(x - size["width"] / 2), int(y - size["height"] / 2)).click().perform()
    details = _wait(browser, "var d = document.querySelector('.node-details');"
                             " return d.querySelector('dl') ? d.innerText : null;")
    assert raw["raw"][0]["license"] in details
    assert raw["raw"][0]["path"] in details
    assert "sensitive-location" in details
    browser.save_screenshot(str(shots / "graph.png"))
    page.assert_clean()


def test_the_screenshot_in_the_readme_is_a_version_page(shots: Path) -> None:
    """The README shows a committed copy of version.png (refresh: cp it to docs/img)."""
    committed = REPO / "docs/img/site-version.png"
    assert committed.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/img/site-version.png" in (REPO / "README.md").read_text(encoding="utf-8")
    made = shots / "version.png"
    if made.is_file() and os.environ.get("KFM_PROV_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(made, committed)


def test_expanding_downstream_on_demand(browser: Any, multi_built: tuple[Path, Any],
                                        tmp_path: Path) -> None:
    """glo v1's product was used by another family: hidden at first, shown on request."""
    from selenium.webdriver.common.by import By

    from kfm_prov.site import build_site

    root = multi_built[0]
    result = build_site(Lake.open(root).config, tmp_path / "site")
    graph = next(v.graph for v in result.site.model.versions if v.key == "glo/v1")
    first = sum(1 for n in graph["nodes"].values() if n["side"] != "down")
    page = Page(browser, tmp_path / "site", "families/glo/v1/graph.html")
    drawn = "return document.querySelector('.graph').getAttribute('data-nodes-drawn')"
    assert int(_wait(browser, drawn)) == first
    browser.execute_script("document.querySelector('.node-list-wrap').open = true")
    product = next(b for b in browser.find_elements(By.CSS_SELECTOR, ".node-list button")
                   if b.text.startswith("PROCESSED"))
    assert product.text.endswith("⊕")  # it has more to show
    product.click()
    browser.find_element(By.CSS_SELECTOR, "[data-expand='down']").click()
    users = {e["to"] for e in graph["edges"]
             if e["from"] == next(k for k, n in graph["nodes"].items()
                                  if n["kind"] == "file" and n["side"] == "target")}
    hidden = [u for u in users if graph["nodes"][u]["side"] == "down"]
    assert hidden
    assert int(_wait(browser, drawn)) == first + len(hidden)
    browser.find_element(By.CSS_SELECTOR, "[data-action='down']").click()
    assert int(_wait(browser, drawn)) == len(graph["nodes"])
    page.assert_clean()
