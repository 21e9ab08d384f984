"""Types seen and example masking: what the catalog may keep of a value."""

import pytest

from kaon.governance.catalog_values import (
    BOOLEAN,
    EMAIL,
    IDENTITY,
    LIST,
    NULL,
    NUMBER,
    PHONE,
    REDACTED,
    STRING,
    TYPE_BITS,
    example,
    is_personal_name,
    types_of,
)


@pytest.mark.parametrize(("value", "bit"), [
    ("x", STRING), ("42", STRING), ("true", STRING), (42, NUMBER), (4.2, NUMBER), (True, BOOLEAN),
    (False, BOOLEAN), ([1, "a"], LIST), (None, NULL),
])
def test_type_bits_are_exact_and_number_strings_stay_strings(value: object, bit: int) -> None:
    assert TYPE_BITS[type(value)] == bit


def test_type_names_in_fixed_order() -> None:
    assert types_of(NULL | STRING | NUMBER) == ["string", "number", "null"]
    assert types_of(0) == []


@pytest.mark.parametrize("name", ["email", "Email Address", "$email", "userId", "user_id", "first_name",
                                  "LastName", "phone_number", "ip", "street_address", "customerId"])
def test_person_like_names(name: str) -> None:
    assert is_personal_name(name)


@pytest.mark.parametrize("name", ["plan", "price", "product_name", "button", "category", "count", "tab"])
def test_ordinary_names(name: str) -> None:
    assert not is_personal_name(name)


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("plan", "pro", "pro"),
    ("price", 9.5, "9.5"),
    ("qty", 3, "3"),
    ("ok", True, "true"),
    ("missing", None, None),
    ("tags", ["a", 1], "[a, 1]"),
    ("when", "2024-05-01", "2024-05-01"),
    ("sku", "1234567", "1234567"),
    ("note", "write to ann@example.com", EMAIL),
    ("contact", "+1 (555) 123-4567", PHONE),
    ("contact", "5551234567", PHONE),
    ("email", "not-an-email", REDACTED),
    ("userId", 12345, REDACTED),
    ("ref", "cust-777", IDENTITY),
    ("friends", ["+44 20 7946 0958"], REDACTED),
])
def test_examples_are_masked(name: str, value: object, shown: str | None) -> None:
    assert example(name, value, {"cust-777"}) == shown


def test_long_examples_are_cut_short() -> None:
    shown = example("text", "x" * 100, set())
    assert shown is not None
    assert len(shown) == 41
    assert shown.endswith("…")
