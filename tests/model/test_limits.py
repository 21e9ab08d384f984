"""Documented ingest limits: the checks refuse past the limit, accept at it, and name limit and place."""

import pytest

from kaon.model import limits
from kaon.model.batch import Batch
from kaon.model.errors import LimitExceeded
from kaon.model.events import CustomEvent, CustomEventData


def batch(user_attributes: dict[str, object] | None = None, event_attributes: dict[str, object] | None = None,
          ) -> Batch:
    events = [] if event_attributes is None else [
        CustomEvent(data=CustomEventData(event_name="e")),
        CustomEvent(data=CustomEventData(event_name="e", custom_attributes=event_attributes)),  # type: ignore[arg-type]
    ]
    return Batch(user_attributes=user_attributes or {}, events=events)  # type: ignore[arg-type]


def test_limit_values_are_the_documented_ones() -> None:
    assert limits.MAX_REQUEST_BYTES == 256 * 1024
    assert limits.MAX_MPARTICLE_BATCH_BYTES == 128 * 1024
    assert limits.MAX_BATCHES_PER_BULK == 100
    assert limits.MAX_USER_ATTRIBUTES == 100
    assert limits.MAX_ATTRIBUTE_VALUE_CHARS == 4096
    assert limits.MAX_SEGMENT_EVENT_BYTES == 32 * 1024
    assert limits.MAX_SEGMENT_BATCH_BYTES == 500 * 1024


def test_at_the_limits_is_accepted() -> None:
    limits.check_batch(batch({f"a{i}": "x" * 4096 for i in range(100)}, {"e": "y" * 4096}))
    limits.check_request_size(limits.MAX_REQUEST_BYTES)


def test_too_many_user_attributes() -> None:
    with pytest.raises(LimitExceeded) as raised:
        limits.check_batch(batch({f"a{i}": i for i in range(101)}), "$[3]")
    error = raised.value
    assert (error.code, error.status) == ("TOO_MANY_USER_ATTRIBUTES", 400)
    assert "101" in error.message and "100 user attributes" in error.message
    assert "`$[3].user_attributes`" in error.message


def test_user_attribute_value_too_long() -> None:
    with pytest.raises(LimitExceeded) as raised:
        limits.check_batch(batch({"ok": "x", "long": "x" * 4097}))
    error = raised.value
    assert (error.code, error.status) == ("ATTRIBUTE_VALUE_TOO_LONG", 400)
    assert "4097" in error.message and "4096" in error.message
    assert "`$.user_attributes.long`" in error.message


def test_attribute_list_entries_are_checked() -> None:
    with pytest.raises(LimitExceeded, match=r"user_attributes\.tags"):
        limits.check_batch(batch({"tags": ["a", "x" * 4097]}))


def test_event_attribute_value_too_long_names_the_event() -> None:
    with pytest.raises(LimitExceeded) as raised:
        limits.check_batch(batch(event_attributes={"note": "z" * 5000}))
    assert raised.value.code == "ATTRIBUTE_VALUE_TOO_LONG"
    assert "`$.events[1].data.custom_attributes.note`" in raised.value.message


def test_non_string_values_have_no_length_limit() -> None:
    limits.check_batch(batch({"n": 10**100, "b": True, "none": None}))


def test_request_size() -> None:
    with pytest.raises(LimitExceeded) as raised:
        limits.check_request_size(limits.MAX_REQUEST_BYTES + 1)
    assert (raised.value.code, raised.value.status) == ("REQUEST_TOO_LARGE", 413)
    assert "256 KB" in raised.value.message
