"""Step: hand each stored event to every connection of its input — a delivery job, or a counted drop.

Runs in the slice's transaction, so a job exists exactly when its event does (stages meet at tables).
Historical batches are not forwarded (mParticle's rule).
"""

from collections import Counter

import msgspec

from kaon.connections.evaluate import ProfileFacts, evaluate
from kaon.connections.rules import Rules, parse_rules
from kaon.delivery import store as delivery_store
from kaon.destinations.event import DeliveryEvent, batch_event
from kaon.identity.store import ProfileStore
from kaon.pipeline.work import Slice, WorkBatch
from kaon.store.metrics import hour_of
from kaon.store.outputs import Connection, Output, OutputStore

_pack = msgspec.msgpack.Encoder()
# (workspace, output, connection, hour, metric, reason)
OutputKey = tuple[str, str, str, int, str, str]


def delivery_event(item: WorkBatch, index: int, event_id: int) -> DeliveryEvent:
    event = batch_event(item.batch, index, event_id=event_id, workspace_id=item.workspace_id,
                        input_id=item.input_id, received_ms=item.entry.entry.received_ms,
                        system_notifications=item.system_notifications)
    if item.calculated_attributes:  # calculated attributes win over user attributes of the same name (mParticle)
        event.user_attributes.update({k: v for k, v in item.calculated_attributes.items() if v is not None})
    return event


class Fanout:
    name = "fanout"

    def run(self, work: Slice) -> None:
        routes: dict[tuple[str, str], list[tuple[Connection, Output, Rules]]] = {}
        counts: Counter[OutputKey] = Counter()
        hour = hour_of(work.now_ms)
        for item in work.batches:
            if item.batch.source_info is not None and item.batch.source_info.is_historical:
                continue
            key = (item.workspace_id, item.input_id)
            if key not in routes:
                store = OutputStore(work.tx, item.workspace_id)
                outputs = {o.id: o for o in store.outputs()}
                routes[key] = [(c, outputs[c.output_id], parse_rules(c.rules)) for c in store.connections(item.input_id)
                               if c.output_id in outputs]
            connections = routes[key]
            if not connections or not item.event_ids:
                continue
            row = ProfileStore(work.tx, item.workspace_id).row(item.batch.mpid) if item.batch.mpid else None
            facts = ProfileFacts(consent=row["consent"] if row else {}, opted_out=bool(row and row["is_opted_out"]))
            for index, event_id in item.event_ids.items():
                base = delivery_event(item, index, event_id)
                for connection, output, rules in connections:
                    reason = "" if connection.enabled and output.enabled else "disabled"
                    decision = evaluate(rules, base, facts) if not reason else None
                    if decision is not None and decision.forward and decision.event is not None:
                        delivery_store.enqueue(work.tx, item.workspace_id, output.id, connection.id, event_id,
                                               base.mpid, work.now_ms, decision.event)
                        counts[(item.workspace_id, output.id, connection.id, hour, "queued", "")] += 1
                        continue
                    reason = reason or (decision.reason if decision else "disabled")
                    delivery_store.record_drop(work.tx, event_id, connection.id, reason)
                    counts[(item.workspace_id, output.id, connection.id, hour, "filtered", reason)] += 1
        delivery_store.add_output_counts(work.tx, counts)
