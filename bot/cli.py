"""The `aiinfra-digest` command line (see docs/interface.md).

Exit status: 0 done; 1 a run that failed as a whole; 2 bad usage or bad input (one line on stderr);
3 `post` left some chats pending (run it again later).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from bot.logs import log_format_is_json, redact, secrets_from_settings, setup_logging
from bot.repos import resolve_repo
from bot.settings import Settings, SettingsError, load_settings
from collectors.activity import DayActivity, RepoActivity
from collectors.window import today, yesterday

log = logging.getLogger("aiinfra_digest")


class UsageError(Exception):
    """Bad usage or bad input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"aiinfra-digest: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = _Parser(prog="aiinfra-digest", description="Daily AI-infra GitHub digest.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    collect = sub.add_parser("collect", help="collect one day's GitHub activity as JSON")
    _day_and_repos(collect)
    collect.add_argument("--sample", action="store_true", help="print the bundled sample day")
    collect.add_argument("-o", "--output", help="write to FILE instead of stdout")

    generate = sub.add_parser("generate", help="write the Chinese Markdown digest")
    _day_and_repos(generate)
    generate.add_argument("--activity", help="read collected activity JSON instead of GitHub")
    generate.add_argument("--sample", action="store_true", help="use the bundled sample day")
    generate.add_argument("-o", "--output", help="write to FILE instead of stdout")

    post = sub.add_parser("post", help="deliver the day's digest once to every subscribed chat")
    post.add_argument("--date", help="YYYY-MM-DD (default: yesterday)")

    sub.add_parser("run", help="run the chat adapters and the daily scheduler")

    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply migrations")

    sub.add_parser("status", help="what happened today: digest, deliveries, failures")
    sub.add_parser("health", help="exit 0 when the database answers and this host's loops beat")

    site = sub.add_parser("site", help="write the static web archive and its Atom feed")
    site.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    site.add_argument("--base-url", help="where the site will be served (absolute feed links)")
    site.add_argument("--title", help="site title")
    site.add_argument("--full", action="store_true", help="rewrite every page")

    backfill = sub.add_parser(
        "backfill", help="archive past days (oldest first; a rerun skips archived days)"
    )
    backfill.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
    backfill.add_argument(
        "--repo", action="append", default=[], help="owner/name or unique short name (repeatable)"
    )
    backfill.add_argument(
        "--no-model", action="store_true", help="write the digests from the data, without a model"
    )
    backfill.add_argument(
        "--concurrency", type=int, default=2, help="days collected at once (default 2)"
    )

    targets = sub.add_parser("targets", help="push targets by Apprise URL (Feishu, Slack, ...)")
    actions = targets.add_subparsers(dest="action", required=True, parser_class=_Parser)
    add = actions.add_parser("add", help="add a target (or change an added one's options)")
    add.add_argument("url", help="Apprise URL, e.g. dingtalk://TOKEN or slack://T/B/C")
    add.add_argument(
        "--repos", help="comma-separated owner/name or short names (default: all tracked)"
    )
    add.add_argument("--time", help="local posting time HH:MM (default: DIGEST_POST_TIME)")
    add.add_argument("--weekly", action="store_true", help="also the Monday roll-up")
    add.add_argument("--alerts", action="store_true", help="also release alerts")
    actions.add_parser("list", help="list targets (URLs shown as scheme, host and a hash)")
    remove = actions.add_parser("remove", help="forget a target and stop posting to it")
    remove.add_argument("id")
    test = actions.add_parser("test", help="send a short test message to a target now")
    test.add_argument("id")

    serve = sub.add_parser("serve", help="serve the built archive locally")
    serve.add_argument("-d", "--dir", default="site", help="the built site (default: site)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    return parser


def _day_and_repos(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", help="YYYY-MM-DD (default: yesterday in DIGEST_TIMEZONE)")
    parser.add_argument(
        "--repo", action="append", default=[], help="owner/name or unique short name (repeatable)"
    )


def parse_day(value: str | None, settings: Settings) -> date:
    """`--date` → a date; default yesterday; future or malformed dates are UsageError."""
    if value is None:
        return yesterday(settings.digest_timezone)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--date: {value!r} is not a date in YYYY-MM-DD form") from None
    if day > today(settings.digest_timezone):
        raise UsageError(f"--date: {value} is in the future")
    return day


def pick_repos(names: Sequence[str], settings: Settings) -> list[str]:
    """`--repo` values → tracked repositories in DIGEST_REPOS order; unknown ones are UsageError."""
    if not names:
        return list(settings.digest_repos)
    chosen: list[str] = []
    for name in names:
        found = resolve_repo(name, settings.digest_repos)
        if found.repo is None:
            hint = f" (did you mean {', '.join(found.suggestions)}?)" if found.suggestions else ""
            raise UsageError(f"--repo: {found.reason}{hint}")
        chosen.append(found.repo)
    return [repo for repo in settings.digest_repos if repo in chosen]


def write_output(text: str, output: str | None) -> None:
    """Write `text` to FILE or stdout."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


async def _cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    from collectors.sample import load_sample

    if args.sample:
        write_output(load_sample().to_json() + "\n", args.output)
        return 0
    day = parse_day(args.date, settings)
    repos = pick_repos(args.repo, settings)
    from bot.pipeline import collect_activity
    from bot.progress import RepoProgress

    with RepoProgress("collect", len(repos)) as progress:
        activity = await collect_activity(
            settings, day, repos, on_repo=lambda a: progress.done(a.repo, _collected(a))
        )
    write_output(activity.to_json() + "\n", args.output)
    return 0


def _collected(activity: RepoActivity) -> str:
    """A one-word outcome of a repository's collection for the progress display."""
    if activity.error is not None:
        return "failed"
    return "no activity" if activity.is_empty else ""


def read_activity(path: str) -> DayActivity:
    """Read collected activity JSON; a missing or malformed file is a UsageError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--activity: cannot read {path}: {exc.strerror}") from None
    try:
        return DayActivity.from_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        raise UsageError(
            f"--activity: {path} is not activity JSON ({where}: {first['msg']})"
        ) from None


def _digest_order(activity: DayActivity, names: Sequence[str], settings: Settings) -> list[str]:
    """The repositories of a digest: `--repo` picks, else the file's, in DIGEST_REPOS order."""
    if names:
        return pick_repos(names, settings)
    order = {repo.lower(): i for i, repo in enumerate(settings.digest_repos)}
    present = [repo.repo for repo in activity.repos]
    return sorted(present, key=lambda repo: order.get(repo.lower(), len(order)))


async def _cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from collectors.sample import load_sample

    if args.sample and args.activity:
        raise UsageError("--sample and --activity cannot be used together")
    activity: DayActivity | None = None
    if args.sample or args.activity:
        activity = load_sample() if args.sample else read_activity(args.activity)
        if args.date and parse_day(args.date, settings) != activity.day:
            raise UsageError(f"--date: the activity is of {activity.day}, not {args.date}")
        repos = _digest_order(activity, args.repo, settings)
    else:
        day = parse_day(args.date, settings)
        repos = pick_repos(args.repo, settings)
    # Imported only after the input is checked, so bad input is answered even offline.
    from bot.pipeline import collect_activity, file_cache, make_composer, make_llm
    from bot.progress import RepoProgress
    from summarizer.digest import render_markdown

    if activity is None:
        with RepoProgress("collect", len(repos)) as progress:
            activity = await collect_activity(
                settings, day, repos, on_repo=lambda a: progress.done(a.repo, _collected(a))
            )
    llm = make_llm(settings)
    if llm is None:
        log.info("OPENROUTER_API_KEY is not set: the digest is written without a model")
    cache = file_cache(settings) if llm is not None else None
    try:
        with RepoProgress("write", len(repos)) as progress:
            digest = await make_composer(settings, llm, cache).compose(
                activity, repos, on_section=lambda s: progress.done(s.repo, s.written_by)
            )
    finally:
        if llm is not None:
            await llm.aclose()
        if cache is not None:
            cache.close()
    for section in digest.sections:
        if section.reason:
            log.warning("%s: %s", section.repo, section.reason)
    write_output(render_markdown(digest), args.output)
    return 0


async def _cmd_post(args: argparse.Namespace, settings: Settings) -> int:
    day = parse_day(args.date, settings)
    from bot import app

    return await app.post(settings, day)


async def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot import app

    return await app.run(settings)


async def _cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from bot import app

    return await app.upgrade(settings)


async def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from bot import app

    return await app.status(settings)


async def _cmd_site(args: argparse.Namespace, settings: Settings) -> int:
    from bot import app

    if args.base_url and not args.base_url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url: {args.base_url!r} is not an http(s) URL")
    return await app.site(
        settings, Path(args.output), base_url=args.base_url, title=args.title, full=args.full
    )


async def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot import app

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: {args.port} is not a port number")
    return await app.serve(Path(args.dir), args.host, args.port)


async def _cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    first = _past_day("--from", args.first, settings)
    last = _past_day("--to", args.last, settings)
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    if not 1 <= args.concurrency <= 16:
        raise UsageError(f"--concurrency: {args.concurrency} is not between 1 and 16")
    repos = pick_repos(args.repo, settings) if args.repo else None
    from bot.backfill import progress_for, run_backfill, summary

    result = await run_backfill(
        settings,
        first,
        last,
        repos,
        model=not args.no_model,
        concurrency=args.concurrency,
        progress=progress_for(),
    )
    for day, error in sorted(result.errors.items()):
        log.warning("%s: %s", day, redact(error))
    print(summary(first, last, result))
    return 0 if result.ok else 1


def _past_day(flag: str, value: str, settings: Settings) -> date:
    """A day that has ended in DIGEST_TIMEZONE (today is not over, so it cannot be archived)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag}: {value!r} is not a date in YYYY-MM-DD form") from None
    if day >= today(settings.digest_timezone):
        raise UsageError(f"{flag}: {value} has not ended yet")
    return day


async def _cmd_targets(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import open_store
    from bot.targets import TargetError, add_target, list_targets, remove_target, test_target

    repos = None
    if args.action == "add" and args.repos:
        repos = pick_repos([r for r in args.repos.split(",") if r.strip()], settings)
    store = await open_store(settings, give_up_after=30.0)
    try:
        if args.action == "add":
            target = await add_target(
                store,
                settings,
                args.url,
                repos=repos,
                post_time=args.time,
                weekly=args.weekly,
                alerts=args.alerts,
            )
            print(f"added {target.id} ({target.shown})")
        elif args.action == "list":
            await list_targets(store)
        elif args.action == "remove":
            await remove_target(store, args.id)
            print(f"removed {args.id}")
        else:
            try:
                print(await test_target(store, args.id))
            except TargetError:
                raise
            except Exception as exc:
                from bot.delivery import one_line

                print(f"{args.id}: test message failed: {one_line(exc)}", file=sys.stderr)
                return 1
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    finally:
        await store.close()
    return 0


async def _cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    from bot.health import health

    return await health(settings)


COMMANDS = {
    "collect": _cmd_collect,
    "generate": _cmd_generate,
    "post": _cmd_post,
    "run": _cmd_run,
    "db": _cmd_db,
    "status": _cmd_status,
    "health": _cmd_health,
    "site": _cmd_site,
    "serve": _cmd_serve,
    "backfill": _cmd_backfill,
    "targets": _cmd_targets,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already reported in one line
        return exc.code if isinstance(exc.code, int) else 2
    try:
        settings = load_settings()
        try:
            json_logs = log_format_is_json()
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        setup_logging(verbose=args.verbose, json=json_logs, secrets=secrets_from_settings(settings))
        return asyncio.run(COMMANDS[args.command](args, settings))
    except (SettingsError, UsageError) as exc:
        print(f"aiinfra-digest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _failed(exc, verbose=args.verbose)


def _failed(exc: Exception, *, verbose: bool) -> int:
    """The edge for the unexpected: one redacted line (the traceback only with --verbose)."""
    from bot.app import StartupError

    if isinstance(exc, StartupError):
        print(f"aiinfra-digest: {redact(str(exc))}", file=sys.stderr)
        return exc.status
    if verbose:
        log.exception("%s failed", type(exc).__name__)
    reason = " ".join(str(exc).split())[:300] or type(exc).__name__
    print(f"aiinfra-digest: failed: {redact(reason)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
