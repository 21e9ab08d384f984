"""The canonical event batch: one user's identities, context and a list of events (mParticle's shape)."""

from typing import Any

from kaon.model.context import CampaignContext, LibraryContext, PageContext, ReferrerContext
from kaon.model.events import Base, Event, Location
from kaon.model.values import AttrValue, Int64

ENVIRONMENTS = frozenset({"development", "production", "unknown"})


class DeviceInfo(Base, kw_only=True):
    platform: str | None = None
    brand: str | None = None
    product: str | None = None
    device: str | None = None
    android_uuid: str | None = None
    device_manufacturer: str | None = None
    os_version: str | None = None
    device_model: str | None = None
    screen_height: Int64 | None = None
    screen_width: Int64 | None = None
    screen_dpi: Int64 | None = None
    device_country: str | None = None
    locale_language: str | None = None
    locale_country: str | None = None
    network_country: str | None = None
    network_carrier: str | None = None
    network_code: str | None = None
    network_mobile_country_code: str | None = None
    timezone_offset: float | None = None
    build_identifier: str | None = None
    http_header_user_agent: str | None = None
    ios_advertising_id: str | None = None
    att_authorization_status: str | None = None
    att_timestamp_unixtime_ms: Int64 | None = None
    push_token: str | None = None
    cpu_architecture: str | None = None
    is_tablet: bool | None = None
    push_notification_sound_enabled: bool | None = None
    push_notification_vibrate_enabled: bool | None = None
    radio_access_technology: str | None = None
    supports_telephony: bool | None = None
    has_nfc: bool | None = None
    bluetooth_enabled: bool | None = None
    bluetooth_version: str | None = None
    ios_idfv: str | None = None
    android_advertising_id: str | None = None
    build_version_release: str | None = None
    limit_ad_tracking: bool | None = None
    amp_id: str | None = None
    is_dst: bool | None = None
    roku_advertising_id: str | None = None
    roku_publisher_id: str | None = None
    microsoft_advertising_id: str | None = None
    microsoft_publisher_id: str | None = None
    fire_advertising_id: str | None = None


class ApplicationInfo(Base, kw_only=True):
    application_name: str | None = None
    application_version: str | None = None
    application_build_number: str | None = None
    install_referrer: str | None = None
    package: str | None = None
    os: str | None = None
    apple_search_ads_attributes: dict[str, Any] | None = None
    sideloaded_kits_count: Int64 | None = None


class ConsentPurpose(Base, kw_only=True):
    """One GDPR purpose's (or the CCPA `data_sale_opt_out`) consent record."""

    consented: bool
    timestamp_unixtime_ms: Int64 | None = None
    document: str | None = None
    location: str | None = None
    hardware_id: str | None = None
    regulation: str | None = None


class ConsentState(Base, kw_only=True):
    gdpr: dict[str, ConsentPurpose] | None = None
    ccpa: dict[str, ConsentPurpose] | None = None


class DataPlanContext(Base, kw_only=True):
    plan_id: str
    plan_version: Int64 | None = None


class BatchContext(Base, kw_only=True):
    """mParticle's batch context (data plan, location) plus the web context mParticle's batch lacks.

    Each context fact lives in one place: where the batch has a field, the Segment adapter fills that one
    (`ip`, `device_info.http_header_user_agent`, `os_version`, `device_model`, `screen_width`/`_height`,
    `locale_language`/`_country`, `timezone_offset`, `network_carrier`, `application_info`); the fields
    below `location` hold what it lacks. mParticle batches may carry them too (a Kaon extension).
    """

    data_plan: DataPlanContext | None = None
    location: Location | None = None
    page: PageContext | None = None
    campaign: CampaignContext | None = None
    library: LibraryContext | None = None
    referrer: ReferrerContext | None = None
    # As sent ("en-US", "Europe/Berlin"); `device_info` keeps the locale split and the zone as an offset.
    locale: str | None = None
    timezone: str | None = None
    # The operating system's name ("iOS", "Mac OS X"): mParticle's `platform` is a closed set.
    os_name: str | None = None
    # `context.traits` of a call other than identify: the user's traits sent along for destinations.
    # Segment does not set them on the profile (only identify does), and neither does Kaon.
    traits: dict[str, AttrValue] | None = None


class SourceInfo(Base, kw_only=True):
    channel: str | None = None
    partner: str | None = None
    replay_request_id: str | None = None
    replay_job_id: str | None = None
    is_historical: bool | None = None


class Batch(Base, kw_only=True):
    """One user's batch of events, as every front door's input is normalised to."""

    events: list[Event] = []
    source_request_id: str | None = None
    environment: str = "production"
    schema_version: Int64 | None = None
    mpid: Int64 | None = None
    ip: str | None = None
    # The web SDK sends `null` for a user without identities.
    user_identities: dict[str, str | None] | None = {}
    user_attributes: dict[str, AttrValue] = {}
    deleted_user_attributes: list[str] = []
    device_info: DeviceInfo | None = None
    application_info: ApplicationInfo | None = None
    consent_state: ConsentState | None = None
    context: BatchContext | None = None
    integration_attributes: dict[str, dict[str, Any]] | None = None
    partner_identities: dict[str, str] | None = None
    mp_deviceid: str | None = None
    source_info: SourceInfo | None = None
    timestamp_unixtime_ms: Int64 | None = None
    sdk_version: str | None = None
