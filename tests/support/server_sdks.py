"""The server SDKs under test (pinned PyPI and npm packages) and the exact settings that point each at Kaon.

These settings are the single source: the e2e tests build their clients from them, and a test checks that
the README's "Point real SDKs at it" table shows the same (rendered for `README_URL` and the README's
placeholder keys). The tests add only their own knobs for speed (no retries, short flush intervals) and
hooks that observe errors.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.npm import ensure_package

README_URL = "http://127.0.0.1:8080"
README_WEB_KEY = "WEB_KEY"  # the key of a `web` input
README_SERVER_KEY = "SERVER_KEY"  # the key and secret of a `server` input
README_SERVER_SECRET = "SERVER_SECRET"


@dataclass(frozen=True)
class PypiSdk:
    """A Python SDK pinned (`==version`) in pyproject.toml's dev extras."""

    distribution: str
    version: str


@dataclass(frozen=True)
class NodeSdk:
    """A Node SDK, npm-installed into `tests/.cache/<cache_name>`, driven by `support/node/` as `driver_name`:
    `new Analytics(...)` (the package's export `export_name`, or the package itself when None), the calls,
    then `await analytics.<close>()` (sends what is queued)."""

    package: str
    version: str
    cache_name: str
    driver_name: str
    export_name: str | None
    close: str

    def package_dir(self) -> Path:
        return ensure_package(self.package, self.version, self.cache_name)


MPARTICLE_PYTHON = PypiSdk("mparticle", "0.16.1")
SEGMENT_PYTHON = PypiSdk("segment-analytics-python", "2.4.0")
RUDDER_PYTHON = PypiSdk("rudder-sdk-python", "2.1.9")
PYPI_SDKS = (MPARTICLE_PYTHON, SEGMENT_PYTHON, RUDDER_PYTHON)

SEGMENT_NODE = NodeSdk("@segment/analytics-node", "3.1.0", "analytics-node", "segment-node", "Analytics",
                       "closeAndFlush")
RUDDER_NODE = NodeSdk("@rudderstack/rudder-sdk-node", "3.0.13", "rudder-sdk-node", "rudder-node", None, "flush")
NODE_SDKS = (SEGMENT_NODE, RUDDER_NODE)


# mParticle's Python SDK: attributes of `mparticle.Configuration()`, then `mparticle.EventsApi(configuration)`.
def mparticle_configuration(kaon_url: str, key: str, secret: str) -> dict[str, str]:
    return {"api_key": key, "api_secret": secret, "host": f"{kaon_url}/v2"}


# Segment's Python SDK: `segment.analytics.Client(write_key, **these)`.
def segment_python(kaon_url: str) -> dict[str, Any]:
    return {"host": kaon_url}


# RudderStack's Python SDK: its module-level set-up (attributes of `rudderstack.analytics`) ...
def rudder_python_module(kaon_url: str, write_key: str) -> dict[str, Any]:
    return {"write_key": write_key, "dataPlaneUrl": kaon_url}


# ... or `rudderstack.analytics.Client(write_key, **these)`.
def rudder_python_client(kaon_url: str) -> dict[str, Any]:
    return {"host": kaon_url}


# Segment's Node SDK: `new Analytics(settings)`; it posts to `{host}/v1/batch`, write key as the Basic user.
def segment_node(kaon_url: str, write_key: str) -> list[Any]:
    return [{"writeKey": write_key, "host": kaon_url}]


# RudderStack's Node SDK: `new Analytics(writeKey, options)`; it posts gzipped bodies to `{dataPlaneUrl}/v1/batch`.
def rudder_node(kaon_url: str, write_key: str) -> list[Any]:
    return [write_key, {"dataPlaneUrl": kaon_url}]


# Kaon's own client: `Kaon(key, secret, **these)` with a `server` input's key and secret.
def kaon_client(kaon_url: str) -> dict[str, Any]:
    return {"host": kaon_url}


def node_arguments(sdk: NodeSdk, kaon_url: str, write_key: str) -> list[Any]:
    """The constructor arguments of a Node SDK's client."""
    return {SEGMENT_NODE: segment_node, RUDDER_NODE: rudder_node}[sdk](kaon_url, write_key)


def _py(value: Any) -> str:
    return json.dumps(value)  # the settings are strings: a JSON string is the Python literal too


def _kwargs(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_py(value)}" for name, value in values.items())


def _assignments(target: str, values: dict[str, Any]) -> str:
    return "; ".join(f"{target}.{name} = {_py(value)}" for name, value in values.items())


def _node_client(sdk: NodeSdk, arguments: list[Any]) -> str:
    imported = f"{{ {sdk.export_name} }}" if sdk.export_name else "Analytics"
    return (f"`const {imported} = require({json.dumps(sdk.package)}); "
            f"const analytics = new Analytics({', '.join(json.dumps(a) for a in arguments)})`, "
            f"then `await analytics.{sdk.close}()`")


def readme_rows() -> list[tuple[str, str]]:
    """(client, setting) rows of the README table for the server SDKs, rendered for README_URL and keys."""
    url, web, key, secret = README_URL, README_WEB_KEY, README_SERVER_KEY, README_SERVER_SECRET
    mp, seg, rud = MPARTICLE_PYTHON, SEGMENT_PYTHON, RUDDER_PYTHON
    return [
        (f"mParticle Python SDK (`{mp.distribution}=={mp.version}`)",
         f"`cfg = mparticle.Configuration(); {_assignments('cfg', mparticle_configuration(url, key, secret))}`, "
         "then `mparticle.EventsApi(cfg)`"),
        (f"Segment Python SDK (`{seg.distribution}=={seg.version}`)",
         f"`segment.analytics.Client({_py(web)}, {_kwargs(segment_python(url))})`"),
        (f"RudderStack Python SDK (`{rud.distribution}=={rud.version}`)",
         f"`{_assignments('rudderstack.analytics', rudder_python_module(url, web))}`, or "
         f"`rudderstack.analytics.Client({_py(web)}, {_kwargs(rudder_python_client(url))})`"),
        (f"Segment Node SDK (`{SEGMENT_NODE.package}@{SEGMENT_NODE.version}`)",
         _node_client(SEGMENT_NODE, segment_node(url, web))),
        (f"RudderStack Node SDK (`{RUDDER_NODE.package}@{RUDDER_NODE.version}`)",
         _node_client(RUDDER_NODE, rudder_node(url, web))),
        ("Kaon's own client (`kaon.client`, part of Kaon)",
         f"`from kaon.client import Kaon; Kaon({_py(key)}, {_py(secret)}, {_kwargs(kaon_client(url))})`"),
    ]
