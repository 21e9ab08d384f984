"""Pinned npm packages for the browser tests, installed once into `tests/.cache/<name>` (git-ignored).

Nothing is downloaded while Kaon runs: the test session installs the exact version from the npm registry
the first time, and the page server serves the package's own files from the cache.
"""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from support.browser import require_npm

CACHE_ROOT = Path(__file__).resolve().parent.parent / ".cache"


def installed_version(root: Path, package: str) -> str | None:
    manifest = root / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    version = json.loads(manifest.read_text()).get("version")
    return str(version) if version else None


def ensure_package(package: str, version: str, cache_name: str, timeout: float = 180) -> Path:
    """The package's directory (`node_modules/<package>`) of `version`, npm-installed when missing."""
    cache_dir = CACHE_ROOT / cache_name
    if installed_version(cache_dir, package) == version:
        return cache_dir / "node_modules" / package
    npm = require_npm()
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    # Install into a sibling temp dir and swap it in, so an interrupted install never looks complete.
    staging = Path(tempfile.mkdtemp(prefix=f"{cache_name}-", dir=CACHE_ROOT))
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--no-save",
             "--loglevel=error", f"{package}@{version}"],
            capture_output=True, text=True, timeout=timeout, cwd=staging,
        )
        if done.returncode != 0 or installed_version(staging, package) != version:
            raise RuntimeError(f"npm install {package}@{version} failed:\n{done.stdout}\n{done.stderr}")
        shutil.rmtree(cache_dir, ignore_errors=True)
        staging.rename(cache_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache_dir / "node_modules" / package
