"""The canonical event-batch model and the adapters that map wire formats into it."""
