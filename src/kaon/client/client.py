"""`Kaon`: the public client — identify a user, log events, and let a background thread upload them."""

import threading
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType

from kaon.client import events
from kaon.client.batcher import Batcher, ErrorCallback, FlushResult
from kaon.client.events import Queued, User
from kaon.client.models import ENVIRONMENTS, Product, Scalar, UserAttributeValue
from kaon.client.uploader import Uploader
from kaon.clock import now_ms
from kaon.errors import ConfigError

DEFAULT_HOST = "http://127.0.0.1:8080"


class Kaon:
    """A client for Kaon's Events API (`POST /v2/bulkevents`), like mParticle's `mp.init(KEY)`.

    Every public method is thread-safe. Logging never blocks on the network: events are queued and
    sent by a daemon thread every `flush_interval` seconds or as soon as `batch_size` are queued.
    Events that can never be delivered are logged at WARNING on the `kaon.client` logger, passed to
    `on_error` (called on the upload thread) and counted in the result of `flush()`/`close()`.
    """

    def __init__(
        self,
        key: str,
        secret: str,
        host: str = DEFAULT_HOST,
        *,
        environment: str = "production",
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue: int = 10000,
        max_retries: int = 5,
        timeout: float = 10.0,
        on_error: ErrorCallback | None = None,
    ) -> None:
        if environment not in ENVIRONMENTS:
            raise ConfigError(f"environment must be 'production' or 'development', not {environment!r}")
        for name, value, least in (("batch_size", batch_size, 1), ("max_queue", max_queue, 1),
                                   ("max_retries", max_retries, 0)):
            if value < least:
                raise ConfigError(f"{name} must be at least {least}, not {value!r}")
        if flush_interval <= 0 or timeout <= 0:
            raise ConfigError("flush_interval and timeout must be positive")
        if not host.startswith(("http://", "https://")):
            raise ConfigError(f"host must be an http:// or https:// URL, not {host!r}")
        self._lock = threading.Lock()
        self._user = User()
        uploader = Uploader(host, key, secret, timeout=timeout, max_retries=max_retries)
        self._batcher = Batcher(
            uploader, environment=environment, batch_size=batch_size, flush_interval=flush_interval,
            max_queue=max_queue, on_error=on_error,
        )
        # A client dropped without close() still sends what it queued: its thread drains, then stops.
        self._finalizer = weakref.finalize(self, self._batcher.request_stop)
        self._finalizer.atexit = False  # at exit the batcher registry flushes, waiting for delivery

    def identify(
        self,
        customer_id: str | None = None,
        email: str | None = None,
        *,
        mpid: int | None = None,
        **other_identities: str | None,
    ) -> None:
        """Make this the current user; events logged from now on are attributed to it.

        Other identities use the Events API names: `other`, `other_id_2`…`other_id_10`,
        `mobile_number`, `phone_number_2`, `phone_number_3`, `facebook`, `twitter`, `google`,
        `microsoft`, `yahoo`, `facebook_custom_audience_id`, `alias`. Switching to a different user
        forgets the previous user's attributes; identifying the same user again keeps them.
        """
        mpid, identities = events.identify(customer_id, email, mpid, other_identities)
        with self._lock:
            if (mpid, identities) != self._user.key:
                self._user = User(mpid, identities)

    def set_user_attribute(self, key: str, value: UserAttributeValue) -> None:
        """Set a user attribute (a scalar or a list of str) on the current user."""
        value = events.check_user_attribute(key, value)
        self._change_attribute(key, value)

    def remove_user_attribute(self, key: str) -> None:
        """Remove a user attribute from the current user's profile."""
        events.check_user_attribute(key, "")
        self._change_attribute(key, None)

    def log_event(
        self, name: str, attributes: Mapping[str, Scalar] | None = None, *, event_type: str = "other"
    ) -> None:
        """Log a custom event; `event_type` is mParticle's custom_event_type (`navigation`, `search`, …)."""
        message_id = events.new_message_id()
        self._put(message_id, events.encode(
            events.custom_event(name, attributes, event_type, now_ms(), message_id)))

    def log_screen(self, name: str, attributes: Mapping[str, Scalar] | None = None) -> None:
        """Log a screen (or page) view."""
        message_id = events.new_message_id()
        self._put(message_id, events.encode(events.screen_view(name, attributes, now_ms(), message_id)))

    def log_commerce(
        self,
        action: str,
        products: Sequence[Product],
        *,
        transaction_id: str | None = None,
        total_amount: float | None = None,
        tax_amount: float | None = None,
        shipping_amount: float | None = None,
        currency_code: str | None = None,
        attributes: Mapping[str, Scalar] | None = None,
    ) -> None:
        """Log a commerce event with a product action (`purchase`, `add_to_cart`, `refund`, …)."""
        message_id = events.new_message_id()
        self._put(message_id, events.encode(events.commerce_event(
            action, products, transaction_id=transaction_id, total_amount=total_amount,
            tax_amount=tax_amount, shipping_amount=shipping_amount, currency_code=currency_code,
            attributes=attributes, now_ms=now_ms(), message_id=message_id,
        )))

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Block until every event logged so far is sent or has permanently failed, or `timeout` passes."""
        return self._batcher.flush(timeout)

    def close(self, timeout: float | None = None) -> FlushResult:
        """Flush, then stop the upload thread and close the connection. Later calls to log raise."""
        self._finalizer.detach()
        return self._batcher.close(timeout)

    def __enter__(self) -> "Kaon":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _put(self, message_id: str, payload: bytes) -> None:
        with self._lock:
            self._batcher.put(Queued(self._user, message_id, payload))

    def _change_attribute(self, key: str, value: UserAttributeValue | None) -> None:
        message_id = events.new_message_id()
        with self._lock:
            # Under the lock so the attribute snapshots travel in the same order as the events.
            user = self._user
            existed = key in user.attributes
            payload = events.encode(events.attribute_change(
                key, new=value, old=user.attributes.get(key), existed=existed, now_ms=now_ms(),
                message_id=message_id))
            self._user = user.with_attribute(key, value)
            self._batcher.put(Queued(
                self._user, message_id, payload, removed_attribute=key if value is None else None))
