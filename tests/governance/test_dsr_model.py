"""Validation of OpenDSR v3 submissions: every refusal names its reason."""

import uuid
from typing import Any

import msgspec
import pytest

from kaon.governance.dsr_model import DsrError, parse_submission


def submit(**changes: Any) -> Any:
    body: dict[str, Any] = {"subject_request_id": str(uuid.uuid4()), "subject_request_type": "erasure",
                            "subject_identities": {"email": {"value": "Ann@Example.org", "encoding": "raw"}}}
    body.update(changes)
    return parse_submission(msgspec.json.encode(body))


def refused(**changes: Any) -> list[str]:
    with pytest.raises(DsrError) as caught:
        submit(**changes)
    assert caught.value.status == 400
    return [e["message"] for e in caught.value.errors]


def test_names_map_to_kaon_identity_types() -> None:
    parsed = submit(subject_identities={"controller_customer_id": {"value": "c1", "encoding": "raw"},
                                        "ios_vendor_id": {"value": "v1", "encoding": "raw"},
                                        "android_id": {"value": "a1", "encoding": "raw"}},
                    extensions={"opendsr.mparticle.com": {"skip_waiting_period": True, "subject_identities": {
                        "other6": {"value": "o6", "encoding": "raw"}}}})
    assert parsed.identities == {"customer_id": "c1", "ios_idfv": "v1", "android_uuid": "a1", "other_id_6": "o6"}
    assert parsed.skip_waiting_period
    assert submit().identities == {"email": "ann@example.org"}


def test_refusals() -> None:
    assert any("UUID" in m for m in refused(subject_request_id="x"))
    assert any("raw" in m for m in refused(subject_identities={"email": {"value": "a", "encoding": "md5"}}))
    assert any("only identity" in m for m in refused(extensions={"opendsr.mparticle.com": {
        "subject_identities": {"mpid": {"value": "12", "encoding": "raw"}}}}))
    assert any("not a supported" in m for m in refused(subject_identities={"twitter": {"value": "a"}}))
    assert any("at least one" in m for m in refused(subject_identities={}))
    assert any("subject_request_type" in m for m in refused(subject_request_type="delete"))
    with pytest.raises(DsrError):
        parse_submission(b"{not json")
