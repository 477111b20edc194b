"""The list of every UI page (:mod:`tests.ui.pages`) that the browser checks walk: complete."""

from __future__ import annotations

from django.test import Client

from tests.ui.pages import ui_pages


def test_every_ui_url_is_a_page_or_an_action(ui: dict[str, Client]) -> None:
    names = {page.name for page in ui_pages(ui["admin"])}
    # the detail pages with their sample objects, the forms, and no POST-only action or CSV
    for name in (
        "ui-pool-detail",
        "ui-allocation-detail",
        "ui-shoot-detail",
        "providers-job-detail",
        "audit-event-detail",
        "notifications-subscription-detail",
        "ui-shoot-create",
    ):
        assert name in names, name
    assert not names & {
        "ui-pool-allocate",
        "audit-event-export",
        "providers-job-progress",
        "providers-job-cancel",
    }
