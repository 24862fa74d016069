"""Dealer signatures: what they cover, and the path the desk checks them against."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.dealers.inbound import _app_path
from app.dealers.signing import SignatureError, signed_headers, verify

SECRET = "s" * 32
BODY = b'{"bid": 0.01, "ask": 0.02, "size": 10}'
A = "POST /v1/dealer/quote-requests/a/quotes"
B = "POST /v1/dealer/quote-requests/b/quotes"


def _check(headers: dict[str, str], target: str | None) -> int:
    return verify(
        SECRET,
        headers["X-RFQDesk-Timestamp"],
        headers["X-RFQDesk-Signature"],
        BODY,
        skew_s=30,
        target=target,
    )


def test_one_body_in_one_second_to_two_requests_gives_two_signatures() -> None:
    to_a = signed_headers(SECRET, BODY, now=1_764_583_200, target=A)
    to_b = signed_headers(SECRET, BODY, now=1_764_583_200, target=B)
    assert to_a["X-RFQDesk-Timestamp"] == to_b["X-RFQDesk-Timestamp"]
    assert to_a["X-RFQDesk-Signature"] != to_b["X-RFQDesk-Signature"]


def test_a_signature_for_another_target_or_none_is_refused() -> None:
    for_a = signed_headers(SECRET, BODY, target=A)
    assert _check(for_a, A) > 0
    with pytest.raises(SignatureError, match="does not match"):
        _check(for_a, B)
    with pytest.raises(SignatureError, match="does not match"):
        _check(signed_headers(SECRET, BODY), A)  # the body alone, the desk's own form


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/v1/dealer/quote-requests/a/quotes", "", "/v1/dealer/quote-requests/a/quotes"),
        ("/rfq/v1/dealer/quote-requests/a/quotes", "/rfq", "/v1/dealer/quote-requests/a/quotes"),
        ("/v1/dealer/quote-requests/a/quotes", "/rfq", "/v1/dealer/quote-requests/a/quotes"),
    ],
)
def test_the_path_checked_is_the_one_handed_out(path: str, root_path: str, expected: str) -> None:
    """Mounted under a prefix, the desk still checks the path of ``quote_url`` as handed out."""
    scope = {"type": "http", "method": "POST", "path": path, "root_path": root_path, "headers": []}
    assert _app_path(Request(scope)) == expected
