"""Every page of the UI in a real browser at 1280 and 390 px: it answers 200, is no wider
than the screen, has no serious or critical accessibility violation (axe-core), and
leaves a screenshot in ``artifacts/screenshots/`` (``<page>-<width>.png``).

The pages come from the URLconf (:mod:`tests.ui.pages`), so a page added later is
checked too. axe-core is the pinned npm package of ``tests/ui/axe/`` (``make axe``,
run by ``.ci/run``); Playwright evaluates it in the page. One browser, one log-in per
width, every page visited once per width. Fixtures as in :mod:`tests.ui.test_browser`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.ui.pages import ui_pages
from tests.ui.test_browser import PASSWORD, browser, shot, site  # noqa: F401 - fixtures

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = [1280, 390]
#: The impacts that fail the test (axe's four: minor, moderate, serious, critical).
FAILING_IMPACTS = ("serious", "critical")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not AXE.exists(), reason="needs axe-core: run `make axe` (npm ci in tests/ui/axe)"),
]


def axe_violations(page: Any, name: str) -> list[str]:
    """The serious and critical violations of the page, one line per rule and element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{name}: {violation['id']} ({violation['impact']}) at {json.dumps(node['target'])}: {violation['help']}"
        for violation in result["violations"]
        if violation["impact"] in FAILING_IMPACTS
        for node in violation["nodes"]
    ]


def check(page: Any, name: str, width: int) -> list[str]:
    """Screenshot, width and axe of the page shown; the problems found."""
    shot(page, f"{name}-{width}")
    problems = axe_violations(page, f"{name} @{width}")
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll > inner:
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > "
            "window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className)"
        )
        problems.append(f"{name} @{width}: {scroll} px wide in a {inner} px window: {wide}")
    return problems


def test_every_page_fits_and_passes_axe(site: str, browser: Any) -> None:  # noqa: F811
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="admin"))
    pages = ui_pages(admin)
    problems: list[str] = []
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{site}/login/")
        problems += check(page, "login", width)
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{site}/")
        for ui_page in pages:
            response = page.goto(f"{site}{ui_page.path}")
            assert response is not None and response.status == 200, ui_page
            problems += check(page, ui_page.name, width)
        context.close()
    assert not problems, "\n".join(problems)


def test_axe_reports_what_it_looks_for(browser: Any) -> None:  # noqa: F811
    page = browser.new_page()
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png"><a href="/x"></a></main></html>')
    found = axe_violations(page, "sample")
    assert any(line.startswith("sample: image-alt (critical)") for line in found), found
    assert any(line.startswith("sample: link-name (serious)") for line in found), found
    page.close()
