"""Settings read from the environment: KAON_PUBLIC_URL is checked when read, so a typo fails at start."""

import pytest

from kaon.settings import public_url


def test_public_url_is_optional_and_normalised() -> None:
    assert public_url({}) is None
    assert public_url({"KAON_PUBLIC_URL": " "}) is None
    assert public_url({"KAON_PUBLIC_URL": "https://cdp.example.com/"}) == "https://cdp.example.com"
    assert public_url({"KAON_PUBLIC_URL": "http://10.0.0.5:8080/kaon"}) == "http://10.0.0.5:8080/kaon"


@pytest.mark.parametrize("value", ["cdp.example.com", "ftp://cdp.example.com", "https://", "https://x.io/?a=1",
                                   "https://x.io/#f"])
def test_a_public_url_that_is_not_an_http_url_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="KAON_PUBLIC_URL"):
        public_url({"KAON_PUBLIC_URL": value})
