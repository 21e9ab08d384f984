"""User agents → browser, operating system and device class: the common agents, and nothing guessed."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaon.destinations.useragent import Agent, parse

AGENTS = {
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36": Agent("Chrome", "120.0.0.0", "Mac OS X", "10.15.7", "desktop"),
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 Edg/120.0.2210.91": Agent("Microsoft Edge", "120.0.2210.91", "Windows", "10.0", "desktop"),
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0":
        Agent("Firefox", "121.0", "Linux", None, "desktop"),
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Mobile/15E148 Safari/604.1": Agent("Mobile Safari", "17.2", "iOS", "17.2", "mobile"),
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 "
    "Mobile/15E148 Safari/604.1": Agent("Chrome", "120.0.6099.119", "iOS", "16.6", "tablet"),
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 "
    "Mobile Safari/537.36": Agent("Chrome", "120.0.6099.144", "Android", "14", "mobile"),
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Safari/605.1.15": Agent("Safari", "17.2", "Mac OS X", "14.2.1", "desktop"),
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36": Agent("Chrome", "120.0.0.0", "Chrome OS", "14541.0.0", "desktop"),
}


@pytest.mark.parametrize("agent", list(AGENTS))
def test_common_agents(agent: str) -> None:
    assert parse(agent) == AGENTS[agent]


@pytest.mark.parametrize("agent", [None, "", "curl/8.5.0", "analytics-python/2.3.0", "x" * 5000])
def test_unknown_agents_say_nothing(agent: str | None) -> None:
    assert parse(agent) == Agent()


@given(st.text(max_size=300))
def test_any_text_parses_without_error(agent: str) -> None:
    assert isinstance(parse(agent), Agent)
