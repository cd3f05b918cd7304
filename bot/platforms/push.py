"""Push targets: Feishu/Lark, DingTalk, WeCom, Slack, email, ntfy, Matrix and more, by Apprise URL.

A target is a chat of platform `push` whose chat id is `<family>-<hash>` (`target_id`): the
delivery engine claims, records and resumes it like any chat. Its URL (which holds the
credentials) lives in the `push_targets` table and never in a log line (`url_secrets`).

Each service family is a `Sender` subclass declaring what the service documents: its message
size (in characters or UTF-8 bytes), the rate one bot may post at (`chat_rate`, per target) and
whether it renders Markdown. `PushSender` is the one `push` sender the engine sees: it renders
and sends each target through its family's sender and gate. Apprise is synchronous: every send
runs in a worker thread, so the event loop never waits on a webhook.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from bot.platforms.base import ChatGone, RetryLater, Sender
from bot.platforms.pacing import RateGate
from bot.platforms.textsplit import split_markdown

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.store import Store

log = logging.getLogger(__name__)

PLATFORM = "push"
# Waited when a service answers 429 (unless a family says less): Apprise does not pass
# Retry-After on, and every limit declared below is per minute or finer.
RETRY_AFTER_429 = 60.0
_STATUS = re.compile(r"error=(\d{3})\b")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_EMPHASIS = re.compile(r"(\*\*|__|~~)(.+?)\1")
_CODE = re.compile(r"`([^`\n]+)`")


def utf8_len(text: str) -> int:
    """Length in UTF-8 bytes (how DingTalk, WeCom, Feishu and ntfy count)."""
    return len(text.encode("utf-8"))


def plain_text(markdown: str) -> str:
    """Markdown as readable plain text: headings as lines, links as `text (url)`, no markers."""
    lines = []
    for line in markdown.splitlines():
        heading = _HEADING.match(line)
        if heading is not None:
            line = f"【{heading.group(1)}】"
        line = _LINK.sub(r"\1 (\2)", line)
        line = _EMPHASIS.sub(r"\2", line)
        lines.append(_CODE.sub(r"\1", line))
    return "\n".join(lines)


def lark_markdown(markdown: str) -> str:
    """Markdown for a Feishu/Lark card (`lark_md` has no headings: they become bold lines)."""
    lines = []
    for line in markdown.splitlines():
        heading = _HEADING.match(line)
        lines.append(f"**{heading.group(1)}**" if heading is not None else line)
    return "\n".join(lines)


class AppriseSender(Sender):
    """One service family reached through Apprise; subclasses declare the service's limits.

    `schemes` are the Apprise URL schemes of the family; `markdown` whether the service renders
    Markdown (else plain text is sent); `in_bytes` the unit of `message_limit`. A target's
    `chat_rate` is per target (one bot, webhook or address); `rate_per_second` covers all
    targets of the family together.
    """

    platform = PLATFORM
    family: ClassVar[str] = "other"
    schemes: ClassVar[tuple[str, ...]] = ()
    markdown: ClassVar[bool] = True
    # Whether `message_limit` counts UTF-8 bytes (else characters).
    in_bytes: ClassVar[bool] = False
    message_limit: ClassVar[int] = 4000
    rate_per_second = 5.0
    chat_rate: ClassVar[tuple[int, float] | None] = None
    # Share of the limits the gate paces at: the rest absorbs the spread between leaving the gate
    # and reaching the service (a worker thread, a TLS handshake per call).
    margin: ClassVar[float] = 0.95
    # Waited after a 429 (Apprise does not pass Retry-After on): the service's own window.
    retry_after: ClassVar[float] = RETRY_AFTER_429

    def __init__(self, *, gate: RateGate | None = None) -> None:
        super().__init__(
            gate=gate
            or RateGate(
                self.rate_per_second,
                self.chat_rate,
                per_chat_applies=self.paced_per_chat,
                margin=self.margin,
            )
        )
        self._plugins: dict[str, Any] = {}
        self._urls: dict[str, str] = {}

    def add(self, target: str, url: str) -> None:
        """Know `target` by its Apprise URL (replacing an earlier one)."""
        self._urls[target] = url
        self._plugins.pop(target, None)

    def dialect(self, markdown: str) -> str:
        """The readers' Markdown in the service's own dialect (Markdown or plain text)."""
        return markdown if self.markdown else plain_text(markdown)

    def render(self, markdown: str) -> Sequence[str]:
        """The message in the service's dialect, split within `message_limit`."""
        return split_markdown(self.dialect(markdown), self.message_limit, self.measure)

    def measure(self, text: str) -> int:
        """A message's size in the unit of `message_limit`."""
        return utf8_len(text) if self.in_bytes else len(text)

    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """Send one part in a worker thread; 401/403 → ChatGone, 429 → RetryLater."""
        url = self._urls.get(chat_id)
        if url is None:
            raise ChatGone(f"push target {chat_id} has no URL (removed)")
        ok, status = await asyncio.to_thread(self._notify, chat_id, url, str(part))
        if ok:
            return f"{chat_id}:{status or 200}"
        if status in (401, 403):
            log.warning(
                "push target %s refused our credentials (%s); it receives no more posts: "
                "check the URL, then 'aiinfra-digest targets add' it again",
                chat_id,
                status,
            )
            raise ChatGone(f"push target {chat_id}: credentials refused ({status})")
        if status == 429:
            raise RetryLater(self.retry_after, f"push target {chat_id} rate limited")
        raise ConnectionError(f"push target {chat_id}: {status or 'no answer'}")

    def _plugin(self, chat_id: str, url: str) -> Any:
        plugin = self._plugins.get(chat_id)
        if plugin is None:
            import apprise

            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
            if plugin is None:
                raise ChatGone(f"push target {chat_id}: Apprise cannot use its URL")
            # Our gate paces; Apprise's own throttle would only sleep in the worker thread.
            plugin.request_rate_per_sec = 0
            self._plugins[chat_id] = plugin
        return plugin

    def _notify(self, chat_id: str, url: str, body: str) -> tuple[bool, int | None]:
        """(sent, HTTP status) of one Apprise call, read from what the plugin logged."""
        import apprise

        plugin = self._plugin(chat_id, url)
        kind = apprise.NotifyFormat.MARKDOWN if self.markdown else apprise.NotifyFormat.TEXT
        with _STATUSES.watch() as seen:
            ok = bool(plugin.notify(body=body, title="", body_format=kind))
        return ok, seen[-1] if seen else None


class FeishuSender(AppriseSender):
    """Feishu and Lark custom bots: Markdown in a card (`lark_md`), 20 KB per request.

    Feishu documents 100 requests per minute and 5 per second for one group bot; a request body
    must stay under 20 KB, so a part is at most 18,000 UTF-8 bytes (the card takes the rest).
    The gate holds one window per target, so the 5/s is kept for all Feishu targets together.
    """

    family = "feishu"
    schemes = ("feishu", "lark")
    in_bytes = True
    message_limit = 18_000
    rate_per_second = 5.0
    chat_rate = (100, 60.0)

    def dialect(self, markdown: str) -> str:
        """Card Markdown: no headings in `lark_md`."""
        return lark_markdown(markdown)


class DingTalkSender(AppriseSender):
    """DingTalk group bots: Markdown messages, 20 per minute per bot, about 20,000 bytes."""

    family = "dingtalk"
    schemes = ("dingtalk",)
    in_bytes = True
    message_limit = 18_000
    rate_per_second = 10.0
    chat_rate = (20, 60.0)


class WeComSender(AppriseSender):
    """WeCom (企业微信) group bots: plain text of at most 2,048 UTF-8 bytes, 20 per minute."""

    family = "wecom"
    schemes = ("wecombot",)
    markdown = False
    in_bytes = True
    message_limit = 2048
    rate_per_second = 10.0
    chat_rate = (20, 60.0)


class SlackSender(AppriseSender):
    """Slack incoming webhooks: one message per second per channel (short bursts tolerated).

    Apprise turns the Markdown into Slack's mrkdwn and caps a message at 35,000 characters
    (Slack truncates at 40,000).
    """

    family = "slack"
    schemes = ("slack",)
    message_limit = 35_000
    rate_per_second = 10.0
    chat_rate = (1, 1.0)
    # A 1-second window leaves little room for the time a send takes to reach Slack.
    margin = 0.8
    retry_after = 2.0


class EmailSender(AppriseSender):
    """Email over SMTP: the whole digest in one mail (Apprise renders it as HTML)."""

    family = "email"
    schemes = ("mailto", "mailtos")
    message_limit = 200_000
    rate_per_second = 1.0
    chat_rate = (10, 60.0)


class NtfySender(AppriseSender):
    """ntfy topics: 4,096 bytes per message (ntfy's default), ntfy.sh's 1 request per 5 s."""

    family = "ntfy"
    schemes = ("ntfy", "ntfys")
    in_bytes = True
    message_limit = 4000
    rate_per_second = 0.2
    chat_rate = (12, 60.0)


class MatrixSender(AppriseSender):
    """Matrix rooms: Markdown, events of at most 64 KiB; Synapse's default 0.2 messages/s."""

    family = "matrix"
    schemes = ("matrix", "matrixs")
    message_limit = 30_000
    rate_per_second = 0.2
    chat_rate = None


class OtherSender(AppriseSender):
    """Any other Apprise service (`json://`, `form://`, Teams workflows, ...): 4,000 characters."""

    family = "other"
    schemes = ()
    message_limit = 4000
    rate_per_second = 5.0
    chat_rate = (30, 60.0)


FAMILIES: tuple[type[AppriseSender], ...] = (
    FeishuSender,
    DingTalkSender,
    WeComSender,
    SlackSender,
    EmailSender,
    NtfySender,
    MatrixSender,
    OtherSender,
)
_BY_SCHEME = {scheme: cls for cls in FAMILIES for scheme in cls.schemes}
_BY_FAMILY = {cls.family: cls for cls in FAMILIES}


# Services' own webhook URLs, which Apprise also accepts as they are.
_BY_HOST = {
    "open.feishu.cn": "feishu",
    "open.larksuite.com": "feishu",
    "oapi.dingtalk.com": "dingtalk",
    "qyapi.weixin.qq.com": "wecom",
    "hooks.slack.com": "slack",
}


def family_of(url: str) -> type[AppriseSender]:
    """The sender class of an Apprise URL, by its scheme or a service's own webhook host."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() in ("http", "https") and host in _BY_HOST:
        return _BY_FAMILY[_BY_HOST[host]]
    return _BY_SCHEME.get(parts.scheme.lower(), OtherSender)


def check_url(url: str) -> str:
    """`url` stripped when Apprise can use it; ValueError (naming only the scheme) otherwise."""
    import apprise

    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if not scheme or "://" not in url:
        raise ValueError("not an Apprise URL (scheme://...)")
    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
        raise ValueError(f"Apprise cannot use this {scheme}:// URL (unknown service or bad token)")
    return url


def target_id(url: str) -> str:
    """The target's chat id: `<family>-<10 hex digits of the URL's SHA-256>` (stable)."""
    digest = hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:10]
    return f"{family_of(url).family}-{digest}"


def describe_url(url: str) -> str:
    """What may be shown of a target URL: scheme, host and a short hash, never the secret."""
    parts = urlsplit(url.strip())
    host = parts.hostname or "?"
    # Apprise often puts a token or topic where the host goes (dingtalk://TOKEN, ntfys://TOPIC):
    # only a domain name is shown.
    if "." not in host and host != "localhost":
        host = "…"
    digest = hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:6]
    return f"{parts.scheme}://{host} #{digest}"


def url_secrets(url: str) -> list[str]:
    """The parts of a target URL that must never be logged: the URL and each credential in it."""
    parts = urlsplit(url.strip())
    found = [url.strip()]
    candidates = [parts.username, parts.password, parts.hostname, *parts.path.split("/")]
    candidates += [value for _key, value in parse_qsl(parts.query)]
    for value in candidates:
        if value and len(value) >= 8 and "." not in value:
            found.append(value)
    host = parts.hostname or ""
    if len(host) >= 6 and "." not in host:  # a topic or token in the host's place
        found.append(host)
    if parts.password:
        found.append(parts.password)
    return found


@dataclass(frozen=True)
class PushTarget:
    """One push target: its chat id and Apprise URL (secret: hidden from repr)."""

    id: str
    url: str = field(repr=False)

    @property
    def family(self) -> str:
        """The service family (feishu, dingtalk, wecom, slack, email, ntfy, matrix, other)."""
        return self.id.split("-", 1)[0]

    @property
    def shown(self) -> str:
        """The URL as it may be shown (`describe_url`)."""
        return describe_url(self.url)


class PushGate(RateGate):
    """The `push` platform's gate: each target keeps its own window, each family its own rate.

    A target first waits for its own window (`chat_rate` of its family: one bot's limit, so a
    DingTalk bot at its 20 per minute never holds up another bot), then at its family's overall
    rate. A 429 from one webhook says nothing about another's, so the engine's platform-wide
    `pause` holds nothing here: the sender holds the one target that answered 429 (`hold`).
    """

    def __init__(self, family_of: Callable[[str], AppriseSender]) -> None:
        super().__init__(1.0, None)
        self._family_of = family_of
        self._rates: dict[str, RateGate] = {}
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._held: dict[str, float] = {}
        self._instances = 1

    def _rate(self, family: AppriseSender) -> RateGate:
        gate = self._rates.get(family.family)
        if gate is None:
            gate = RateGate(family.rate_per_second, None, margin=family.margin)
            gate.share(self._instances)
            self._rates[family.family] = gate
        return gate

    def share(self, instances: int) -> None:
        """Split every family's overall rate between the live instances (a target's is whole)."""
        self._instances = max(1, instances)
        for gate in getattr(self, "_rates", {}).values():
            gate.share(self._instances)

    def pause(self, seconds: float) -> None:
        """Nothing platform-wide (see the class): the target itself is held by `hold`."""

    def hold(self, chat_id: str, seconds: float) -> None:
        """Hold sends to `chat_id` for `seconds` (it answered 429)."""
        until = time.monotonic() + seconds
        self._held[chat_id] = max(self._held.get(chat_id, 0.0), until)

    def reserve_target(self, chat_id: str) -> float:
        """Book the target's next slot within its own window and hold; how long to wait for it."""
        now = time.monotonic()
        earliest = max(now, self._held.get(chat_id, 0.0))
        rate = self._family_of(chat_id).chat_rate
        if rate is not None:
            count, seconds = rate
            span = seconds / self._family_of(chat_id).margin
            window = self._windows[chat_id]
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= count:
                earliest = max(earliest, window[-count] + span)
            window.append(earliest)
        return earliest - now

    def sent(self, chat_id: str) -> None:
        """The send booked last for `chat_id` is done: count it from now, when it surely arrived.

        A target's window counts each send from when it left the gate; a call that was slow to
        arrive (a first TLS handshake, a busy worker thread) could then land within one window of
        the next. Counting from its completion keeps even a 1-per-second limit.
        """
        window = self._windows.get(chat_id)
        if window:
            window[-1] = max(window[-1], time.monotonic())

    async def wait(self, chat_id: str, *, in_flight: bool = False) -> None:
        """Wait for the target's own window, then at its family's overall rate."""
        delay = self.reserve_target(chat_id)
        if delay > 0:
            await asyncio.sleep(delay)
        await self._rate(self._family_of(chat_id)).wait(chat_id, in_flight=in_flight)

    @asynccontextmanager
    async def slot(self, chat_id: str) -> AsyncIterator[None]:
        """The target's window, then its family's gate, counting the send until it is answered."""
        delay = self.reserve_target(chat_id)
        if delay > 0:
            await asyncio.sleep(delay)
        async with self._rate(self._family_of(chat_id)).slot(chat_id):
            yield


class PushSender(Sender):
    """The `push` platform: every push target, each through its service family's sender.

    Targets are loaded from the store (`load`); one the store adds later (the `targets` CLI while
    `run` is up) is looked up when it is first sent to.
    """

    platform = PLATFORM
    message_limit: ClassVar[int] = min(cls.message_limit for cls in FAMILIES)
    rate_per_second = 10.0

    def __init__(
        self, store: Store | None = None, *, families: Sequence[AppriseSender] = ()
    ) -> None:
        # `families` replaces the default sender of a family (other limits: tests, benchmarks).
        self._families = {cls.family: cls() for cls in FAMILIES}
        self._families.update({sender.family: sender for sender in families})
        super().__init__(gate=PushGate(self.family))
        self._store = store
        self.targets: dict[str, PushTarget] = {}

    def family(self, chat_id: str) -> AppriseSender:
        """The family sender of a target id."""
        name = chat_id.split("-", 1)[0]
        return self._families.get(name) or self._families[OtherSender.family]

    def add(self, target: PushTarget) -> None:
        """Send to `target` from now on."""
        self.targets[target.id] = target
        self.family(target.id).add(target.id, target.url)

    async def load(self) -> list[PushTarget]:
        """Know every target in the store; returns them."""
        if self._store is None:
            return list(self.targets.values())
        found = [PushTarget(t.id, t.url) for t in await self._store.push_targets()]
        for target in found:
            self.add(target)
        return found

    def render(self, markdown: str) -> Sequence[str]:
        """Plain text within the smallest limit of any family (when the target is unknown)."""
        return split_markdown(plain_text(markdown), self.message_limit, utf8_len)

    def render_for(self, chat_id: str, markdown: str) -> Sequence[Any]:
        """The target's family's rendering: its dialect, within its limit."""
        return self.family(chat_id).render(markdown)

    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """Send one part to the target through its family; a 429 holds only this target."""
        if chat_id not in self.targets and self._store is not None:
            stored = await self._store.get_push_target(chat_id)
            if stored is not None:
                from bot.logs import add_secrets

                add_secrets(url_secrets(stored.url))
                self.add(PushTarget(stored.id, stored.url))
        assert isinstance(self.gate, PushGate)
        try:
            return await self.family(chat_id).send_part(chat_id, part)
        except RetryLater as exc:
            self.gate.hold(chat_id, exc.retry_after)
            raise
        finally:
            self.gate.sent(chat_id)


class _StatusWatch(logging.Handler):
    """Reads the HTTP status Apprise logs on failure ("... error=401."), per worker thread.

    Apprise's `notify` answers only True/False; the status tells a refused credential (the
    target is gone) from a rate limit or an outage.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._local = threading.local()
        self._installed = False
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the status of a failure logged on a thread that is watching."""
        seen: list[int] | None = getattr(self._local, "seen", None)
        if seen is None:
            return
        match = _STATUS.search(record.getMessage())
        if match is not None:
            seen.append(int(match.group(1)))

    def watch(self) -> _Watching:
        """A context collecting the statuses logged on this thread meanwhile."""
        with self._lock:
            if not self._installed:
                logging.getLogger("apprise").addHandler(self)
                self._installed = True
        return _Watching(self._local)


class _Watching:
    def __init__(self, local: threading.local) -> None:
        self._local = local

    def __enter__(self) -> list[int]:
        self._local.seen = []
        seen: list[int] = self._local.seen
        return seen

    def __exit__(self, *exc: object) -> None:
        self._local.seen = None


_STATUSES = _StatusWatch()


async def register_notify_urls(
    store: Store, urls: Sequence[str], *, post_time: str, timezone: str
) -> list[PushTarget]:
    """Store and subscribe each NOTIFY_URLS target (all repositories) unless already known.

    A URL Apprise cannot use is a ValueError naming its position, never its text. A target
    that was deactivated (its credentials refused) stays inactive until the operator adds it
    again with `aiinfra-digest targets add`.
    """
    targets = []
    for index, url in enumerate(urls, 1):
        try:
            url = check_url(url)
        except ValueError as exc:
            raise ValueError(f"NOTIFY_URLS: URL {index}: {exc}") from None
        target = PushTarget(target_id(url), url)
        await store.add_push_target(target.id, target.url, by="NOTIFY_URLS")
        if await store.get_chat(PLATFORM, target.id) is None:
            await store.subscribe(
                PLATFORM, target.id, None, by="NOTIFY_URLS", post_time=post_time, timezone=timezone
            )
        targets.append(target)
    return targets


async def open_push_sender(store: Store, settings: Settings) -> PushSender:
    """The `push` sender of a process: NOTIFY_URLS registered, every stored target loaded.

    Every target URL (and each credential in it) is added to what logs redact.
    """
    from bot.logs import add_secrets

    await register_notify_urls(
        store,
        settings.notify_url_list,
        post_time=settings.digest_post_time,
        timezone=settings.digest_timezone,
    )
    sender = PushSender(store)
    for target in await sender.load():
        add_secrets(url_secrets(target.url))
    return sender
