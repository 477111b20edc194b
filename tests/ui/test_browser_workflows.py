"""The workflows of issue 16 in a real browser, at a laptop's 1280 px and a phone's 390 px.

Search with several matches and a free address; allocate by clicking a free map
cell (the form arrives pre-filled); a form error keeps the input; the release
confirmation. Every page's width at 390 px (``scrollWidth <= innerWidth``), its
accessibility and its screenshots at both widths: ``test_browser_pages.py``.
Fixtures as in :mod:`tests.ui.test_browser`.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from allocations.models import Allocation, Node, Pool, Shoot
from audit.models import AuditEvent
from tests.ui.test_browser import CHROMIUM, PASSWORD, browser, shot, site  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser]

WIDTHS = [1280, 390]


def log_in(browser: Any, site: str, username: str, width: int) -> Any:  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(f"{site}/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site}/")
    return page


def search(page: Any, text: str, width: int) -> None:
    if width < 700:
        page.get_by_role("button", name="Menu").click()  # the phone's menu holds the search box
    page.get_by_label("Search address, prefix, shoot or pool").fill(text)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/search/"))


@pytest.mark.parametrize("width", WIDTHS)
def test_search_shows_every_match_and_free_space(site: str, browser: Any, width: int) -> None:  # noqa: F811
    page = log_in(browser, site, "auditor", width)
    search(page, "10.0.5.5", width)
    holders = page.locator("#found-per-shoot tbody tr")
    assert holders.count() == Shoot.objects.filter(allocations__cidr="10.0.0.0/16").distinct().count() >= 2
    shot(page, f"search-per-shoot-{width}")
    search(page, "2001:db8:ffff::1", width)
    assert "is free in pool gua-2001-db8" in page.locator("#free-in").inner_text()
    page.locator("#free-in").get_by_role("link", name="gua-2001-db8").click()
    page.wait_for_url(re.compile(r"/pools/\d+/\?mark="))
    assert page.locator('svg.addrmap [data-marked="1"]').count() == 1
    shot(page, f"pool-marked-{width}")


@pytest.mark.parametrize("width", WIDTHS)
def test_allocate_by_clicking_a_free_map_cell(site: str, browser: Any, width: int) -> None:  # noqa: F811
    page = log_in(browser, site, "admin", width)
    pool = Pool.objects.get(name="gua-2001-db8")
    page.goto(f"{site}/pools/{pool.pk}/")
    cell = page.locator('svg.addrmap a[data-cidr="2001:db8:ff00::/40"]')
    # keyboard-reachable: the cell is a link that takes the focus
    cell.focus()
    assert page.evaluate("document.activeElement.getAttribute('data-cidr')") == "2001:db8:ff00::/40"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"allocate=2001:db8:ff00::/40#allocate$"))
    assert page.get_by_label("Or this CIDR").input_value() == "2001:db8:ff00::/40"
    page.get_by_label("Label").fill(f"clicked-{width}")
    page.get_by_role("button", name="Allocate").click()
    page.wait_for_url(re.compile(r"/allocations/\d+/$"))
    allocation = Allocation.objects.get(pool=pool, cidr="2001:db8:ff00::/40", state="active")
    assert allocation.label == f"clicked-{width}"
    assert AuditEvent.objects.filter(object_id=str(allocation.pk), action="allocation.allocate").exists()


@pytest.mark.parametrize("width", WIDTHS)
def test_form_error_keeps_the_input_and_confirmation(site: str, browser: Any, width: int) -> None:  # noqa: F811
    page = log_in(browser, site, "op-in", width)
    shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds")
    page.goto(f"{site}/shoots/{shoot.pk}/")
    page.get_by_label("Node name").fill("node-x")
    page.get_by_label("Node IPv6 address").fill("3fff::1")
    page.get_by_role("button", name="Register node").click()
    assert "not inside the node range" in page.locator("#id_ipv6_address_errors").inner_text()
    assert page.get_by_label("Node name").input_value() == "node-x"
    assert page.get_by_label("Node IPv6 address").input_value() == "3fff::1"
    assert not Node.objects.filter(name="node-x").exists()
    shot(page, f"node-error-{width}")
    # the release confirmation: the checkbox sits on the line of its label
    page.goto(f"{site}/shoots/{shoot.pk}/release/")
    box = page.get_by_label("Yes, release it").bounding_box()
    label = page.locator('label[for="id_confirm"]').bounding_box()
    assert abs((box["y"] + box["height"] / 2) - (label["y"] + label["height"] / 2)) < 6
    assert box["x"] < label["x"]
    shot(page, f"confirm-release-{width}")
