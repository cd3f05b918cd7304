"""`aiinfra-digest targets add URL | list | remove ID | test ID`: push targets, for the operator.

A target is an Apprise URL stored in the database and a chat of platform `push` (its id is
`<family>-<hash>`), posted to by `run` and `post` like any chat. URLs hold credentials: only
scheme, host and a short hash are ever printed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from bot.logs import add_secrets
from bot.platforms.push import (
    PLATFORM,
    PushSender,
    PushTarget,
    check_url,
    describe_url,
    target_id,
    url_secrets,
)
from bot.settings import Settings, parse_hhmm
from bot.store import Store

TEST_MESSAGE = "**aiinfra-digest**：推送目标测试消息（test message）。"


class TargetError(Exception):
    """Bad input for `targets` (exit status 2, one line)."""


async def add_target(
    store: Store,
    settings: Settings,
    url: str,
    *,
    repos: Sequence[str] | None = None,
    post_time: str | None = None,
    weekly: bool = False,
    alerts: bool = False,
) -> PushTarget:
    """Store and subscribe a target (re-activating a deactivated one); returns it."""
    try:
        url = check_url(url)
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    add_secrets(url_secrets(url))
    when = settings.digest_post_time
    if post_time is not None:
        try:
            when = parse_hhmm(post_time).strftime("%H:%M")
        except ValueError:
            raise TargetError(f"--time: {post_time!r} is not HH:MM") from None
    target = PushTarget(target_id(url), url)
    await store.add_push_target(target.id, url, by="targets add")
    chat = await store.get_chat(PLATFORM, target.id)
    if chat is not None and chat.active:
        # Added again: the new options replace the old ones.
        await store.unsubscribe(PLATFORM, target.id, None)
    await store.subscribe(
        PLATFORM,
        target.id,
        list(repos) if repos else None,
        by="targets add",
        post_time=when,
        timezone=settings.digest_timezone,
    )
    await store.set_weekly(PLATFORM, target.id, weekly)
    if alerts:
        await store.enable_alerts(PLATFORM, target.id, list(repos) if repos else None, by="cli")
    return target


async def list_targets(store: Store, out: TextIO | None = None) -> int:
    """Print one line per stored target: id, state, service, time, repositories."""
    out = out if out is not None else sys.stdout
    rows = await store.push_targets()
    if not rows:
        print("no push targets (add one with 'aiinfra-digest targets add URL')", file=out)
        return 0
    for row in rows:
        chat = await store.get_chat(PLATFORM, row.id)
        state = "active" if chat is not None and chat.active else "inactive"
        if chat is not None and not chat.active and chat.deactivation_reason:
            state += f" ({chat.deactivation_reason})"
        repos = "all" if chat is None or chat.repos is None else ",".join(chat.repos)
        when = f"{chat.post_time} {chat.timezone}" if chat is not None else "-"
        extras = " weekly" if chat is not None and chat.weekly else ""
        shown = describe_url(row.url)
        print(f"{row.id}  {shown}  {when}  repos={repos}{extras}  {state}", file=out)
    return 0


async def remove_target(store: Store, target: str) -> None:
    """Forget a target's URL and stop posting to it."""
    if not await store.remove_push_target(target):
        raise TargetError(f"no push target {target!r} (see 'aiinfra-digest targets list')")


async def test_target(store: Store, target: str) -> str:
    """Send a short test message to a target now; returns what happened, in one line."""
    row = await store.get_push_target(target)
    if row is None:
        raise TargetError(f"no push target {target!r} (see 'aiinfra-digest targets list')")
    add_secrets(url_secrets(row.url))
    sender = PushSender(store)
    sender.add(PushTarget(row.id, row.url))
    await sender.send_markdown(row.id, TEST_MESSAGE, max_wait=5.0)
    return f"{row.id}: test message sent to {describe_url(row.url)}"
