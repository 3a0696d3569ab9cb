"""The HTML report in a real headless browser (Debian's chromium, driven by Playwright).

It must load with no console error and no network request (everything is inline), draw one
node per IR node once its blocks are open, and open a block on a click. Skipped, with the
reason, only where chromium or the Playwright package is missing; ``.ci/run`` installs both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cnndsl
from cnndsl import cli
from cnndsl.render import html as report
from cnndsl.render import view

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CNNDSL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _page_text(spec: str) -> str:
    return report.to_html(view.build(cnndsl.load(ROOT / "specs" / spec)))


def test_the_page_is_self_contained() -> None:
    text = _page_text("resnet18.cnn")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<link" not in text and "@import" not in text and "url(" not in text.split("<script")[0]
    assert "default-src 'none'" in text  # the page may not fetch even if a bug tried
    data = json.loads(text.split('id="cnndsl-data">')[1].split("</script>")[0])
    assert len(data["nodes"]) == len(cnndsl.load(ROOT / "specs" / "resnet18.cnn").nodes)
    assert data["timeline"][-1]["phase"] == "step"


def test_a_name_cannot_end_the_embedded_data() -> None:
    assert report._script_json({"a": "</script><!--"}) == \
        '{"a":"\\u003c/script\\u003e\\u003c!--"}'


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    required = bool(os.environ.get("CNNDSL_REQUIRE_BROWSER"))  # set by .ci/run
    if not Path(CHROMIUM).exists():
        reason = f"chromium is not installed ({CHROMIUM}); apt-get install chromium"
        if required:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        from playwright import sync_api
    except ImportError:
        reason = "the playwright package is not installed (pip install '.[test]')"
        if required:
            pytest.fail(reason)
        pytest.skip(reason)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1500, "height": 950})
        yield context
        context.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=900_000)
    return page, errors, requests


def _count(page: Any, selector: str) -> int:
    return int(page.eval_on_selector_all(selector, "els => els.length"))


@pytest.mark.parametrize("spec", ["resnet18.cnn", "googlenet.cnn", "fcn8s.cnn", "lenet5.cnn"])
def test_the_report_in_a_browser(browser: Any, tmp_path: Path, spec: str) -> None:
    network = cnndsl.load(ROOT / "specs" / spec)
    path = tmp_path / "report.html"
    assert cli.main(["graph", str(ROOT / "specs" / spec), "-o", str(path)]) == 0
    page, errors, requests = _open(browser, path)
    try:
        assert requests == [path.as_uri()]
        assert _count(page, "#layers tbody tr") == len(network.nodes)
        page.click("#expand-all")
        names = page.eval_on_selector_all("#graph g.node", "els => els.map(e => e.dataset.name)")
        assert sorted(names) == sorted(node.name for node in network.nodes)
        assert _count(page, "#graph g.node.block") == 0
        assert _count(page, "#graph text.edge-label") == sum(len(n.inputs) for n in network.nodes)
        assert _count(page, "#chart path.live") == 1
        if network.instances:
            page.click("#collapse-all")
            closed = _count(page, "#graph g.node")
            assert closed < len(network.nodes)
            block = page.eval_on_selector("#graph g.node.block", "e => e.dataset.name")
            page.click(f'#graph g.node.block[data-name="{block}"]')
            assert _count(page, f'#graph g.node.block[data-name="{block}"]') == 0
            inside = page.eval_on_selector_all(
                "#graph g.node", "els => els.map(e => e.dataset.name)")
            assert any(name.startswith(block + ".") for name in inside)
            assert _count(page, "#graph g.node") > closed
        assert errors == []
        assert requests == [path.as_uri()]
    finally:
        page.close()


def test_screenshot_for_the_docs(browser: Any, tmp_path: Path) -> None:
    """Writes docs/img/graph_report.png when CNNDSL_SCREENSHOT is set; checks it renders."""
    path = tmp_path / "report.html"
    assert cli.main(["graph", str(ROOT / "specs" / "resnet18.cnn"), "-o", str(path),
                     "--batch", "8"]) == 0
    page, errors, _ = _open(browser, path)
    try:
        page.click('#graph g.node.block[data-name="layer2"]')
        page.click('#graph g.node.block[data-name="layer2.0"]')
        assert _count(page, '#graph g.frame[data-group="layer2.0"]') == 1
        image = page.screenshot(full_page=False)
        assert image[:8] == b"\x89PNG\r\n\x1a\n" and errors == []
        if os.environ.get("CNNDSL_SCREENSHOT"):
            (ROOT / "docs" / "img" / "graph_report.png").write_bytes(image)
    finally:
        page.close()
