"""The long-running and one-shot jobs behind `aiinfra-digest run`, `post` and `db upgrade`.

Everything is built here once and passed in: one store, one GitHub client, one composer, one
command service shared by the Telegram and Discord adapters, one scheduler delivering for both.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from bot import metrics
from bot.clients import Clients, open_clients
from bot.logs import redact
from bot.pipeline import Pipeline, make_composer
from bot.platforms.base import Sender
from bot.settings import Settings
from bot.store import Store

if TYPE_CHECKING:
    from bot.platforms.push import PushSender

log = logging.getLogger(__name__)

# After SIGTERM the background loops get this long to finish what they are doing (sends in
# flight, a generation's grace), then are cancelled; closing each adapter gets CLOSE_GRACE. Both
# together keep `run` under 10 s from SIGTERM to exit, whatever state it is in.
STOP_GRACE = 4.0
CLOSE_GRACE = 2.0
# A loop that fails is started again after a pause doubling from RESTART_FIRST up to RESTART_MAX;
# one that ran RESTART_RESET seconds before failing starts again at the first pause.
RESTART_FIRST, RESTART_MAX, RESTART_RESET = 1.0, 60.0, 300.0


class StartupError(Exception):
    """The job cannot start: one line; `status` 2 for bad configuration, 1 for an outage."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def utcnow() -> datetime:
    """The current instant, timezone-aware."""
    return datetime.now(UTC)


def _retryable_db_error(exc: BaseException) -> bool:
    # Connection refused, DNS, timeouts: worth waiting for. A bad URL or driver is not.
    return isinstance(exc, OSError | TimeoutError) or type(exc).__name__ in (
        "OperationalError",
        "InterfaceError",
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
    )


async def open_store(settings: Settings, *, give_up_after: float = 300.0) -> Store:
    """Open (and migrate) the store, waiting with backoff while the database is unreachable.

    One warning per attempt with the delay doubling up to a minute, so a database that is down
    does not flood the log; after `give_up_after` seconds a StartupError says why.
    """

    def before_sleep(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        error = outcome.exception() if outcome is not None else None
        wait = getattr(getattr(state, "next_action", None), "sleep", 0.0)
        log.warning("database unreachable (%s); retrying in %.0f s", _one_line(error), wait)

    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable_db_error),
            wait=wait_exponential(multiplier=1, min=1, max=60),
            stop=stop_after_delay(give_up_after),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                return await Store.open(settings.database_url)
    except Exception as exc:
        raise StartupError(f"cannot open the database: {_one_line(exc)}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _one_line(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = " ".join(str(error).split()) or type(error).__name__
    return redact(text)[:300]


def digest_pipeline(settings: Settings, store: Store, clients: Clients) -> Pipeline:
    """The pipeline on the store's caches and the process's GitHub and model clients."""
    if clients.llm is None:
        log.info("OPENROUTER_API_KEY is not set: digests are written without a model")
    composer = make_composer(settings, clients.llm, store)
    return Pipeline(settings, store, github=clients.github, composer=composer)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop` (in-flight sends finish or stay claimable)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run(
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    lease_seconds: float = 30.0,
    llm_minute: float = 60.0,
) -> int:
    """Run every configured chat adapter and the daily scheduler until `stop` (or a signal).

    Any number of instances may run on one PostgreSQL database: one generates each day, all
    share the fan-out, the Telegram send budget is split among the live ones, and Telegram
    updates reach one elected poller (or every instance, in webhook mode). `lease_seconds` is
    how long a dead instance's poller lease and heartbeat outlive it. One GitHub client and one
    model client serve every path; `llm_minute` shortens the model limiter's window (tests).
    """
    from bot.commands import CommandService
    from bot.fleet import POLLER_LOCK, Election, Fleet
    from bot.health import Heartbeat
    from bot.ondemand import RepoAges
    from bot.scheduler import Scheduler, worker_id
    from bot.tracking import RepoChecker

    if not (
        settings.telegram_bot_token
        or settings.discord_bot_token
        or settings.discord_webhook_url
        or settings.notify_urls
    ):
        raise StartupError(
            "nothing to run: set TELEGRAM_BOT_TOKEN, DISCORD_BOT_TOKEN, DISCORD_WEBHOOK_URL "
            "or NOTIFY_URLS",
            status=2,
        )
    webhook_secret = settings.telegram_webhook_secret
    if settings.telegram_webhook_url and webhook_secret is None:
        raise StartupError("TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET", status=2)
    stop = stop or asyncio.Event()
    install_stop_signals(stop)
    store = await open_store(settings)
    worker = worker_id()
    jobs: dict[str, Callable[[], Awaitable[None]]] = {}
    fatal: dict[str, Callable[[BaseException], bool]] = {}
    try:
        async with (
            AsyncExitStack() as stack,
            open_clients(settings, store, llm_minute=llm_minute) as clients,
        ):
            metrics.watch_github(clients.github)
            metrics.watch_llm(clients.llm)
            stack.callback(metrics.serve(settings.metrics_port).stop)
            pipeline = digest_pipeline(settings, store, clients)
            service = CommandService(
                settings,
                store,
                pipeline,
                clock=clock,
                llm=clients.llm,
                cache=store,
                checker=RepoChecker(clients.github),
                ages=RepoAges(clients.github),
            )
            senders: dict[str, Sender] = {}
            if settings.telegram_bot_token is not None:
                from telegram.error import InvalidToken

                from bot.platforms.telegram import TelegramAdapter

                adapter = TelegramAdapter(settings, service)
                try:
                    if not await _unless_stopped(stop, adapter.open()):
                        return 0
                except InvalidToken:
                    raise StartupError(
                        "TELEGRAM_BOT_TOKEN was rejected by the Bot API", 2
                    ) from None
                stack.push_async_callback(_bounded, "telegram", adapter.stop, CLOSE_GRACE)
                senders[adapter.sender.platform] = adapter.sender
                if settings.telegram_webhook_url and webhook_secret is not None:
                    await adapter.start_webhook(
                        url=settings.telegram_webhook_url,
                        secret=webhook_secret.get_secret_value(),
                        listen=settings.telegram_webhook_listen,
                        port=settings.telegram_webhook_port,
                    )
                else:
                    poller = Election(
                        store,
                        POLLER_LOCK,
                        worker,
                        ttl=lease_seconds,
                        heartbeat=Heartbeat(store, "telegram-poller", lease_seconds / 3),
                    )
                    jobs["telegram poller"] = lambda: poller.run(
                        stop, adapter.start_polling, adapter.stop_polling
                    )
            if settings.discord_bot_token is not None:
                import discord

                from bot.platforms.discord import discord_channel_sender, run_gateway

                # Every instance posts through the REST API; one elected instance holds the
                # gateway that answers slash commands (Discord sends each to every session).
                try:
                    channel = await stack.enter_async_context(discord_channel_sender(settings))
                except discord.LoginFailure:
                    raise StartupError("DISCORD_BOT_TOKEN was rejected by Discord", 2) from None
                senders[channel.platform] = channel

                async def discord_gateway() -> None:
                    await run_gateway(settings, service, store, worker, stop, ttl=lease_seconds)

                jobs["discord gateway"] = discord_gateway
                fatal["discord gateway"] = lambda exc: isinstance(exc, discord.LoginFailure)
            if settings.discord_webhook_url is not None:
                from bot.platforms.discord import make_webhook_sender, register_webhooks

                webhook = make_webhook_sender(settings)
                if webhook is not None:
                    stack.push_async_callback(
                        _bounded, "discord webhook", webhook.aclose, CLOSE_GRACE
                    )
                    await register_webhooks(store, webhook, settings)
                    senders[webhook.platform] = webhook
            # Push targets (Apprise URLs), always: `targets add` may add one while we run.
            push = await _push_sender(store, settings)
            senders[push.platform] = push
            # Every platform's send budget is split between the live instances.
            fleet = Fleet(store, worker, ttl=lease_seconds, on_size=share_budgets(senders))
            jobs["fleet heartbeat"] = lambda: fleet.run(stop)
            scheduler = Scheduler(
                settings,
                store,
                pipeline,
                senders,
                clock,
                worker=worker,
                llm=clients.llm,
                cache=store,
            )
            jobs["scheduler"] = lambda: scheduler.run(stop)
            from bot.alerts import run_release_alerts

            jobs["release alerts"] = lambda: run_release_alerts(
                settings,
                store,
                senders,
                stop,
                clients,
                repos=pipeline.repos,
                clock=clock,
                worker=worker,
            )
            # Each loop restarts on its own after a failure: one platform's outage never stops
            # the others, and a crashed scheduler comes back (its heartbeat shows the gap).
            background = [
                asyncio.create_task(
                    supervise(name, job, stop, fatal=fatal.get(name, lambda _exc: False))
                )
                for name, job in jobs.items()
            ]
            log.info("running: %s; scheduler on", ", ".join(sorted(senders)) or "no platform")
            try:
                await _until_stopped(stop, background)
            except Exception as exc:
                if settings.discord_bot_token is not None:
                    import discord

                    if isinstance(exc, discord.LoginFailure):
                        raise StartupError("DISCORD_BOT_TOKEN was rejected by Discord", 2) from None
                raise
    finally:
        await store.close()
    return 0


async def supervise(
    name: str,
    job: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    fatal: Callable[[BaseException], bool] = lambda _exc: False,
    first: float = RESTART_FIRST,
    longest: float = RESTART_MAX,
) -> None:
    """Run `job` until `stop`; when it fails or ends early, start it again after a backoff.

    One platform's outage (Discord down) thus never stops the others (Telegram keeps posting).
    Errors for which `fatal` is true (a rejected token) end the supervision and propagate.
    """
    pause = first
    while not stop.is_set():
        started = time.monotonic()
        try:
            await job()
        except Exception as exc:
            if fatal(exc):
                raise
            if stop.is_set():
                return
            log.error("%s failed (%s); restarting in %.0f s", name, _one_line(exc), pause)
        else:
            if stop.is_set():
                return
            log.warning("%s ended on its own; restarting in %.0f s", name, pause)
        if time.monotonic() - started >= RESTART_RESET:
            pause = first
        await _sleep_or_stop(stop, pause)
        pause = min(longest, pause * 2)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _bounded(name: str, close: Callable[[], Awaitable[None]], seconds: float) -> None:
    """Close something within `seconds` (an unreachable platform must not hold the exit up)."""
    try:
        async with asyncio.timeout(seconds):
            await close()
    except TimeoutError:
        log.warning("%s did not close within %.0f s; leaving it", name, seconds)


async def _unless_stopped(stop: asyncio.Event, step: Coroutine[object, object, None]) -> bool:
    """Run a start-up step unless `stop` comes first (then cancel it); True when it finished."""
    task = asyncio.ensure_future(step)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False


async def _push_sender(store: Store, settings: Settings) -> PushSender:
    """The push targets' sender (NOTIFY_URLS registered); a bad URL is a StartupError."""
    from bot.platforms.push import open_push_sender

    try:
        return await open_push_sender(store, settings)
    except ValueError as exc:
        raise StartupError(str(exc), 2) from None


def share_budgets(senders: Mapping[str, Sender]) -> Callable[[int], None]:
    """What the fleet calls with the number of live instances: each sender paces at 1/N."""

    def share(instances: int) -> None:
        for sender in senders.values():
            sender.gate.share(instances)

    return share


async def _until_stopped(
    stop: asyncio.Event, tasks: list[asyncio.Task[None]], *, grace: float = STOP_GRACE
) -> None:
    """Wait for `stop`, give the loops `grace` seconds to wind down, cancel what is left.

    A loop only ends before `stop` on a fatal error (supervision restarts the rest): that stops
    the others and re-raises.
    """
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        late: set[asyncio.Task[None]] = set()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if late:
            log.warning(
                "%d loop(s) did not stop within %.0f s and were cancelled", len(late), grace
            )
        for finished in done:
            if finished is waiter or finished.cancelled():
                continue
            error = finished.exception()
            if error is not None:
                raise error
    finally:
        waiter.cancel()


# `post`'s exit status when some chats still wait for their post (run it again later).
POST_PENDING = 3


async def post(settings: Settings, day: date, *, rounds: int = 4) -> int:
    """Deliver `day`'s digest once to every subscribed chat that has not had it (for cron).

    Exit status 0 only when every chat got it; 3 when some are still pending (retry time not
    reached, or held by a worker that did not let go), 1 when some failed for good.
    """
    from bot.post import post_once

    async with AsyncExitStack() as stack:
        senders: dict[str, Sender] = {}
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        if settings.telegram_bot_token is not None:
            from bot.platforms.telegram import telegram_sender

            sender = await stack.enter_async_context(telegram_sender(settings))
            senders[sender.platform] = sender
        if settings.discord_bot_token is not None:
            from bot.platforms.discord import discord_channel_sender

            channel = await stack.enter_async_context(discord_channel_sender(settings))
            senders[channel.platform] = channel
        if settings.discord_webhook_url is not None:
            from bot.platforms.discord import discord_webhook_sender, register_webhooks

            webhook = await stack.enter_async_context(discord_webhook_sender(settings))
            if webhook is not None:
                await register_webhooks(store, webhook, settings)
                senders[webhook.platform] = webhook
        push = await _push_sender(store, settings)
        if push.targets:
            senders[push.platform] = push
        if not senders:
            raise StartupError(
                "nothing to post to: set TELEGRAM_BOT_TOKEN, DISCORD_BOT_TOKEN, "
                "DISCORD_WEBHOOK_URL or NOTIFY_URLS",
                status=2,
            )
        from bot.pipeline import NotReady

        try:
            result = await post_once(settings, day, senders, store=store, rounds=rounds)
        except NotReady as early:
            print(f"{day}: {early}", file=sys.stderr)
            return 1
    weekly = result.weekly
    print(
        f"{day}: sent {result.sent}, failed {result.failed}, pending {result.pending} "
        f"(deactivated {result.deactivated}, skipped {result.skipped})"
        + (
            f"; weekly roll-up sent {weekly.sent}, failed {weekly.failed}, "
            f"pending {result.weekly_pending}"
            if weekly is not None
            else ""
        )
    )
    for error in result.errors:
        log.warning("%s: %s", day, redact(error))
    if result.complete:
        return 0
    pending = result.pending + result.weekly_pending
    failed = result.failed + (weekly.failed if weekly is not None else 0)
    if pending:
        print(
            f"{day}: {pending} chat(s) have not received the post yet; run `post` again later",
            file=sys.stderr,
        )
        return POST_PENDING
    print(f"{day}: {failed} chat(s) could not be served (see the log)", file=sys.stderr)
    return 1


async def status(settings: Settings, *, give_up_after: float = 30.0) -> int:
    """`aiinfra-digest status`: print what `/status` answers (last digest, deliveries, chats)."""
    from bot.status import collect_status, render_status

    store = await open_store(settings, give_up_after=give_up_after)
    try:
        text = render_status(await collect_status(settings, store))
    finally:
        await store.close()
    print(text, end="")
    return 0


async def upgrade(settings: Settings) -> int:
    """Apply the database migrations."""
    from bot.store import upgrade as upgrade_store

    await upgrade_store(settings.database_url)
    print("database is up to date")
    return 0


async def site(
    settings: Settings, out_dir: Path, *, base_url: str | None, title: str | None, full: bool
) -> int:
    """Write the static web archive and its Atom feed from the archived days."""
    from bot.site import SITE_TITLE, build_site

    store = await open_store(settings, give_up_after=30.0)
    try:
        stats = await build_site(
            store, out_dir, title=title or SITE_TITLE, base_url=base_url, full=full
        )
    finally:
        await store.close()
    print(
        f"{out_dir}: {stats.days} days ({stats.reused_days} unchanged), {stats.files} files "
        f"written ({stats.bytes / 1e6:.1f} MB), {stats.feed_entries} feed entries, "
        f"{stats.seconds:.1f} s"
    )
    return 0


async def serve(out_dir: Path, host: str, port: int) -> int:
    """Serve a built archive until interrupted."""
    from bot.site import serve_site

    if not (out_dir / "index.html").is_file():
        raise StartupError(
            f"{out_dir} holds no built site: run 'aiinfra-digest site -o {out_dir}'", 2
        )
    await serve_site(out_dir, host, port, on_ready=lambda url: print(url, file=sys.stderr))
    return 0
