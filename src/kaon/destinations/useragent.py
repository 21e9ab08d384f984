"""The browser, operating system and device class a user agent names, for vendors that take them as fields.

Deliberately small: the major browsers and systems by their documented tokens, most specific first (Edge and
Opera also say "Chrome"; Chrome also says "Safari"). Anything else is unknown (None), never a guess.
Names are Mixpanel's spellings, which GA4 and Amplitude accept as free text.
"""

import functools
import re
from typing import Final, NamedTuple


class Agent(NamedTuple):
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    category: str | None = None  # "mobile", "tablet" or "desktop" (GA4's device categories)


_BROWSERS: Final = (
    ("Microsoft Edge", re.compile(r"\bEdg(?:e|A|iOS)?/([\d.]+)")),
    ("Opera", re.compile(r"\b(?:OPR|OPiOS)/([\d.]+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/([\d.]+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/([\d.]+)")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS)/([\d.]+)")),
    ("Mobile Safari", re.compile(r"\bVersion/([\d.]+).*\bMobile/\S+ Safari/")),
    ("Safari", re.compile(r"\bVersion/([\d.]+).*\bSafari/")),
)
_SYSTEMS: Final = (
    ("Windows", re.compile(r"\bWindows NT ([\d.]+)")),
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b.*? OS (\d+(?:_\d+)*)")),
    ("Android", re.compile(r"\bAndroid ([\d.]+)")),
    ("Chrome OS", re.compile(r"\bCrOS \S+ ([\d.]+)")),
    ("Mac OS X", re.compile(r"\bMac OS X (\d+(?:[_.]\d+)*)")),
    ("Linux", re.compile(r"\bLinux\b()")),
)
_MAX_LENGTH: Final = 1024  # real agents are a few hundred characters; don't scan megabytes of junk


@functools.lru_cache(maxsize=1024)
def parse(user_agent: str | None) -> Agent:
    """What `user_agent` says; every field None when it is absent or unrecognised."""
    if not user_agent or len(user_agent) > _MAX_LENGTH:
        return Agent()
    browser = browser_version = os = os_version = None
    for name, pattern in _BROWSERS:
        if found := pattern.search(user_agent):
            browser, browser_version = name, found.group(1)
            break
    for name, pattern in _SYSTEMS:
        if found := pattern.search(user_agent):
            os, os_version = name, found.group(1).replace("_", ".") or None
            break
    return Agent(browser, browser_version, os, os_version, _category(user_agent, os))


def _category(user_agent: str, os: str | None) -> str | None:
    if "iPad" in user_agent or (os == "Android" and "Mobile" not in user_agent) or "Tablet" in user_agent:
        return "tablet"
    if "Mobi" in user_agent or "iPhone" in user_agent or os == "Android":
        return "mobile"
    return "desktop" if os is not None else None
