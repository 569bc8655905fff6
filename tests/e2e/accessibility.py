"""axe-core in the e2e suite: every page state a test screenshots is also checked for
accessibility, and a serious, moderate or critical violation fails the test.

axe-core is vendored at a pinned version (tests/e2e/vendor/axe-core, `make vendor-axe`) and
injected into the page by the test; users are never served it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("critical", "serious", "moderate")

# Run axe once on the whole document; its result is reduced to what a failure message needs.
RUN_AXE = """async (impacts) => {
  const result = await window.axe.run(document, {
    resultTypes: ['violations'],
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  });
  return result.violations
    .filter((v) => impacts.includes(v.impact))
    .map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => ({
        target: n.target.join(' '), summary: n.failureSummary,
      })),
    }));
}"""


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The page's current serious/moderate/critical axe-core violations (none: an empty list)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(RUN_AXE, list(FAILING_IMPACTS))
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"]:
            summary = " ".join(str(node["summary"]).split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page, label: str) -> None:
    """No serious, moderate or critical axe-core violation on the page as it is now."""
    violations = axe_violations(page)
    assert violations == [], (
        f"{label}: axe-core found {len(violations)} violation(s) at {page.url}\n"
        + describe(violations)
    )
