"""Per-workspace identity settings: strategy, priority, unique and login types, limits, blocked values."""

import functools
import re

import msgspec

STRATEGIES = ("unify", "profile_conversion", "profile_link", "profile_isolation", "best_match")

# mParticle's default identity hierarchy, in Kaon's canonical spellings.
DEFAULT_PRIORITY = (
    "customer_id", "mobile_number", "phone_number_2", "phone_number_3", "email", "other",
    "other_id_2", "other_id_3", "other_id_4", "other_id_5", "other_id_6", "other_id_7", "other_id_8",
    "other_id_9", "other_id_10", "facebook", "google", "twitter", "microsoft", "yahoo",
    "facebook_custom_audience_id", "alias", "ios_advertising_id", "ios_idfv", "android_advertising_id",
    "android_uuid", "roku_advertising_id", "roku_publisher_id", "microsoft_publisher_id",
    "microsoft_advertising_id", "fire_advertising_id", "amp_id", "push_token", "device_application_stamp",
)

DEFAULT_BLOCKED = ("", "null", "none", "undefined", "anonymous", "nan", "-1", "test@test.com")
_ZEROS_AND_DASHES = re.compile(r"^[0\-]+$")


class IdentityPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How a workspace resolves identities. Stored in the workspace's settings under `identity`."""

    strategy: str = "unify"
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    # A profile never holds two different values of a unique type.
    unique_types: tuple[str, ...] = ("customer_id",)
    # Types that mark a profile as known (logged in); used by the conversion, link and isolation strategies.
    login_types: tuple[str, ...] = ("customer_id",)
    # Most values of one type a profile may hold (others are not linked). Types not listed: unlimited.
    limits: dict[str, int] = {}
    # Values never used for matching (compared case-insensitively after trimming); values made only of
    # zeros and dashes (zeroed advertising ids) are always blocked.
    blocked_values: tuple[str, ...] = DEFAULT_BLOCKED

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            # Fix: name the refused value too (the message only listed the allowed ones).
            raise ValueError(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        for name, limit in self.limits.items():
            if limit < 1:
                raise ValueError(f"limits.{name} must be at least 1")

    def rank(self, identity_type: str) -> int:
        """Position in the priority order (lower is stronger); unlisted types come last."""
        try:
            return self.priority.index(identity_type)
        except ValueError:
            return len(self.priority)

    def is_blocked(self, value: str) -> bool:
        folded = value.strip().lower()
        return folded in self._blocked() or bool(_ZEROS_AND_DASHES.match(folded))

    def _blocked(self) -> frozenset[str]:
        return _folded(self.blocked_values)

    @property
    def merges(self) -> bool:
        return self.strategy == "unify"


@functools.lru_cache(maxsize=64)
def _folded(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values)


DEFAULT_POLICY = IdentityPolicy()
