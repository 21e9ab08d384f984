"""Segment's `context` mapped to the batch's `BatchContext`: the page, campaign, library and the rest mParticle lacks.

What mParticle's batch has a field for (ip, user agent, device, os version, app, screen, locale, time zone
offset, carrier) the adapter puts there (`kaon.model.segment`); this module keeps the rest, typed:

- `page` (url, path, referrer, title, search) on every call, not only `page` calls;
- `campaign`: `name`, `source`, `medium`, `term`, `content`, and any other key as text in `other`;
- `library` (name, version), `referrer` (type, name, url, link, id), `os_name`, and `locale` and
  `timezone` as sent;
- `location`: latitude, longitude and city; country and region only when they are codes (2 letters; up to 3);
- `traits` of calls other than identify. Segment's rule (Spec: Track, "Sending Traits in a Track Call"):
  `context.traits` on a track or page call reach destinations but do not update the user's profile; only
  an identify call does. So they are kept here for destinations, never made user attributes. (An
  identify call's `context.traits` are its traits: RudderStack's SDKs send them only there.)
"""

from collections.abc import Callable
from typing import Any

from kaon.model.batch import BatchContext
from kaon.model.context import CampaignContext, LibraryContext, PageContext, ReferrerContext
from kaon.model.events import Location
from kaon.model.segment_commerce import number, text
from kaon.model.segment_wire import Context, present
from kaon.model.values import AttrValue

Flatten = Callable[[dict[str, Any]], dict[str, AttrValue] | None]
_CAMPAIGN_FIELDS = ("name", "source", "medium", "term", "content")


def batch_context(context: Context, call_type: str | None, flatten: Flatten) -> BatchContext | None:
    """The batch context for a call's (merged) context; None when it carries none of these parts."""
    traits = flatten(context.traits) if context.traits and call_type != "identify" else None
    found = BatchContext(
        location=_location(context),
        page=_page(context),
        campaign=_campaign(context.campaign),
        library=_library(context),
        referrer=_referrer(context),
        locale=context.locale or None,
        timezone=context.timezone or None,
        os_name=(context.os.name or None) if context.os is not None else None,
        traits=traits,
    )
    return None if found == BatchContext() else found


def _page(context: Context) -> PageContext | None:
    page = context.page
    if page is None:
        return None
    found = PageContext(url=page.url or None, path=page.path or None, referrer=page.referrer or None,
                        title=page.title or None, search=page.search or None)
    return None if found == PageContext() else found


def _campaign(raw: dict[str, Any] | None) -> CampaignContext | None:
    if not raw:
        return None
    named = {key: text(raw.get(key)) for key in _CAMPAIGN_FIELDS}
    # Custom UTM parameters and ids: scalars as text; nested values are nobody's UTM parameter.
    other = {key: found for key, value in raw.items()
             if key not in _CAMPAIGN_FIELDS and (found := text(value)) is not None}
    campaign = CampaignContext(**named, other=other or None)
    return None if campaign == CampaignContext() else campaign


def _library(context: Context) -> LibraryContext | None:
    library = context.library
    if library is None or (not library.name and present(library.version) is None):
        return None
    return LibraryContext(name=library.name or None, version=present(library.version))


def _referrer(context: Context) -> ReferrerContext | None:
    referrer = context.referrer
    if referrer is None:
        return None
    found = ReferrerContext(type=referrer.type or None, name=referrer.name or None, url=referrer.url or None,
                            link=referrer.link or None, id=present(referrer.id))
    return None if found == ReferrerContext() else found


def _location(context: Context) -> Location | None:
    where = context.location
    if where is None:
        return None
    country = (where.country or "").strip()
    region = (where.region or "").strip()
    latitude, longitude = number(where.latitude), number(where.longitude)
    found = Location(
        latitude=latitude if latitude is not None and -90 <= latitude <= 90 else None,
        longitude=longitude if longitude is not None and -180 <= longitude <= 180 else None,
        city_name=where.city or None,
        # mParticle's location holds codes; Segment SDKs often send names ("United States"): keep codes only.
        country_code=country.upper() if len(country) == 2 and country.isalpha() else None,
        region_code=region.upper() if 0 < len(region) <= 3 else None,
    )
    return None if found == Location() else found
