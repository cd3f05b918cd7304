"""Headless Chromium driven over the DevTools protocol (a websocket via aiohttp), for e2e tests.

    async with HeadlessChromium.launch(tmp_path) as browser:
        page = await browser.visit("http://127.0.0.1:8000/index.html", width=390)
        page.text, page.errors, page.value("document.title")

`errors` collects what DevTools would show in red: console.error/assert, uncaught exceptions,
and browser log entries of level error (CSP violations, failed loads). The binary is Debian's
`chromium`; `find_chromium()` returns None when it is not installed (tests skip).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--disable-dev-shm-usage",  # Docker's 64 MB /dev/shm is too small for a renderer
)
START_TIMEOUT = 30.0
STEP_TIMEOUT = 20.0


def find_chromium() -> str | None:
    """Path of the Chromium binary (CHROMIUM_BIN, /usr/bin/chromium, or on PATH), or None."""
    for candidate in (os.environ.get("CHROMIUM_BIN"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageVisit:
    """What one page load produced."""

    url: str
    text: str
    errors: list[str]
    values: dict[str, Any] = field(default_factory=dict)

    def value(self, expression: str) -> Any:
        """The value of an expression evaluated after load (see `visit(..., evaluate=...)`)."""
        return self.values[expression]


class HeadlessChromium:
    """One browser process and one DevTools websocket."""

    def __init__(self, process: asyncio.subprocess.Process, ws: Any, session: Any) -> None:
        self._process = process
        self._ws = ws
        self._session = session
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._loaded: dict[str, asyncio.Event] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(
        cls, workdir: Path, binary: str | None = None
    ) -> AsyncIterator[HeadlessChromium]:
        """Start Chromium with a fresh profile under `workdir` and connect to it."""
        binary = binary or find_chromium()
        if binary is None:
            raise RuntimeError("chromium is not installed")
        profile = workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        session = aiohttp.ClientSession()
        browser: HeadlessChromium | None = None
        try:
            endpoint = await _devtools_endpoint(profile / "DevToolsActivePort", process)
            ws = await session.ws_connect(endpoint, max_msg_size=0)
            browser = cls(process, ws, session)
            yield browser
        finally:
            if browser is not None:
                await browser._close()
            await session.close()
            if process.returncode is None:
                process.kill()
            await process.wait()

    async def visit(
        self, url: str, *, width: int = 1280, height: int = 800, evaluate: tuple[str, ...] = ()
    ) -> PageVisit:
        """Load `url` in a new tab of the given viewport; return its text, errors and values."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        session = attached["sessionId"]
        self._events[session] = []
        self._loaded[session] = asyncio.Event()
        try:
            for method in ("Runtime.enable", "Log.enable", "Page.enable"):
                await self.send(method, session=session)
            await self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
                session=session,
            )
            navigated = await self.send("Page.navigate", {"url": url}, session=session)
            if navigated.get("errorText"):
                raise RuntimeError(f"navigation to {url} failed: {navigated['errorText']}")
            await asyncio.wait_for(self._loaded[session].wait(), STEP_TIMEOUT)
            text = await self.evaluate("document.body ? document.body.innerText : ''", session)
            values = {expr: await self.evaluate(expr, session) for expr in evaluate}
            # Late console messages (after load) arrive before the answers to our evaluations.
            return PageVisit(url, str(text), _errors(self._events[session]), values)
        finally:
            await self.send("Target.closeTarget", {"targetId": target["targetId"]})

    async def evaluate(self, expression: str, session: str) -> Any:
        """Evaluate `expression` in the page; its JSON value."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """One DevTools command; its result (raises on a protocol error)."""
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, STEP_TIMEOUT)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            session = data.get("sessionId")
            if session in self._events:
                self._events[session].append(data)
                if data.get("method") == "Page.loadEventFired":
                    self._loaded[session].set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("DevTools connection closed"))

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("Browser.close"), 5.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._process.wait(), 10.0)
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _devtools_endpoint(port_file: Path, process: asyncio.subprocess.Process) -> str:
    """The browser's websocket URL, from the DevToolsActivePort file Chromium writes on start."""
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    while asyncio.get_running_loop().time() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode}")
        with contextlib.suppress(OSError):
            lines = (await asyncio.to_thread(port_file.read_text)).split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            found.append(
                "console: " + " ".join(str(a.get("value", a.get("description"))) for a in args)
            )
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append(
                "uncaught: "
                + str(details.get("exception", {}).get("description") or details.get("text"))
            )
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log ({entry.get('source')}): {entry.get('text')}")
    return found
