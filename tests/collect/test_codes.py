"""Every error code raised anywhere is in the catalog, and the docs table is generated from it."""

import re
from pathlib import Path

from kaon.collect.codes import ERROR_CODES

ROOT = Path(__file__).resolve().parents[2]
RAISED = re.compile(r'(?:PayloadError|LimitExceeded|CollectError|error_body|_refuse)\(\s*(?:\d+,\s*)?"([A-Z_]+)"')


def test_every_raised_code_is_catalogued() -> None:
    sources = [*(ROOT / "src/kaon/collect").glob("*.py"), *(ROOT / "src/kaon/model").glob("*.py"),
               *(ROOT / "src/kaon/identity").glob("*.py")]
    raised = {code for path in sources for code in RAISED.findall(path.read_text())}
    assert raised, "the pattern must find the codes"
    assert raised <= set(ERROR_CODES), f"undocumented codes: {sorted(raised - set(ERROR_CODES))}"
