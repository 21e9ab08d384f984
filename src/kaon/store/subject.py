"""A data subject as the main store knows them: what each owner's `erase_subject`/`export_subject` is given."""

import json
from typing import Any

import msgspec


class SyncedMember(msgspec.Struct, kw_only=True):
    """What an audience sync connection added to its output's list for one of the person's profiles: found before
    the erasure (which forgets it), so the person can be removed from the list afterwards."""

    connection_id: str
    output_id: str
    audience_id: str
    audience_name: str
    mpid: int
    identities: dict[str, str]
    output_settings: dict[str, Any] | None = None


class Subject(msgspec.Struct, kw_only=True):
    """A person as the store knows them: profiles (live and merged tombstones) and what identifies them."""

    workspace_id: str
    mpids: set[int]
    identities: set[tuple[str, str]]
    attribute_values: set[str]
    event_ids: list[int]
    # Found with the events (while they are still there), so that owners may erase in any order.
    source_message_ids: list[str] = []
    batch_ids: list[int] = []
    synced: list[SyncedMember] = []

    def needles(self) -> list[str]:
        """Identity values as whole JSON strings (quoted, lower-cased) to look for in raw bodies.

        Quoted, so that erasing `a@x.com` never matches `aa@x.com`; in each spelling JSON allows for it
        (non-ASCII raw or `\\u`-escaped, `/` raw or escaped, and inside a JSON string). Strong identifiers only.
        """
        forms: set[str] = set()
        for _, value in self.identities:
            if len(value) < 3:
                continue
            for form in (json.dumps(value.lower(), ensure_ascii=False), json.dumps(value.lower())):
                forms |= {form, form.replace("/", "\\/")}
        # A rejection's body sample travels through the log as a JSON string inside JSON: quotes escaped again.
        return sorted(forms | {json.dumps(f, ensure_ascii=False)[1:-1] for f in forms})

    def message_needles(self) -> list[str]:
        """How Kaon's own messages quote an identity value (Python's repr: `'a@x.com'`), lower-cased."""
        return sorted({repr(v).lower() for _, v in self.identities if len(v) >= 3})

    def mpid_needles(self) -> list[str]:
        """How a raw or encoded batch names one of the person's profiles by mpid (`"mpid": 123` or `"123"`)."""
        ends = ('"', ",", "}", " ", "\n")  # after the digits, so that mpid 12 does not match 123
        return sorted(f'"mpid":{gap}{quote}{m}{end}' for m in self.mpids for gap in ("", " ")
                      for quote, enders in (("", ends), ('"', ('"',))) for end in enders)

    def all_values(self) -> set[str]:
        return {v for _, v in self.identities} | self.attribute_values | {str(m) for m in self.mpids}
