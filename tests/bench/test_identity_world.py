"""The identity benchmark's world generator and its reference partition (union-find)."""

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from identity_world import (
    DEVICE_STAMP,
    ZEROED_AD_ID,
    World,
    adversarial_world,
    batch_identities,
    connected_components,
    honest_world,
    is_blocked,
)


def batch(user: dict[str, str] | None = None, device: dict[str, str] | None = None,
          stamp: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"environment": "production", "user_identities": user or {},
                           "device_info": {"platform": "iOS", **(device or {})}, "events": []}
    if stamp is not None:
        out["mp_deviceid"] = stamp
    return out


@pytest.fixture(scope="module")
def honest() -> World:
    return honest_world(150, seed=7)


@pytest.fixture(scope="module")
def adversarial() -> World:
    return adversarial_world(200, seed=7)


@pytest.mark.parametrize("value", ["", "null", "NULL", " Undefined ", "none", "anonymous", "nan", "-1",
                                   "test@test.com", "TEST@test.com", ZEROED_AD_ID, "0", "0000-00"])
def test_blocked_values(value: str) -> None:
    assert is_blocked(value)


@pytest.mark.parametrize("value", ["c1", "nullable", "-12", "a@test.com", "00000000-0000-0000-0000-000000000001"])
def test_usable_values(value: str) -> None:
    assert not is_blocked(value)


def test_batch_identities_canonical_normalised_and_unblocked() -> None:
    found = batch_identities(batch({"customer_id": "c1", "email": " Ann@Example.COM ", "other": "null"},
                                   {"ios_idfv": "V1", "ios_advertising_id": ZEROED_AD_ID}, "s1"))
    assert sorted(found) == [("customer_id", "c1"), (DEVICE_STAMP, "s1"), ("email", "ann@example.com"),
                             ("ios_idfv", "V1")]


def test_union_find_on_a_hand_made_example() -> None:
    batches = [
        batch({"customer_id": "a"}, stamp="s1"),
        batch(device={"ios_idfv": "v1"}, stamp="s1"),
        batch({"email": "b@x.io"}, stamp="s2"),
        batch(device={"ios_idfv": "v1", "ios_advertising_id": "ad1"}),  # joins ad1 to a's component
        batch({"customer_id": "c"}),  # alone
        batch({"email": "test@test.com"}, stamp="s2"),  # a blocked value joins nothing
        batch({"email": "test@test.com", "customer_id": "a"}),
        batch({"mobile_number": "m"}, stamp="s3"),
        batch({"email": "B@x.io"}, stamp="s3"),  # emails compare case-insensitively: joins s2's component
    ]
    assert set(connected_components(batches)) == {
        frozenset({("customer_id", "a"), (DEVICE_STAMP, "s1"), ("ios_idfv", "v1"), ("ios_advertising_id", "ad1")}),
        frozenset({("email", "b@x.io"), (DEVICE_STAMP, "s2"), ("mobile_number", "m"), (DEVICE_STAMP, "s3")}),
        frozenset({("customer_id", "c")}),
    }


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=4), max_size=25))
def test_union_find_matches_a_naive_closure(groups: list[list[int]]) -> None:
    # A batch holds one value per type, so each group's values go in `other_id_2`, `other_id_3`, ...
    batches = [batch({f"other_id_{i + 2}": f"v{n}" for i, n in enumerate(group)}) for group in groups]
    components: list[set[tuple[str, str]]] = []
    for b in batches:
        ids = set(batch_identities(b))
        touching = [c for c in components if c & ids]
        components = [c for c in components if not c & ids] + [ids.union(*touching)]
    assert set(connected_components(batches)) == {frozenset(c) for c in components}


def test_same_seed_same_world_other_seed_other_world() -> None:
    assert honest_world(40, seed=3) == honest_world(40, seed=3)
    assert honest_world(40, seed=3).batches != honest_world(40, seed=4).batches
    assert adversarial_world(60, seed=3) == adversarial_world(60, seed=3)


def test_orders_shuffle_the_same_batches(honest: World) -> None:
    other = honest.reordered(1)
    assert other.batches != honest.batches
    assert sorted(map(repr, other.batches)) == sorted(map(repr, honest.batches))
    assert other.reordered(0) == honest
    assert honest_world(150, seed=7, order=1) == other


def test_batches_are_valid_events_api_batches_with_unique_message_ids(adversarial: World) -> None:
    ids = [b["events"][0]["data"]["source_message_id"] for b in adversarial.batches]
    assert len(set(ids)) == len(ids) == adversarial.events
    for b in adversarial.batches:
        assert b["environment"] == "production"
        assert b["device_info"]["platform"] in ("iOS", "Android")
        assert isinstance(b["mp_deviceid"], str)
        assert b["events"][0]["event_type"] == "custom_event"


def test_honest_components_are_exactly_the_people(honest: World) -> None:
    assert honest.expected == frozenset(p.identities for p in honest.people)
    assert len(honest.expected) == len(honest.people)
    assert not honest.shared and not honest.households and not honest.recycled


def test_worlds_carry_junk_and_zeroed_ids_that_never_reach_the_truth(honest: World) -> None:
    raw = [v for b in honest.batches for v in (*b["user_identities"].values(), *b["device_info"].values())]
    assert ZEROED_AD_ID in raw and "null" in raw and "test@test.com" in raw and "" in raw
    assert not any(is_blocked(value) for component in honest.expected for _, value in component)


def test_people_have_several_devices_rotating_stamps_and_logins(honest: World) -> None:
    stamps = [sum(1 for kind, _ in p.identities if kind == DEVICE_STAMP) for p in honest.people]
    vendors = [sum(1 for kind, _ in p.identities if kind in ("ios_idfv", "android_uuid")) for p in honest.people]
    assert max(stamps) > max(vendors) >= 2
    assert 0 < sum(1 for p in honest.people if p.customer_id) < len(honest.people)
    kinds = {kind for p in honest.people for kind, _ in p.identities}
    assert {"customer_id", "email", "mobile_number", "ios_advertising_id", "android_advertising_id"} <= kinds


def test_household_tablets_are_used_by_each_member_with_their_own_customer_id(adversarial: World) -> None:
    assert adversarial.households
    for household in adversarial.households:
        assert 2 <= len(household) <= 3
        members = [adversarial.people[i] for i in household]
        assert all(m.customer_id for m in members)
        tablets = [m.identities & adversarial.shared for m in members]
        vendor = {i for i in tablets[0] if i[0] in ("ios_idfv", "android_uuid")}
        assert len(vendor) == 1 and all(vendor <= t for t in tablets)


def test_recycled_numbers_are_sent_with_each_owners_customer_id(adversarial: World) -> None:
    assert adversarial.recycled
    for number, earlier, later in adversarial.recycled:
        owners = (adversarial.people[earlier], adversarial.people[later])
        assert all(("mobile_number", number) in owner.identities for owner in owners)
        senders = {b["user_identities"].get("customer_id") for b in adversarial.batches
                   if b["user_identities"].get("mobile_number") == number}
        assert senders == {owner.customer_id for owner in owners}


def test_adversarial_components_join_people_with_different_customer_ids(adversarial: World) -> None:
    joined = [c for c in adversarial.expected if sum(1 for kind, _ in c if kind == "customer_id") >= 2]
    assert joined  # naive unification would merge different customers: the safeguard has work to do
    own = adversarial.person_partition()
    assert all(len({kind_value for kind_value in group if kind_value[0] == "customer_id"}) <= 1 for group in own)


def test_without_shared_identities_the_adversarial_components_are_the_people(adversarial: World) -> None:
    assert set(connected_components(adversarial.batches, ignore=adversarial.shared)) == set(
        adversarial.person_partition())


def test_every_batch_sets_last_batch_and_each_component_has_one_newest(honest: World) -> None:
    from identity_world import LAST_BATCH

    for b in honest.batches:
        assert b["user_attributes"] == {LAST_BATCH: b["events"][0]["data"]["source_message_id"]}
    newest = honest.newest_batches()
    assert set(newest) == set(honest.expected)
    owner = honest.component_of_batches()
    times = {str(b["events"][0]["data"]["source_message_id"]): b["events"][0]["data"]["timestamp_unixtime_ms"]
             for b in honest.batches}
    for group, message_id in newest.items():
        if message_id is None:
            continue
        assert owner[message_id] == group
        assert times[message_id] == max(t for m, t in times.items() if owner[m] == group)
    assert newest == honest.reordered(1).newest_batches()
