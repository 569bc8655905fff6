#!/usr/bin/env bash
# Refresh the vendored Apache ECharts browser build (web_client/vendor/echarts/).
# Vendored, not fetched from a CDN: the pages must work on a hospital LAN with no internet, and
# every byte the browser loads comes from our own server.
# The supervisor's statistics charts use it (web_client/js/statistics.js loads the UMD build as
# a classic script, which defines `window.echarts`). 5.6.0 is the last 5.x release: the line
# hospital IT departments know and most Chinese documentation describes; 6.x changed the
# default theme and some options and brings us nothing we need. Bump ECHARTS_VERSION
# deliberately, run this script, check the charts (tests/e2e/test_statistics.py), commit.
set -euo pipefail

ECHARTS_VERSION="5.6.0"
# Integrity of that exact tarball (npm's dist.integrity); a mismatch stops the refresh, so the
# bytes we ship are the bytes we reviewed. Update it together with the version:
#   npm view echarts@<version> dist.integrity
ECHARTS_INTEGRITY="sha512-oTbVTsXfKuEhxftHqL5xprgLoc0k7uScAwtryCgWF6hPYFLRwOUHiFmHGCBKP5NPFNkDVopOieyUqYGH8Fa3kA=="

repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="$repo/web_client/vendor/echarts"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "echarts@${ECHARTS_VERSION}" >/dev/null
tarball="echarts-${ECHARTS_VERSION}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 | tr -d '\n')"
if [ "$actual" != "$ECHARTS_INTEGRITY" ]; then
  echo "integrity mismatch for $tarball: got $actual" >&2
  exit 1
fi
tar -xzf "$tarball"

mkdir -p "$dest"
cp package/dist/echarts.min.js "$dest/echarts.min.js"
cp package/LICENSE "$dest/LICENSE"
cp package/NOTICE "$dest/NOTICE"
# Parts of ECharts derive from d3 (BSD-3-Clause); its licence travels with the build.
cp package/licenses/LICENSE-d3 "$dest/LICENSE-d3"
echo "$ECHARTS_VERSION" > "$dest/VERSION"
sha="$(sha256sum "$dest/echarts.min.js" | cut -d' ' -f1)"
cat > "$dest/README.md" <<README
Apache ECharts ${ECHARTS_VERSION} (\`dist/echarts.min.js\` of the npm package, UMD build, unmodified),
sha256 \`${sha}\`. Apache License 2.0 (LICENSE, NOTICE; d3-derived parts: LICENSE-d3).
Refreshed by \`make vendor-echarts\` (scripts/vendor-echarts.sh), which checks npm's integrity hash.
README
echo "vendored echarts ${ECHARTS_VERSION} into ${dest#"$repo"/}"
