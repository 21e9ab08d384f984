"""Every error code the front doors answer with: the single list the docs table is generated from."""

ERROR_CODES: dict[str, tuple[str, str]] = {
    # code: (HTTP status, meaning)
    "UNAUTHORIZED": ("401", "Unknown or disabled key, wrong secret, missing or malformed credentials, "
                            "or a key that needs its secret used alone."),
    "INVALID_JSON": ("400", "The body is not valid JSON."),
    "INVALID_SHAPE": ("400", "A field is missing or has the wrong type; the message gives the JSON path."),
    "INTEGER_OUT_OF_RANGE": ("400", "An integer outside the signed 64-bit range (anywhere: attributes, properties, "
                                    "traits, times); the message gives the JSON path. Send such values as strings."),
    "INVALID_GZIP": ("400", "`Content-Encoding: gzip` but the body is not valid, complete gzip."),
    "CLIENT_DISCONNECTED": ("400", "The client went away before sending the whole body."),
    "REQUEST_TOO_LARGE": ("413", "Request body (after gunzip) over 256 KB (500 KB on `/v1/batch`)."),
    "BATCH_TOO_LARGE": ("413", "An mParticle batch over 128 KB, or a Segment batch over 500 KB."),
    "EVENT_TOO_LARGE": ("400", "A Segment event over 32 KB."),
    "TOO_MANY_BATCHES": ("400", "More than 100 batches in one bulk request."),
    "TOO_MANY_USER_ATTRIBUTES": ("400", "More than 100 user attributes in one batch."),
    "ATTRIBUTE_VALUE_TOO_LONG": ("400", "A user or event attribute value over 4096 characters."),
    "HISTORICAL_NO_EVENTS": ("400", "A historical batch without events."),
    "HISTORICAL_TIMESTAMP_REQUIRED": ("400", "A historical event without a readable `timestamp_unixtime_ms` "
                                              "(1 ms after the epoch to the end of year 9999)."),
    "HISTORICAL_TOO_RECENT": ("400", "A historical event less than 72 hours old."),
    "RATE_LIMITED": ("429", "The input's requests/s limit is exceeded; `Retry-After` says when to retry."),
    "LOG_UNAVAILABLE": ("503", "The ingest log could not store the request; nothing was acknowledged."),
    "METHOD_NOT_ALLOWED": ("405", "Front doors take POST, configuration documents GET (and OPTIONS for CORS)."),
    "NOT_FOUND": ("404", "No endpoint at this path."),
    "CORS_REFUSED": ("403", "A preflight asked for a method or header outside the CORS policy, sent a malformed "
                            "or oversized Origin or header list, or named a server-to-server door."),
    "CONFIG_NOT_FOUND": ("404", "No configuration document for this key: unknown, disabled, or not a key-only "
                                "(web) input."),
    "INVALID_HOST": ("400", "The Host header is missing or not a host[:port] (Segment settings name it)."),
    "QUERY_TOO_LONG": ("414", "Query string over 2048 bytes or 32 fields."),
    "INTERNAL_ERROR": ("500", "A bug in Kaon; nothing was acknowledged and the request is recorded."),
    # IDSync and alias
    "UNKNOWN_IDENTITY_TYPE": ("400", "An identity type IDSync does not know (the message names it)."),
    "BLOCKED_IDENTITY": ("400", "modify tried to set a blocked value (e.g. `null`, a zeroed advertising id)."),
    "IDENTITY_LIMIT": ("400", "modify would give the profile more values of an identity type than the workspace's "
                              "`limits` allow."),
    "INVALID_MPID": ("400", "The mpid in the path is not a 64-bit integer."),
    "IDENTITY_CLAIMED": ("400", "A key-only (web) modify tried to take a value another profile holds; only a server "
                                "credential may move it."),
    "SERVER_CREDENTIAL_REQUIRED": ("403", "`search` with a key-only (web) credential: it needs Basic key:secret "
                                          "or HMAC."),
    "INVALID_SIGNATURE_DATE": ("401", "HMAC auth whose `Date` is not ISO 8601 basic UTC or is more than 300 s "
                                      "from the server's time (a replayed or stale request)."),
    "SIGNATURE_REPLAYED": ("401", "HMAC auth with a signature already accepted within the 300 s window (the same "
                                  "request sent again)."),
    "IDENTITY_MERGE_REFUSED": ("200", "Listed, not answered: a key-only identify did not merge a profile holding a "
                                      "login id, or one linked through no device identity."),
    "ALIAS_SAME_MPID": ("400", "Alias source and destination are the same profile."),
    "ALIAS_INVALID_WINDOW": ("400", "Alias window ends before it starts, or is longer than 90 days."),
    "ALIAS_UNKNOWN_MPID": ("400", "Alias source or destination is not a known profile."),
    "ALIAS_SOURCE_WAS_DESTINATION": ("400", "The alias source was the destination of an earlier alias."),
    "ALIAS_DESTINATION_WAS_SOURCE": ("400", "The alias destination was the source of an earlier alias."),
    "ALIAS_OVERLAP": ("400", "The alias source was already aliased for an overlapping window."),
    "ALIAS_DEVICE_MISMATCH": ("400", "A key-only (web) alias does not name a device stamp its source profile holds."),
    "ALIAS_SOURCE_KNOWN": ("400", "A key-only (web) alias whose source profile holds a login id."),
}


def error_table() -> str:
    rows = ["| code | status | meaning |", "|---|---|---|"]
    rows += [f"| `{code}` | {status} | {meaning} |" for code, (status, meaning) in ERROR_CODES.items()]
    return "\n".join(rows) + "\n"
