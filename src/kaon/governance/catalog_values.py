"""The data catalog's view of one value: its type bit and a short example that holds no personal data."""

import re
from collections.abc import Container

# Types seen, OR-ed into one integer per attribute (cheap to merge in SQL: `types | excluded.types`).
STRING, NUMBER, BOOLEAN, LIST, NULL, OBJECT = 1, 2, 4, 8, 16, 32
TYPE_NAMES = ((STRING, "string"), (NUMBER, "number"), (BOOLEAN, "boolean"), (LIST, "list"), (NULL, "null"),
              (OBJECT, "object"))
# Exact classes only: `bool` is an `int` subclass, and a number sent as a string stays a string.
TYPE_BITS: dict[type, int] = {str: STRING, int: NUMBER, float: NUMBER, bool: BOOLEAN, list: LIST,
                              type(None): NULL, dict: OBJECT}

MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 40
TRUNCATED = "…"
EMAIL, PHONE, IDENTITY, REDACTED = "<email>", "<phone>", "<identity>", "<redacted>"

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[\d\s().\-]{7,24}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Attribute names whose values are about a person (matched in the name lower-cased, without separators).
_PERSONAL_PARTS = (
    "email", "phone", "mobile", "msisdn", "password", "passwd", "secret", "token", "firstname", "lastname",
    "fullname", "surname", "username", "address", "street", "postcode", "zipcode", "postalcode", "birth",
    "customerid", "userid", "anonymousid", "mpid", "deviceid", "advertisingid", "idfa", "idfv", "aaid",
    "ssn", "passport", "iban", "creditcard", "cardnumber", "latitude", "longitude",
)
_PERSONAL_NAMES = frozenset({"ip", "name", "dob", "zip", "lat", "lng", "lon", "uid", "gaid"})
_personal_cache: dict[str, bool] = {}


def types_of(bits: int) -> list[str]:
    """The names of the types in a bit set, in a fixed order."""
    return [name for bit, name in TYPE_NAMES if bits & bit]


def is_personal_name(name: str) -> bool:
    """Whether an attribute's name says its values identify a person (`email`, `userId`, `first_name`)."""
    found = _personal_cache.get(name)
    if found is None:
        flat = "".join(c for c in name.lower() if c.isalnum())
        found = flat in _PERSONAL_NAMES or any(part in flat for part in _PERSONAL_PARTS)
        if len(_personal_cache) < 100_000:
            _personal_cache[name] = found
    return found


def looks_like_phone(text: str) -> bool:
    stripped = text.strip()
    if not _PHONE.fullmatch(stripped) or _DATE.match(stripped):
        return False
    digits = sum(c.isdigit() for c in stripped)
    plain = stripped.isdigit()
    # Plain digit strings are ids and amounts as often as phones: only long ones are masked.
    return 10 <= digits <= 15 if plain else 7 <= digits <= 15 and "." not in stripped


def example(name: str, value: object, identities: Container[str]) -> str | None:
    """A short example of `value` safe to show and keep, or None (nulls have no example).

    Identity values, emails, phones and values of person-like attribute names become placeholders.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else _text(value)
    if text in identities:
        return IDENTITY
    if is_personal_name(name):
        return REDACTED
    if _EMAIL.search(text):
        return EMAIL
    if isinstance(value, str) and looks_like_phone(text):
        return PHONE
    if isinstance(value, list) and any(isinstance(v, str) and (v in identities or looks_like_phone(v))
                                       for v in value):
        return REDACTED
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[:MAX_EXAMPLE_CHARS] + TRUNCATED


def _text(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) if not isinstance(v, str) else v for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
