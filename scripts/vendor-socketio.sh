#!/usr/bin/env bash
# Refresh the vendored socket.io browser client (web_client/vendor/socket.io/).
# The client is vendored, not fetched from a CDN: the pages must work on a hospital LAN with no
# internet, and every byte the browser loads comes from our own server.
# Bump SOCKETIO_VERSION deliberately (the server runs python-socketio 5.x = protocol v5 /
# JS client v4), run this script, and commit the result.
set -euo pipefail

SOCKETIO_VERSION="4.8.4"
# Integrity of that exact tarball (npm's dist.integrity); a mismatch stops the refresh, so the
# bytes we ship are the bytes we reviewed. Update it together with the version:
#   npm view socket.io-client@<version> dist.integrity
SOCKETIO_INTEGRITY="sha512-7wjKAvVXYOJsbmUgkWbnhPD4bFpkqrUR0++XOjpGFmqDqsqV1CI93VTraeExLxpjxEqrWgFoSRZu1ihjLWfkAA=="

repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="$repo/web_client/vendor/socket.io"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "socket.io-client@${SOCKETIO_VERSION}" >/dev/null
tarball="socket.io-client-${SOCKETIO_VERSION}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 | tr -d '\n')"
if [ "$actual" != "$SOCKETIO_INTEGRITY" ]; then
  echo "integrity mismatch for $tarball: got $actual" >&2
  exit 1
fi
tar -xzf "$tarball"

mkdir -p "$dest"
# The source map is not shipped (190 KiB nobody on a ward needs), so drop the comment that
# points at it: otherwise every page load with devtools open logs a 404.
sed '/^\/\/# sourceMappingURL=/d' package/dist/socket.io.esm.min.js > "$dest/socket.io.esm.min.js"
cp package/LICENSE "$dest/LICENSE"
echo "$SOCKETIO_VERSION" > "$dest/VERSION"
echo "vendored socket.io-client ${SOCKETIO_VERSION} into ${dest#"$repo"/}"
