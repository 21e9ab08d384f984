"""The real `@mparticle/web-sdk` from npm, served with a test page from an origin other than Kaon's.

The SDK is installed once into `tests/.cache/websdk` (git-ignored) with a pinned version. The page
server is a stdlib HTTP server on its own port, so every request from the page to Kaon is cross-origin
and the browser enforces CORS on it exactly as on a customer's site.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from support.browser import require_npm
from support.browser_sdks import MPARTICLE_WEBSDK_VERSION, mparticle_http
from support.pages import HTML, JS, StaticServer

WEBSDK_VERSION = MPARTICLE_WEBSDK_VERSION
CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "websdk"
STATIC_DIR = Path(__file__).resolve().parent / "static"
SDK_PATH = Path("node_modules") / "@mparticle" / "web-sdk"


def installed_version(root: Path) -> str | None:
    package = root / SDK_PATH / "package.json"
    if not package.exists():
        return None
    import json

    version = json.loads(package.read_text()).get("version")
    return str(version) if version else None


def ensure_websdk(cache_dir: Path = CACHE_DIR, version: str = WEBSDK_VERSION, timeout: float = 180) -> Path:
    """`dist/mparticle.js` of the pinned SDK, npm-installed into `cache_dir` when missing or another version."""
    bundle = cache_dir / SDK_PATH / "dist" / "mparticle.js"
    if installed_version(cache_dir) == version and bundle.exists():
        return bundle
    npm = require_npm()
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    # Install into a sibling temp dir and swap it in, so an interrupted install never looks complete.
    staging = Path(tempfile.mkdtemp(prefix="websdk-", dir=cache_dir.parent))
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--no-save",
             "--loglevel=error", f"@mparticle/web-sdk@{version}"],
            capture_output=True, text=True, timeout=timeout, cwd=staging,
        )
        if done.returncode != 0 or installed_version(staging) != version:
            raise RuntimeError(f"npm install @mparticle/web-sdk@{version} failed:\n{done.stdout}\n{done.stderr}")
        shutil.rmtree(cache_dir, ignore_errors=True)
        staging.rename(cache_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return bundle


class PageServer(StaticServer):
    """Serves `/index.html`, `/harness.js` and the SDK's `/mparticle.js` on 127.0.0.1 and a port of its own."""

    def __init__(self, sdk_bundle: Path) -> None:
        super().__init__({
            "/index.html": ((STATIC_DIR / "index.html").read_bytes(), HTML),
            "/harness.js": ((STATIC_DIR / "harness.js").read_bytes(), JS),
            "/mparticle.js": (sdk_bundle.read_bytes(), JS),
        })

    @property
    def page_url(self) -> str:
        return f"{self.origin}/index.html"

    def start(self) -> "PageServer":
        super().start()
        return self


def sdk_options(kaon_url: str, batching_ms: int = 0) -> dict[str, Any]:
    """`mParticle.init` options pointing every SDK endpoint it uses at Kaon (scheme-less, trailing slash)."""
    return {
        "isDevelopmentMode": True,
        "logLevel": "warning",
        "flags": {"eventBatchingIntervalMillis": batching_ms},
        **mparticle_http(kaon_url),  # the README's options
    }
