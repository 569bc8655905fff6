"""The e2e browser set-up: how Chromium is launched and what one test browser records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from playwright.sync_api import BrowserContext, Page

from tests.e2e.accessibility import assert_accessible
from tests.support.server import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    # A synthetic camera/mic (test pattern + beep), granted without a prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Let two pages on one machine connect over 127.0.0.1 with real host candidates.
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    # Nothing may leave the machine: no updates, no sync, no DNS except for loopback.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

VIDEO_STATE = """() => [...document.querySelectorAll('video')].map((v) => ({
  testid: v.dataset.testid, peer: v.dataset.peerId, width: v.videoWidth, time: v.currentTime,
  paused: v.paused, readyState: v.readyState, muted: v.muted,
}))"""

Kind = Literal["desktop", "phone"]
CONTEXT_OPTIONS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    # The specialist's phone: the page must be usable at 390 x 844 with touch.
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}


@dataclass
class Client:
    """One browser context (one person's browser) and its page."""

    name: str
    context: BrowserContext
    page: Page
    page_errors: list[str] = field(default_factory=list)
    offsite_requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def screenshot(self, label: str, *, check: bool = True) -> Path:
        """Save the page as it is now; with `check` (every state a test shows), axe-core must
        find no serious or moderate accessibility violation in it (tests/e2e/accessibility.py)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if check:
            assert_accessible(self.page, f"{self.name} ({label})")
        return path

    def dump(self, label: str) -> Path:
        """What the user saw and what the page logged, for a failure screenshot's company."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{label}.txt"
        videos = self.page.evaluate(VIDEO_STATE)
        path.write_text(
            f"url: {self.page.url}\n\n--- visible text ---\n{self.page.inner_text('body')}\n"
            f"\n--- remote videos ---\n{videos}\n\n--- console ---\n" + "\n".join(self.console),
            encoding="utf-8",
        )
        return path

    def assert_clean(self) -> None:
        """No uncaught script errors, and nothing was requested from outside loopback."""
        assert self.page_errors == [], f"{self.name}: page errors {self.page_errors}"
        assert self.offsite_requests == [], f"{self.name}: off-machine {self.offsite_requests}"
