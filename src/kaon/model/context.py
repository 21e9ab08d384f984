"""Parts of Segment's `context` that mParticle's batch has no field for: page, campaign, library, referrer.

They are fields of the batch's `BatchContext` (`kaon.model.batch`), which says where each context fact lives.
"""

from kaon.model.events import Base


class PageContext(Base, kw_only=True):
    """The page in the browser when the call was made (Segment's `context.page`)."""

    url: str | None = None
    path: str | None = None
    referrer: str | None = None
    title: str | None = None
    search: str | None = None


class CampaignContext(Base, kw_only=True):
    """The campaign (UTM parameters) that brought the user (Segment's `context.campaign`)."""

    name: str | None = None  # utm_campaign
    source: str | None = None
    medium: str | None = None
    term: str | None = None
    content: str | None = None
    # Any other campaign key the SDK sent (custom UTM parameters, `id`, ...), as text.
    other: dict[str, str] | None = None

    def utm(self) -> dict[str, str]:
        """The campaign as `utm_*` parameters (`name` is `utm_campaign`); the other keys as they were sent."""
        found = {f"utm_{key}": value for key, value in (
            ("source", self.source), ("medium", self.medium), ("campaign", self.name), ("term", self.term),
            ("content", self.content)) if value is not None}
        for key, value in (self.other or {}).items():
            found.setdefault(key if key.startswith("utm_") else f"utm_{key}", value)
        return found


class LibraryContext(Base, kw_only=True):
    """The SDK that sent the call (Segment's `context.library`)."""

    name: str | None = None
    version: str | None = None


class ReferrerContext(Base, kw_only=True):
    """How the user was referred to the app (Segment's `context.referrer`: deep links, ad networks)."""

    type: str | None = None
    name: str | None = None
    url: str | None = None
    link: str | None = None
    id: str | None = None
