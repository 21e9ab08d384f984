"""Bounded, gzip-aware body reading, fed by a plain ASGI receive callable (test input)."""

import asyncio
import gzip
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kaon.collect.errors import CollectError
from kaon.collect.http import MAX_QUERY_BYTES, query_param, read_body
from kaon.model.limits import MAX_REQUEST_BYTES


def receiver(*chunks: bytes, disconnect: bool = False) -> Callable[[], Awaitable[dict[str, Any]]]:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1 or disconnect}
        for i, chunk in enumerate(chunks)
    ]
    if disconnect:
        messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


def scope(**headers: str) -> dict[str, Any]:
    return {"headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}


def read(scope_: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], **kw: Any) -> bytes:
    return asyncio.run(read_body(scope_, receive, **kw))


def refused(scope_: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], **kw: Any) -> CollectError:
    with pytest.raises(CollectError) as raised:
        read(scope_, receive, **kw)
    return raised.value


def test_chunks_are_joined() -> None:
    assert read(scope(), receiver(b"ab", b"cd", b"e")) == b"abcde"


def test_body_at_the_limit_is_accepted() -> None:
    body = b"x" * MAX_REQUEST_BYTES
    assert read(scope(content_length=str(len(body))), receiver(body[:1000], body[1000:])) == body


def test_declared_length_over_limit_is_refused_before_reading() -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("the body must not be read")

    error = refused(scope(content_length=str(MAX_REQUEST_BYTES + 1)), receive)
    assert (error.status, error.code) == (413, "REQUEST_TOO_LARGE")
    assert "256 KB" in error.message


def test_streamed_body_over_limit_is_refused_without_content_length() -> None:
    error = refused(scope(), receiver(*[b"x" * 65536] * 4, b"y"))
    assert (error.status, error.code) == (413, "REQUEST_TOO_LARGE")
    assert str(MAX_REQUEST_BYTES) in error.message


def test_gzip_body_is_decompressed() -> None:
    raw = b'{"events": []}' * 100
    assert read(scope(content_encoding="gzip"), receiver(gzip.compress(raw))) == raw
    assert read(scope(content_encoding=" GZIP "), receiver(gzip.compress(raw))) == raw


def test_gzip_over_limit_after_decompression_is_refused() -> None:
    packed = gzip.compress(b"x" * (MAX_REQUEST_BYTES + 1))
    assert len(packed) < 4096
    error = refused(scope(content_encoding="gzip"), receiver(packed))
    assert (error.status, error.code) == (413, "REQUEST_TOO_LARGE")
    assert "256 KB" in error.message


def test_gzip_bomb_is_refused() -> None:
    packed = gzip.compress(b"\0" * (50 * 1024 * 1024))
    error = refused(scope(content_encoding="gzip"), receiver(packed))
    assert error.code == "REQUEST_TOO_LARGE"


def test_gzip_exactly_at_limit_is_accepted() -> None:
    raw = b"y" * MAX_REQUEST_BYTES
    assert read(scope(content_encoding="gzip"), receiver(gzip.compress(raw))) == raw


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b"x" * 1000)[:-12], b""])
def test_invalid_or_truncated_gzip(body: bytes) -> None:
    error = refused(scope(content_encoding="gzip"), receiver(body))
    assert (error.status, error.code) == (400, "INVALID_GZIP")
    assert "gzip" in error.message


def test_no_content_encoding_leaves_gzip_bytes_alone() -> None:
    packed = gzip.compress(b"abc")
    assert read(scope(), receiver(packed)) == packed


def test_disconnect_before_body_end() -> None:
    error = refused(scope(), receiver(b"partial", disconnect=True))
    assert (error.status, error.code) == (400, "CLIENT_DISCONNECTED")


def query_scope(query: bytes) -> dict[str, Any]:
    return {"headers": [], "query_string": query}


def test_query_param_reads_the_first_value() -> None:
    assert query_param(query_scope(b"writeKey=abc&writeKey=def&p=npm"), "writeKey") == "abc"
    assert query_param(query_scope(b"p=npm"), "writeKey") is None
    assert query_param(query_scope(b""), "writeKey") is None
    assert query_param({"headers": []}, "writeKey") is None


@pytest.mark.parametrize("query", [b"writeKey=k&x=" + b"y" * MAX_QUERY_BYTES, b"&".join([b"a=1"] * 40)])
def test_long_queries_are_refused_before_parsing(query: bytes) -> None:
    with pytest.raises(CollectError) as raised:
        query_param(query_scope(query), "writeKey")
    assert (raised.value.status, raised.value.code) == (414, "QUERY_TOO_LONG")
