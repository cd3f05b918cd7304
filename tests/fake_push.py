"""In-process stand-ins for push services, reached by Apprise over real HTTP.

- `PushSink`: a plain HTTP sink on 127.0.0.1 for Apprise's `json://` and `form://` targets. It
  records every message (JSON or form body) by path; paths can be told to answer 401 or 429.
- `FakeServices`: Feishu (`open.feishu.cn`), Lark (`open.larksuite.com`), DingTalk
  (`oapi.dingtalk.com`), WeCom (`qyapi.weixin.qq.com`) and Slack (`hooks.slack.com`) over TLS
  with a local certificate authority (trustme), reached through a local CONNECT proxy. Apprise
  posts with `requests`, which honours `HTTPS_PROXY` and `REQUESTS_CA_BUNDLE`: `environ()` gives
  both, so nothing in Apprise is patched. Each service checks its message shape and size and
  its per-bot rate (Feishu 100/min and 5/s, DingTalk and WeCom 20/min, Slack 1/s), within a
  per-minute window that may be shortened (`window_scale`). A message over the limit or the
  rate is rejected and counted; the real DingTalk and WeCom answer such errors with an `errcode`
  in an HTTP 200 body, which Apprise does not read, so the stand-in answers 400 or 429 instead,
  so that a rejection can never pass for a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

HOSTS = (
    "open.feishu.cn",
    "open.larksuite.com",
    "oapi.dingtalk.com",
    "qyapi.weixin.qq.com",
    "hooks.slack.com",
)
# Documented per-bot limits: (messages, seconds) and the largest accepted body part.
RATES: dict[str, tuple[int, float]] = {
    "feishu": (100, 60.0),
    "feishu/s": (5, 1.0),
    "dingtalk": (20, 60.0),
    "wecom": (20, 60.0),
    "slack": (1, 1.0),
}
FEISHU_BODY_BYTES = 20 * 1024
DINGTALK_TEXT_BYTES = 20_000
WECOM_TEXT_BYTES = 2048


@dataclass
class Received:
    """One message a stand-in accepted: the service, the bot (token), the payload, when."""

    service: str
    bot: str
    payload: dict[str, Any]
    size: int
    at: float


@dataclass
class PushSink:
    """An HTTP sink for `json://` / `form://` targets; `status[path]` overrides the answer."""

    host: str = "127.0.0.1"
    port: int = 0
    received: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    status: dict[str, int] = field(default_factory=dict)
    # Answer 500 once this many messages were accepted at a path (a service going down).
    fail_after: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> PushSink:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, scheme: str, path: str) -> str:
        """An Apprise URL posting to `path` on this sink (`json` or `form`)."""
        return f"{scheme}://{self.host}:{self.port}/{path.lstrip('/')}"

    def messages(self, path: str) -> list[str]:
        """The message bodies received at `path`, in order."""
        return [str(item.get("message", "")) for item in self.received["/" + path.lstrip("/")]]

    async def _post(self, request: web.Request) -> web.Response:
        path = request.path
        answer = self.status.get(path, 200)
        if len(self.received[path]) >= self.fail_after.get(path, 1 << 30):
            answer = 500
        if answer != 200:
            return web.json_response({"error": "refused"}, status=answer)
        if request.content_type == "application/json":
            payload = await request.json()
        else:
            payload = dict(await request.post())
        self.received[path].append(payload)
        return web.json_response({"ok": True})


class FakeServices:
    """Feishu, Lark, DingTalk, WeCom and Slack over TLS, behind a local CONNECT proxy."""

    def __init__(self, tmp: Path, *, window_scale: float = 1.0) -> None:
        self.window_scale = window_scale
        self.received: list[Received] = []
        self.rejected: list[tuple[str, str, str]] = []  # (service, bot, why)
        self._sends: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._ca = trustme.CA()
        self._ca_file = tmp / "push-ca.pem"
        self._runner: web.AppRunner | None = None
        self._proxy: asyncio.Server | None = None
        self._tls_port = 0
        self.proxy_port = 0

    async def __aenter__(self) -> FakeServices:
        self._ca.cert_pem.write_to_path(str(self._ca_file))
        app = web.Application()
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self._feishu)
        app.router.add_post("/open-apis/bot/v2/hook/{token}/", self._feishu)
        app.router.add_post("/robot/send", self._dingtalk)
        app.router.add_post("/cgi-bin/webhook/send", self._wecom)
        app.router.add_post("/services/{a}/{b}/{c}", self._slack)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*HOSTS).configure_cert(server_ssl)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_ssl)
        await site.start()
        assert site._server is not None
        self._tls_port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._proxy = await asyncio.start_server(self._tunnel, "127.0.0.1", 0)
        self.proxy_port = self._proxy.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proxy is not None:
            self._proxy.close()
            with contextlib.suppress(Exception):
                await self._proxy.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    def environ(self) -> dict[str, str]:
        """What `requests` (so Apprise) needs to reach the stand-ins: proxy and CA bundle."""
        return {
            "HTTPS_PROXY": f"http://127.0.0.1:{self.proxy_port}",
            "https_proxy": f"http://127.0.0.1:{self.proxy_port}",
            "REQUESTS_CA_BUNDLE": str(self._ca_file),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def of(self, service: str, bot: str | None = None) -> list[Received]:
        """What `service` (and `bot`) accepted, in order."""
        return [r for r in self.received if r.service == service and (bot is None or r.bot == bot)]

    # -- the proxy: CONNECT host:443 → the TLS stand-in --------------------------------------

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            host = target.rsplit(":", 1)[0]
            if method != "CONNECT" or host not in HOSTS:
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._tls_port)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    # -- the services ------------------------------------------------------------------------

    def _limited(self, service: str, bot: str) -> bool:
        count, seconds = RATES[service]
        window = seconds * self.window_scale if seconds >= 60 else seconds
        sends = self._sends[(service, bot)]
        now = time.monotonic()
        while sends and sends[0] <= now - window:
            sends.popleft()
        if len(sends) >= count:
            return True
        sends.append(now)
        return False

    def _reject(self, service: str, bot: str, why: str, status: int) -> web.Response:
        self.rejected.append((service, bot, why))
        return web.json_response({"code": status, "msg": why}, status=status)

    def _accept(self, service: str, bot: str, payload: dict[str, Any], size: int) -> None:
        self.received.append(Received(service, bot, payload, size, time.monotonic()))

    async def _feishu(self, request: web.Request) -> web.Response:
        service = "lark" if request.host.startswith("open.larksuite.com") else "feishu"
        bot = request.match_info["token"]
        body = await request.read()
        if len(body) > FEISHU_BODY_BYTES:
            return self._reject("feishu", bot, f"body of {len(body)} bytes", 400)
        payload = json.loads(body)
        kind = payload.get("msg_type")
        if kind == "interactive":
            elements = payload["card"]["elements"]
            text = elements[0]["text"]["content"]
            if elements[0]["text"]["tag"] != "lark_md":
                return self._reject("feishu", bot, "card text is not lark_md", 400)
        elif kind == "text":
            text = payload["content"]["text"]
        else:
            return self._reject("feishu", bot, f"msg_type {kind!r}", 400)
        if self._limited("feishu", bot) or self._limited("feishu/s", bot):
            return self._reject("feishu", bot, "rate", 429)
        self._accept(service, bot, payload, len(text.encode("utf-8")))
        return web.json_response({"code": 0, "msg": "success", "data": {}})

    async def _dingtalk(self, request: web.Request) -> web.Response:
        bot = request.query.get("access_token", "")
        payload = await request.json()
        kind = payload.get("msgtype")
        if kind == "markdown":
            text = payload["markdown"]["text"]
            if not payload["markdown"].get("title"):
                return self._reject("dingtalk", bot, "markdown without title", 400)
        elif kind == "text":
            text = payload["text"]["content"]
        else:
            return self._reject("dingtalk", bot, f"msgtype {kind!r}", 400)
        size = len(text.encode("utf-8"))
        if size > DINGTALK_TEXT_BYTES:
            return self._reject("dingtalk", bot, f"text of {size} bytes", 400)
        if self._limited("dingtalk", bot):
            return self._reject("dingtalk", bot, "rate", 429)
        self._accept("dingtalk", bot, payload, size)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _wecom(self, request: web.Request) -> web.Response:
        bot = request.query.get("key", "")
        payload = await request.json()
        if payload.get("msgtype") != "text":
            return self._reject("wecom", bot, f"msgtype {payload.get('msgtype')!r}", 400)
        text = payload["text"]["content"]
        size = len(text.encode("utf-8"))
        if size > WECOM_TEXT_BYTES:
            return self._reject("wecom", bot, f"content of {size} bytes", 400)
        if self._limited("wecom", bot):
            return self._reject("wecom", bot, "rate", 429)
        self._accept("wecom", bot, payload, size)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _slack(self, request: web.Request) -> web.Response:
        bot = "/".join(request.match_info[k] for k in ("a", "b", "c"))
        payload = await request.json()
        if self._limited("slack", bot):
            return self._reject("slack", bot, "rate", 429)
        text = json.dumps(payload, ensure_ascii=False)
        self._accept("slack", bot, payload, len(text))
        return web.Response(text="ok")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class ServicesProcess:
    """`FakeServices` in a child process with its own event loop (for benchmarks).

    In-process, the stand-ins' TLS handshakes and proxy copying run on the benchmark's own event
    loop and delay everything else on it, the Telegram stand-in's clock included; the real
    services are elsewhere. `snapshot()` fetches what the services received and rejected so far.
    """

    def __init__(self, tmp: Path, *, window_scale: float = 1.0) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_in_child, args=(child, str(tmp), window_scale), daemon=True
        )
        self.received: list[Received] = []
        self.rejected: list[tuple[str, str, str]] = []
        self._environ: dict[str, str] = {}

    def __enter__(self) -> ServicesProcess:
        self._process.start()
        self._environ = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)

    def environ(self) -> dict[str, str]:
        """See `FakeServices.environ`."""
        return dict(self._environ)

    def snapshot(self) -> None:
        """Fetch `received` and `rejected` from the child."""
        self._conn.send("snapshot")
        self.received, self.rejected = self._conn.recv()

    def of(self, service: str, bot: str | None = None) -> list[Received]:
        """See `FakeServices.of` (as of the last `snapshot`)."""
        return [r for r in self.received if r.service == service and (bot is None or r.bot == bot)]


def _serve_in_child(conn: Any, tmp: str, window_scale: float) -> None:
    async def serve() -> None:
        async with FakeServices(Path(tmp), window_scale=window_scale) as services:
            conn.send(services.environ())
            loop = asyncio.get_running_loop()
            while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
                if command == "snapshot":
                    conn.send((services.received, services.rejected))

    asyncio.run(serve())
