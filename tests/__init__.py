"""teleconsult's tests: unit (no I/O), integration (real server, aiortc, Redis), e2e (Chromium)."""
