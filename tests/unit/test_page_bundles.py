"""The call pages' bundles: esbuild makes one ES module per page from web_client/js with the
call link's early start in it, and the server answers `/dist/<page>.js` with the bundle, or,
where none was built, with a module importing the page's own code (slower, still working)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from signaling.app import page_bundle
from teleconsult import web_bundle


def test_each_call_page_is_bundled_with_the_call_links_early_start_before_its_own_code(
    tmp_path: Path,
) -> None:
    built = web_bundle.build(tmp_path)
    assert [p.name for p in built] == ["exam-room.js", "specialist.js"]
    for path in built:
        code = path.read_text()
        early_start = code.index("// web_client/js/call-link.js")
        own = code.index(f"// web_client/js/{path.stem}.js")
        assert early_start < own
        assert "\nstartCall();" in code
        # One self-contained module: it imports nothing (socket.io's client is in it too).
        assert not [line for line in code.splitlines() if line.startswith("import ")]
        assert (tmp_path / f"{path.name}.map").exists()


IMPORT_FROM = re.compile(r"""^import\s+(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]""", re.MULTILINE)


def _imports_of(module: Path) -> set[Path]:
    """`module` and every module it imports, directly or not (relative imports only)."""
    seen: set[Path] = set()
    todo = [module.resolve()]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for target in IMPORT_FROM.findall(current.read_text()):
            todo.append((current.parent / target).resolve())
    return seen


def test_a_call_link_s_early_start_is_the_first_code_each_call_page_runs(tmp_path: Path) -> None:
    """Only call-link.js and what it imports come before it in the bundle (esbuild keeps the
    modules in evaluation order): no other module's top-level code (i18n walking the page, the
    lists …) runs before the camera, the socket and the join are asked for."""
    web_root = web_bundle.WEB_ROOT
    early = {
        path.relative_to(web_root.parent).as_posix()
        for path in _imports_of(web_root / "js" / "call-link.js")
    }
    for path in web_bundle.build(tmp_path):
        code = path.read_text()
        order = re.findall(r"^// (web_client/\S+\.js)$", code, re.MULTILINE)
        first = order[: order.index("web_client/js/call-link.js") + 1]
        assert set(first) == early, (path.name, sorted(set(first) ^ early))


def test_a_source_newer_than_the_bundles_makes_them_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources, out = tmp_path / "js", tmp_path / "dist"
    sources.mkdir()
    out.mkdir()
    monkeypatch.setattr(web_bundle, "SOURCES", sources)
    monkeypatch.setattr(web_bundle, "EXTRA_SOURCES", ())
    monkeypatch.setattr(web_bundle, "OUT", out)
    source = sources / "dom.js"
    source.write_text("export {};\n")
    assert web_bundle.is_stale()  # nothing built yet
    for page in web_bundle.PAGES:
        (out / f"{page}.js").write_text("// built\n")
    built_at = min(p.stat().st_mtime for p in out.glob("*.js"))
    os.utime(source, (built_at - 10, built_at - 10))
    assert not web_bundle.is_stale()
    os.utime(source, (built_at + 10, built_at + 10))
    assert web_bundle.is_stale()


def test_without_esbuild_the_build_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(web_bundle.BundleError, match="apt-get install esbuild"):
        web_bundle.build()


@pytest.fixture
async def web_root(
    tmp_path: Path,
) -> AsyncIterator[tuple[Path, TestClient[web.Request, web.Application]]]:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "exam-room.js").write_text("export {};\n")
    app = web.Application()
    app.router.add_get("/dist/{page:[a-z][a-z-]{0,40}}.js", page_bundle(tmp_path))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield tmp_path, client


async def test_the_server_serves_a_built_bundle(
    web_root: tuple[Path, TestClient[web.Request, web.Application]],
) -> None:
    root, client = web_root
    (root / "dist").mkdir()
    (root / "dist" / "exam-room.js").write_text("// the bundle\n")
    reply = await client.get("/dist/exam-room.js")
    assert reply.status == 200
    assert await reply.text() == "// the bundle\n"


async def test_without_a_bundle_the_page_imports_its_own_module(
    web_root: tuple[Path, TestClient[web.Request, web.Application]],
) -> None:
    _root, client = web_root
    reply = await client.get("/dist/exam-room.js")
    assert reply.status == 200
    assert reply.content_type == "text/javascript"
    assert await reply.text() == "import '../js/exam-room.js';\n"


@pytest.mark.parametrize(
    "path", ["/dist/no-such-page.js", "/dist/..%2fjs%2fexam-room.js", "/dist/Exam-Room.js"]
)
async def test_no_bundle_is_made_up_for_a_page_that_does_not_exist(
    web_root: tuple[Path, TestClient[web.Request, web.Application]], path: str
) -> None:
    _root, client = web_root
    reply = await client.get(path)
    assert reply.status == 404
