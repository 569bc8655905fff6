"""The call pages' code as one file each: `web_client/dist/<page>.js`, made by esbuild.

A call page (`exam-room.html`, `specialist.html`) loads ~40 ES modules from `web_client/js/`;
loaded one by one from the Python server they were most of the time between opening a call link
and the other side's first frame (bench/startup.py, README "Opening a call link"). esbuild
(Debian's `esbuild` package, a single binary) bundles each page's module graph into one ES
module, unminified, with a linked source map. The call link's early start (`js/call-link.js`)
is each page's first import, so that in the bundle it (and the few modules it imports) runs
before any other module's top-level code.

The bundles are build output, not sources (git ignores `web_client/dist/`): `make bundle`
(part of `make run` and `make test`) and the tests' server start (`ensure_fresh`) make them from
`web_client/js/` whenever a source is newer. Without a bundle the server answers
`/dist/<page>.js` with a one-line module that imports `js/<page>.js` (`signaling.app`), so a
page still works, only slower to start.

    python -m teleconsult.web_bundle            # build (always)
    python -m teleconsult.web_bundle --if-stale # build only when a source is newer
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import web_client

WEB_ROOT = Path(web_client.__file__).resolve().parent
SOURCES = WEB_ROOT / "js"
OUT = WEB_ROOT / "dist"
PAGES = ("exam-room", "specialist")
"""The pages served as bundles: the two ends of a call, whose start-up is measured."""
EXTRA_SOURCES = (WEB_ROOT / "vendor" / "socket.io",)
ESBUILD_FLAGS = (
    "--bundle",
    "--format=esm",
    "--target=es2022",
    "--charset=utf8",
    "--sourcemap=linked",
    "--log-level=warning",
)


class BundleError(RuntimeError):
    """esbuild is missing or refused the sources; the message says which and what to do."""


def outputs() -> list[Path]:
    return [OUT / f"{page}.js" for page in PAGES]


def _newest_source() -> float:
    newest = 0.0
    for folder in (SOURCES, *EXTRA_SOURCES):
        for path in folder.rglob("*.js"):
            newest = max(newest, path.stat().st_mtime)
    return newest


def is_stale() -> bool:
    """A bundle is missing, or a source (or the vendored socket.io client) is newer."""
    built = outputs()
    if not all(path.exists() for path in built):
        return True
    return _newest_source() > min(path.stat().st_mtime for path in built)


def esbuild() -> str:
    found = shutil.which("esbuild")
    if found is None:
        raise BundleError(
            "esbuild is not installed: `apt-get install esbuild` (or `make bundle`, which does); "
            "until then the call pages load their modules one by one"
        )
    return found


def build(out: Path = OUT) -> list[Path]:
    """Bundle each page into `out/<page>.js` (+ `.js.map`); returns the bundles."""
    command = [
        esbuild(),
        *(str(SOURCES / f"{page}.js") for page in PAGES),
        *ESBUILD_FLAGS,
        f"--outdir={out}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BundleError(f"esbuild failed ({done.returncode}): {done.stderr.strip()[:2000]}")
    return [out / f"{page}.js" for page in PAGES]


def ensure_fresh() -> None:
    """Build the bundles if a source is newer than them (tests call this before a server)."""
    if is_stale():
        build()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--if-stale", action="store_true", help="build only if a source is newer")
    args = parser.parse_args(argv)
    try:
        if args.if_stale and not is_stale():
            print("web_client/dist is up to date")
            return 0
        for path in build():
            print(f"built {path.relative_to(WEB_ROOT.parent)} ({path.stat().st_size} bytes)")
    except BundleError as err:
        print(f"teleconsult.web_bundle: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
