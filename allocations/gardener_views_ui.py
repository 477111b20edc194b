"""Web UI of the Gardener round trip: the import upload form (admins) and the drift report.

Thin, like every UI view (:mod:`allocations.views`): the form parses the upload,
:func:`~allocations.services.gardener_import.gardener_import` decides (dry run,
all or nothing, every conflict named) and
:func:`~allocations.gardener.drift.drift_report` compares. Same roles as the
API's ``/gardener/``: only admins import, every role reads drift.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from ipam_portal.ui import page, paginate, reader, require_admin, ui_actor

from . import selectors
from .errors import ImportConflict, IpamError
from .gardener.drift import DRIFT, IN_SYNC, NOT_REPORTED, drift_report
from .services.gardener_import import Document, ImportReport, parse_manifests
from .services.gardener_import import gardener_import as import_service


class GardenerImportForm(forms.Form):
    """Manifests to import: an uploaded file and/or pasted text (YAML or JSON, several documents)."""

    manifest_file = forms.FileField(
        required=False,
        label="Manifest file",
        help_text="YAML or JSON: one Seed or Shoot, a List, or several documents separated by ---",
        widget=forms.ClearableFileInput(
            attrs={"accept": ".yaml,.yml,.json,application/json,application/yaml"}
        ),
    )
    manifest = forms.CharField(
        required=False,
        label="Or paste manifests",
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90, "spellcheck": "false", "class": "code"}),
    )
    dry_run = forms.BooleanField(
        required=False,
        initial=True,
        label="Dry run",
        help_text="Report what would be created and every conflict; write nothing",
    )

    def _text_of_upload(self) -> str:
        upload = self.cleaned_data.get("manifest_file")
        if not upload:
            return ""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
        if upload.size > limit:
            self.add_error("manifest_file", f"the file is larger than {limit} bytes")
            return ""
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            self.add_error("manifest_file", "the file is not UTF-8 text")
            return ""

    def documents(self) -> list[Document]:
        """The Gardener objects of both inputs, numbered in order (file first); errors go on their field."""
        found: list[Document] = []
        upload = self.cleaned_data.get("manifest_file")
        sources = [
            ("manifest_file", self._text_of_upload(), upload.name if upload else "upload"),
            ("manifest", self.cleaned_data.get("manifest", ""), "manifest"),
        ]
        for field, text, origin in sources:
            if not text.strip():
                continue
            try:
                found += parse_manifests(text, origin=origin)
            except IpamError as exc:
                self.add_error(field, exc.message)
        if not found and not self.errors:
            self.add_error("manifest", "upload a manifest file or paste manifests")
        return [Document(index=i, origin=d.origin, body=d.body) for i, d in enumerate(found)]


@reader
@require_http_methods(["GET", "POST"])
def gardener_import(request: HttpRequest) -> HttpResponse:
    """Upload Gardener Seed/Shoot manifests; show the report (dry run) or the import's result."""
    require_admin(request)
    form = GardenerImportForm(request.POST or None, request.FILES or None)
    report: ImportReport | None = None
    status = 200
    if request.method == "POST" and form.is_valid():
        documents = form.documents()
        if not form.errors:
            dry_run = form.cleaned_data["dry_run"]
            try:
                report = import_service(documents=documents, actor=ui_actor(request), dry_run=dry_run)
            except ImportConflict as exc:
                report = exc.report  # type: ignore[assignment]
                messages.error(request, exc.message)
                status = 409
            else:
                if not report.ok:
                    messages.error(request, f"Dry run: {len(report.conflicts)} conflict(s); nothing written.")
                elif dry_run:
                    messages.info(
                        request, f"Dry run: {report.changes} change(s) would be made; nothing written."
                    )
                elif report.written:
                    messages.success(request, f"Imported: {report.changes} change(s) written.")
                else:
                    messages.info(request, "Nothing to import: everything is already in the portal.")
    if form.errors:
        status = 400
    return page(request, "ipam/gardener_import.html", {"form": form, "report": report}, status=status)


@reader
def drift(request: HttpRequest) -> HttpResponse:
    """Gardener's reported status against the portal's ranges, per live shoot (all or one project)."""
    project = request.GET.get("project", "").strip()[:200]
    shoots = selectors.gardener_shoots(project=project or None)
    page_obj = paginate(request, shoots)
    report = drift_report(page_obj.object_list)
    counts = [(state, sum(1 for r in report if r.state == state)) for state in (DRIFT, IN_SYNC, NOT_REPORTED)]
    context: dict[str, Any] = {
        "project": project,
        "page_obj": page_obj,
        "report": report,
        "counts": counts,
        "query": urlencode({"project": project}) if project else "",
    }
    return page(request, "ipam/gardener_drift.html", context)
