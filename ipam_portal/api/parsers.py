"""JSON is the API's input format (absurdly deep JSON is a 400, not a crash); a few endpoints also
take one document as a raw text body (a manifest, a CSV export), read by :func:`read_text_body`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


def read_text_body(stream: Any, *, what: str, encoding: str = "utf-8") -> str:
    """A raw request body as text, at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (Django's 2.5 MB
    default when unset); too large or not text in ``encoding`` is a 400 naming ``what``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise ParseError(f"{what} is larger than {limit} bytes")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise ParseError(f"{what} is not UTF-8 text") from None
