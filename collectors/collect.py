"""One repository-day → RepoActivity, with few requests.

Per repository: the commits of the window (`commits?since=&until=`, default branch), one
`issues?since=&state=all` listing that yields issues *and* pull requests (with `merged_at`), the
newest releases, and one detail call per commit of the window. The day's line totals are the sum of
per-commit stats (what GitHub shows on each commit, and what `truth.json` of the recording holds);
the compare API gives the *net* diff of a range, which is smaller whenever two commits touch the
same lines, so it only serves as a flagged fallback beyond `Limits.commit_details`. Commit details
are immutable, so a re-run serves them from the ETag cache without asking; the listings are
conditional requests, answered 304 when nothing changed.

GitHub's commit listing is not first-parent: in a merge-commit (not squash) workflow, branch
commits dated in the window are listed and counted beside the merge commit that brings them in.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from collectors.activity import (
    Commit,
    DayActivity,
    FileChange,
    Issue,
    LinkedIssue,
    PullRequest,
    Release,
    RepoActivity,
    Totals,
)
from collectors.files import Worth, added_lines, is_news, outline, value_order, worth
from collectors.github import GitHubClient, GitHubError, Paged
from collectors.refs import closing_refs, issue_refs
from collectors.window import DayWindow, day_window
from collectors.wire import GhCommit, GhCompare, GhFile, GhIssue, GhRelease

log = logging.getLogger(__name__)

_SQUASH_PR = re.compile(r"\(#(\d+)\)")
_MERGE_PR = re.compile(r"^Merge pull request #(\d+)")
_CUT = "\n…"


@dataclass(frozen=True)
class Limits:
    """What is cut for size (and flagged in `RepoActivity.truncated`)."""

    body_chars: int = 2000
    release_body_chars: int = 6000
    message_chars: int = 4000
    patch_chars: int = 3000
    commit_patch_chars: int = 30_000
    commit_details: int = 200
    issue_pages: int = 30
    release_pages: int = 5
    linked_issue_requests: int = 10
    # GraphQL gives no patches: at most this many commits get a REST detail (first page of
    # files) so the prompt still sees their changelog and README lines.
    patch_commits: int = 10


LIMITS = Limits()


async def collect_day(
    github: GitHubClient,
    repos: Sequence[str],
    day: date,
    timezone: str,
    *,
    on_repo: Callable[[RepoActivity], None] | None = None,
) -> DayActivity:
    """Collect `day` (a calendar day in `timezone`) for every repository; failures are per repo.

    `on_repo` is called as each repository finishes (progress on a terminal).
    """
    window = day_window(day, timezone)

    async def one(repo: str) -> RepoActivity:
        activity = await collect_repo(github, repo, window)
        if on_repo is not None:
            on_repo(activity)
        return activity

    activities = await asyncio.gather(*(one(repo) for repo in repos))
    stats = github.stats
    log.info(
        "collected %s (%s) for %d repositories: %d requests to GitHub, %d of them counted "
        "against the rate limit (%d answered 304 Not Modified, free); %d GraphQL queries "
        "(%d points)",
        day,
        timezone,
        len(repos),
        stats.requests,
        stats.rate_limited,
        stats.not_modified,
        stats.graphql_requests,
        stats.graphql_points,
    )
    return DayActivity(
        day=day, timezone=timezone, window_utc=(window.start, window.end), repos=list(activities)
    )


async def collect_repo(
    github: GitHubClient, repo: str, window: DayWindow, *, limits: Limits = LIMITS
) -> RepoActivity:
    """The activity of `repo` in `window`; any failure becomes `RepoActivity.failed`.

    With a token (GITHUB_COLLECTOR=auto) or GITHUB_COLLECTOR=graphql the day is asked over
    GraphQL; when GraphQL fails for the repository, the REST path below answers instead.
    """
    if github.uses_graphql:
        # Imported here: the GraphQL collector reuses this module's limits and helpers.
        from collectors.graphql import collect_repo_graphql

        try:
            return await collect_repo_graphql(github, repo, window, limits=limits)
        except (GitHubError, ValidationError) as exc:
            reason = str(exc) if isinstance(exc, GitHubError) else "unexpected response shape"
            log.warning("GraphQL collection of %s failed (%s); using REST", repo, reason)
    try:
        return await _RepoDay(github, repo, window, limits).collect()
    except GitHubError as exc:
        if exc.status == 404:
            return RepoActivity.failed(repo, "repository not found, or private (GitHub 404)")
        return RepoActivity.failed(repo, str(exc))
    except ValidationError as exc:
        return RepoActivity.failed(
            repo, f"unexpected response shape from GitHub ({exc.error_count()} errors)"
        )
    except Exception as exc:
        # A bug must not take the other repositories down; log it with its traceback.
        log.exception("collecting %s failed", repo)
        return RepoActivity.failed(repo, f"unexpected error: {type(exc).__name__}: {exc}")


async def linked_issues(
    github: GitHubClient,
    repo: str,
    texts: Iterable[str],
    *,
    known: Iterable[GhIssue] = (),
    exclude: Iterable[int] = (),
    limits: Limits = LIMITS,
) -> list[LinkedIssue]:
    """Issues/PRs that `texts` mention, with titles: from `known` first, else one GET each.

    Closing references (`Fixes #N`) come first; at most `limits.linked_issue_requests` GETs are
    made (conditional, so an unchanged issue costs no rate limit on a re-run). A number GitHub
    does not know (deleted, transferred, or not an issue) is left out, never an error.
    """
    texts = list(texts)
    skip = set(exclude)
    closing = [n for text in texts for n in closing_refs(text)]
    mentioned = [n for text in texts for n in issue_refs(text, repo)]
    numbers = [n for n in dict.fromkeys([*closing, *mentioned]) if n not in skip]
    by_number = {issue.number: issue for issue in known}
    missing = [n for n in numbers if n not in by_number][: limits.linked_issue_requests]
    fetched = await asyncio.gather(*(_fetch_issue(github, repo, n) for n in missing))
    by_number.update({issue.number: issue for issue in fetched if issue is not None})
    return [
        LinkedIssue(
            number=n,
            title=by_number[n].title,
            url=by_number[n].html_url,
            is_pull=by_number[n].pull_request is not None,
        )
        for n in numbers
        if n in by_number
    ]


async def _fetch_issue(github: GitHubClient, repo: str, number: int) -> GhIssue | None:
    try:
        return GhIssue.model_validate(await github.get(f"repos/{repo}/issues/{number}"))
    except GitHubError as exc:
        log.debug("%s: linked issue #%d not read: %s", repo, number, exc)
        return None
    except ValidationError:
        return None


def pull_number(message: str) -> int | None:
    """The pull request of a commit: `Title (#1234)` (squash) or `Merge pull request #1234`."""
    headline = message.split("\n", 1)[0]
    merge = _MERGE_PR.match(headline)
    if merge:
        return int(merge.group(1))
    squash = _SQUASH_PR.findall(headline)
    return int(squash[-1]) if squash else None


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Cuts:
    """Counts of what was cut, turned into `truncated` notes (shared by both collectors)."""

    bodies: int = 0
    messages: int = 0
    patches_cut: int = 0
    patches_left_out: int = 0
    notes: list[str] = field(default_factory=list)

    def body(self, value: str | None, limit: int) -> str:
        """A body or release notes, as an excerpt of at most `limit` characters."""
        text, cut = _excerpt(value, limit)
        self.bodies += cut
        return text

    def message(self, value: str, limit: int) -> str:
        """A commit message, as an excerpt of at most `limit` characters."""
        text, cut = _excerpt(value, limit)
        self.messages += cut
        return text

    def summary(self, limits: Limits) -> list[str]:
        """The `truncated` notes: what was cut, and each note added on the way."""
        notes = list(self.notes)
        if self.bodies:
            notes.append(f"{self.bodies} bodies or release notes cut to an excerpt")
        if self.messages:
            notes.append(f"{self.messages} commit messages cut to {limits.message_chars:,} chars")
        if self.patches_cut:
            notes.append(f"{self.patches_cut} file patches cut to {limits.patch_chars:,} chars")
        if self.patches_left_out:
            notes.append(
                f"{self.patches_left_out} file patches left out "
                f"(over {limits.commit_patch_chars:,} chars of patch per commit)"
            )
        return notes


@dataclass(frozen=True)
class _Sized:
    """A commit of the window with its detail (None beyond the detail limit)."""

    listed: GhCommit
    committed_at: datetime
    detail: GhCommit | None


class _RepoDay:
    """The requests and conversions of one repository-day."""

    def __init__(self, github: GitHubClient, repo: str, window: DayWindow, limits: Limits) -> None:
        self._github = github
        self._repo = repo
        self._window = window
        self._limits = limits
        self._base = f"repos/{repo}"
        self._cuts = Cuts()

    async def collect(self) -> RepoActivity:
        try:
            async with asyncio.TaskGroup() as group:
                listing = group.create_task(self._list_commits())
                issues_task = group.create_task(self._list_issues())
                releases = group.create_task(self._list_releases())
        except ExceptionGroup as failed:
            # One listing's failure is the repository's (the others were cancelled).
            raise failed.exceptions[0] from None
        issues, issues_complete = issues_task.result()
        sized = await self._details(listing.result())
        commits = [self._commit(item) for item in sized]
        totals = await self._totals(sized)
        merged = self._merged(issues, commits)
        opened_pulls = [self._pull(i) for i in self._opened(issues, pulls=True)]
        opened_issues = [self._issue(i) for i in self._opened(issues, pulls=False)]
        texts = [p.body for p in (*merged, *opened_pulls)] + [c.message for c in commits]
        shown = {p.number for p in (*merged, *opened_pulls)} | {i.number for i in opened_issues}
        shown |= {c.pull_number for c in commits if c.pull_number is not None}
        linked = await linked_issues(
            self._github, self._repo, texts, known=issues, exclude=shown, limits=self._limits
        )
        return RepoActivity(
            repo=self._repo,
            releases=releases.result(),
            merged_pulls=merged,
            opened_pulls=opened_pulls,
            opened_issues=opened_issues,
            commits=commits,
            totals=totals,
            linked_issues=linked,
            truncated=self._cuts.summary(self._limits),
            complete=issues_complete,
        )

    # -- listings ---------------------------------------------------------------------------

    async def _list_commits(self) -> list[tuple[GhCommit, datetime]]:
        params = {"since": _iso(self._window.start), "until": _iso(self._window.end)}
        try:
            paged = await self._github.paginate(f"{self._base}/commits", params)
        except GitHubError as exc:
            if exc.status == 409:  # "Git Repository is empty."
                return []
            raise
        found: list[tuple[GhCommit, datetime]] = []
        for raw in paged.items:
            commit = GhCommit.model_validate(raw)
            when = _committed_at(commit)
            # `until` is inclusive at GitHub; the window is half-open.
            if when is not None and self._window.contains(when):
                found.append((commit, when))
        found.sort(key=lambda pair: pair[1])
        return found

    async def _list_issues(self) -> tuple[list[GhIssue], bool]:
        """Issues and PRs updated since the window began; False when the page cap cut it."""
        paged = await self._github.paginate(
            f"{self._base}/issues",
            {"state": "all", "since": _iso(self._window.start)},
            max_pages=self._limits.issue_pages,
        )
        if not paged.complete:
            self._cuts.notes.append(
                f"issues and pull requests: listing stopped after {paged.pages} pages of items "
                "updated since the day began; some opened or merged that day may be missing"
            )
        return [GhIssue.model_validate(raw) for raw in paged.items], paged.complete

    async def _list_releases(self) -> list[Release]:
        start = self._window.start

        def older_than_window(page: list[Any]) -> bool:
            # Listed newest first by creation: once a page ends before the window, stop.
            if not page:
                return True
            last = GhRelease.model_validate(page[-1])
            when = last.created_at or last.published_at
            return when is not None and when < start

        paged: Paged = await self._github.paginate(
            f"{self._base}/releases", max_pages=self._limits.release_pages, stop=older_than_window
        )
        if not paged.complete:
            self._cuts.notes.append(f"releases: only the newest {len(paged.items)} were read")
        releases = [GhRelease.model_validate(raw) for raw in paged.items]
        chosen = [
            r
            for r in releases
            if not r.draft and r.published_at is not None and self._window.contains(r.published_at)
        ]
        chosen.sort(key=lambda r: (r.published_at, r.tag_name))
        return [self._release(r) for r in chosen]

    # -- commit details and totals -----------------------------------------------------------

    async def _details(self, listed: list[tuple[GhCommit, datetime]]) -> list[_Sized]:
        limit = self._limits.commit_details
        details = await asyncio.gather(*(self._detail(c.sha) for c, _ in listed[:limit]))
        sized = [_Sized(c, when, d) for (c, when), d in zip(listed, details, strict=False)]
        sized += [_Sized(c, when, None) for c, when in listed[limit:]]
        return sized

    async def _detail(self, sha: str) -> GhCommit:
        """A commit with stats and all its files (GitHub pages files 300 at a time)."""
        commit, _ = await commit_detail(self._github, self._repo, sha)
        return commit

    async def _totals(self, sized: list[_Sized]) -> Totals:
        detailed = [s.detail for s in sized if s.detail is not None]
        additions = sum(d.stats.additions for d in detailed if d.stats)
        deletions = sum(d.stats.deletions for d in detailed if d.stats)
        files = {f.filename for d in detailed for f in d.files or []}
        if len(detailed) < len(sized):
            compared = await self._compare(sized)
            if compared is not None:
                additions = sum(f.additions for f in compared.files)
                deletions = sum(f.deletions for f in compared.files)
                files = {f.filename for f in compared.files}
                self._cuts.notes.append(
                    f"{len(sized) - len(detailed)} commits without per-commit sizes (over "
                    f"{self._limits.commit_details}); line totals are the day's net diff"
                )
            else:
                self._cuts.notes.append(
                    f"{len(sized) - len(detailed)} commits without sizes; line totals cover "
                    f"only the first {len(detailed)} commits"
                )
        return Totals(
            commits=len(sized), additions=additions, deletions=deletions, files_changed=len(files)
        )

    async def _compare(self, sized: list[_Sized]) -> GhCompare | None:
        """The net diff from before the window's first commit to its last, in one call."""
        parents = sized[0].listed.parents
        if not parents or "sha" not in parents[0]:
            return None
        base, head = parents[0]["sha"], sized[-1].listed.sha
        data = await self._github.get(f"{self._base}/compare/{base}...{head}", immutable=True)
        return GhCompare.model_validate(data)

    # -- conversions ------------------------------------------------------------------------

    def _commit(self, item: _Sized) -> Commit:
        listed, detail = item.listed, item.detail
        message = listed.commit.message
        author = listed.author.login if listed.author else None
        if author is None and listed.commit.author is not None:
            author = listed.commit.author.name
        sizes: dict[str, Any] = {}
        if detail is not None:
            files = detail.files or []
            sizes = {
                "additions": detail.stats.additions if detail.stats else None,
                "deletions": detail.stats.deletions if detail.stats else None,
                "files_changed": len(files),
                "files": self._files(files),
            }
        return Commit(
            sha=listed.sha,
            title=message.split("\n", 1)[0].strip(),
            url=listed.html_url,
            committed_at=item.committed_at,
            author=author,
            pull_number=pull_number(message),
            message=self._cuts.message(message, self._limits.message_chars),
            **sizes,
        )

    def _files(self, files: Iterable[GhFile]) -> list[FileChange]:
        return ranked_files(files, self._limits, self._cuts)

    def _merged(self, issues: list[GhIssue], commits: list[Commit]) -> list[PullRequest]:
        by_pull: dict[int, list[Commit]] = {}
        for commit in commits:
            if commit.pull_number is not None:
                by_pull.setdefault(commit.pull_number, []).append(commit)
        merged = [
            (i.pull_request.merged_at, i)
            for i in issues
            if i.pull_request is not None
            and i.pull_request.merged_at is not None
            and self._window.contains(i.pull_request.merged_at)
        ]
        merged.sort(key=lambda pair: (pair[0], pair[1].number))
        pulls = []
        for _, issue in merged:
            # One squash or merge commit of the PR on the default branch carries its size.
            matches = by_pull.get(issue.number, [])
            source = matches[0] if len(matches) == 1 else None
            pulls.append(
                self._pull(
                    issue,
                    merge_commit_sha=source.sha if source else None,
                    additions=source.additions if source else None,
                    deletions=source.deletions if source else None,
                )
            )
        return pulls

    def _opened(self, issues: list[GhIssue], *, pulls: bool) -> list[GhIssue]:
        """Issues (or pull requests) created in the window, oldest first."""
        opened = [
            (i.created_at, i)
            for i in issues
            if (i.pull_request is not None) == pulls
            and i.created_at is not None
            and self._window.contains(i.created_at)
        ]
        opened.sort(key=lambda pair: (pair[0], pair[1].number))
        return [i for _, i in opened]

    def _pull(self, issue: GhIssue, **sizes: Any) -> PullRequest:
        ref = issue.pull_request
        return PullRequest(
            number=issue.number,
            title=issue.title,
            url=(ref.html_url if ref and ref.html_url else issue.html_url),
            author=issue.user.login if issue.user else None,
            labels=issue.labels,
            created_at=issue.created_at,
            merged_at=ref.merged_at if ref else None,
            body=self._cuts.body(issue.body, self._limits.body_chars),
            **sizes,
        )

    def _issue(self, issue: GhIssue) -> Issue:
        assert issue.created_at is not None
        return Issue(
            number=issue.number,
            title=issue.title,
            url=issue.html_url,
            created_at=issue.created_at,
            author=issue.user.login if issue.user else None,
            labels=issue.labels,
            comments=issue.comments,
            body=self._cuts.body(issue.body, self._limits.body_chars),
        )

    def _release(self, release: GhRelease) -> Release:
        assert release.published_at is not None
        return Release(
            tag_name=release.tag_name,
            name=release.name or release.tag_name,
            published_at=release.published_at,
            url=release.html_url,
            author=release.author.login if release.author else None,
            prerelease=release.prerelease,
            body=self._cuts.body(release.body, self._limits.release_body_chars),
        )


async def commit_detail(
    github: GitHubClient, repo: str, sha: str, *, max_pages: int | None = None
) -> tuple[GhCommit, bool]:
    """A commit with stats and its files (GitHub pages files 300 at a time), and whether every
    page was read (`max_pages` bounds the requests; None reads them all).

    A commit by SHA never changes: the client serves a stored answer without asking.
    """
    page = await github.get_page(f"repos/{repo}/commits/{sha}", immutable=True)
    commit = GhCommit.model_validate(page.data)
    files = list(commit.files or [])
    pages = 1
    while page.next_url is not None:
        if max_pages is not None and pages >= max_pages:
            return commit.model_copy(update={"files": files}), False
        page = await github.get_page(page.next_url, immutable=True)
        files.extend(GhCommit.model_validate(page.data).files or [])
        pages += 1
    return commit.model_copy(update={"files": files}), True


def ranked_files(files: Iterable[GhFile], limits: Limits, cuts: Cuts) -> list[FileChange]:
    """Files in diff order; patches cut per file, and left out beyond the commit's budget.

    One ranking for both collectors (collectors.files): changelogs and docs say most about a
    commit, then source, so they get the budget first.
    """
    budget = limits.commit_patch_chars
    files = list(files)
    ranked = sorted(files, key=lambda f: value_order(f.filename, f.additions + f.deletions))
    patches: dict[str, str | None] = {}
    for file in ranked:
        patch = _excerpt_patch(file, limits, cuts)
        if patch is not None and len(patch) > budget:
            cuts.patches_left_out += 1
            patch = None
        budget -= len(patch or "")
        patches[file.filename] = patch
    return [
        FileChange(
            filename=f.filename,
            status=f.status,
            additions=f.additions,
            deletions=f.deletions,
            patch=patches.get(f.filename),
        )
        for f in files
    ]


def _excerpt_patch(file: GhFile, limits: Limits, cuts: Cuts) -> str | None:
    """The part of a file's patch worth keeping within `Limits.patch_chars`."""
    patch, limit = file.patch, limits.patch_chars
    if patch is None or worth(file.filename) == Worth.NAME_ONLY:
        return None
    if len(patch) <= limit:
        return patch
    cuts.patches_cut += 1
    rank = worth(file.filename)
    if is_news(file.filename) or rank == Worth.DOCS:
        # A changelog's news is what it adds; the context lines around it are not.
        patch = "\n".join("+" + line for line in added_lines(patch))
    elif file.status == "added":
        # The top of a new file is mostly its licence: keep what it defines instead.
        return "+" + outline(patch, limit).replace("\n", "\n+")
    return patch if len(patch) <= limit else patch[:limit] + _CUT


def _excerpt(value: str | None, limit: int) -> tuple[str, int]:
    """`value` cut to `limit` characters (plus a mark), and 1 when it was cut."""
    value = value or ""
    if len(value) <= limit:
        return value, 0
    return value[:limit].rstrip() + _CUT, 1


def _committed_at(commit: GhCommit) -> datetime | None:
    """When the commit landed on the branch: the committer date (the author date if absent)."""
    for person in (commit.commit.committer, commit.commit.author):
        if person is not None and person.date is not None:
            return person.date
    return None
