"""The UI in a real browser: Playwright driving Debian's Chromium headless against ``live_server``.

One admin walk-through (log in, create a pool, allocate from it by form, see the
block on the map, create a dual-stack shoot, search an address, find the audit
events) and an auditor's visit (no write buttons anywhere). Screenshots of the
main pages go to ``artifacts/screenshots/`` (git-ignored). The live server runs
in a thread of this process, so the tests need ``transactional_db``; Playwright's
sync API runs an event loop in this thread, hence ``DJANGO_ALLOW_ASYNC_UNSAFE``
for the test's own ORM calls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from allocations.models import Allocation, Pool, Shoot
from audit.models import AuditEvent
from providers.models import ProvisioningJob
from providers.services import run_eagerly
from tests.support.factories import demo_landscape
from tests.ui.conftest import make_users

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "pw-for-tests"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_sync.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
            # While Playwright's loop runs, Django keeps this thread's ORM connections in
            # context storage: close them here, or they outlive the test database.
            connections.close_all()


@pytest.fixture
def site(transactional_db: None, live_server: Any) -> Iterator[str]:
    """The live server's URL, with the demo landscape and the role users loaded.

    Afterwards (the browser is closed by then: tests ask for ``site`` before
    ``browser``) it waits until the server's request threads have closed their
    PostgreSQL connections, so that the test database can be dropped at the end.
    """
    demo_landscape()
    make_users()
    yield live_server.url
    if connection.vendor == "postgresql":
        _wait_for_other_sessions_to_end()


def _wait_for_other_sessions_to_end(seconds: float = 5.0) -> None:
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(sql)
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(browser: Any, site: str, username: str) -> Any:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(f"{site}/")
    assert "/login/" in page.url  # every page requires a login
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site}/")
    return page


def test_admin_walkthrough(site: str, browser: Any) -> None:
    page = log_in(browser, site, "admin")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    shot(page, "dashboard")

    # create a pool by form
    page.get_by_role("link", name="New pool").first.click()
    page.get_by_label("Name").fill("browser-pool")
    page.get_by_label("CIDR").fill("3fff:100::/40")
    page.get_by_label("Default allocation length").fill("56")
    page.get_by_role("button", name="Create pool").click()
    page.wait_for_url(re.compile(r"/pools/\d+/$"))
    assert page.get_by_text("Pool browser-pool (3fff:100::/40) created.").is_visible()
    pool = Pool.objects.get(name="browser-pool")

    # a refused allocation shows the service's error on its field
    page.get_by_label("Or this CIDR").fill("3fff:100::1/56")
    page.get_by_role("button", name="Allocate").click()
    assert page.locator("#id_cidr_errors").inner_text().count("host bits") == 1

    # allocate the next free /56 by form, then see it on the map
    page.get_by_label("Or this CIDR").fill("")
    page.get_by_label("Next free of length").fill("56")
    page.get_by_role("button", name="Allocate").click()
    page.wait_for_url(re.compile(r"/allocations/\d+/$"))
    assert page.get_by_text("Allocated 3fff:100::/56 from browser-pool.").is_visible()
    allocation = Allocation.objects.get(pool=pool, cidr="3fff:100::/56")
    page.get_by_role("link", name="browser-pool").first.click()
    cell = page.locator('svg.addrmap a[data-cidr="3fff:100::/48"]')
    assert cell.count() == 1
    assert cell.get_attribute("href").endswith(f"/allocations/{allocation.pk}/")
    shot(page, "pool-detail")
    cell.click()
    page.wait_for_url(re.compile(rf"/allocations/{allocation.pk}/$"))

    # create a dual-stack shoot and see its table
    page.get_by_role("link", name="Shoots").click()
    page.get_by_role("link", name="New shoot").click()
    page.get_by_label("Project").fill("garden-demo")
    page.get_by_label("Name").fill("browser-ds")
    page.get_by_label("Seed").select_option(label="seed-eu-de-1")
    page.get_by_label("Provider").select_option("openstack")
    page.get_by_label("Region").select_option("eu-de-1")
    page.get_by_label("IP families").select_option("IPv4,IPv6")
    page.get_by_role("button", name="Create shoot").click()
    page.wait_for_url(re.compile(r"/shoots/\d+/$"))
    shoot = Shoot.objects.get(project="garden-demo", name="browser-ds")
    table = page.locator("#networking")
    assert table.locator("thead").inner_text().split() == ["Range", "IPv4", "IPv6"]
    for role in ("nodes", "pods", "services"):
        row = table.locator("tr", has=page.locator(f'th:text-is("{role}")'))
        ipv4, ipv6 = row.locator("td").all_inner_texts()
        assert "." in ipv4 and ":" in ipv6, (role, ipv4, ipv6)
    assert "ipFamilies" in page.locator("#gardener-yaml").inner_text()
    shot(page, "shoot-detail")

    # its provision job (the dry-run account's, run in-process on commit) and the job's steps
    job = ProvisioningJob.objects.get(shoot=shoot, action="provision")
    page.locator("#jobs").get_by_role("link", name=f"#{job.pk}").click()
    page.wait_for_url(re.compile(rf"/jobs/{job.pk}/$"))
    page.wait_for_selector('#job-progress[data-state="succeeded"]')
    steps = page.locator("#job-steps tbody tr")
    assert steps.count() == job.steps.count() > 1
    assert steps.first.inner_text().split()[:3] == ["1", "network", "done"]
    shot(page, "job-detail")

    # progress updates without a reload: a job still pending when its page opens, run afterwards
    pending = ProvisioningJob.objects.create(shoot=shoot, account=job.account, action="sync-routes")
    page.goto(f"{site}/jobs/{pending.pk}/")
    assert page.locator("#job-progress").get_attribute("data-state") == "pending"
    run_eagerly(pending.pk)
    page.wait_for_selector('#job-progress[data-state="succeeded"]')
    assert "routes" in page.locator("#job-steps").inner_text()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    assert page.locator("table.jobs").get_by_text("garden-demo/browser-ds").count() == 2
    shot(page, "jobs")

    # search an address: every match listed, its most specific allocation first
    page.get_by_label("Search address, prefix, shoot or pool").fill("3fff:100::1")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/search/"))
    page.locator("#found-allocations").get_by_role("link", name="3fff:100::/56").first.click()
    page.wait_for_url(re.compile(rf"/allocations/{allocation.pk}/$"))
    assert page.locator("ol.chain").get_by_text("browser-pool").is_visible()
    shot(page, "allocation-detail")

    # the audit log has all of it
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Actor").fill("admin")
    page.get_by_role("button", name="Filter").click()
    body = page.locator("table.data").inner_text()
    for action in ("pool created", "allocated", "shoot created"):  # actions in words
        assert action in body, action
    assert AuditEvent.objects.filter(actor="admin", source="ui", object_id=str(shoot.pk)).exists()
    shot(page, "audit-log")
    page.get_by_role("link", name="Shoots").click()
    shot(page, "shoot-list")
    page.get_by_role("link", name="Pools").click()
    shot(page, "pool-list")


def test_auditor_sees_no_write_buttons(site: str, browser: Any) -> None:
    page = log_in(browser, site, "auditor")
    shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds")
    pool = Pool.objects.get(name="openstack-eu-de-1")
    allocation = Allocation.objects.filter(shoot=shoot, state="active").first()
    assert allocation is not None
    for path in (
        "/",
        "/pools/",
        f"/pools/{pool.pk}/",
        "/shoots/",
        f"/shoots/{shoot.pk}/",
        f"/allocations/{allocation.pk}/",
        "/audit/",
        "/jobs/",
        f"/jobs/{ProvisioningJob.objects.filter(shoot=shoot).first().pk}/",
        "/provider-accounts/",
    ):
        page.goto(f"{site}{path}")
        main = page.locator("main")
        # the only forms an auditor sees are filters (GET); no POST form, no write link
        assert main.locator('form[method="post"]').count() == 0, path
        for name in (
            "New pool",
            "New shoot",
            "Allocate",
            "Release",
            "Register node",
            "Provision",
            "Cancel job",
            "Retry job",
            "Reconcile",
        ):
            assert main.get_by_role("link", name=name).count() == 0, (path, name)
            assert main.get_by_role("button", name=name).count() == 0, (path, name)
    page.goto(f"{site}/shoots/{shoot.pk}/")
    shot(page, "auditor-shoot-detail")
    response = page.goto(f"{site}/shoots/new/")
    assert response is not None and response.status == 403
