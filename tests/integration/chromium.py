"""Headless Chromium (Debian's /usr/bin/chromium, `make chromium`) driven over the DevTools
protocol on a pipe, from Python: what the console test (test_console.py) needs and no more.

Why not Playwright: the protocol is all a test here needs (navigate, evaluate, viewport,
screenshot), and `--remote-debugging-pipe` (what Playwright itself uses to talk to Chromium)
needs no port, no npm install, no second runtime and no new Python dependency: Chromium reads
NUL-terminated JSON commands on fd 3 and writes answers and events on fd 4.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# The launch flags of the brief: no network of Chromium's own (updates, sync, QUIC), no GPU, a
# fresh profile each time; media plays without a user gesture, muted.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync", "--mute-audio",
         "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage")


class CDPError(RuntimeError):
    pass


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved to fd 10 or above, clear of 3 and 4 the shell redirects onto."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved[0], moved[1]


class Chromium:
    """One headless Chromium with one page (`.page` is its flattened session id)."""

    def __init__(self, executable: str = CHROMIUM, width: int = 1280, height: int = 900):
        self.profile = Path(tempfile.mkdtemp(prefix="veorelay-chromium-"))
        to_browser_r, self._to_browser = _high(os.pipe())
        self._from_browser, from_browser_w = _high(os.pipe())
        # fd 3 (commands) and fd 4 (answers) in Chromium; bash moves our pipe ends there
        # (dash, /bin/sh, cannot name an fd above 9).
        script = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", script, executable, *FLAGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-pipe", f"--window-size={width},{height}", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="chromium-cdp", daemon=True)
        self._reader.start()
        self._stderr_tail: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.page = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
                self.send(domain, session=self.page)
            self.viewport(width, height)
        except BaseException:
            self.close()  # no browser or profile left behind
            raise

    # ------------------------------------------------------------------ the protocol
    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr_tail = [*self._stderr_tail[-20:], line.decode(errors="replace").rstrip()]

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout_s: float = 15) -> dict[str, Any]:
        with self._cond:
            self._next_id += 1
            call_id = self._next_id
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except OSError as exc:  # Chromium is gone (a broken pipe)
            raise CDPError(f"{method}: Chromium is not reading ({exc}); stderr: {self._stderr_tail[-5:]}") from None
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while call_id not in self._answers:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise CDPError(f"{method}: no answer ({'Chromium exited' if self._closed else 'timeout'}); "
                                   f"stderr: {self._stderr_tail[-5:]}")
                self._cond.wait(left)
            answer = self._answers.pop(call_id)
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    # ------------------------------------------------------------------ the page
    def viewport(self, width: int, height: int, mobile: bool = False, scale: float = 1) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": scale,
                                                         "mobile": mobile}, session=self.page)

    def navigate(self, url: str, timeout_s: float = 15) -> None:
        result = self.send("Page.navigate", {"url": url}, session=self.page)
        if result.get("errorText"):
            raise CDPError(f"navigating to {url}: {result['errorText']}")
        self.wait_for("document.readyState === 'complete'", timeout_s)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           session=self.page)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CDPError(f"{expression[:80]!r} threw: {details.get('exception', {}).get('description') or details}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 15, what: str | None = None) -> Any:
        """The first truthy value of `expression`, polled every 100 ms."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"not seen within {timeout_s}s: {what or expression} (last value {value!r}); "
                             f"page problems: {self.problems()}")

    def wait_event(self, method: str, timeout_s: float = 15) -> dict[str, Any]:
        """The params of the next `method` event not taken yet (it is taken)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for event in self.events:
                    if event["method"] == method and not event.get("taken"):
                        event["taken"] = True
                        return dict(event.get("params", {}))
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise AssertionError(f"no {method} event within {timeout_s}s")
                self._cond.wait(left)

    def type_into(self, selector: str, text: str) -> None:
        """Focus an input and type into it, as keystrokes would (Input.insertText)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text}, session=self.page)

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element (scrolled into view first)."""
        box = self.evaluate(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect();
            return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"], "button": "left",
                                                   "clickCount": 1}, session=self.page)

    def screenshot(self, path: Path, full_page: bool = True) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics", session=self.page)["cssContentSize"]
            params |= {"captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}
        data = base64.b64decode(self.send("Page.captureScreenshot", params, session=self.page)["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def problems(self) -> list[str]:
        """What the page reported as wrong: uncaught exceptions, console errors, and the browser's
        own log errors (a Content-Security-Policy violation, a failed load)."""
        found = []
        with self._cond:
            events = list(self.events)
        for event in events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                found.append("exception: " + str(params["exceptionDetails"].get("exception", {}).get("description")
                                                 or params["exceptionDetails"].get("text")))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                found.append(f"log ({entry['source']}): {entry['text']}" + (f" {entry['url']}" if entry.get("url") else ""))
        return found

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout_s=5)
                except CDPError:
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, 9)  # our own process group (start_new_session)
                    self.proc.wait(5)
        finally:
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
