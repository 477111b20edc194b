"""Provider errors keep the provider's code and a bounded, sanitised message (never a raw body)."""

from __future__ import annotations

import openstack.exceptions as os_exc
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from providers.adapters.aws.errors import _sdk as aws_sdk
from providers.adapters.base import PROVIDER_MESSAGE_MAX_CHARS, sanitise_provider_message
from providers.adapters.openstack.errors import _sdk as openstack_sdk
from providers.errors import PermanentProviderError, ProviderError, TransientProviderError

TOKEN = "gAAAAABlX2vQ" + "Zk9" * 60  # a Keystone Fernet token's shape
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HTML = (
    "<!DOCTYPE html><html><head><title>Internal</title><script>var t='leak';</script></head><body>"
    f"<h1>Service down</h1><p>X-Auth-Token: {TOKEN}</p><p>aws_secret_access_key={SECRET_KEY}</p>"
    "<pre>\x1b[31mstack\x00trace\r\n</pre>" + "<div>padding</div>" * 5000 + "</body></html>"
)


def assert_clean(error: ProviderError) -> None:
    for text in (error.message, str(error)):
        assert len(text) <= PROVIDER_MESSAGE_MAX_CHARS, len(text)
        assert "<" not in text and ">" not in text and "leak" not in text
        assert TOKEN[:20] not in text and SECRET_KEY not in text
        assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text), repr(text)


def test_an_aws_error_with_an_html_body_keeps_the_code_and_a_clean_message() -> None:
    response = {
        "Error": {"Code": "InvalidParameterValue", "Message": HTML},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    with pytest.raises(PermanentProviderError) as err:
        with aws_sdk("create vpc"):
            raise ClientError(response, "CreateVpc")
    assert_clean(err.value)
    assert err.value.message.startswith("AWS CreateVpc (create vpc): InvalidParameterValue: Internal")
    assert "Service down" in err.value.message and "[redacted]" in err.value.message
    assert err.value.details == {"aws_code": "InvalidParameterValue", "http_status": 400}


def test_an_unparsable_answer_from_a_proxy_is_clean_too() -> None:
    with pytest.raises(TransientProviderError) as err:
        with aws_sdk("describe vpcs"):
            raise ResponseParserError(f"Unable to parse response, invalid XML received:\n{HTML}")
    assert_clean(err.value)


def test_an_openstack_error_page_is_clean() -> None:
    with pytest.raises(TransientProviderError) as err:
        with openstack_sdk("list networks"):
            raise os_exc.HttpException(message="Server Error", details=HTML, http_status=502)
    assert_clean(err.value)
    assert err.value.message.startswith("OpenStack list networks: HTTP 502")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("AWS CreateSubnet: InvalidSubnet.Range: The CIDR '10.0.0.0/8' is invalid.", None),
        ("subnet 3fa85f64-5717-4562-b3fc-2c963f66afa6 in vpc-0123456789abcdef0, 2001:db8::/56", None),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "Authorization: [redacted]"),
        ("password=hunter2&user=x", "password=[redacted]&user=x"),
        ('{"token": "abc123def"}', '{"token": "[redacted]"}'),
        ("key AKIAIOSFODNN7EXAMPLE refused", "key [redacted] refused"),
        ("a&amp;b\tc\n\nd", "a&b c d"),
    ],
)
def test_sanitise_keeps_what_helps_and_drops_secrets(raw: str, clean: str | None) -> None:
    assert sanitise_provider_message(raw) == (raw if clean is None else clean)
