"""The page's "Calibrate to me" flow on the static site (`islr web build`, no islr process), in a
real headless Chromium emulating a phone.

The fake front camera plays wlasl COMPUTER in a loop, which include50 reads as "loud" (not
"hello"). The user calibrates the known sign "hello" with 2 takes of that clip: the page records
them with the "Add a sign" recorder, saves them under "hello" in the browser's vocabulary, and
from then on the live transcript names the clip "hello". Skips like tests/test_browser.py.
"""

from __future__ import annotations

import pytest
from test_browser_harness import REPO_ROOT, wait_for
from test_web_app import PHONE, StaticServer, browser, site, wait_for_sign, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

__all__ = ["browser", "site"]  # the fixtures, used by name
ARTIFACTS = REPO_ROOT / "artifacts" / "browser"
WORD = "hello"


def signs(page) -> list[str]:
    return page.evaluate(
        "islrState.transcript.filter((t) => t.type === 'sign').map((t) => t.label)"
    )


def test_calibrate_a_known_sign_on_the_static_site(site, browser):
    server = StaticServer(site)
    context = browser.new_context(**PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(server.url)
        wait_ready(page, "the site")
        wait_for(page, "islrState.facing !== null", 60, "the camera to start")
        wait_for(page, "islrState.transcript.some((t) => t.type === 'sign')", 150, "a first sign")
        before = signs(page)
        assert WORD not in before, before

        # the words: a few picked for the user (5 of the model's labels); they tick only WORD
        page.click("[data-calib=open]")
        ticked = page.locator("[data-calib=words] input:checked")
        assert ticked.count() == 5
        while ticked.count():
            ticked.first.uncheck()
        page.locator(f"[data-calib=words] input[value={WORD!r}]").check()
        page.select_option("[data-calib=takes]", "2")
        page.fill("[data-calib=seconds]", "3")
        page.click("[data-calib=start]")
        wait_for(page, "islrState.calibration.phase === 'recording'", 10, "the first take")
        progress = page.locator("[data-calib=progress]").inner_text()
        assert progress.startswith("Word 1 of 1, take 1 of 2"), progress
        assert page.locator("[data-calib=word]").inner_text() == WORD
        wait_for(
            page, "['saved', 'error', 'idle'].includes(islrState.calibration.phase)", 90, "saving"
        )
        state = page.evaluate("islrState.calibration")
        print("calibration:", state)
        assert state["phase"] == "saved", state["message"]
        assert state["saved"] == [{"label": WORD, "takes": 2, "ok": True}]
        added = page.evaluate("islrState.enrol.added")
        assert added == [{"label": WORD, "kind": "known", "examples": 2}], added

        # the live view uses the signer's own examples at once
        page.click("#clear")
        wait_for_sign(page, WORD, f"{WORD!r} in the transcript after calibrating")
        print("before:", before, "after:", signs(page))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone-calibrated.png"), full_page=True)
    finally:
        context.close()
        server.close()
    assert errors == []
