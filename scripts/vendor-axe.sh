#!/usr/bin/env bash
# Refresh the vendored axe-core (tests/e2e/vendor/axe-core/), the accessibility engine the e2e
# tests inject into every page state they reach (tests/e2e/accessibility.py). It is never served
# to users: it lives beside the tests, not in web_client/. Vendored rather than fetched at test
# time: the tests run with no internet, and the rules we hold the pages to must not change under
# us. Bump AXE_VERSION deliberately, run this script, run the e2e tests, fix what new rules find,
# commit.
set -euo pipefail

AXE_VERSION="4.14.1"
# Integrity of that exact tarball (npm's dist.integrity); a mismatch stops the refresh. Update it
# together with the version:  npm view axe-core@<version> dist.integrity
AXE_INTEGRITY="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="

repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="$repo/tests/e2e/vendor/axe-core"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "axe-core@${AXE_VERSION}" >/dev/null
tarball="axe-core-${AXE_VERSION}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 | tr -d '\n')"
if [ "$actual" != "$AXE_INTEGRITY" ]; then
  echo "integrity mismatch for $tarball: got $actual" >&2
  exit 1
fi
tar -xzf "$tarball"

mkdir -p "$dest"
cp package/axe.min.js "$dest/axe.min.js"
cp package/LICENSE "$dest/LICENSE"
[ -f package/LICENSE-3RD-PARTY.txt ] && cp package/LICENSE-3RD-PARTY.txt "$dest/LICENSE-3RD-PARTY.txt"
echo "$AXE_VERSION" > "$dest/VERSION"
sha="$(sha256sum "$dest/axe.min.js" | cut -d' ' -f1)"
cat > "$dest/README.md" <<README
axe-core ${AXE_VERSION} (\`axe.min.js\` of the npm package, unmodified), sha256 \`${sha}\`.
Mozilla Public License 2.0 (LICENSE; third-party notices: LICENSE-3RD-PARTY.txt).
Used only by the e2e tests (injected into pages by tests/e2e/accessibility.py), never served.
Refreshed by \`make vendor-axe\` (scripts/vendor-axe.sh), which checks npm's integrity hash.
README
echo "vendored axe-core ${AXE_VERSION} into ${dest#"$repo"/}"
