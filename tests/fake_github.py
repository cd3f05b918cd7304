"""An in-process stand-in for the GitHub REST API on 127.0.0.1, with the real shapes and headers.

    async with FakeGitHub() as github:            # a random port; github.url is the base URL
        github.add_repo("o/r", commits=[commit(when="2026-02-04T01:00:00Z", message="x (#1)")])
        github.load_recorded(Path(".../fixtures/github/2026-02-04"))   # or a recorded day
        github.secondary_rate_limit("/commits", retry_after=2)        # injectable faults
        ...
        github.count(path="/commits", status=200)                     # the request log

It serves `GET /repos/{o}/{r}`, `/commits` (since/until on the committer date, per_page/page),
`/commits/{sha}` (files paged 300 at a time), `/compare/{base}...{head}` (synthesised from the
commit details along first parents; its files sum the commits' files), `/issues` (state, since on
updated_at, sort/direction), `/issues/{number}`, `/pulls`, `/releases` and `/rate_limit`, each with
`Link` pagination,
`ETag`/`If-None-Match` → 304 (not counted against the limit), and `X-RateLimit-*` headers. Faults:
a secondary rate limit (403 + Retry-After), 5xx, malformed JSON, a wrong token (401), an exhausted
primary limit (403 with X-RateLimit-Remaining: 0), unknown repositories (404), added latency.
The helpers below (`commit`, `file`, `issue`, `pull`, `release`) build data in GitHub's shapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

Json = dict[str, Any]
WEB = "https://github.com"
API = "https://api.github.com"
_DOCS = "https://docs.github.com/rest"


# -- helpers that build data in GitHub's shapes --------------------------------------------------


def iso(value: str | datetime) -> str:
    """A timestamp as GitHub writes it (UTC, trailing Z)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file(filename: str, additions: int = 1, deletions: int = 0, patch: str | None = None) -> Json:
    """One file of a commit's diff."""
    return {
        "filename": filename,
        "status": "modified",
        "additions": additions,
        "deletions": deletions,
        "changes": additions + deletions,
        "patch": patch if patch is not None else "@@ -1 +1 @@\n-old\n+new",
    }


def commit(
    *,
    when: str | datetime,
    message: str = "Change things",
    sha: str | None = None,
    author: str | None = "octocat",
    files: Iterable[Json] | None = None,
    parent: str | None = None,
) -> Json:
    """A commit in detail shape (stats and files); `add_repo` chains parents if none is given."""
    stamp = iso(when)
    sha = sha or hashlib.sha1(f"{stamp}{message}".encode()).hexdigest()
    changed = list(files) if files is not None else [file("src/main.py", 3, 1)]
    detail: Json = {
        "sha": sha,
        "html_url": "",
        "commit": {
            "message": message,
            "author": {"name": (author or "Someone").title(), "email": "a@x", "date": stamp},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "date": stamp},
        },
        "author": {"login": author} if author else None,
        "committer": None,
        "parents": [{"sha": parent}] if parent else [],
        "stats": {
            "additions": sum(f["additions"] for f in changed),
            "deletions": sum(f["deletions"] for f in changed),
            "total": sum(f["additions"] + f["deletions"] for f in changed),
        },
        "files": changed,
    }
    return detail


def issue(
    number: int,
    *,
    created_at: str | datetime,
    updated_at: str | datetime | None = None,
    title: str | None = None,
    user: str = "reporter",
    labels: Iterable[str] = (),
    body: str | None = "Steps to reproduce…",
    comments: int = 0,
    state: str = "open",
) -> Json:
    """An issue in the issues-listing shape."""
    created = iso(created_at)
    return {
        "number": number,
        "title": title or f"Issue {number}",
        "state": state,
        "html_url": "",
        "user": {"login": user},
        "labels": [{"name": name} for name in labels],
        "comments": comments,
        "body": body,
        "created_at": created,
        "updated_at": iso(updated_at) if updated_at else created,
        "closed_at": None,
    }


def pull(
    number: int,
    *,
    created_at: str | datetime,
    merged_at: str | datetime | None = None,
    updated_at: str | datetime | None = None,
    title: str | None = None,
    user: str = "contributor",
    labels: Iterable[str] = (),
    body: str | None = "This PR changes things.",
) -> Json:
    """A pull request in the issues-listing shape (with its `pull_request` block)."""
    merged = iso(merged_at) if merged_at else None
    item = issue(
        number,
        created_at=created_at,
        updated_at=updated_at or merged_at or created_at,
        title=title or f"Pull request {number}",
        user=user,
        labels=labels,
        body=body,
        state="closed" if merged else "open",
    )
    item["closed_at"] = merged
    item["pull_request"] = {"url": "", "html_url": "", "merged_at": merged}
    return item


def release(
    tag: str,
    *,
    published_at: str | datetime | None,
    created_at: str | datetime | None = None,
    body: str = "Release notes",
    draft: bool = False,
    prerelease: bool = False,
) -> Json:
    """A release (a draft has no `published_at`)."""
    published = iso(published_at) if published_at else None
    return {
        "tag_name": tag,
        "name": tag,
        "draft": draft or published is None,
        "prerelease": prerelease,
        "created_at": iso(created_at) if created_at else published,
        "published_at": published,
        "html_url": "",
        "author": {"login": "releaser"},
        "body": body,
    }


# -- the server ----------------------------------------------------------------------------------


@dataclass
class FakeRepo:
    """One repository's data, as the server serves it."""

    full_name: str
    info: Json
    details: dict[str, Json] = field(default_factory=dict)
    commits: list[Json] = field(default_factory=list)  # listing shape, newest first
    issues: list[Json] = field(default_factory=list)  # issues and pull requests
    pulls: list[Json] = field(default_factory=list)
    releases: list[Json] = field(default_factory=list)  # newest first


@dataclass
class LoggedRequest:
    """One request the server answered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    conditional: bool
    authorization: str | None


@dataclass
class Fault:
    """An injected answer for requests whose path+query contains `fragment`, `times` times."""

    fragment: str
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class _Reply:
    status: int
    data: Any
    link: str | None = None


class FakeGitHub:
    """The stand-in server; an async context manager (start/stop), with a request log."""

    def __init__(
        self,
        *,
        token: str | None = None,
        delay: float = 0.0,
        rate_limit: int = 5000,
        files_per_page: int = 300,
    ) -> None:
        self.token = token
        self.delay = delay
        self.rate_limit = rate_limit
        self.remaining = rate_limit
        self.reset_at = int(time.time()) + 3600
        self.files_per_page = files_per_page
        self.repos: dict[str, FakeRepo] = {}
        self.faults: list[Fault] = []
        self.requests: list[LoggedRequest] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    # lifecycle

    async def start(self) -> str:
        """Listen on 127.0.0.1 (random port); returns the base URL."""
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGitHub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # data

    def add_repo(
        self,
        full_name: str,
        *,
        commits: Iterable[Json] = (),
        issues: Iterable[Json] = (),
        releases: Iterable[Json] = (),
        pulls: Iterable[Json] = (),
        default_branch: str = "main",
    ) -> FakeRepo:
        """Add a repository from helper-built data (commits in detail shape, any order)."""
        owner, name = full_name.split("/")
        web_url = f"{WEB}/{full_name}"
        info = {
            "full_name": full_name,
            "name": name,
            "owner": {"login": owner},
            "default_branch": default_branch,
            "html_url": web_url,
            "private": False,
        }
        repo = FakeRepo(full_name, info)
        ordered = sorted(commits, key=lambda c: c["commit"]["committer"]["date"])
        previous = hashlib.sha1(f"{full_name} root".encode()).hexdigest()
        for detail in ordered:
            detail = json.loads(json.dumps(detail))
            if not detail["parents"]:
                detail["parents"] = [{"sha": previous}]
            detail["html_url"] = f"{web_url}/commit/{detail['sha']}"
            detail["url"] = f"{API}/repos/{full_name}/commits/{detail['sha']}"
            repo.details[detail["sha"]] = detail
            previous = detail["sha"]
        repo.commits = [_listed(d) for d in reversed(list(repo.details.values()))]
        for item in issues:
            item = json.loads(json.dumps(item))
            kind = "pull" if "pull_request" in item else "issues"
            item["html_url"] = item["html_url"] or f"{web_url}/{kind}/{item['number']}"
            if "pull_request" in item:
                item["pull_request"]["html_url"] = f"{web_url}/pull/{item['number']}"
            repo.issues.append(item)
        repo.pulls = list(pulls)
        for item in releases:
            item = dict(item)
            item["html_url"] = item["html_url"] or f"{web_url}/releases/tag/{item['tag_name']}"
            repo.releases.append(item)
        repo.releases.sort(key=lambda r: r.get("created_at") or "", reverse=True)
        self.repos[full_name.lower()] = repo
        return repo

    def load_recorded(self, folder: Path) -> list[str]:
        """Serve a recorded day (`fixtures/github/<DAY>/`); returns its repositories."""
        manifest = json.loads((folder / "manifest.json").read_text())
        for full_name in manifest["repos"]:
            base = folder / full_name.replace("/", "__")
            info = _read(base / "repo.json", {"full_name": full_name})
            repo = FakeRepo(full_name, info)
            repo.commits = _read(base / "commits.json", [])
            details = base / "commit_details"
            if details.is_dir():
                for path in sorted(details.glob("*.json")):
                    detail = json.loads(path.read_text())
                    repo.details[detail["sha"]] = detail
            repo.issues = _read(base / "issues.json", [])
            repo.pulls = _read(base / "pulls.json", [])
            repo.releases = _read(base / "releases.json", [])
            self.repos[full_name.lower()] = repo
        return list(manifest["repos"])

    # faults and limits

    def fail(
        self,
        fragment: str,
        status: int,
        *,
        body: str | Json = "",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests whose path+query contains `fragment` with `status`."""
        text = body if isinstance(body, str) else json.dumps(body)
        self.faults.append(Fault(fragment, status, text, dict(headers or {}), times))

    def secondary_rate_limit(self, fragment: str, *, retry_after: int = 1, times: int = 1) -> None:
        """A 403 secondary rate limit with `Retry-After`, as GitHub sends it."""
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again. If you reach out to GitHub Support for help, please include the request ID."
        )
        self.fail(
            fragment,
            403,
            body={"message": message, "documentation_url": f"{_DOCS}/overview/rate-limits"},
            headers={"Retry-After": str(retry_after)},
            times=times,
        )

    def server_error(self, fragment: str, *, status: int = 502, times: int = 1) -> None:
        """A gateway error, as GitHub's edge sends it (HTML, not JSON)."""
        self.fail(
            fragment,
            status,
            body="<html><body><h1>502 Bad Gateway</h1></body></html>",
            headers={"Content-Type": "text/html"},
            times=times,
        )

    def malformed_json(self, fragment: str, *, times: int = 1) -> None:
        """A 200 whose JSON body is cut off."""
        self.fail(fragment, 200, body='[{"sha": "abc', times=times)

    def reset_rate_limit(self) -> None:
        """Refill the primary limit, as the hourly reset does."""
        self.remaining = self.rate_limit
        self.reset_at = int(time.time()) + 3600

    # the log

    def count(self, *, path: str | None = None, status: int | None = None) -> int:
        """How many requests matched `path` (a substring) and `status`."""
        return sum(
            1
            for r in self.requests
            if (path is None or path in r.path) and (status is None or r.status == status)
        )

    @property
    def rate_limited(self) -> int:
        """Requests that counted against the primary limit (all but 304s)."""
        return sum(1 for r in self.requests if r.status != 304)

    def clear_log(self) -> None:
        """Forget the requests seen so far."""
        self.requests.clear()

    # serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            response = self._answer(request)
        finally:
            self.in_flight -= 1
        self.requests.append(
            LoggedRequest(
                request.method,
                request.path,
                dict(request.query),
                response.status,
                "If-None-Match" in request.headers,
                request.headers.get("Authorization"),
            )
        )
        return response

    def _answer(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        accepted = (f"Bearer {self.token}", f"token {self.token}")
        if auth is not None and self.token is not None and auth not in accepted:
            return self._json(401, {"message": "Bad credentials", "documentation_url": _DOCS})
        target = request.path_qs
        for fault in self.faults:
            if fault.times > 0 and fault.fragment in target:
                fault.times -= 1
                self._spend()
                headers = {"Content-Type": "application/json; charset=utf-8", **fault.headers}
                return web.Response(
                    status=fault.status, text=fault.body, headers={**self._limits(), **headers}
                )
        if self.remaining <= 0:
            message = "API rate limit exceeded for 127.0.0.1."
            return self._json(403, {"message": message, "documentation_url": _DOCS})
        reply = self._route(request)
        if reply.status != 200:
            self._spend()
            return self._json(reply.status, reply.data)
        body = json.dumps(reply.data)
        etag = 'W/"' + hashlib.sha256(body.encode()).hexdigest()[:40] + '"'
        headers = {"ETag": etag, "Cache-Control": "private, max-age=60, s-maxage=60"}
        if reply.link:
            headers["Link"] = reply.link
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers={**self._limits(), **headers})
        self._spend()
        return web.Response(
            status=200,
            text=body,
            content_type="application/json",
            charset="utf-8",
            headers={**self._limits(), **headers},
        )

    def _spend(self) -> None:
        self.remaining = max(self.remaining - 1, 0)

    def _limits(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
            "X-RateLimit-Used": str(self.rate_limit - self.remaining),
            "X-RateLimit-Resource": "core",
        }

    def _json(self, status: int, data: Any) -> web.Response:
        return web.Response(
            status=status,
            text=json.dumps(data),
            content_type="application/json",
            charset="utf-8",
            headers=self._limits(),
        )

    def _route(self, request: web.Request) -> _Reply:
        path = request.path
        if path == "/rate_limit":
            core = {"limit": self.rate_limit, "remaining": self.remaining, "reset": self.reset_at}
            return _Reply(200, {"resources": {"core": core}, "rate": core})
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not match:
            return _Reply(404, {"message": "Not Found", "documentation_url": _DOCS})
        repo = self.repos.get(f"{match.group(1)}/{match.group(2)}".lower())
        if repo is None:
            return _Reply(404, {"message": "Not Found", "documentation_url": _DOCS})
        rest = match.group(3) or ""
        query = request.query
        if rest == "":
            return _Reply(200, repo.info)
        if rest == "/commits":
            return self._page(request, _filter_commits(repo.commits, query))
        if rest.startswith("/commits/"):
            return self._commit(request, repo, rest.removeprefix("/commits/"))
        if rest.startswith("/compare/"):
            return _compare(repo, rest.removeprefix("/compare/"))
        if rest == "/issues":
            return self._page(request, _filter_issues(repo.issues, query))
        if rest.startswith("/issues/") and rest.removeprefix("/issues/").isdigit():
            number = int(rest.removeprefix("/issues/"))
            found = next((i for i in repo.issues if i.get("number") == number), None)
            if found is None:
                return _Reply(404, {"message": "Not Found", "documentation_url": _DOCS})
            return _Reply(200, found)
        if rest == "/pulls":
            state = query.get("state", "open")
            pulls = [p for p in repo.pulls if state == "all" or p.get("state") == state]
            return self._page(request, pulls)
        if rest == "/releases":
            return self._page(request, repo.releases)
        return _Reply(404, {"message": "Not Found", "documentation_url": _DOCS})

    def _page(self, request: web.Request, items: list[Json]) -> _Reply:
        per_page = min(int(request.query.get("per_page", "30")), 100)
        page = int(request.query.get("page", "1"))
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        return _Reply(200, chunk, _link(request, page, last))

    def _commit(self, request: web.Request, repo: FakeRepo, ref: str) -> _Reply:
        detail = _find(repo, ref)
        if detail is None:
            return _Reply(422, {"message": f"No commit found for SHA: {ref}", "status": "422"})
        files = detail.get("files") or []
        page = int(request.query.get("page", "1"))
        per_page = self.files_per_page
        last = max((len(files) + per_page - 1) // per_page, 1)
        shown = {**detail, "files": files[(page - 1) * per_page : page * per_page]}
        return _Reply(200, shown, _link(request, page, last))


def _read(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def _listed(detail: Json) -> Json:
    """The listing shape of a commit: the detail without stats and files."""
    return {k: v for k, v in detail.items() if k not in ("stats", "files")}


def _find(repo: FakeRepo, ref: str) -> Json | None:
    if ref in repo.details:
        return repo.details[ref]
    matches = [d for sha, d in repo.details.items() if sha.startswith(ref)]
    return matches[0] if len(matches) == 1 and len(ref) >= 7 else None


def _link(request: web.Request, page: int, last: int) -> str | None:
    """GitHub's `Link` header for page `page` of `last`."""
    if last <= 1:
        return None

    def url(n: int) -> str:
        return str(request.url.update_query(page=str(n)))

    rels = []
    if page < last:
        rels += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        rels += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
    return ", ".join(rels) or None


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _filter_commits(commits: list[Json], query: Mapping[str, str]) -> list[Json]:
    """`since`/`until` on the committer date, both inclusive as at GitHub."""
    since = _when(query["since"]) if "since" in query else None
    until = _when(query["until"]) if "until" in query else None
    chosen = []
    for item in commits:
        when = _when(item["commit"]["committer"]["date"])
        if (since is None or when >= since) and (until is None or when <= until):
            chosen.append(item)
    return chosen


def _filter_issues(issues: list[Json], query: Mapping[str, str]) -> list[Json]:
    """`state` (default open), `since` on updated_at, `sort` created|updated, `direction`."""
    state = query.get("state", "open")
    since = _when(query["since"]) if "since" in query else None
    chosen = [
        i
        for i in issues
        if (state == "all" or i.get("state") == state)
        and (since is None or _when(i["updated_at"]) >= since)
    ]
    if query.get("sort") == "updated":
        chosen.sort(key=lambda i: i["updated_at"])
    else:
        # Numbers grow with creation; recorded items may lack created_at.
        chosen.sort(key=lambda i: i["number"])
    if query.get("direction", "desc") == "desc":
        chosen.reverse()
    return chosen


def _compare(repo: FakeRepo, spec: str) -> _Reply:
    """`base...head` along first parents; files are the per-file sums of the commits."""
    base, _, head = spec.partition("...")
    missing = _Reply(404, {"message": "Not Found", "documentation_url": _DOCS})
    chain: list[Json] = []
    current = _find(repo, head)
    if current is None:
        return missing
    while not current["sha"].startswith(base):
        chain.append(current)
        parents = current.get("parents") or []
        if not parents:
            return missing  # base is not an ancestor of head
        if parents[0]["sha"].startswith(base):
            break
        found = _find(repo, parents[0]["sha"])
        if found is None:
            return missing
        current = found
    chain.reverse()
    files: dict[str, Json] = {}
    for detail in chain:
        for f in detail.get("files") or []:
            entry = files.setdefault(
                f["filename"],
                {
                    "filename": f["filename"],
                    "status": f.get("status", "modified"),
                    "additions": 0,
                    "deletions": 0,
                    "changes": 0,
                },
            )
            entry["additions"] += f.get("additions", 0)
            entry["deletions"] += f.get("deletions", 0)
            entry["changes"] += f.get("additions", 0) + f.get("deletions", 0)
    data = {
        "status": "ahead",
        "ahead_by": len(chain),
        "behind_by": 0,
        "total_commits": len(chain),
        "commits": [_listed(d) for d in chain],
        "files": list(files.values()),
    }
    return _Reply(200, data)
