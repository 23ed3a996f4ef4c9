"""Browser tests: a live server on loopback and Debian's chromium driven by Playwright.

They run wherever /usr/bin/chromium exists (`make browsers` installs it with fonts-noto-cjk).
CI sets ZHIBU_BROWSER_TESTS=1, which turns a missing chromium into a failure instead.
"""

from __future__ import annotations

import os
import shutil
import threading
from datetime import datetime
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from service import create_app
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import make_engine
from workflows.migrations import init_db

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("ZHIBU_BROWSER_TESTS") == "1":
            pytest.fail("ZHIBU_BROWSER_TESTS=1 but chromium is not installed (make browsers)")
        pytest.skip("chromium is not installed here; `make browsers` installs it, CI always runs these")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def live(tmp_path, monkeypatch):
    """A running app on a fresh SQLite database: (base URL, database URL, clock)."""
    monkeypatch.setenv("ZHIBU_EVIDENCE_DIR", str(tmp_path / "evidence"))
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    engine = make_engine(url)
    init_db(engine)
    engine.dispose()
    clock = FixedClock(datetime(2026, 11, 24, 10, 0, tzinfo=LOCAL_TZ))
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-test", "CLOCK": clock})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", url, clock
    server.shutdown()


@pytest.fixture
def shot():
    """Save a full-page screenshot under tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
