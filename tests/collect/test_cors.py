"""The collect doors' CORS policy: what a preflight may ask for, what it is answered, and what is refused."""

import pytest

from kaon.collect import cors
from kaon.collect.errors import CollectError

ORIGIN = b"http://shop.example:8123"
# What the real SDKs ask for (as Chromium lists them).
SDK_PREFLIGHTS = {
    "mparticle web sdk identify": b"content-type,x-mp-key",
    "segment analytics-next": b"authorization",
    "segment analytics-next retry": b"authorization,x-retry-count",
    "rudderstack v3": b"anonymousid,authorization,content-type,sentat",
    "rudderstack v3 retry": b"anonymousid,authorization,content-type,rsa-retry-attempt,rsa-retry-reason,"
                            b"rsa-since-first-attempt,rsa-since-last-attempt,sentat",
    "rudderstack recovered": b"anonymousid,authorization,content-type,rsa-recovered,sentat",
    "hmac idsync": b"content-type,date,x-mp-key,x-mp-signature",
}


def as_dict(headers: cors.Headers) -> dict[bytes, bytes]:
    return dict(headers)


def refusal(origin: bytes | None, method: bytes | None, requested: bytes | None) -> CollectError:
    with pytest.raises(CollectError) as raised:
        cors.preflight_headers(origin, method, requested)
    assert (raised.value.status, raised.value.code) == (403, "CORS_REFUSED")
    return raised.value


@pytest.mark.parametrize("sdk", list(SDK_PREFLIGHTS))
def test_every_header_real_sdks_send_is_allowed(sdk: str) -> None:
    answer = as_dict(cors.preflight_headers(ORIGIN, b"POST", SDK_PREFLIGHTS[sdk]))
    allowed = {h.strip() for h in answer[b"access-control-allow-headers"].split(b",")}
    assert {h.strip() for h in SDK_PREFLIGHTS[sdk].split(b",")} <= allowed
    assert answer[b"access-control-allow-origin"] == ORIGIN
    assert answer[b"vary"] == b"Origin"
    assert answer[b"access-control-allow-methods"] == b"POST, GET, OPTIONS"
    assert answer[b"access-control-max-age"] == b"86400"


def test_no_answer_ever_allows_credentials() -> None:
    answers = [cors.preflight_headers(ORIGIN, b"POST", b"content-type"), cors.response_headers(ORIGIN),
               cors.preflight_headers(None, None, None)]
    assert all(b"access-control-allow-credentials" not in as_dict(a) for a in answers)


def test_header_names_are_case_insensitive_and_spaces_ignored() -> None:
    cors.preflight_headers(ORIGIN, b"post", b" Content-Type , X-MP-Key ")


def test_an_unlisted_header_is_refused_and_named() -> None:
    error = refusal(ORIGIN, b"POST", b"content-type,x-evil,cookie")
    assert "cookie, x-evil" in error.message
    assert "allowed:" in error.message


@pytest.mark.parametrize("method", [b"PUT", b"DELETE", b"PATCH", b"TRACE", b"x" * 100])
def test_an_unlisted_method_is_refused(method: bytes) -> None:
    error = refusal(ORIGIN, method, None)
    assert "not allowed" in error.message and len(error.message) < 200


def test_header_lists_are_bounded() -> None:
    refusal(ORIGIN, b"POST", b"content-type," * 60)  # over 512 bytes
    refusal(ORIGIN, b"POST", b",".join([b"accept"] * (cors.MAX_REQUEST_HEADERS + 1)))
    cors.preflight_headers(ORIGIN, b"POST", b",".join([b"accept"] * cors.MAX_REQUEST_HEADERS))


@pytest.mark.parametrize("origin", [b"http://a.example", b"https://a.example:443", b"null",
                                    b"http://127.0.0.1:8080", b"http://[::1]:3000", b"chrome-extension://abcdef"])
def test_valid_origins_are_echoed(origin: bytes) -> None:
    assert as_dict(cors.response_headers(origin))[b"access-control-allow-origin"] == origin
    assert as_dict(cors.preflight_headers(origin, b"POST", None))[b"access-control-allow-origin"] == origin


@pytest.mark.parametrize("origin", [b"http://a.example/path", b"http://a.example\r\nSet-Cookie: x=1", b"*",
                                    b"a.example", b"http://" + b"a" * 300, b""])
def test_malformed_or_oversized_origins_are_never_echoed(origin: bytes) -> None:
    assert cors.response_headers(origin) == []
    refusal(origin, b"POST", None)


def test_actual_answers_expose_retry_after() -> None:
    assert as_dict(cors.response_headers(ORIGIN))[b"access-control-expose-headers"] == b"retry-after"
    assert cors.response_headers(None) == []


def test_options_without_preflight_headers_shows_the_policy() -> None:
    answer = as_dict(cors.preflight_headers(None, None, None))
    assert b"access-control-allow-origin" not in answer
    assert answer[b"access-control-allow-headers"] == ", ".join(cors.ALLOWED_HEADERS).encode()


def test_private_network_preflights_are_allowed_only_when_asked() -> None:
    asked = as_dict(cors.preflight_headers(ORIGIN, b"POST", b"content-type", b"true"))
    assert asked[b"access-control-allow-private-network"] == b"true"
    assert b"access-control-allow-private-network" not in as_dict(
        cors.preflight_headers(ORIGIN, b"POST", b"content-type"))
    assert b"access-control-allow-private-network" not in as_dict(
        cors.preflight_headers(ORIGIN, b"POST", b"content-type", b"nonsense"))
