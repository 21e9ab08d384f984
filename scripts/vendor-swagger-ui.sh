#!/bin/sh
# Vendors Swagger UI (npm `swagger-ui-dist`, pinned) into the package, so that `/api/v1/docs` works offline and
# references only Kaon's own URLs. Re-run with another version to upgrade:
#   sh scripts/vendor-swagger-ui.sh [VERSION]
# Only the files the docs page loads are kept, with the package's LICENSE and a VERSION file naming what was taken.
set -eu

VERSION="${1:-5.35.0}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/src/kaon/admin/static/swagger-ui"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

command -v npm >/dev/null 2>&1 || { echo "vendor-swagger-ui: npm is needed (make system-deps)" >&2; exit 1; }
(cd "$WORK" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tar -xzf "$WORK"/swagger-ui-dist-*.tgz -C "$WORK"

mkdir -p "$DEST"
rm -f "$DEST"/*
for file in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE; do
    cp "$WORK/package/$file" "$DEST/$file"
done
# The bundle names its source map; Kaon does not ship it, so the reference goes (browsers would ask for it).
sed -i '/^\/[/*]# sourceMappingURL=/d' "$DEST/swagger-ui-bundle.js" "$DEST/swagger-ui.css"
echo "swagger-ui-dist $VERSION" > "$DEST/VERSION"
echo "vendored swagger-ui-dist $VERSION into $DEST"
