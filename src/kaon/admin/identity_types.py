"""Identity types the admin API takes, in any spelling Kaon knows, mapped to the canonical (Events API) name.

An unknown type is 400 `UNKNOWN_IDENTITY_TYPE` naming it: looking up `customerId` (a typo) must not look like
"nobody has this identity".
"""

from kaon.admin.errors import api_error
from kaon.model.identities import (
    BATCH_ALIASES,
    DEVICE_IDENTITY_TYPES,
    IDSYNC_TO_CANONICAL,
    USER_IDENTITY_TYPES,
)

CANONICAL = frozenset((*USER_IDENTITY_TYPES, *DEVICE_IDENTITY_TYPES, "device_application_stamp"))
# Every accepted spelling → its canonical name (batch aliases like `customerid`, IDSync names like `ios_idfa`).
SPELLINGS: dict[str, str] = {**{name: name for name in CANONICAL}, **BATCH_ALIASES, **IDSYNC_TO_CANONICAL}


def canonical_type(name: str, where: str) -> str:
    """The canonical spelling of identity type `name`; 400 UNKNOWN_IDENTITY_TYPE naming it and `where` otherwise."""
    found = SPELLINGS.get(name)
    if found is None:
        raise api_error(400, "UNKNOWN_IDENTITY_TYPE",
                        f"unknown identity type {name!r}; known types: {', '.join(sorted(CANONICAL))} (IDSync and"
                        f" batch spellings such as `customerid` and `ios_idfa` are accepted too) - at `{where}`")
    return found
