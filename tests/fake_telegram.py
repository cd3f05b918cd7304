"""An in-process stand-in of the Telegram Bot API, served over real HTTP on 127.0.0.1.

Point a real client at it: `TELEGRAM_API_URL=fake.url` (requests go to `/bot<token>/<method>`).
It speaks enough of the protocol for python-telegram-bot's Application: getMe, setMyCommands,
deleteWebhook, getUpdates (feeds scripted updates), sendMessage (validated the way Telegram
does: length after entity parsing in UTF-16 code units, well-formed entities / HTML /
MarkdownV2), sendPhoto (multipart upload: a PNG of at most 10 MB, caption ≤ 1024; recorded in
`photos`), getChatMember (admins per chat), editMessageText, deleteMessage and friends.

Failure drills: `blocked` chats answer 403, `missing` chats 400 "chat not found",
`rate_limit_next()` answers 429 with `retry_after`, `rate_per_second` / `group_per_minute`
enforce Telegram's broadcast limits with 429s, `fail_next()` injects any other status.

    async with FakeTelegram(rate_per_second=30) as tg:
        tg.push_command(chat_id=42, user_id=42, text="/digest vllm")
        ...
        await tg.wait_for_messages(1)
        assert tg.sent[0].plain.startswith("...")
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import unescape
from typing import Any, Self

from aiohttp import web

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1000 * 1000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENTITY_TYPES = {
    "mention",
    "hashtag",
    "cashtag",
    "bot_command",
    "url",
    "email",
    "phone_number",
    "bold",
    "italic",
    "underline",
    "strikethrough",
    "spoiler",
    "blockquote",
    "expandable_blockquote",
    "code",
    "pre",
    "text_link",
    "text_mention",
    "custom_emoji",
    "date_time",
}
# The Bot API's nesting rules: formatting nests with anything but code/pre; code/pre nest with
# nothing (a quote may hold them); quotes don't nest; other entities never contain each other.
FORMATTING_ENTITIES = {"bold", "italic", "underline", "strikethrough", "spoiler"}
CODE_ENTITIES = {"code", "pre"}
QUOTE_ENTITIES = {"blockquote", "expandable_blockquote"}
HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")


class ParseError(Exception):
    """What Telegram would answer with 400 "Bad Request: can't parse entities: ..."."""


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class SentMessage:
    """One message the stand-in accepted (sendMessage, or its latest editMessageText)."""

    message_id: int
    chat_id: str
    text: str
    plain: str
    entities: list[dict[str, Any]]
    parse_mode: str | None
    link_preview_disabled: bool
    at: float
    reply_to: int | None = None
    deleted: bool = False
    thread_id: int | None = None  # message_thread_id: the forum topic it was posted in


@dataclass
class SentPhoto:
    """One photo the stand-in accepted (sendPhoto with an uploaded file)."""

    message_id: int
    chat_id: str
    png: bytes
    filename: str | None
    caption: str
    at: float
    thread_id: int | None = None  # message_thread_id: the forum topic it was posted in


@dataclass
class _Failure:
    status: int
    description: str
    parameters: dict[str, Any] | None
    method: str | None
    chat_id: str | None
    times: int
    skip: int = 0


@dataclass
class FakeTelegram:
    """The stand-in server; use as an async context manager, then read `url`."""

    token: str = "123456:TEST-TOKEN"
    username: str = "AIInfraDigestBot"
    bot_id: int = 123456
    rate_per_second: float | None = None
    group_per_minute: int | None = None
    send_delay: float = 0.0
    admins: dict[str, set[str]] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    # Chaos the way a real network delivers it: every Nth sendMessage is answered 429 with
    # `chaos_retry_after`; every Mth *accepted* message is stored but its reply never arrives
    # (the connection closes before the answer), so the client cannot know it went out.
    rate_limit_every: int | None = None
    chaos_retry_after: float = 1
    lose_reply_every: int | None = None
    # A group that became a supergroup: old id → new id (sends to the old id are refused).
    migrated: dict[str, str] = field(default_factory=dict)
    # Forum supergroups: chat id → the ids of its topics. A message_thread_id anywhere else is
    # refused as Telegram does ("message thread not found").
    forums: dict[str, set[int]] = field(default_factory=dict)

    sent: list[SentMessage] = field(default_factory=list, init=False)
    photos: list[SentPhoto] = field(default_factory=list, init=False)
    requests: Counter[str] = field(default_factory=Counter, init=False)
    too_many_requests: int = field(default=0, init=False)
    rejected: list[tuple[str, str]] = field(default_factory=list, init=False)
    commands: list[dict[str, Any]] = field(default_factory=list, init=False)
    member_lookups: int = field(default=0, init=False)
    lost_replies: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._confirmed = 0
        self._update_ids = itertools.count(1)
        self._message_ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._failures: list[_Failure] = []
        self._window: deque[float] = deque()
        self._group_windows: dict[str, deque[float]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1; `url` is then the base URL to configure."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -- scripting ---------------------------------------------------------------------------

    def rate_limit_next(
        self,
        retry_after: int,
        *,
        times: int = 1,
        method: str | None = "sendMessage",
        chat_id: str | int | None = None,
        skip: int = 0,
    ) -> None:
        """Answer the next `times` matching calls (after `skip` of them) with 429 + retry_after."""
        self.fail_next(
            429,
            f"Too Many Requests: retry after {retry_after}",
            parameters={"retry_after": retry_after},
            times=times,
            method=method,
            chat_id=chat_id,
            skip=skip,
        )

    def fail_next(
        self,
        status: int,
        description: str,
        *,
        parameters: dict[str, Any] | None = None,
        times: int = 1,
        method: str | None = "sendMessage",
        chat_id: str | int | None = None,
        skip: int = 0,
    ) -> None:
        """Answer the next `times` matching calls (after letting `skip` through) with this error."""
        chat = None if chat_id is None else str(chat_id)
        self._failures.append(_Failure(status, description, parameters, method, chat, times, skip))

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (without update_id) for getUpdates; returns its update_id."""
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **update})
        asyncio.get_running_loop().create_task(self._notify())
        return update_id

    def push_command(
        self,
        *,
        chat_id: int,
        text: str,
        user_id: int | None = None,
        chat_type: str = "private",
        title: str = "Test group",
        sender_chat_id: int | None = None,
        thread_id: int | None = None,
    ) -> int:
        """Queue a command message; `chat_type="channel"` makes it a channel post.

        `thread_id`: sent inside that topic of a forum (`forums`), as Telegram marks it.
        """
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if str(chat_id) in self.forums:
            chat["is_forum"] = True
        if chat_type == "private":
            chat["first_name"] = f"user{chat_id}"
        else:
            chat["title"] = title
        command = text.split(maxsplit=1)[0] if text.strip() else ""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids[f"in:{chat_id}"]),
            "date": int(time.time()),
            "chat": chat,
            "text": text,
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if command.startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        if user_id is not None:
            message["from"] = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        if sender_chat_id is not None or chat_type == "channel":
            sender = sender_chat_id if sender_chat_id is not None else chat_id
            message["sender_chat"] = {"id": sender, "type": chat_type, "title": title}
        key = "channel_post" if chat_type == "channel" else "message"
        return self.push_update({key: message})

    def migrate_group(
        self,
        old_chat_id: int,
        new_chat_id: int,
        *,
        announce: bool = True,
        title: str = "Test group",
        user_id: int = 1,
    ) -> None:
        """Upgrade a group to a supergroup, as Telegram does when a group grows or is converted.

        From now on a send to the old id gets 400 "group chat was upgraded to a supergroup chat"
        with `migrate_to_chat_id`. With `announce`, the two service messages Telegram sends are
        queued as updates: `migrate_to_chat_id` in the old group, `migrate_from_chat_id` in the
        new supergroup.
        """
        self.migrated[str(old_chat_id)] = str(new_chat_id)
        if not announce:
            return
        user = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        old = {"id": old_chat_id, "type": "group", "title": title}
        new = {"id": new_chat_id, "type": "supergroup", "title": title}
        for chat, key, value in (
            (old, "migrate_to_chat_id", new_chat_id),
            (new, "migrate_from_chat_id", old_chat_id),
        ):
            message = {
                "message_id": next(self._message_ids[f"in:{chat['id']}"]),
                "date": int(time.time()),
                "chat": chat,
                "from": user,
                key: value,
            }
            self.push_update({"message": message})

    def messages_to(self, chat_id: str | int) -> list[SentMessage]:
        """The messages accepted for one chat, oldest first."""
        return [m for m in self.sent if m.chat_id == str(chat_id) and not m.deleted]

    def messages_in(self, chat_id: str | int, thread_id: int | None) -> list[SentMessage]:
        """The messages accepted for one topic of a chat (None: outside every topic)."""
        return [m for m in self.messages_to(chat_id) if m.thread_id == thread_id]

    async def wait_for_messages(
        self,
        count: int,
        *,
        chat_id: str | int | None = None,
        within: float = 10.0,
    ) -> list[SentMessage]:
        """Wait until `count` messages (to `chat_id`, or anywhere) were accepted; return them."""

        def ready() -> bool:
            return len(self._matching(chat_id)) >= count

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), within)
        return self._matching(chat_id)

    async def wait_until(self, predicate: Callable[[], bool], *, within: float = 10.0) -> None:
        """Wait until `predicate()` holds (re-checked after every request)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within)

    def _matching(self, chat_id: str | int | None) -> list[SentMessage]:
        if chat_id is None:
            return [m for m in self.sent if not m.deleted]
        return self.messages_to(chat_id)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- HTTP --------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params = await _params(request)
        self.requests[method] += 1
        try:
            failure = self._take_failure(method, params)
            if failure is not None:
                if failure.status == 429:
                    self.too_many_requests += 1
                return _error(failure.status, failure.description, failure.parameters)
            chaos = method == "sendMessage"
            every = self.rate_limit_every
            if chaos and every and self.requests[method] % every == 0:
                self.too_many_requests += 1
                retry = self.chaos_retry_after
                message = f"Too Many Requests: retry after {retry}"
                return _error(429, message, {"retry_after": retry})
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                return _error(404, "Not Found: method not found")
            accepted = len(self.sent)
            result = await handler(params)
            if isinstance(result, web.Response):
                return result
            lose = self.lose_reply_every
            if chaos and lose and len(self.sent) > accepted and len(self.sent) % lose == 0:
                # Stored, then the connection drops before the answer: a lost reply.
                self.lost_replies += 1
                if request.transport is not None:
                    request.transport.abort()
                raise web.HTTPServiceUnavailable()  # never reaches the client: it is gone
            return web.json_response({"ok": True, "result": result})
        finally:
            await self._notify()

    def _take_failure(self, method: str, params: Mapping[str, Any]) -> _Failure | None:
        chat = params.get("chat_id")
        for failure in self._failures:
            if failure.method not in (None, method):
                continue
            if failure.chat_id is not None and failure.chat_id != str(chat):
                continue
            if failure.skip > 0:
                failure.skip -= 1
                return None
            failure.times -= 1
            if failure.times <= 0:
                self._failures.remove(failure)
            return failure
        return None

    # -- methods -----------------------------------------------------------------------------

    def _me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "AI Infra Digest",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getMe(self, _params: Mapping[str, Any]) -> Any:
        return self._me()

    async def _m_logOut(self, _params: Mapping[str, Any]) -> Any:
        return True

    async def _m_close(self, _params: Mapping[str, Any]) -> Any:
        return True

    async def _m_deleteWebhook(self, _params: Mapping[str, Any]) -> Any:
        return True

    async def _m_setWebhook(self, _params: Mapping[str, Any]) -> Any:
        return True

    async def _m_getWebhookInfo(self, _params: Mapping[str, Any]) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_setMyCommands(self, params: Mapping[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or not commands or len(commands) > 100:
            return self._reject("setMyCommands", "Bad Request: commands must be a non-empty list")
        for entry in commands:
            name = str(entry.get("command", ""))
            description = str(entry.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                return self._reject("setMyCommands", "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                return self._reject("setMyCommands", "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands = list(commands)
        return True

    async def _m_getMyCommands(self, _params: Mapping[str, Any]) -> Any:
        return self.commands

    async def _m_deleteMyCommands(self, _params: Mapping[str, Any]) -> Any:
        self.commands = []
        return True

    async def _m_sendChatAction(self, _params: Mapping[str, Any]) -> Any:
        return True

    async def _m_getChat(self, params: Mapping[str, Any]) -> Any:
        chat_id = str(params.get("chat_id"))
        if chat_id in self.missing:
            return self._reject("getChat", "Bad Request: chat not found")
        kind = "private" if not chat_id.startswith("-") else "supergroup"
        return {"id": int(chat_id), "type": kind, "accent_color_id": 0, "max_reaction_count": 11}

    async def _m_getUpdates(self, params: Mapping[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        # Long polling, but short: a stopping Application must not wait on the stand-in.
        timeout = min(float(params.get("timeout") or 0), 0.25)
        if offset:
            self._confirmed = max(self._confirmed, offset - 1)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def pending() -> list[dict[str, Any]]:
            return [u for u in self._updates if u["update_id"] > self._confirmed][:limit]

        if not pending() and timeout > 0:
            try:
                async with self._changed:
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(pending())), timeout)
            except TimeoutError:
                pass
        return pending()

    async def _m_getChatMember(self, params: Mapping[str, Any]) -> Any:
        self.member_lookups += 1
        chat_id = str(params.get("chat_id"))
        user_id = str(params.get("user_id"))
        user = {"id": int(user_id), "is_bot": False, "first_name": f"user{user_id}"}
        if chat_id in self.missing:
            return self._reject("getChatMember", "Bad Request: chat not found")
        if user_id in self.admins.get(chat_id, set()):
            return {
                "status": "administrator",
                "user": user,
                **{
                    name: False
                    for name in (
                        "can_be_edited",
                        "is_anonymous",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    )
                },
                "can_manage_chat": True,
                "can_change_info": True,
                "can_invite_users": True,
            }
        return {"status": "member", "user": user}

    async def _m_sendMessage(self, params: Mapping[str, Any]) -> Any:
        chat_id = str(params.get("chat_id"))
        refusal = self._chat_refusal("sendMessage", chat_id)
        if refusal is not None:
            return refusal
        thread_id, refusal = self._thread(params, "sendMessage", chat_id)
        if refusal is not None:
            return refusal
        try:
            plain, entities = parse_message(params)
        except ParseError as exc:
            return self._reject("sendMessage", f"Bad Request: {exc}")
        limited = self._rate_limited(chat_id)
        if limited is not None:
            return limited
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        message_id = next(self._message_ids[chat_id])
        reply = params.get("reply_parameters") or {}
        record = SentMessage(
            message_id=message_id,
            chat_id=chat_id,
            text=str(params.get("text", "")),
            plain=plain,
            entities=entities,
            parse_mode=params.get("parse_mode"),
            link_preview_disabled=_preview_disabled(params),
            at=time.monotonic(),
            reply_to=reply.get("message_id") if isinstance(reply, dict) else None,
            thread_id=thread_id,
        )
        self.sent.append(record)
        return self._message_json(record)

    async def _m_sendPhoto(self, params: Mapping[str, Any]) -> Any:
        chat_id = str(params.get("chat_id"))
        refusal = self._chat_refusal("sendPhoto", chat_id)
        if refusal is not None:
            return refusal
        thread_id, refusal = self._thread(params, "sendPhoto", chat_id)
        if refusal is not None:
            return refusal
        upload = params.get("photo")
        if not isinstance(upload, web.FileField):
            # A file_id or URL is not what the bot sends; only uploads are accepted here.
            return self._reject("sendPhoto", "Bad Request: there is no photo in the request")
        data = upload.file.read()
        if len(data) > MAX_PHOTO_BYTES:
            return self._reject("sendPhoto", "Bad Request: PHOTO_INVALID_DIMENSIONS")
        if not data.startswith(PNG_SIGNATURE):
            return self._reject("sendPhoto", "Bad Request: IMAGE_PROCESS_FAILED")
        caption = str(params.get("caption") or "")
        if utf16_len(caption) > MAX_CAPTION:
            return self._reject("sendPhoto", "Bad Request: message caption is too long")
        limited = self._rate_limited(chat_id)
        if limited is not None:
            return limited
        record = SentPhoto(
            message_id=next(self._message_ids[chat_id]),
            chat_id=chat_id,
            png=data,
            filename=upload.filename,
            caption=caption,
            at=time.monotonic(),
            thread_id=thread_id,
        )
        self.photos.append(record)
        kind = "private" if not chat_id.startswith("-") else "supergroup"
        return {
            "message_id": record.message_id,
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": kind},
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "AI Infra Digest"},
            "photo": [
                {
                    "file_id": f"photo-{chat_id}-{record.message_id}",
                    "file_unique_id": f"u{chat_id}{record.message_id}",
                    "width": 1200,
                    "height": 800,
                    "file_size": len(data),
                }
            ],
            **({"caption": caption} if caption else {}),
        }

    def photos_to(self, chat_id: str | int) -> list[SentPhoto]:
        """The photos accepted for one chat, oldest first."""
        return [p for p in self.photos if p.chat_id == str(chat_id)]

    async def _m_editMessageText(self, params: Mapping[str, Any]) -> Any:
        chat_id = str(params.get("chat_id"))
        message_id = int(params.get("message_id") or 0)
        try:
            plain, entities = parse_message(params)
        except ParseError as exc:
            return self._reject("editMessageText", f"Bad Request: {exc}")
        for record in self.sent:
            if record.chat_id == chat_id and record.message_id == message_id:
                record.text = str(params.get("text", ""))
                record.plain, record.entities = plain, entities
                record.parse_mode = params.get("parse_mode")
                return self._message_json(record)
        return self._reject("editMessageText", "Bad Request: message to edit not found")

    async def _m_deleteMessage(self, params: Mapping[str, Any]) -> Any:
        chat_id = str(params.get("chat_id"))
        message_id = int(params.get("message_id") or 0)
        for record in self.sent:
            if record.chat_id == chat_id and record.message_id == message_id:
                record.deleted = True
                return True
        return self._reject("deleteMessage", "Bad Request: message to delete not found")

    # -- helpers -----------------------------------------------------------------------------

    def _chat_refusal(self, method: str, chat_id: str) -> web.Response | None:
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.missing:
            return self._reject(method, "Bad Request: chat not found")
        if chat_id in self.migrated:
            self.rejected.append((method, "group chat was upgraded to a supergroup chat"))
            return _error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": int(self.migrated[chat_id])},
            )
        return None

    def _thread(
        self, params: Mapping[str, Any], method: str, chat_id: str
    ) -> tuple[int | None, web.Response | None]:
        """message_thread_id: None, a topic of this forum, or Telegram's refusal."""
        raw = params.get("message_thread_id")
        if raw is None or raw == "":
            return None, None
        try:
            thread_id = int(raw)
        except (TypeError, ValueError):
            return None, self._reject(method, "Bad Request: invalid message thread identifier")
        if thread_id not in self.forums.get(chat_id, set()):
            return None, self._reject(method, "Bad Request: message thread not found")
        return thread_id, None

    def _rate_limited(self, chat_id: str) -> web.Response | None:
        """Telegram's broadcast limits: N messages in any 1 s overall, M per minute per group."""
        now = time.monotonic()
        if self.rate_per_second is not None:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= self.rate_per_second:
                self.too_many_requests += 1
                return _error(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        group = self._group_windows[chat_id] if chat_id.startswith("-") else None
        if group is not None and self.group_per_minute is not None:
            while group and now - group[0] >= 60.0:
                group.popleft()
            if len(group) >= self.group_per_minute:
                self.too_many_requests += 1
                wait = max(1, math.ceil(60.0 - (now - group[0])))
                return _error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        if self.rate_per_second is not None:
            self._window.append(now)
        if group is not None:
            group.append(now)
        return None

    def _reject(self, method: str, description: str) -> web.Response:
        self.rejected.append((method, description))
        return _error(400, description)

    def _message_json(self, record: SentMessage) -> dict[str, Any]:
        kind = "private" if not record.chat_id.startswith("-") else "supergroup"
        chat: dict[str, Any] = {"id": int(record.chat_id), "type": kind}
        message: dict[str, Any] = {
            "message_id": record.message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "AI Infra Digest"},
            "text": record.plain,
        }
        if record.entities:
            message["entities"] = record.entities
        if record.thread_id is not None:
            chat["is_forum"] = True
            message["message_thread_id"] = record.thread_id
            message["is_topic_message"] = True
        return message


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


async def _params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query, a JSON body, or a form (values JSON-decoded where they are)."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            for key, field_value in form.items():
                # Uploaded files (sendPhoto) stay files; other fields are text.
                if isinstance(field_value, str | web.FileField):
                    params[key] = field_value
                else:
                    params[key] = str(field_value)
    for key in (
        "entities",
        "reply_markup",
        "link_preview_options",
        "reply_parameters",
        "commands",
        "allowed_updates",
    ):
        value = params.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _preview_disabled(params: Mapping[str, Any]) -> bool:
    options = params.get("link_preview_options")
    if isinstance(options, dict) and options.get("is_disabled"):
        return True
    return str(params.get("disable_web_page_preview", "")).lower() in ("true", "1")


# -- message parsing, as Telegram does it ----------------------------------------------------


def parse_message(params: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text as it will be shown and its entities; ParseError for what Telegram refuses."""
    text = params.get("text")
    if not isinstance(text, str):
        raise ParseError("message text is empty")
    mode = params.get("parse_mode")
    raw_entities = params.get("entities")
    if mode and raw_entities:
        raise ParseError("can't use parse_mode together with entities")
    if mode in (None, ""):
        entities = list(raw_entities or [])
        plain = text
    elif str(mode).lower() == "html":
        plain, entities = parse_html(text)
    elif mode == "MarkdownV2":
        plain, entities = parse_markdown_v2(text)
    elif mode == "Markdown":
        plain, entities = re.sub(r"[*_`\[\]]", "", text), []
    else:
        raise ParseError(f"unsupported parse_mode {mode!r}")
    if not plain.strip():
        raise ParseError("message text is empty")
    if utf16_len(plain) > MAX_TEXT:
        raise ParseError("message is too long")
    check_entities(plain, entities)
    return plain, entities


def check_entities(plain: str, entities: list[dict[str, Any]]) -> None:
    """Entities in range, of known types, nested (never crossing), nothing inside code/pre."""
    size = utf16_len(plain)
    spans: list[tuple[int, int, str]] = []
    for entity in entities:
        if not isinstance(entity, dict):
            raise ParseError("can't parse entities: entity is not an object")
        kind = entity.get("type")
        offset, length = entity.get("offset"), entity.get("length")
        if kind not in ENTITY_TYPES:
            raise ParseError(f"can't parse entities: unsupported entity type {kind!r}")
        if not isinstance(offset, int) or not isinstance(length, int):
            raise ParseError("can't parse entities: offset and length must be integers")
        if offset < 0 or length <= 0 or offset + length > size:
            raise ParseError(f"can't parse entities: {kind} at {offset}+{length} is out of text")
        if kind == "text_link" and not str(entity.get("url", "")).strip():
            raise ParseError("can't parse entities: text_link without url")
        spans.append((offset, offset + length, str(kind)))
    spans.sort(key=lambda s: (s[0], -s[1]))
    for i, (_start, end, kind) in enumerate(spans):
        for other_start, other_end, other_kind in spans[i + 1 :]:
            if other_start >= end:
                break
            if other_end > end:
                raise ParseError(f"can't parse entities: {kind} and {other_kind} cross")
            problem = nesting_problem(kind, other_kind)
            if problem:
                raise ParseError(f"can't parse entities: {problem}")


def nesting_problem(outer: str, inner: str) -> str | None:
    """Why `inner` may not sit inside `outer` (the Bot API's nesting rules), or None."""
    pair = {outer, inner}
    if pair & CODE_ENTITIES:
        rest = pair - CODE_ENTITIES
        if rest and rest <= QUOTE_ENTITIES:
            return None
        return f"{inner} inside {outer} ({'/'.join(sorted(CODE_ENTITIES))} nest with nothing)"
    if pair & FORMATTING_ENTITIES:
        return None
    if pair <= QUOTE_ENTITIES:
        return f"{inner} inside {outer} (quotes can't be nested)"
    if pair & QUOTE_ENTITIES:
        return None
    return f"{inner} inside {outer} (these entities can't contain each other)"


_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'))?)*)\s*>"
)
_CHARREF = re.compile(r"&(?:#\d+|#x[0-9A-Fa-f]+|lt|gt|amp|quot);")
_ATTR = re.compile(r"([A-Za-z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'))?")


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML: supported tags only, balanced, `<`/`&` escaped elsewhere."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, dict[str, str]]] = []
    position = 0
    length = 0
    while position < len(text):
        char = text[position]
        if char == "<":
            match = _TAG.match(text, position)
            if match is None:
                raise ParseError(f"can't parse entities: unsupported start tag at {length}")
            closing, name = match[1] == "/", match[2].lower()
            if name not in HTML_TAGS:
                raise ParseError(f'can\'t parse entities: unsupported start tag "{name}"')
            if closing:
                if not stack or stack[-1][0] != name:
                    raise ParseError(
                        f"can't parse entities: can't find end tag corresponding to \"{name}\""
                    )
                _, start, attrs = stack.pop()
                if length > start:
                    entity: dict[str, Any] = {
                        "type": HTML_TAGS[name],
                        "offset": start,
                        "length": length - start,
                    }
                    if name == "a":
                        entity["url"] = attrs.get("href", "")
                    entities.append(entity)
            else:
                attrs = {
                    a[1].lower(): unescape(a[2] or a[3] or "") for a in _ATTR.finditer(match[3])
                }
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise ParseError('can\'t parse entities: unsupported start tag "span"')
                stack.append((name, length, attrs))
            position = match.end()
            continue
        if char == "&":
            match = _CHARREF.match(text, position)
            if match is None:
                raise ParseError("can't parse entities: unescaped '&'")
            decoded = unescape(match[0])
            out.append(decoded)
            length += utf16_len(decoded)
            position = match.end()
            continue
        out.append(char)
        length += utf16_len(char)
        position += 1
    if stack:
        raise ParseError(f"can't parse entities: can't find end tag for \"{stack[-1][0]}\"")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_MDV2_MARKS = ("```", "||", "__", "*", "_", "~", "`")
_MDV2_TYPES = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's MarkdownV2: reserved characters escaped, every mark closed, links well formed."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int]] = []
    length = 0
    position = 0
    line_start = True

    def emit(chunk: str) -> None:
        nonlocal length
        out.append(chunk)
        length += utf16_len(chunk)

    while position < len(text):
        char = text[position]
        if char == "\\":
            if position + 1 >= len(text):
                raise ParseError("can't parse entities: trailing '\\'")
            emit(text[position + 1])
            position += 2
            line_start = False
            continue
        if char == "`":
            fence = text.startswith("```", position)
            closer = "```" if fence else "`"
            end = _find_unescaped(text, closer, position + len(closer))
            if end < 0:
                raise ParseError("can't parse entities: can't find end of code entity")
            body = text[position + len(closer) : end]
            language = None
            if fence and "\n" in body:
                first, body = body.split("\n", 1)
                language = first.strip() or None
            body = re.sub(r"\\([`\\])", r"\1", body)
            start = length
            emit(body)
            if length > start:
                entity: dict[str, Any] = {
                    "type": "pre" if fence else "code",
                    "offset": start,
                    "length": length - start,
                }
                if language:
                    entity["language"] = language
                entities.append(entity)
            position = end + len(closer)
            line_start = False
            continue
        if char == "[":
            stack.append(("[", length))
            position += 1
            continue
        if char == "]":
            if not stack or stack[-1][0] != "[" or not text.startswith("(", position + 1):
                raise ParseError("can't parse entities: character ']' is reserved")
            end = _find_unescaped(text, ")", position + 2)
            if end < 0:
                raise ParseError("can't parse entities: can't find end of a URL")
            url = re.sub(r"\\([)\\])", r"\1", text[position + 2 : end])
            _, start = stack.pop()
            if length > start:
                entities.append(
                    {"type": "text_link", "offset": start, "length": length - start, "url": url}
                )
            position = end + 1
            continue
        if char == ">" and line_start:
            # A blockquote line; its extent is not tracked, the mark only has to be well placed.
            position += 1
            line_start = False
            continue
        mark = next((m for m in _MDV2_MARKS[1:] if text.startswith(m, position)), None)
        if mark is not None and mark != "`":
            if stack and stack[-1][0] == mark:
                _, start = stack.pop()
                if length > start:
                    entities.append(
                        {"type": _MDV2_TYPES[mark], "offset": start, "length": length - start}
                    )
            else:
                stack.append((mark, length))
            position += len(mark)
            line_start = False
            continue
        if char in MDV2_RESERVED:
            raise ParseError(
                f"can't parse entities: character '{char}' is reserved and must be escaped "
                "with the preceding '\\'"
            )
        emit(char)
        line_start = char == "\n"
        position += 1
    if stack:
        raise ParseError(f"can't parse entities: can't find end of {stack[-1][0]!r} entity")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _find_unescaped(text: str, needle: str, start: int) -> int:
    position = start
    while True:
        found = text.find(needle, position)
        if found < 0:
            return -1
        backslashes = len(text[:found]) - len(text[:found].rstrip("\\"))
        if backslashes % 2 == 0:
            return found
        position = found + 1
