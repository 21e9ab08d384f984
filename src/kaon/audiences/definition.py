"""Audience definitions: a tree of `all` / `any` / `not` over event and profile criteria (docs/audiences.md).

Each node is an object with one key. Parsing checks everything and answers the JSON pointer of the first bad
node (`DefinitionError.pointer`), so the admin API can say where a definition is wrong.
"""

from dataclasses import dataclass
from typing import Any

from kaon.audiences.conditions import Condition, as_time_ms, compile_condition, day_start
from kaon.audiences.errors import DefinitionError
from kaon.audiences.matching import EventMatch, compile_match
from kaon.durations import DurationError, parse_duration

DAY_MS = 86_400_000
DEFAULT_LOOKBACK_DAYS = 30
MAX_LOOKBACK_DAYS = 365
MAX_NODES = 200
MAX_DEPTH = 12
MAX_COUNT = 1_000  # frequency thresholds (and the event times a criterion keeps per profile)
PROFILE_KINDS = ("user_attribute", "calculated_attribute", "identity", "device")
DEVICE_FIELDS = ("platform", "os_version", "brand", "product", "device_model", "device_manufacturer",
                 "network_carrier", "device_country", "locale_language", "application_version", "application_name")
PROFILE_FACTS = frozenset({"user_attribute", "identity", "device", "consent", "first_seen", "last_seen"})
NODE_KINDS = ("all", "any", "not", "event", "sequence", *PROFILE_KINDS, "consent", "first_seen", "last_seen",
              "audience")


@dataclass(frozen=True)
class All:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    child: "Node"


@dataclass(frozen=True)
class EventLeaf:
    key: str  # the criterion's key in a profile's state (its position among the definition's event criteria)
    match: EventMatch
    within_ms: int | None = None
    between: tuple[int, int] | None = None  # [since, until) unix ms, UTC calendar days
    at_least: int = 1
    at_most: int | None = None


@dataclass(frozen=True)
class SequenceLeaf:
    key: str
    first: EventMatch
    then: EventMatch
    negated: bool  # then_not: A, then no B within `gap_ms` after it
    gap_ms: int
    within_ms: int | None = None  # how recent A must be


@dataclass(frozen=True)
class ProfileLeaf:
    kind: str  # user_attribute, calculated_attribute, identity, device
    name: str  # lower-cased attribute name, identity type or device field
    condition: Condition


@dataclass(frozen=True)
class ConsentLeaf:
    regulation: str  # gdpr or ccpa
    purpose: str
    wanted: bool  # gdpr: consented; ccpa: opted out


@dataclass(frozen=True)
class SeenLeaf:
    which: str  # first_seen or last_seen
    within_ms: int | None
    condition: Condition | None


@dataclass(frozen=True)
class AudienceLeaf:
    audience_id: str
    member: bool


Node = All | AnyOf | Not | EventLeaf | SequenceLeaf | ProfileLeaf | ConsentLeaf | SeenLeaf | AudienceLeaf


@dataclass(frozen=True)
class AudienceDefinition:
    root: Node
    lookback_ms: int
    event_leaves: tuple[EventLeaf | SequenceLeaf, ...]
    references: frozenset[str]  # audiences this one's criteria name
    uses_profile: bool  # reads attributes, identities, consent or seen times (loaded only when needed)
    calculated_names: frozenset[str] = frozenset()  # lower-cased names a calculated attribute may answer
    # The profile facts its criteria read: kinds (`user_attribute`, `consent`, `device`, ...) and, for user
    # attributes and device fields, `kind:name` (lower-cased), so a batch that changed other names skips it.
    reads: frozenset[str] = frozenset()

    @property
    def uses_device(self) -> bool:
        return "device" in self.reads


def _duration(raw: object, pointer: str) -> int:
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise DefinitionError(pointer, "must be a duration such as 24h, 7d or 90m")
    try:
        ms = parse_duration(raw)
    except DurationError as error:
        raise DefinitionError(pointer, str(error)) from None
    if ms <= 0:
        raise DefinitionError(pointer, "must be longer than zero")
    return ms


def _count(raw: object, pointer: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_COUNT:
        raise DefinitionError(pointer, f"must be a whole number from 0 to {MAX_COUNT}")
    return raw


def _between(raw: object, pointer: str) -> tuple[int, int]:
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "must be {\"from\": date, \"to\": date} (UTC calendar days, both inclusive)")
    since, until = as_time_ms(raw.get("from")), as_time_ms(raw.get("to"))
    if since is None:
        raise DefinitionError(f"{pointer}/from", "must be an ISO-8601 date")
    if until is None:
        raise DefinitionError(f"{pointer}/to", "must be an ISO-8601 date")
    start, end = day_start(since), day_start(until) + DAY_MS
    if end <= start:
        raise DefinitionError(f"{pointer}/to", "must not be before `from`")
    return start, end


CONDITION_KEYS = frozenset({"operator", "value", "values", "min_value", "max_value", "type"})
MATCH_KEYS = frozenset({"event_type", "name", "event_name", "custom_event_type", "conditions", "product_conditions"})
KEYS: dict[str, frozenset[str]] = {
    "event": MATCH_KEYS | {"within", "between", "frequency"},
    "sequence": frozenset({"first", "then", "then_not", "gap", "within"}),
    "user_attribute": CONDITION_KEYS | {"name"}, "calculated_attribute": CONDITION_KEYS | {"name"},
    "identity": CONDITION_KEYS | {"identity_type"}, "device": CONDITION_KEYS | {"field"},
    "consent": frozenset({"regulation", "purpose", "consented", "opted_out"}),
    "first_seen": CONDITION_KEYS | {"within"}, "last_seen": CONDITION_KEYS | {"within"},
    "audience": frozenset({"id", "member"}),
}


def known_keys(body: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    """A key the criterion does not read is refused: a typo (`witin`) would otherwise change what it means."""
    for key in body:
        if key not in allowed:
            raise DefinitionError(f"{where}/{key}", f"unknown key {key!r}: one of {', '.join(sorted(allowed))}")


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0
        self.event_leaves: list[EventLeaf | SequenceLeaf] = []
        self.references: set[str] = set()
        self.uses_profile = False
        self.calculated_names: set[str] = set()
        self.reads: set[str] = set()

    def node(self, raw: object, pointer: str, depth: int) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise DefinitionError(pointer, f"a definition has at most {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise DefinitionError(pointer, f"a definition nests at most {MAX_DEPTH} levels")
        if not isinstance(raw, dict) or len(raw) != 1:
            raise DefinitionError(pointer, f"a node is an object with one key: {', '.join(NODE_KINDS)}")
        kind, body = next(iter(raw.items()))
        where = f"{pointer}/{kind}"
        self.reads.add(kind)
        if kind in ("all", "any"):
            if not isinstance(body, list) or not body:
                raise DefinitionError(where, "must be a non-empty list of nodes")
            children = tuple(self.node(c, f"{where}/{i}", depth + 1) for i, c in enumerate(body))
            return All(children) if kind == "all" else AnyOf(children)
        if kind == "not":
            return Not(self.node(body, where, depth + 1))
        if kind not in NODE_KINDS:
            raise DefinitionError(pointer, f"unknown node {kind!r}: one of {', '.join(NODE_KINDS)}")
        if not isinstance(body, dict):
            raise DefinitionError(where, "must be an object")
        known_keys(body, KEYS[kind], where)
        built: Node = getattr(self, kind)(body, where)
        return built

    def event(self, body: dict[str, Any], where: str) -> EventLeaf:
        match = compile_match(body, where)
        within = _duration(body["within"], f"{where}/within") if body.get("within") is not None else None
        between = _between(body["between"], f"{where}/between") if body.get("between") is not None else None
        if within is not None and between is not None:
            raise DefinitionError(where, "give `within` or `between`, not both")
        at_least, at_most = 1, None
        frequency = body.get("frequency")
        if frequency is not None:
            if not isinstance(frequency, dict) or len(frequency) != 1:
                raise DefinitionError(f"{where}/frequency", "must be one of {\"at_least\": n}, {\"at_most\": n}, "
                                      "{\"exactly\": n}")
            (how, n), = frequency.items()
            count = _count(n, f"{where}/frequency/{how}")
            if how == "at_least":
                at_least = count
            elif how == "at_most":
                at_least, at_most = 0, count
            elif how == "exactly":
                at_least, at_most = count, count
            else:
                raise DefinitionError(f"{where}/frequency/{how}", "must be at_least, at_most or exactly")
        leaf = EventLeaf(str(len(self.event_leaves)), match, within, between, at_least, at_most)
        self.event_leaves.append(leaf)
        return leaf

    def sequence(self, body: dict[str, Any], where: str) -> SequenceLeaf:
        first = body.get("first")
        if not isinstance(first, dict):
            raise DefinitionError(f"{where}/first", "is required: the first event (event_type, name, conditions)")
        negated = "then_not" in body
        if negated and "then" in body:
            raise DefinitionError(where, "give `then` or `then_not`, not both")
        second = "then" if "then" in body else "then_not"
        then = body.get(second)
        if not isinstance(then, dict):
            raise DefinitionError(f"{where}/{second}", "is required: `then` or `then_not`, the event that follows")
        known_keys(first, MATCH_KEYS, f"{where}/first")
        known_keys(then, MATCH_KEYS, f"{where}/{second}")
        leaf = SequenceLeaf(str(len(self.event_leaves)), compile_match(first, f"{where}/first"),
                            compile_match(then, f"{where}/{second}"), negated,
                            _duration(body.get("gap"), f"{where}/gap"),
                            _duration(body["within"], f"{where}/within") if body.get("within") is not None else None)
        self.event_leaves.append(leaf)
        return leaf

    def _profile(self, kind: str, body: dict[str, Any], where: str, key: str) -> ProfileLeaf:
        name = body.get(key)
        if not isinstance(name, str) or not name or len(name) > 256:
            raise DefinitionError(f"{where}/{key}", "is required (at most 256 characters)")
        if kind == "device" and name not in DEVICE_FIELDS:
            raise DefinitionError(f"{where}/{key}", f"must be one of {', '.join(DEVICE_FIELDS)}")
        if kind != "device":
            self.uses_profile = True
        if kind in ("user_attribute", "calculated_attribute"):  # a calculated attribute wins over a user attribute
            self.calculated_names.add(name.lower())
        if kind in ("user_attribute", "device"):
            self.reads.add(f"{kind}:{name.lower()}")
        return ProfileLeaf(kind, name.lower(), compile_condition(body, where))

    def user_attribute(self, body: dict[str, Any], where: str) -> ProfileLeaf:
        return self._profile("user_attribute", body, where, "name")

    def calculated_attribute(self, body: dict[str, Any], where: str) -> ProfileLeaf:
        return self._profile("calculated_attribute", body, where, "name")

    def identity(self, body: dict[str, Any], where: str) -> ProfileLeaf:
        return self._profile("identity", body, where, "identity_type")

    def device(self, body: dict[str, Any], where: str) -> ProfileLeaf:
        return self._profile("device", body, where, "field")

    def consent(self, body: dict[str, Any], where: str) -> ConsentLeaf:
        self.uses_profile = True
        regulation = body.get("regulation")
        if regulation == "gdpr":
            purpose = body.get("purpose")
            if not isinstance(purpose, str) or not purpose.strip():
                raise DefinitionError(f"{where}/purpose", "is required for gdpr")
            wanted = body.get("consented", True)
            if not isinstance(wanted, bool):
                raise DefinitionError(f"{where}/consented", "must be true or false")
            return ConsentLeaf("gdpr", purpose.strip().lower(), wanted)
        if regulation == "ccpa":
            wanted = body.get("opted_out", True)
            if not isinstance(wanted, bool):
                raise DefinitionError(f"{where}/opted_out", "must be true or false")
            return ConsentLeaf("ccpa", "data_sale_opt_out", wanted)
        raise DefinitionError(f"{where}/regulation", "must be gdpr or ccpa")

    def _seen(self, which: str, body: dict[str, Any], where: str) -> SeenLeaf:
        self.uses_profile = True
        if body.get("within") is not None:
            return SeenLeaf(which, _duration(body["within"], f"{where}/within"), None)
        condition = compile_condition(body, where)
        if condition.operator not in ("before", "after", "between_dates"):
            raise DefinitionError(f"{where}/operator", "must be before, after or between_dates (or give `within`)")
        return SeenLeaf(which, None, condition)

    def first_seen(self, body: dict[str, Any], where: str) -> SeenLeaf:
        return self._seen("first_seen", body, where)

    def last_seen(self, body: dict[str, Any], where: str) -> SeenLeaf:
        return self._seen("last_seen", body, where)

    def audience(self, body: dict[str, Any], where: str) -> AudienceLeaf:
        audience_id = body.get("id")
        if not isinstance(audience_id, str) or not audience_id:
            raise DefinitionError(f"{where}/id", "is required: the id of another audience")
        member = body.get("member", True)
        if not isinstance(member, bool):
            raise DefinitionError(f"{where}/member", "must be true or false")
        self.references.add(audience_id)
        return AudienceLeaf(audience_id, member)


def parse_audience(definition: object, lookback_days: object = None, pointer: str = "#/definition"
                   ) -> AudienceDefinition:
    if lookback_days is None:
        lookback_days = DEFAULT_LOOKBACK_DAYS
    if isinstance(lookback_days, bool) or not isinstance(lookback_days, int) or not (
            1 <= lookback_days <= MAX_LOOKBACK_DAYS):
        raise DefinitionError("#/lookback_days", f"must be a whole number of days from 1 to {MAX_LOOKBACK_DAYS}")
    parser = _Parser()
    root = parser.node(definition, pointer, 1)
    return AudienceDefinition(root, lookback_days * DAY_MS, tuple(parser.event_leaves),
                              frozenset(parser.references), parser.uses_profile,
                              frozenset(parser.calculated_names),
                              frozenset(r for r in parser.reads if r.partition(":")[0] in PROFILE_FACTS))
