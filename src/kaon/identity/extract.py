"""The identities a batch carries, in canonical names, normalised, with blocked values left out."""

from kaon.identity.policy import IdentityPolicy
from kaon.model.batch import Batch
from kaon.model.identities import DEVICE_IDENTITY_TYPES, canonical_identity

Identity = tuple[str, str]  # (identity_type, value)

DEVICE_STAMP = "device_application_stamp"


def normalise(identity_type: str, value: str) -> str:
    value = value.strip()
    return value.lower() if identity_type == "email" else value


def batch_identities(batch: Batch, policy: IdentityPolicy) -> list[Identity]:
    """User identities, device identities and the device stamp, strongest first; blocked ones dropped."""
    found: dict[str, str] = {}
    for name, value in (batch.user_identities or {}).items():
        if value is not None:
            found[canonical_identity(name)] = value
    if batch.device_info is not None:
        for name in DEVICE_IDENTITY_TYPES:
            value = getattr(batch.device_info, name, None)
            if isinstance(value, str):
                found[name] = value
    if batch.mp_deviceid:
        found[DEVICE_STAMP] = batch.mp_deviceid
    out = []
    for identity_type, value in found.items():
        normal = normalise(identity_type, value)
        if not policy.is_blocked(normal):
            out.append((identity_type, normal))
    out.sort(key=lambda item: (policy.rank(item[0]), item[0]))
    return out
