#!/usr/bin/env bash
# Refresh the vendored hls.js browser build (web_client/vendor/hls.js/).
# Vendored, not fetched from a CDN: the pages must work on a hospital LAN with no internet, and
# every byte the browser loads comes from our own server.
# The trainee's player (web_client/js/training-player.js) loads the UMD build as a classic
# script, which defines `window.Hls`; where MediaSource is missing (Safari on iPhone) the
# <video> element plays the HLS URL natively instead. Bump HLSJS_VERSION deliberately, run this
# script, check the player (tests/e2e/test_training.py), commit.
set -euo pipefail

HLSJS_VERSION="1.6.16"
# Integrity of that exact tarball (npm's dist.integrity); a mismatch stops the refresh, so the
# bytes we ship are the bytes we reviewed. Update it together with the version:
#   npm view hls.js@<version> dist.integrity
HLSJS_INTEGRITY="sha512-VSIRpLfRwlAAdGL4wiTucx2ScRipo0ed1FBatWkyt832jC4CReKstga6yIhYVwGu9LOBjuX9wzmRMeQdBJtzEA=="

repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="$repo/web_client/vendor/hls.js"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "hls.js@${HLSJS_VERSION}" >/dev/null
tarball="hls.js-${HLSJS_VERSION}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 | tr -d '\n')"
if [ "$actual" != "$HLSJS_INTEGRITY" ]; then
  echo "integrity mismatch for $tarball: got $actual" >&2
  exit 1
fi
tar -xzf "$tarball"

mkdir -p "$dest"
cp package/dist/hls.min.js "$dest/hls.min.js"
cp package/LICENSE "$dest/LICENSE"
echo "$HLSJS_VERSION" > "$dest/VERSION"
sha="$(sha256sum "$dest/hls.min.js" | cut -d' ' -f1)"
cat > "$dest/README.md" <<README
hls.js ${HLSJS_VERSION} (\`dist/hls.min.js\` of the npm package, UMD build, unmodified),
sha256 \`${sha}\`. Apache License 2.0 (LICENSE).
Refreshed by \`make vendor-hlsjs\` (scripts/vendor-hlsjs.sh), which checks npm's integrity hash.
README
echo "vendored hls.js ${HLSJS_VERSION} into ${dest#"$repo"/}"
