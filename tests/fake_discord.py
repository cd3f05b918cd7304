"""An in-process Discord stand-in: the REST routes and gateway the adapter uses, over TLS.

discord.py always talks to `https://discord.com/api/v10` and `wss://gateway.discord.gg`. Rather
than patch the library, the stand-in serves those host names itself: `connector()` gives an
aiohttp connector whose resolver sends both names to 127.0.0.1 and which trusts the stand-in's
own certificate authority. Everything else (routes, headers, status codes, limits) is Discord's:

- webhooks (`POST /webhooks/{id}/{token}`) and channel messages with Discord's message limits,
  as JSON or as multipart uploads (`payload_json` + `files[n]`, at most 10 MiB per file);
- 5 requests / 2 s per webhook, answered with 429 JSON and the X-RateLimit headers discord.py reads;
- 404 `Unknown Webhook` (10015) for a deleted webhook, 403/404 for a channel the bot cannot use;
- login (`/users/@me`, `/oauth2/applications/@me`), command sync, interaction callbacks and
  follow-ups, and a gateway that identifies the bot and dispatches interactions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import secrets
import socket
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import trustme
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

API = "/api/v10"
HOSTS = ("discord.com", "gateway.discord.gg")
APPLICATION_ID = 1_200_000_000_000_000_001
BOT_USER_ID = 1_200_000_000_000_000_001
EPHEMERAL = 1 << 6
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MANAGE_CHANNELS = 1 << 4
SEND_MESSAGES = 1 << 11

_ids = itertools.count(1_300_000_000_000_000_000)


def snowflake() -> int:
    """A fresh, increasing Discord-style id."""
    return next(_ids)


def utf16_len(text: str) -> int:
    """Discord counts message length in characters; count UTF-16 units to be strict."""
    return len(text.encode("utf-16-le")) // 2


def message_errors(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Discord's validation of a message body: None when valid, else the error JSON."""
    problems: dict[str, str] = {}
    content = payload.get("content") or ""
    if utf16_len(content) > 2000:
        problems["content"] = "Must be 2000 or fewer in length."
    if len(payload.get("username") or "") > 80:
        problems["username"] = "Must be 80 or fewer in length."
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        problems["embeds"] = "Must be 10 or fewer in length."
    total = 0
    limits = {"title": 256, "description": 4096}
    for index, embed in enumerate(embeds):
        for key, limit in limits.items():
            text = embed.get(key) or ""
            total += len(text)
            if len(text) > limit:
                problems[f"embeds.{index}.{key}"] = f"Must be {limit} or fewer in length."
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems[f"embeds.{index}.fields"] = "Must be 25 or fewer in length."
        for item in fields:
            total += len(item.get("name", "")) + len(item.get("value", ""))
            if len(item.get("name", "")) > 256 or len(item.get("value", "")) > 1024:
                problems[f"embeds.{index}.fields"] = "Field name ≤ 256, value ≤ 1024."
        for key, limit in (("footer", 2048), ("author", 256)):
            text = (embed.get(key) or {}).get("text" if key == "footer" else "name") or ""
            total += len(text)
            if len(text) > limit:
                problems[f"embeds.{index}.{key}"] = f"Must be {limit} or fewer in length."
    if total > 6000:
        problems["embeds"] = "Embed size exceeds maximum size of 6000"
    if problems:
        return {"message": "Invalid Form Body", "code": 50035, "errors": problems}
    has_body = content or embeds or payload.get("attachments")
    if not has_body and not payload.get("components") and not payload.get("poll"):
        return {"message": "Cannot send an empty message", "code": 50006}
    return None


def would_ping(payload: dict[str, Any]) -> bool:
    """Would Discord notify anyone for this message (mass mention, user or role mention)?"""
    content = payload.get("content") or ""
    mentions = re.findall(r"@everyone|@here|<@!?\d+>|<@&\d+>", content)
    if not mentions:
        return False
    allowed = payload.get("allowed_mentions")
    if allowed is None:  # Discord's default: parse every kind of mention
        return True
    parse = set(allowed.get("parse", []))
    users, roles = allowed.get("users", []), allowed.get("roles", [])
    for mention in mentions:
        if mention in ("@everyone", "@here") and "everyone" in parse:
            return True
        if mention.startswith("<@&") and ("roles" in parse or mention[3:-1] in roles):
            return True
        is_user = mention.startswith("<@") and not mention.startswith("<@&")
        if is_user and ("users" in parse or mention.strip("<@!>") in users):
            return True
    return False


class _Resolver(AbstractResolver):
    """Resolves Discord's host names to the stand-in's port on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self._port = port

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in HOSTS:
            raise OSError(f"the Discord stand-in does not serve {host}")
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": self._port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


def stand_in_connector(port: int, ca_pem: str) -> aiohttp.TCPConnector:
    """A connector to a stand-in running in another process (its port and CA certificate file)."""
    client_ssl = ssl.create_default_context(cafile=ca_pem)
    return aiohttp.TCPConnector(resolver=_Resolver(port), ssl=client_ssl, limit=0)


@dataclass
class Recorded:
    """One request the stand-in answered."""

    kind: str  # webhook | channel | callback | edit_original | delete_original | commands
    target: str  # webhook id, channel id or interaction token
    payload: dict[str, Any]
    status: int
    at: float


@dataclass
class Attachment:
    """A file uploaded with a message."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Message:
    """A message as a reader would see it."""

    id: int
    content: str
    ephemeral: bool = False
    loading: bool = False
    deleted: bool = False
    payload: dict[str, Any] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)


async def read_message_body(request: web.Request) -> tuple[dict[str, Any], list[Attachment]]:
    """A message body as Discord reads it: JSON, or multipart with `payload_json` and files."""
    if not request.content_type.startswith("multipart/"):
        return await request.json(), []
    payload: dict[str, Any] = {}
    files: list[Attachment] = []
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, aiohttp.BodyPartReader):
            continue
        if part.name == "payload_json":
            payload = json.loads(await part.text())
        elif part.filename:
            content_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE, "")
            files.append(Attachment(part.filename, content_type, bytes(await part.read())))
    return payload, files


def too_large(files: list[Attachment]) -> bool:
    """True when a file is beyond Discord's upload limit."""
    return any(len(f.data) > MAX_ATTACHMENT_BYTES for f in files)


@dataclass
class _Webhook:
    id: int
    token: str
    channel_id: int
    deleted: bool = False
    messages: list[Message] = field(default_factory=list)


@dataclass
class _Window:
    """Discord-style fixed window: opens at the first request, closes `window` s later."""

    start: float = -math.inf
    count: int = 0


def _user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
    }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class FakeDiscord:
    """Discord's REST API and gateway for one bot and any number of webhooks, on 127.0.0.1."""

    def __init__(
        self, *, limit: int = 5, window: float = 2.0, bot_token: str = "bot-token"
    ) -> None:
        self.limit = limit
        self.window = window
        self.bot_token = bot_token
        self.records: list[Recorded] = []
        self.rate_limited = 0
        self.commands: list[dict[str, Any]] = []
        self.identify: dict[str, Any] | None = None
        self.identified = asyncio.Event()
        self._webhooks: dict[int, _Webhook] = {}
        self._channels: dict[int, Literal["ok", "forbidden", "deleted"]] = {}
        self.channel_messages: dict[int, list[Message]] = defaultdict(list)
        self._windows: dict[tuple[int, str], _Window] = defaultdict(_Window)
        self._forced_429: list[float] = []
        self._drop_after: int | None = None
        self._interactions: dict[str, list[Message]] = {}
        self._acknowledged: set[str] = set()
        self.autocomplete: dict[str, list[dict[str, Any]]] = {}
        self._changed = asyncio.Condition()
        # Every connected session gets every interaction, as Discord does for an unsharded bot.
        self._gateways: list[web.WebSocketResponse] = []
        self.sessions = 0  # gateway sessions identified so far
        self._sequence = 1
        self._ca = trustme.CA()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._via_header], client_max_size=16 * 1024 * 1024)
        app.router.add_get("/", self._gateway_socket)
        app.router.add_get(f"{API}/gateway", self._gateway_url)
        app.router.add_get(f"{API}/gateway/bot", self._gateway_url)
        app.router.add_get(f"{API}/users/@me", self._me)
        app.router.add_get(f"{API}/oauth2/applications/@me", self._application)
        app.router.add_put(f"{API}/applications/{{app}}/commands", self._sync_commands)
        app.router.add_post(f"{API}/channels/{{channel}}/messages", self._channel_message)
        app.router.add_post(f"{API}/webhooks/{{id}}/{{token}}", self._execute_webhook)
        app.router.add_patch(f"{API}/webhooks/{{id}}/{{token}}/messages/@original", self._edit_orig)
        app.router.add_delete(
            f"{API}/webhooks/{{id}}/{{token}}/messages/@original", self._delete_original
        )
        app.router.add_post(f"{API}/interactions/{{id}}/{{token}}/callback", self._callback)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*HOSTS).configure_cert(server_ssl)
        await web.SockSite(self._runner, sock, ssl_context=server_ssl).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._gateways):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def connector(self) -> aiohttp.TCPConnector:
        """A connector that reaches this stand-in for discord.com and trusts its certificate."""
        client_ssl = ssl.create_default_context()
        self._ca.configure_trust(client_ssl)
        return aiohttp.TCPConnector(resolver=_Resolver(self.port), ssl=client_ssl, limit=0)

    def write_ca(self, path: str) -> str:
        """Write the stand-in's CA certificate to `path` (for clients in other processes)."""
        self._ca.cert_pem.write_to_path(path)
        return path

    def session(self) -> aiohttp.ClientSession:
        """An aiohttp session for discord.py's webhooks, pointed at this stand-in."""
        return aiohttp.ClientSession(connector=self.connector())

    # --- set-up by tests -------------------------------------------------------------------------

    def add_webhook(self) -> str:
        """Create a channel webhook; return its URL as Discord shows it."""
        hook = _Webhook(snowflake(), secrets.token_urlsafe(51)[:68], snowflake())
        self._webhooks[hook.id] = hook
        return f"https://discord.com/api/webhooks/{hook.id}/{hook.token}"

    def delete_webhook(self, url: str) -> None:
        """Delete the webhook behind `url` (later executions get 404 Unknown Webhook)."""
        self._webhooks[_webhook_id(url)].deleted = True

    def add_channel(self, access: Literal["ok", "forbidden", "deleted"] = "ok") -> int:
        """A text channel the bot can post in (`ok`), lost access to, or that was deleted."""
        channel_id = snowflake()
        self._channels[channel_id] = access
        return channel_id

    def drop_connection(self, after: int = 0) -> None:
        """Let `after` more messages (webhook or channel) through, then cut the connection."""
        self._drop_after = after

    def answer_429(self, times: int = 1, retry_after: float = 0.3) -> None:
        """Answer the next `times` messages (webhook or channel) with 429 (a shared limit)."""
        self._forced_429 += [retry_after] * times

    # --- what tests read -------------------------------------------------------------------------

    def webhook_messages(self, url: str) -> list[Message]:
        """Messages posted through the webhook behind `url`, in order."""
        return self._webhooks[_webhook_id(url)].messages

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        """Bodies of accepted requests of one kind."""
        return [r.payload for r in self.records if r.kind == kind and r.status < 300]

    def conversation(self, token: str) -> list[Message]:
        """What the invoking user sees of an interaction's answer (deleted messages left out)."""
        return [m for m in self._interactions.get(token, []) if not m.deleted]

    async def wait_until(self, predicate: Any, seconds: float = 5.0) -> None:
        """Wait until `predicate()` holds (checked after every request)."""
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(predicate)

    # --- gateway ---------------------------------------------------------------------------------

    @property
    def connected(self) -> int:
        """How many identified gateway sessions are open now."""
        return len(self._gateways)

    async def dispatch_interaction(self, payload: dict[str, Any]) -> None:
        """Send an INTERACTION_CREATE event to every connected session of the bot."""
        assert self._gateways, "the bot is not connected"
        self._interactions.setdefault(payload["token"], [])
        for ws in list(self._gateways):
            await self._send_event(ws, "INTERACTION_CREATE", payload)

    def callbacks(self, token: str) -> list[Recorded]:
        """Every answer attempt to one interaction (accepted or refused)."""
        return [r for r in self.records if r.kind == "callback" and r.target == token]

    async def _send_event(self, ws: web.WebSocketResponse, name: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        await ws.send_json({"op": 0, "t": name, "s": self._sequence, "d": data})

    async def _gateway_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if message["op"] == 1:
                await ws.send_json({"op": 11})
            elif message["op"] == 2:
                self.identify = message["d"]
                if message["d"].get("token") != self.bot_token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                await self._send_event(ws, "READY", self._ready())
                self._gateways.append(ws)
                self.sessions += 1
                self.identified.set()
                async with self._changed:
                    self._changed.notify_all()
        if ws in self._gateways:
            self._gateways.remove(ws)
        async with self._changed:
            self._changed.notify_all()
        return ws

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": _user(BOT_USER_ID, "aiinfra-digest", bot=True),
            "guilds": [],
            "session_id": "fake-session",
            "resume_gateway_url": "wss://gateway.discord.gg",
            "application": {"id": str(APPLICATION_ID), "flags": 0},
            "shard": [0, 1],
        }

    async def _gateway_url(self, request: web.Request) -> web.Response:
        return _json(
            {
                "url": "wss://gateway.discord.gg",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    # --- REST ------------------------------------------------------------------------------------

    @web.middleware
    async def _via_header(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # Discord's answers come through Google's front end; discord.py only trusts (and waits
        # out) a 429 that carries `Via`, treating one without it as a Cloudflare ban.
        response: web.StreamResponse = await handler(request)
        if not isinstance(response, web.WebSocketResponse):
            response.headers["Via"] = "1.1 google"
        async with self._changed:
            self._changed.notify_all()
        return response

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.bot_token}"

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(_user(BOT_USER_ID, "aiinfra-digest", bot=True))

    async def _application(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(
            {
                "id": str(APPLICATION_ID),
                "name": "aiinfra-digest",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": _user(1, "owner"),
                "verify_key": "0" * 64,
                "flags": 0,
            }
        )

    async def _sync_commands(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        body = await request.json()
        self.commands = [
            {
                "id": str(snowflake()),
                "application_id": str(APPLICATION_ID),
                "version": str(snowflake()),
                "type": 1,
                "default_member_permissions": None,
                "nsfw": False,
                **command,
            }
            for command in body
        ]
        self._record("commands", "global", {"commands": body}, 200)
        return _json(self.commands)

    async def _channel_message(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        channel_id = int(request.match_info["channel"])
        payload, files = await read_message_body(request)
        access = self._channels.get(channel_id, "deleted")
        if access == "deleted":
            return self._error("channel", str(channel_id), payload, 404, "Unknown Channel", 10003)
        if access == "forbidden":
            return self._error("channel", str(channel_id), payload, 403, "Missing Access", 50001)
        if self._drop_after is not None:
            self._drop_after -= 1
            if self._drop_after < 0:
                self._drop_after = None
                assert request.transport is not None
                request.transport.abort()  # a network failure mid-digest, before any answer
                raise web.HTTPServiceUnavailable()
        if self._forced_429:
            limited = self._rate_limit((channel_id, "channel"))
            if isinstance(limited, web.Response):
                self._record("channel", str(channel_id), payload, 429)
                return limited
        if too_large(files):
            return self._error(
                "channel", str(channel_id), payload, 413, "Request entity too large", 40005
            )
        invalid = message_errors(payload)
        if invalid:
            self._record("channel", str(channel_id), payload, 400)
            return _json(invalid, status=400)
        message = Message(
            snowflake(), payload.get("content") or "", payload=payload, attachments=files
        )
        self.channel_messages[channel_id].append(message)
        self._record("channel", str(channel_id), payload, 200)
        return _json(self._message_json(message, channel_id, BOT_USER_ID, None))

    async def _execute_webhook(self, request: web.Request) -> web.Response:
        hook_id, token = int(request.match_info["id"]), request.match_info["token"]
        payload, files = await read_message_body(request)
        if token in self._interactions and hook_id == APPLICATION_ID:
            return self._followup(token, payload)
        hook = self._webhooks.get(hook_id)
        if hook is None or hook.deleted:
            return self._error("webhook", str(hook_id), payload, 404, "Unknown Webhook", 10015)
        if hook.token != token:
            return self._error(
                "webhook", str(hook_id), payload, 401, "Invalid Webhook Token", 50027
            )
        if self._drop_after is not None:
            self._drop_after -= 1
            if self._drop_after < 0:
                self._drop_after = None
                assert request.transport is not None
                request.transport.abort()  # a network failure mid-digest, before any answer
                raise web.HTTPServiceUnavailable()
        limited = self._rate_limit((hook_id, token))
        if isinstance(limited, web.Response):
            self._record("webhook", str(hook_id), payload, 429)
            return limited
        if too_large(files):
            self._record("webhook", str(hook_id), payload, 413)
            return _json(
                {"message": "Request entity too large", "code": 40005}, status=413, headers=limited
            )
        invalid = message_errors(payload)
        if invalid:
            self._record("webhook", str(hook_id), payload, 400)
            return _json(invalid, status=400, headers=limited)
        message = Message(
            snowflake(), payload.get("content") or "", payload=payload, attachments=files
        )
        hook.messages.append(message)
        self._record("webhook", str(hook_id), payload, 200)
        if request.query.get("wait") in ("1", "true", "True"):
            body = self._message_json(message, hook.channel_id, hook.id, hook.id)
            return _json(body, headers=limited)
        return web.Response(status=204, headers=limited)

    def _rate_limit(self, key: tuple[int, str]) -> dict[str, str] | web.Response:
        """Count one request against the webhook's window: its X-RateLimit headers, or a 429."""
        now = time.monotonic()
        window = self._windows[key]
        if now >= window.start + self.window:
            window.start, window.count = now, 0
        reset_after = window.start + self.window - now
        bucket = f"webhook-{key[0]}"
        if self._forced_429 or window.count >= self.limit:
            retry_after = self._forced_429.pop(0) if self._forced_429 else reset_after
            self.rate_limited += 1
            return _json(
                {
                    "message": "You are being rate limited.",
                    "retry_after": round(retry_after, 3),
                    "global": False,
                },
                status=429,
                headers={
                    "Retry-After": str(math.ceil(retry_after)),
                    "X-RateLimit-Limit": str(self.limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                    "X-RateLimit-Bucket": bucket,
                    "X-RateLimit-Scope": "user",
                },
            )
        window.count += 1
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - window.count),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            # Rounded up so a client that waits this long always lands in the next window.
            "X-RateLimit-Reset-After": f"{math.ceil(reset_after * 1000) / 1000:.3f}",
            "X-RateLimit-Bucket": bucket,
        }

    async def _callback(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.json()
        if token not in self._interactions:
            return self._error("callback", token, body, 404, "Unknown interaction", 10062)
        if token in self._acknowledged:
            return self._error(
                "callback", token, body, 400, "Interaction has already been acknowledged.", 40060
            )
        self._acknowledged.add(token)
        kind, data = body["type"], body.get("data") or {}
        self._record("callback", token, body, 200)
        if kind == 8:
            self.autocomplete[token] = data.get("choices", [])
            return _json(self._callback_json(request, kind, None))
        if kind == 4:
            invalid = message_errors(data)
            if invalid:
                return _json(invalid, status=400)
        message = Message(
            snowflake(),
            data.get("content") or "",
            ephemeral=bool(data.get("flags", 0) & EPHEMERAL),
            loading=kind == 5,
            payload=data,
        )
        self._interactions[token].append(message)
        return _json(self._callback_json(request, kind, message))

    def _callback_json(
        self, request: web.Request, kind: int, message: Message | None
    ) -> dict[str, Any]:
        interaction: dict[str, Any] = {"id": request.match_info["id"], "type": 2}
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            interaction |= {
                "response_message_id": str(message.id),
                "response_message_loading": message.loading,
                "response_message_ephemeral": message.ephemeral,
            }
            resource["message"] = self._message_json(message, snowflake(), BOT_USER_ID, None)
        return {"interaction": interaction, "resource": resource}

    def _followup(self, token: str, payload: dict[str, Any]) -> web.Response:
        invalid = message_errors(payload)
        if invalid:
            self._record("followup", token, payload, 400)
            return _json(invalid, status=400)
        messages = self._interactions[token]
        original = messages[0] if messages else None
        if original is not None and original.loading and not original.deleted:
            # The first follow-up after a deferral fills the "thinking…" message, keeping its
            # visibility; only later ones are new messages with their own flags.
            original.content, original.loading, original.payload = (
                payload.get("content") or "",
                False,
                payload,
            )
            message = original
        else:
            message = Message(
                snowflake(),
                payload.get("content") or "",
                ephemeral=bool(payload.get("flags", 0) & EPHEMERAL),
                payload=payload,
            )
            messages.append(message)
        self._record("followup", token, payload, 200)
        return _json(self._message_json(message, snowflake(), APPLICATION_ID, None))

    async def _edit_orig(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        payload = await request.json()
        messages = self._interactions.get(token) or []
        if not messages or messages[0].deleted:
            return self._error("edit_original", token, payload, 404, "Unknown Message", 10008)
        invalid = message_errors(payload)
        if invalid:
            self._record("edit_original", token, payload, 400)
            return _json(invalid, status=400)
        original = messages[0]
        original.content, original.loading = payload.get("content") or "", False
        original.payload = payload
        self._record("edit_original", token, payload, 200)
        return _json(self._message_json(original, snowflake(), APPLICATION_ID, None))

    async def _delete_original(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        messages = self._interactions.get(token) or []
        if not messages or messages[0].deleted:
            return self._error("delete_original", token, {}, 404, "Unknown Message", 10008)
        messages[0].deleted = True
        self._record("delete_original", token, {}, 204)
        return web.Response(status=204)

    def _error(
        self, kind: str, target: str, payload: dict[str, Any], status: int, text: str, code: int
    ) -> web.Response:
        self._record(kind, target, payload, status)
        return _json({"message": text, "code": code}, status=status)

    def _record(self, kind: str, target: str, payload: dict[str, Any], status: int) -> None:
        self.records.append(Recorded(kind, target, payload, status, time.monotonic()))

    @staticmethod
    def _message_json(
        message: Message, channel_id: int, author_id: int, webhook_id: int | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(message.id),
            "type": 0,
            "channel_id": str(channel_id),
            "content": message.content,
            "author": _user(author_id, "aiinfra-digest", bot=True),
            "attachments": [
                {
                    "id": str(snowflake()),
                    "filename": item.filename,
                    "size": len(item.data),
                    "content_type": item.content_type,
                    "url": f"https://cdn.discordapp.com/attachments/{channel_id}/{item.filename}",
                    "proxy_url": f"https://media.discordapp.net/attachments/{channel_id}/x",
                }
                for item in message.attachments
            ],
            "embeds": message.payload.get("embeds", []),
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "flags": message.payload.get("flags", 0),
            "components": [],
        }
        if webhook_id is not None:
            body["webhook_id"] = str(webhook_id)
        return body


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer with Discord's exact content type (discord.py compares it literally)."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _webhook_id(url: str) -> int:
    match = re.search(r"/webhooks/(\d+)/", url)
    assert match, url
    return int(match[1])


# --- interaction payloads, as Discord sends them ---------------------------------------------


def command_interaction(
    name: str,
    options: dict[str, str] | None = None,
    *,
    permissions: int = SEND_MESSAGES,
    channel_id: int = 1_250_000_000_000_000_001,
    guild_id: int | None = 1_240_000_000_000_000_001,
    user_id: int = 1_230_000_000_000_000_001,
    focused: str | None = None,
) -> dict[str, Any]:
    """An APPLICATION_COMMAND (or, with `focused`, AUTOCOMPLETE) interaction payload."""
    user = _user(user_id, "reader")
    data_options = [
        {"name": key, "type": 3, "value": value} | ({"focused": True} if key == focused else {})
        for key, value in (options or {}).items()
    ]
    payload: dict[str, Any] = {
        "id": str(snowflake()),
        "application_id": str(APPLICATION_ID),
        "type": 4 if focused else 2,
        "token": f"interaction-{secrets.token_urlsafe(24)}",
        "version": 1,
        "channel_id": str(channel_id),
        "data": {"id": str(snowflake()), "name": name, "type": 1, "options": data_options},
        "app_permissions": str(SEND_MESSAGES),
        "locale": "zh-CN",
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if guild_id is None:
        payload |= {
            "user": user,
            "channel": {"id": str(channel_id), "type": 1, "recipients": [user]},
            "context": 1,
        }
    else:
        payload |= {
            "guild_id": str(guild_id),
            "guild_locale": "zh-CN",
            "channel": {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(guild_id),
                "name": "ai-infra",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            },
            "member": {
                "user": user,
                "roles": [],
                "joined_at": _now_iso(),
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": str(permissions),
            },
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
        }
    return payload
