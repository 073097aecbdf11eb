"""GET /console in headless Chromium (Debian's, `make chromium`) against the local stack: three
jobs (one succeeds, one is blocked by the safety filter, one slow), the page opened, the key
typed in; the rows as a person reads them, a video that plays, the slow job turning succeeded
without a reload, the failure in plain words, the month's spend, the status filter, and
screenshots (out/console.png, out/console-phone.png)."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import requests

from .chromium import CHROMIUM, Chromium
from .helpers import Client, unique_prompt

pytestmark = pytest.mark.integration

OUT = Path(__file__).resolve().parents[2] / "out"
TERMINAL = ("succeeded", "failed", "cancelled")
SLOW_S = 10  # the slow job's generation time at the simulator: still running when the page opens

# One row as the page shows it (edges/console_assets/console.js fills these elements).
ROW = """(id => {{ const el = document.querySelector(`li.job[data-id="${{id}}"]`); if (!el) return null;
  const t = s => el.querySelector(s).textContent.trim();
  return {{status: t('.status'), prompt: t('.prompt'), provider: t('.provider'), model: t('.model'),
          duration: t('.duration'), cost: t('.cost'), error: el.querySelector('.problem').hidden ? null : t('.error-text'),
          videos: el.querySelectorAll('.player video').length}}; }})({id})"""


def money(usd: float) -> str:
    return f"${usd:.4f}" if 0 < usd < 0.01 else f"${usd:.2f}"


def row(browser: Chromium, job_id: str) -> dict | None:
    return browser.evaluate(ROW.format(id=json.dumps(job_id)))


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium", pytrace=False)
    with Chromium() as chromium:
        yield chromium


def test_console_page_is_served_with_a_self_only_policy(client: Client):
    page = requests.get(f"{client.api}/console", timeout=10)  # no key: the page asks for it
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "http" not in policy and "*" not in policy  # no other origin may serve code, styles or data
    assert '<meta name="viewport"' in page.text and 'src="console/console.js"' in page.text
    script = requests.get(f"{client.api}/console/console.js", timeout=10)
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert requests.get(f"{client.api}/console/console.css", timeout=10).headers["Content-Type"].startswith("text/css")
    assert requests.get(f"{client.api}/console/secrets.txt", timeout=10).status_code == 404
    slash = requests.get(f"{client.api}/console/", timeout=10, allow_redirects=False)
    assert slash.status_code == 308 and slash.headers["Location"] == "../console"
    assert requests.post(f"{client.api}/console", timeout=10).status_code == 405
    assert "/console" in requests.get(f"{client.api}/openapi.json", timeout=10).json()["paths"]


def test_console_lists_plays_and_follows_jobs(stack, client: Client, browser: Chromium):
    started = time.monotonic()
    ok = client.submit({"prompt": unique_prompt("a lighthouse at dawn, waves below")}).json()
    blocked = client.submit({"prompt": unique_prompt("a storm over the sea", "[sim:rai_filtered]")}).json()
    slow = client.submit({"prompt": unique_prompt("a glacier calving", f"[sim:duration={SLOW_S}]")}).json()
    ok, blocked = client.wait(ok["id"]), client.wait(blocked["id"])
    assert (ok["status"], blocked["status"], blocked["error"]["code"]) == ("succeeded", "failed", "rai_filtered")

    sign_in(browser, client, stack.api_keys[client.client_id], slow)
    check_rows(browser, ok, blocked, slow)
    check_playback(browser, ok)
    check_live_change(browser, slow)
    check_new_job_appears(browser, client)
    check_spend(browser, client)
    check_filter_and_phone(browser, ok, blocked)
    check_key_kept(browser, stack, stack.api_keys[client.client_id], [ok["id"], blocked["id"], slow["id"]])
    assert time.monotonic() - started < 60


def sign_in(browser: Chromium, client: Client, key: str, slow: dict) -> None:
    """A wrong key first (refused in words), then the right one: the jobs appear, the slow one live."""
    browser.navigate(f"{client.api}/console")
    browser.wait_for("!document.getElementById('login').hidden", what="the key form")
    browser.type_into("#key", "vr_not_a_key")
    browser.click("#key-submit")
    assert "not accepted" in browser.wait_for(
        "!document.getElementById('login-error').hidden && document.getElementById('login-error').textContent")
    browser.evaluate("document.getElementById('key').value = ''")
    browser.type_into("#key", key)
    browser.click("#key-submit")
    browser.wait_for(f"document.querySelectorAll('li.job').length >= 3 && !!document.querySelector('li.job[data-id=\"{slow['id']}\"]')",
                     what="the three jobs listed")
    browser.evaluate("window.__sameDocument = true")  # gone if anything reloaded the page
    first = row(browser, slow["id"])
    assert first and first["status"] in ("accepted", "running", "downloading"), first
    assert browser.wait_for(f"!document.querySelector('li.job[data-id=\"{slow['id']}\"] .live').hidden", what="the slow job followed live")


def check_rows(browser: Chromium, ok: dict, blocked: dict, slow: dict) -> None:
    """The rows, as the API has them."""
    order = browser.evaluate("[...document.querySelectorAll('li.job')].slice(0, 3).map(el => el.dataset.id)")
    assert order == [slow["id"], blocked["id"], ok["id"]]  # newest first
    for job in (ok, blocked):
        shown = row(browser, job["id"])
        assert shown["status"] == job["status"]
        assert shown["prompt"] == job["request"]["prompt"]
        assert (shown["provider"], shown["model"]) == (job["provider"], job["model"])
        assert shown["cost"].startswith(money(job["cost"]["estimated_usd"])), shown
    assert row(browser, ok["id"])["duration"] == f"{ok['outputs'][0]['media']['duration_seconds']:.1f} s"
    assert row(browser, blocked["id"])["cost"].endswith("not billed")
    assert row(browser, blocked["id"])["error"] == "The provider's safety filter blocked this video. Try rewording the prompt."
    assert row(browser, ok["id"])["error"] is None


def check_playback(browser: Chromium, ok: dict) -> None:
    """The poster, then the video itself, playing; the desktop screenshot."""
    player = f"li.job[data-id=\"{ok['id']}\"] .player"
    browser.wait_for(f"document.querySelector('{player}').dataset.poster === 'loaded'", what="the poster loaded")
    poster = browser.evaluate(f"""(async () => {{ const img = new Image(); img.src = document.querySelector('{player} video').poster;
        await img.decode(); return [img.src.slice(0, 5), img.naturalWidth, img.naturalHeight]; }})()""")
    media = ok["outputs"][0]["media"]
    assert poster == ["blob:", media["width"], media["height"]]
    browser.click(f"{player} button.play")
    browser.wait_for(f"document.querySelector('{player} video').readyState >= 3", what="the video loaded")
    t1 = browser.wait_for(f"document.querySelector('{player} video').currentTime", what="playback started")
    time.sleep(0.6)
    t2 = browser.evaluate(f"document.querySelector('{player} video').currentTime")
    assert t2 > t1 > 0, (t1, t2)
    assert browser.evaluate(f"document.querySelector('{player} video').duration") == pytest.approx(media["duration_seconds"], abs=0.2)
    browser.screenshot(OUT / "console.png")


def check_live_change(browser: Chromium, slow: dict) -> None:
    """The slow job ends while the page is open: its row turns succeeded from the event stream."""
    browser.wait_for(f"document.querySelector('li.job[data-id=\"{slow['id']}\"]').dataset.status === 'succeeded'",
                     timeout_s=SLOW_S + 30, what="the slow job shown succeeded")
    assert browser.evaluate("window.__sameDocument === true")
    # ... told by its event stream (not the page's periodic listing refresh), which then closed.
    assert browser.evaluate(f"document.querySelector('li.job[data-id=\"{slow['id']}\"]').dataset.source") == "events"
    browser.wait_for(f"document.querySelector('li.job[data-id=\"{slow['id']}\"] .live').hidden", what="the stream closed")
    assert row(browser, slow["id"])["videos"] == 1  # its player appeared with it


def check_new_job_appears(browser: Chromium, client: Client) -> None:
    """A job submitted elsewhere while the page is open shows on top at the next refresh."""
    late = client.submit({"prompt": unique_prompt("a late kite over a beach")}).json()
    browser.click("#refresh")
    browser.wait_for(f"document.querySelector('li.job').dataset.id === {json.dumps(late['id'])}", what="the new job on top")
    assert row(browser, late["id"])["prompt"] == late["request"]["prompt"]


def check_spend(browser: Chromium, client: Client) -> None:
    """The month's spend, as GET /usage tells it."""
    deadline = time.monotonic() + 20
    while True:  # other tests' jobs may end meanwhile: compare with the report read just before
        usage = requests.get(f"{client.api}/usage", headers=client.auth, timeout=10).json()
        total = usage["total"]
        expected = [f"{money(total['usd'])} billed for {total['billed_jobs']} of {total['jobs']} jobs",
                    f"{money(total['usd'])} spent this month (no monthly budget set)" if usage["budget"]["monthly_usd"] is None
                    else f"{money(usage['budget']['month_usd'])} of {money(usage['budget']['monthly_usd'])} monthly budget"]
        browser.click("#refresh")
        try:
            browser.wait_for(f"{json.dumps(expected)}.every(t => document.getElementById('spend').textContent.includes(t))",
                             timeout_s=3, what=f"this month's spend: {expected}")
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise

    # The same against a monthly cap: the stack's clients have none (a cap would change admission
    # for every other test), so this one answer of GET /usage is given a budget in the browser.
    capped = {**usage, "budget": {**usage["budget"], "monthly_usd": 10.0, "month_usd": 8.5, "daily_usd": None}}
    shown = ("document.getElementById('spend-text').textContent.endsWith(' of $10.00 monthly budget')"
             " && [document.getElementById('spend-text').textContent, document.getElementById('spend-fill').style.width,"
             " document.getElementById('spend-bar').className]")
    browser.send("Fetch.enable", {"patterns": [{"urlPattern": "*/usage*"}]}, session=browser.page)
    browser.click("#refresh")
    deadline = time.monotonic() + 15
    while not browser.evaluate(shown) and time.monotonic() < deadline:  # every /usage meanwhile (the page's timer too)
        paused = browser.wait_event("Fetch.requestPaused", timeout_s=max(0.1, deadline - time.monotonic()))
        browser.send("Fetch.fulfillRequest", {"requestId": paused["requestId"], "responseCode": 200, "responseHeaders": [
            {"name": "Content-Type", "value": "application/json"}], "body": base64.b64encode(json.dumps(capped).encode()).decode()},
            session=browser.page)
        time.sleep(0.2)
    assert browser.evaluate(shown) == ["$8.50 of $10.00 monthly budget", "85%", "bar high"]
    browser.send("Fetch.disable", session=browser.page)


def check_filter_and_phone(browser: Chromium, ok: dict, blocked: dict) -> None:
    """The status filter; then a phone: one column, nothing wider than the screen."""
    browser.evaluate("(() => { const s = document.getElementById('status-filter'); s.value = 'failed';"
                     " s.dispatchEvent(new Event('change')); })()")
    browser.wait_for(f"!!document.querySelector('li.job[data-id=\"{blocked['id']}\"]') && "
                     f"!document.querySelector('li.job[data-id=\"{ok['id']}\"]')", what="only failed jobs listed")
    assert set(browser.evaluate("[...document.querySelectorAll('li.job')].map(el => el.dataset.status)")) == {"failed"}

    # A phone: one column, nothing wider than the screen.
    browser.evaluate("(() => { const s = document.getElementById('status-filter'); s.value = '';"
                     " s.dispatchEvent(new Event('change')); })()")
    browser.wait_for(f"!!document.querySelector('li.job[data-id=\"{ok['id']}\"] .player')", what="the list again")
    browser.viewport(390, 844, mobile=True, scale=2)
    browser.wait_for("document.documentElement.clientWidth === 390")
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    browser.screenshot(OUT / "console-phone.png")
    browser.viewport(1280, 900)


def check_key_kept(browser: Chromium, stack, key: str, ours: list[str]) -> None:
    """The key stays in the tab's session storage: never in the page's URL, nor in the api's log."""
    assert browser.evaluate("sessionStorage.getItem('veorelay.console.key')") == key
    assert key not in browser.evaluate("location.href")
    assert key not in stack.procs["api"].log_path.read_text(errors="replace")
    # No script error, no Content-Security-Policy violation, no failed load but the wrong key's.
    # (Other tests' jobs may be listed too: a poster of theirs that is gone is not the console's fault.)
    problems = [p for p in browser.problems() if "/v1/videos/" not in p or any(job_id in p for job_id in ours)]
    assert len(problems) == 1 and "status of 401" in problems[0] and problems[0].endswith("/usage"), problems
