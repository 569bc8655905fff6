"""The layering rule holds, and the check that `make lint` runs fails on a forbidden import.

`lint-imports` reads the contracts in pyproject.toml ([tool.importlinter]). The failing cases
run it on a copy of the packages with one forbidden import added, so the real tree is never
touched; each names the contract it must break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {c["id"]: c["name"] for c in CONFIG["contracts"]}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=root,
        # The packages under `root` come first, not the installed (editable) ones.
        # COLUMNS: one contract per line, however narrow the terminal.
        env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_tree(into: Path) -> Path:
    for package in CONFIG["root_packages"]:
        shutil.copytree(
            ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS.values():
        assert f"{name} KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "imported", "contract"),
    [
        ("rooms.consults.service", "aiohttp", "domain-framework-free"),
        ("rooms.duty.services", "pywebpush", "domain-framework-free"),
        ("rooms.consults.service", "sqlalchemy", "domain-framework-free"),
        ("rooms.consults.service", "storage.sql.consults", "domain-framework-free"),
        ("rooms.consults.service", "signaling.hub", "layers"),
        ("signaling.hub", "media.node", "layers"),
        ("media.node", "notify.push", "layers"),
        ("notify.duty", "signaling.hub", "layers"),
        ("signaling.app", "teleconsult.config", "layers"),
        ("signaling.http.consults", "storage.sql.consults", "layers"),
        ("rooms.consults.service", "rooms.calls.recordings", "domain-features"),
        ("rooms.calls.room", "rooms.records.notes", "domain-features"),
        ("rooms.duty.services", "rooms.reporting.review", "domain-features"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, imported: str, contract: str
) -> None:
    tree = copy_of_the_tree(tmp_path)
    with (tree / (module.replace(".", "/") + ".py")).open("a") as source:
        source.write(f"\nimport {imported}  # a forbidden import\n")

    result = lint_imports(tree)

    assert result.returncode != 0
    assert f"{CONTRACTS[contract]} BROKEN" in result.stdout, result.stdout + result.stderr
    assert f"{module} -> {imported}" in result.stdout
