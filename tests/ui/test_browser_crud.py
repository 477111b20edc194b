"""The CRUD workflows of issue 16 in a real browser, at 1280 px and 390 px.

An admin creates a provider account (a refused credential reference: the error on
its field, the other input kept, the reference not sent back), edits it, registers
a seed (an error first, then right), edits it, retires a child pool through its
confirm step, and opens a node's page from its shoot. An auditor sees none of the
write controls. At 390 px no page is wider than the screen (``scrollWidth <=
innerWidth``). Screenshots go to ``artifacts/screenshots/`` (``crud-<page>-<width>.png``).
Fixtures as in :mod:`tests.ui.test_browser`.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from allocations import services
from allocations.models import Node, Pool, Seed
from audit.models import AuditEvent
from audit.services import Actor
from providers.models import ProviderAccount
from tests.ui.test_browser import CHROMIUM, browser, shot, site  # noqa: F401 - fixtures
from tests.ui.test_browser_workflows import WIDTHS, log_in

pytestmark = [pytest.mark.browser]


def fits(page: Any, name: str, width: int) -> None:
    """Screenshot the page; at a phone's width it must not be wider than the screen."""
    shot(page, f"crud-{name}-{width}")
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width < 700:
        assert scroll <= inner, (name, width, scroll, inner)


@pytest.mark.parametrize("width", WIDTHS)
def test_admin_creates_and_edits_accounts_and_seeds(site: str, browser: Any, width: int) -> None:  # noqa: F811
    page = log_in(browser, site, "admin", width)
    # a provider account: the refused reference is not echoed, the rest of the input stays
    page.goto(f"{site}/provider-accounts/new/")
    page.get_by_label("Name", exact=True).fill(f"lab-{width}")
    page.get_by_label("Account type").select_option("dry-run")
    page.get_by_label("Provider", exact=True).select_option("openstack")
    page.get_by_label("Region", exact=True).fill(f"lab-{width}")
    page.get_by_label("Credential reference").fill("sk-secret-pasted-by-mistake")
    page.get_by_role("button", name="Create account").click()
    assert "never the secret itself" in page.locator("#id_credentials_ref_errors").inner_text()
    assert page.get_by_label("Credential reference").input_value() == ""
    assert "sk-secret-pasted-by-mistake" not in page.content()
    assert page.get_by_label("Region", exact=True).input_value() == f"lab-{width}"
    fits(page, "account-error", width)
    page.get_by_label("Credential reference").fill("env:LAB_CREDENTIALS")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/provider-accounts/#account-\d+$"))
    account = ProviderAccount.objects.get(name=f"lab-{width}")
    assert AuditEvent.objects.filter(action="account.create", object_id=str(account.pk), source="ui").exists()
    fits(page, "accounts", width)
    page.locator(f"#account-{account.pk}").get_by_role("link", name="Edit").click()
    page.get_by_label("Endpoint", exact=True).fill("")
    page.get_by_label("Enabled", exact=True).uncheck()
    fits(page, "account-edit", width)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/provider-accounts/#account-\d+$"))
    account.refresh_from_db()
    assert account.enabled is False

    # a seed: Gardener's rule on its field, the input kept; then registered and edited
    page.goto(f"{site}/seeds/new/")
    page.get_by_label("Name", exact=True).fill(f"seed-lab-{width}")
    page.get_by_label("Region", exact=True).fill("lab-1")
    page.get_by_label("IP families").select_option("IPv4,IPv6")
    page.get_by_label("Pod networks").fill("100.96.0.1/11")
    page.get_by_label("Service networks").fill("100.64.0.0/13, fd00:1ab:2::/108")
    page.get_by_role("button", name="Register seed").click()
    assert "canonical" in page.locator("#id_pods_errors").inner_text()
    assert page.get_by_label("Service networks").input_value() == "100.64.0.0/13, fd00:1ab:2::/108"
    fits(page, "seed-error", width)
    page.get_by_label("Pod networks").fill("100.96.0.0/11, fd00:1ab:1::/56")
    page.get_by_role("button", name="Register seed").click()
    page.wait_for_url(re.compile(r"/seeds/#seed-\d+$"))
    seed = Seed.objects.get(name=f"seed-lab-{width}")
    fits(page, "seeds", width)
    page.locator(f"#seed-{seed.pk}").get_by_role("link", name="Edit").click()
    page.get_by_label("Blocked CIDRs").fill("10.9.0.0/16")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/seeds/#seed-\d+$"))
    seed.refresh_from_db()
    assert seed.block_cidrs == ["10.9.0.0/16"]
    assert AuditEvent.objects.filter(action="seed.update", object_id=str(seed.pk), source="ui").exists()


@pytest.mark.parametrize("width", WIDTHS)
def test_retire_a_pool_and_open_a_node(site: str, browser: Any, width: int) -> None:  # noqa: F811
    root = Pool.objects.get(name="gua-2001-db8")
    child = services.pool_create(
        name=f"retire-{width}", parent=root, cidr=f"2001:db8:{width:x}::/48", actor=Actor("setup", "command")
    )
    page = log_in(browser, site, "admin", width)
    page.goto(f"{site}/pools/{child.pk}/")
    page.get_by_role("link", name="Retire pool").click()
    consequences = page.locator("#retire-consequences").inner_text()
    assert "hands out nothing more" in consequences and "goes back to gua-2001-db8" in consequences
    box = page.get_by_label("Yes, retire it").bounding_box()
    label = page.locator('label[for="id_confirm"]').bounding_box()
    assert abs((box["y"] + box["height"] / 2) - (label["y"] + label["height"] / 2)) < 6
    fits(page, "confirm-retire", width)
    page.get_by_role("button", name="Retire pool").click()
    assert page.locator("#id_confirm_errors").is_visible()  # not confirmed: nothing retired
    child.refresh_from_db()
    assert child.retired_at is None
    page.get_by_label("Yes, retire it").check()
    page.get_by_role("button", name="Retire pool").click()
    page.wait_for_url(re.compile(rf"/pools/{child.pk}/$"))
    child.refresh_from_db()
    assert child.retired_at is not None
    assert AuditEvent.objects.filter(action="pool.retire", object_id=str(child.pk), source="ui").exists()

    # a node's page, from its shoot
    node = Node.objects.select_related("shoot", "pod_allocation").get(name="node-a")
    page.goto(f"{site}/shoots/{node.shoot.pk}/")
    page.locator("#nodes").get_by_role("link", name="node-a").click()
    page.wait_for_url(re.compile(rf"/nodes/{node.pk}/$"))
    assert node.pod_allocation.cidr in page.locator("#route").inner_text().replace("\u200b", "")
    fits(page, "node", width)
    page.close()

    # the auditor: the same pages without a write control
    page = log_in(browser, site, "auditor", width)
    for path in ("/provider-accounts/", "/seeds/", f"/nodes/{node.pk}/", f"/pools/{root.pk}/"):
        page.goto(f"{site}{path}")
        main = page.locator("main")
        for text in ("New provider account", "Register seed", "Retire pool", "Edit"):
            assert main.get_by_text(text, exact=True).count() == 0, (path, text)
        assert main.locator('form[method="post"]').count() == 0, path
        fits(page, f"auditor{path.replace('/', '-').rstrip('-')}", width)


def test_admin_allocation_list_shows_its_columns_at_1280(site: str, browser: Any) -> None:  # noqa: F811
    page = log_in(browser, site, "admin", 1280)
    page.goto(f"{site}/admin/allocations/allocation/")
    headers = page.locator("#result_list thead th")
    assert headers.count() >= 8
    shot(page, "crud-admin-allocations-1280")
    # every column lies inside the window and its scrolling box: nothing hidden to scroll sideways to
    right, box_right, box_scroll, box_width = page.evaluate(
        "(() => { const box = document.querySelector('#changelist .results');"
        " const r = Math.max(...[...document.querySelectorAll('#result_list thead th')]"
        ".map(th => th.getBoundingClientRect().right));"
        " return [r, box.getBoundingClientRect().right, box.scrollWidth, box.clientWidth]; })()"
    )
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert right <= box_right + 1 and box_scroll <= box_width, (right, box_right, box_scroll, box_width)
    assert scroll <= inner, (scroll, inner)
