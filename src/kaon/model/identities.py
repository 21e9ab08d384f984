"""Identity type names across the APIs (IDSync, Events API batch, profiles), mapped to one spelling.

Kaon's canonical name is the Events API batch name (`customer_id`, `other_id_2`, ...).
"""

# Events API user_identities keys, canonical.
USER_IDENTITY_TYPES = (
    "customer_id", "email", "other", "other_id_2", "other_id_3", "other_id_4", "other_id_5",
    "other_id_6", "other_id_7", "other_id_8", "other_id_9", "other_id_10", "mobile_number",
    "phone_number_2", "phone_number_3", "facebook", "twitter", "google", "microsoft", "yahoo",
    "facebook_custom_audience_id", "alias",
)

# device_info fields that are device identities.
DEVICE_IDENTITY_TYPES = (
    "ios_advertising_id", "ios_idfv", "android_advertising_id", "android_uuid", "push_token",
    "roku_advertising_id", "roku_publisher_id", "fire_advertising_id", "amp_id",
    "microsoft_advertising_id", "microsoft_publisher_id",
)

# Lenient spellings real SDKs send in batches, mapped to the canonical name.
BATCH_ALIASES = {
    "customerid": "customer_id",
    "other2": "other_id_2", "other3": "other_id_3", "other4": "other_id_4", "other5": "other_id_5",
    "other6": "other_id_6", "other7": "other_id_7", "other8": "other_id_8", "other9": "other_id_9",
    "other10": "other_id_10",
    "facebookcustomaudienceid": "facebook_custom_audience_id",
}

# IDSync known_identities names → canonical name.
IDSYNC_TO_CANONICAL = {
    **BATCH_ALIASES,
    "email": "email", "other": "other", "mobile_number": "mobile_number",
    "phone_number_2": "phone_number_2", "phone_number_3": "phone_number_3",
    "facebook": "facebook", "twitter": "twitter", "google": "google", "microsoft": "microsoft",
    "yahoo": "yahoo", "alias": "alias",
    "ios_idfa": "ios_advertising_id", "ios_idfv": "ios_idfv", "android_aaid": "android_advertising_id",
    "android_uuid": "android_uuid", "push_token": "push_token", "roku_aid": "roku_advertising_id",
    "roku_publisher_id": "roku_publisher_id", "fire_aid": "fire_advertising_id", "amp_id": "amp_id",
    "device_application_stamp": "device_application_stamp",
}


def canonical_identity(name: str) -> str:
    """The canonical spelling of a batch identity key (`customerid` → `customer_id`)."""
    return BATCH_ALIASES.get(name, name)

CANONICAL_TO_IDSYNC = {canonical: name for name, canonical in IDSYNC_TO_CANONICAL.items()
                       if name not in BATCH_ALIASES or name == "customerid"}
CANONICAL_TO_IDSYNC.update({"customer_id": "customerid", **{f"other_id_{n}": f"other{n}" for n in range(2, 11)},
                            "facebook_custom_audience_id": "facebookcustomaudienceid"})


def idsync_name(canonical: str) -> str:
    """The IDSync spelling of a canonical identity type (`customer_id` → `customerid`)."""
    return CANONICAL_TO_IDSYNC.get(canonical, canonical)
