"""Forms of the provisioning pages. They only parse input; :mod:`providers.services` decides.

An account's credentials are a *reference* (``env:NAME``, ``file:/path``,
``none``), never the secret. When the service refuses what was typed into the
credential field, the form does not send it back to the browser: it may have
been a pasted secret.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from allocations.choices import Provider
from allocations.errors import IpamError

from .choices import AccountType
from .models import ProviderAccount
from .services import ACCOUNT_UPDATABLE


class AccountForm(forms.Form):
    """Input of :func:`providers.services.account_create` (and, without the fixed fields, ``account_update``)."""

    FIXED = ("name", "type", "provider")

    name = forms.SlugField(max_length=64, help_text="Letters, digits and dashes, e.g. openstack-eu-de-1")
    type = forms.ChoiceField(choices=AccountType.choices, label="Account type")
    provider = forms.ChoiceField(choices=Provider.choices, help_text="The shoots' provider it serves")
    region = forms.CharField(max_length=64)
    endpoint = forms.CharField(
        max_length=255, required=False, help_text="Empty: the provider's default endpoint"
    )
    credentials_ref = forms.CharField(
        max_length=255,
        initial="none",
        label="Credential reference",
        help_text="env:VARIABLE, file:/path (inside the credentials directory) or none — never the secret itself",
    )
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='A JSON object of the adapter\'s options, e.g. {"external_network": "public"}',
    )
    enabled = forms.BooleanField(
        required=False,
        initial=True,
        help_text="The enabled account of a provider and region serves its shoots",
    )

    def __init__(self, *args: Any, account: ProviderAccount | None = None, **kwargs: Any) -> None:
        if account is not None:
            kwargs["initial"] = {
                **{name: getattr(account, name) for name in ACCOUNT_UPDATABLE},
                "options": json.dumps(account.options, indent=1) if account.options else "",
            }
        super().__init__(*args, **kwargs)
        self.account = account
        if account is not None:
            for name in self.FIXED:
                del self.fields[name]

    def clean_options(self) -> dict[str, Any]:
        text = (self.cleaned_data.get("options") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError("options must be a JSON object ({…})")
        return value

    def service_kwargs(self) -> dict[str, Any]:
        """``account_create``'s keywords, or on an edit the changeable fields that changed."""
        data = dict(self.cleaned_data)
        data["endpoint"] = data["endpoint"].strip()
        data["credentials_ref"] = data["credentials_ref"].strip()
        if self.account is None:
            return data
        return {k: v for k, v in data.items() if k in ACCOUNT_UPDATABLE and getattr(self.account, k) != v}

    def full_clean(self) -> None:
        super().full_clean()
        if self.is_bound and "credentials_ref" in self.errors:
            self.forget("credentials_ref")

    def add_service_error(self, exc: IpamError) -> None:
        """The service's refusal on its field; a refused credential reference is not sent back."""
        field = exc.field if exc.field in self.fields else None
        self.add_error(field, exc.message)
        if field == "credentials_ref":
            self.forget("credentials_ref")

    def forget(self, name: str) -> None:
        """Render ``name`` empty (its typed value is dropped from the bound data)."""
        data = dict(self.data.items())
        data[name] = ""
        self.data = data
