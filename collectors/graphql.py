"""One repository-day → RepoActivity over GitHub's GraphQL API, at a cost that does not grow.

One query asks for everything of the day: the default branch's history in the window with each
commit's additions, deletions and changed-file count (no per-commit detail calls), the pull
requests merged and opened and the issues opened in the window (search by exact date range, so a
day months back costs what yesterday costs), and the newest releases. The window's history is
asked as `HISTORY_SLICES` aliased slices of up to 100 commits each, so a 300-commit day is still
one request; only a slice, search or release list that overflows its page is paged on, in
follow-up queries that carry nothing else (`@include`) and ask exactly the number of results
the search said remain. The first page of each search is kept small (its labels are a nested
connection, which GitHub charges per node asked), so a quiet day costs 1 point.

Totals are the sums of per-commit stats, exactly as on the REST path. `files_changed` is the sum
of per-commit changed-file counts (GraphQL gives no file names).

GraphQL gives no patches, so the day's news (changelog and README lines, issue 15) would never
reach the prompt. At most `Limits.patch_commits` commits therefore get a REST detail (first page
of files, by SHA, so a re-run serves it from the cache): commits whose message speaks of a
changelog, release, sync or version first (up to half), then the largest by lines changed. Their
files go through the same ranking as on the REST path (`ranked_files`). Issues and PRs the day
mentions get their titles through the same `linked_issues` (at most 10 conditional GETs).
An answer fetched after the day's window closed (plus a settling margin for the search index) is
reused from the cache by query and variables: an immediate re-run of an old day costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from collectors.activity import (
    Commit,
    FileChange,
    Issue,
    PullRequest,
    Release,
    RepoActivity,
    Totals,
)
from collectors.collect import (
    LIMITS,
    Cuts,
    Limits,
    commit_detail,
    linked_issues,
    pull_number,
    ranked_files,
)
from collectors.github import GitHubClient, GitHubError, GraphQLError
from collectors.window import DayWindow

log = logging.getLogger(__name__)

HISTORY_SLICES = 8
MERGED_PAGE = 50
OPENED_PAGE = 25
RELEASE_PAGE = 20
SEARCH_CAP = 1000  # GitHub's search returns at most this many results per query
# Search indexes lag behind writes; an answer fetched this long after the window is final.
SETTLE = timedelta(minutes=15)
# A commit whose message says this is likely to carry a changelog or README change.
_NEWS_MESSAGE = re.compile(
    r"change[-_ ]?log|changes\.md|release|\bsync|\bbump\b|\bversion\b|\bv\d+\.\d+", re.I
)

_COMMIT = """oid url message committedDate additions deletions changedFilesIfAvailable
          author { name user { login } }"""
_PULL = """... on PullRequest { number title url createdAt mergedAt additions deletions body
          author { login } mergeCommit { oid } labels(first: 10) { nodes { name } } }"""
_ISSUE = """... on Issue { number title url createdAt body author { login }
          comments { totalCount } labels(first: 10) { nodes { name } } }"""


def _history_fields(slices: int) -> str:
    parts = []
    for i in range(slices):
        parts.append(
            f"h{i}: history(first: 100, since: $since{i}, until: $until{i}, after: $after{i})"
            f" @include(if: $with{i}) {{ pageInfo {{ hasNextPage endCursor }}"
            f" nodes {{ {_COMMIT} }} }}"
        )
    return "\n        ".join(parts)


def build_query(slices: int = HISTORY_SLICES) -> str:
    """The repository-day query with `slices` aliased history slices."""
    history_vars = " ".join(
        f"$since{i}: GitTimestamp!, $until{i}: GitTimestamp!, $after{i}: String, $with{i}: Boolean!"
        for i in range(slices)
    )
    return f"""query RepoDay($owner: String!, $name: String!, {history_vars},
  $withHistory: Boolean!, $withReleases: Boolean!, $releasesAfter: String,
  $merged: String!, $withMerged: Boolean!, $mergedAfter: String, $mergedFirst: Int!,
  $openedPulls: String!, $withOpenedPulls: Boolean!, $openedPullsAfter: String,
  $openedPullsFirst: Int!,
  $openedIssues: String!, $withOpenedIssues: Boolean!, $openedIssuesAfter: String,
  $openedIssuesFirst: Int!) {{
  rateLimit {{ cost remaining resetAt }}
  repository(owner: $owner, name: $name) {{
    defaultBranchRef @include(if: $withHistory) {{
      target {{ ... on Commit {{
        {_history_fields(slices)}
      }} }}
    }}
    releases(first: {RELEASE_PAGE}, after: $releasesAfter,
             orderBy: {{field: CREATED_AT, direction: DESC}}) @include(if: $withReleases) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ tagName name url publishedAt createdAt isDraft isPrerelease description
               author {{ login }} }}
    }}
  }}
  merged: search(type: ISSUE, query: $merged, first: $mergedFirst, after: $mergedAfter)
    @include(if: $withMerged) {{
    issueCount pageInfo {{ hasNextPage endCursor }} nodes {{ {_PULL} }}
  }}
  openedPulls: search(type: ISSUE, query: $openedPulls, first: $openedPullsFirst,
    after: $openedPullsAfter) @include(if: $withOpenedPulls) {{
    issueCount pageInfo {{ hasNextPage endCursor }} nodes {{ {_PULL} }}
  }}
  openedIssues: search(type: ISSUE, query: $openedIssues, first: $openedIssuesFirst,
    after: $openedIssuesAfter) @include(if: $withOpenedIssues) {{
    issueCount pageInfo {{ hasNextPage endCursor }} nodes {{ {_ISSUE} }}
  }}
}}"""


QUERY = build_query()


# -- the answer's shapes, parsed at the edge -------------------------------------------------------


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _Login(_Node):
    login: str


class _GitActor(_Node):
    name: str | None = None
    user: _Login | None = None


class _Commit(_Node):
    oid: str
    url: str
    message: str = ""
    committedDate: AwareDatetime
    additions: int = 0
    deletions: int = 0
    changedFilesIfAvailable: int | None = None
    author: _GitActor | None = None


class _Label(_Node):
    name: str


class _Labels(_Node):
    nodes: list[_Label] = []


class _Oid(_Node):
    oid: str


class _Count(_Node):
    totalCount: int = 0


class _Pull(_Node):
    number: int
    title: str = ""
    url: str
    createdAt: AwareDatetime | None = None
    mergedAt: AwareDatetime | None = None
    additions: int | None = None
    deletions: int | None = None
    body: str | None = None
    author: _Login | None = None
    mergeCommit: _Oid | None = None
    labels: _Labels | None = None


class _Issue(_Node):
    number: int
    title: str = ""
    url: str
    createdAt: AwareDatetime
    body: str | None = None
    author: _Login | None = None
    comments: _Count | None = None
    labels: _Labels | None = None


class _Release(_Node):
    tagName: str
    name: str | None = None
    url: str
    publishedAt: AwareDatetime | None = None
    createdAt: AwareDatetime | None = None
    isDraft: bool = False
    isPrerelease: bool = False
    description: str | None = None
    author: _Login | None = None


@dataclass
class _Cursor:
    """One paged connection: whether to ask for it next time, after which cursor, how many."""

    wanted: bool = True
    after: str | None = None
    first: int = 100
    seen: int = 0

    def advance(self, connection: dict[str, Any] | None) -> None:
        connection = connection or {}
        info = connection.get("pageInfo") or {}
        self.wanted = bool(info.get("hasNextPage"))
        self.after = info.get("endCursor")
        self.seen += len(connection.get("nodes") or [])
        count = connection.get("issueCount")
        if isinstance(count, int):
            # A search says how many remain: ask for exactly those (a connection nested under
            # `first` nodes costs `first` requests, so a smaller page is a cheaper query).
            self.first = max(1, min(100, count - self.seen))


@dataclass
class _Gathered:
    """Raw nodes collected across the pages of one repository-day."""

    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    merged: list[dict[str, Any]] = field(default_factory=list)
    opened_pulls: list[dict[str, Any]] = field(default_factory=list)
    opened_issues: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def search_range(start: datetime, end: datetime) -> str:
    """A search qualifier's value for the half-open [start, end): inclusive seconds at GitHub."""
    last = end - timedelta(seconds=1)
    return f"{_stamp(start)}..{_stamp(last)}"


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _git_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slice_bounds(window: DayWindow, slices: int = HISTORY_SLICES) -> list[tuple[str, str]]:
    """Each history slice's (since, until), touching end to end.

    Whether GitHub's `until` includes its own second is not documented, so each slice reaches
    the next one's start: a commit on a boundary second may come twice (kept once, by SHA) and
    the window's own end is cut by `DayWindow.contains`.
    """
    step = (window.end - window.start) / slices
    bounds = []
    for i in range(slices):
        start = window.start + step * i
        end = window.end if i == slices - 1 else window.start + step * (i + 1)
        bounds.append((_git_time(start), _git_time(end)))
    return bounds


class GraphQLDay:
    """The queries and conversions of one repository-day over GraphQL."""

    def __init__(
        self, github: GitHubClient, repo: str, window: DayWindow, limits: Limits = LIMITS
    ) -> None:
        self._github = github
        self._repo = repo
        self._window = window
        self._limits = limits
        self._cuts = Cuts()

    async def collect(self) -> RepoActivity:
        """The repository-day; GitHubError (GraphQLError) when GitHub cannot answer it."""
        gathered = await self._gather()
        commits = sorted(
            (self._commit(_Commit.model_validate(raw)) for raw in gathered.commits.values()),
            key=lambda c: (c.committed_at, c.sha),
        )
        commits = [c for c in commits if self._window.contains(c.committed_at)]
        commits = await self._with_patches(commits)
        merged = self._pulls(gathered.merged, merged=True)
        opened_pulls = self._pulls(gathered.opened_pulls, merged=False)
        opened_issues = self._issues(gathered.opened_issues)
        # The same linked issues as on the REST path: what the day shows is not asked again.
        texts = [p.body for p in (*merged, *opened_pulls)] + [c.message for c in commits]
        shown = {p.number for p in (*merged, *opened_pulls)} | {i.number for i in opened_issues}
        shown |= {c.pull_number for c in commits if c.pull_number is not None}
        linked = await linked_issues(
            self._github, self._repo, texts, exclude=shown, limits=self._limits
        )
        self._cuts.notes[:0] = gathered.notes
        return RepoActivity(
            repo=self._repo,
            releases=self._releases(gathered.releases),
            merged_pulls=merged,
            opened_pulls=opened_pulls,
            opened_issues=opened_issues,
            commits=commits,
            totals=Totals(
                commits=len(commits),
                additions=sum(c.additions or 0 for c in commits),
                deletions=sum(c.deletions or 0 for c in commits),
                files_changed=sum(c.files_changed or 0 for c in commits),
            ),
            linked_issues=linked,
            truncated=self._cuts.summary(self._limits),
            complete=not any(n.startswith("incomplete:") for n in gathered.notes),
        )

    async def _with_patches(self, commits: list[Commit]) -> list[Commit]:
        """`commits`, the chosen few carrying their ranked files and patches (REST details)."""
        chosen = patch_commits(commits, self._limits.patch_commits)
        if not chosen:
            return commits
        answers = await asyncio.gather(*(self._detail(sha) for sha in chosen))
        files = {sha: answer for sha, answer in zip(chosen, answers, strict=True) if answer}
        failed = len(chosen) - len(files)
        if failed:
            self._cuts.notes.append(f"{failed} commits' patches could not be read")
        if len(commits) > len(chosen):
            self._cuts.notes.append(
                f"patches read for {len(chosen)} of {len(commits)} commits "
                "(changelog/release/sync commits, then the largest)"
            )
        return [
            c.model_copy(
                update={
                    "files": files[c.sha],
                    "files_changed": c.files_changed or len(files[c.sha]),
                }
            )
            if c.sha in files
            else c
            for c in commits
        ]

    async def _detail(self, sha: str) -> list[FileChange] | None:
        """A commit's files, ranked and cut as on the REST path (its first page of files only)."""
        try:
            detail, whole = await commit_detail(self._github, self._repo, sha, max_pages=1)
        except (GitHubError, ValidationError) as exc:
            # Patches are extra: the day's lists and totals stand without them.
            log.warning("%s: patches of %s not read: %s", self._repo, sha[:12], exc)
            return None
        if not whole:
            self._cuts.notes.append(
                f"commit {sha[:12]}: only its first {len(detail.files or [])} files' patches read"
            )
        return ranked_files(detail.files or [], self._limits, self._cuts)

    # -- querying --------------------------------------------------------------------------------

    async def _gather(self) -> _Gathered:
        owner, name = self._repo.split("/", 1)
        bounds = slice_bounds(self._window)
        history = [_Cursor() for _ in bounds]
        merged = _Cursor(first=MERGED_PAGE)
        opened_pulls, opened_issues = _Cursor(first=OPENED_PAGE), _Cursor(first=OPENED_PAGE)
        releases = _Cursor()
        gathered = _Gathered()
        span = search_range(self._window.start, self._window.end)
        base = f"repo:{self._repo}"
        reuse = self._window.end + SETTLE
        pages = 0
        while True:
            variables: dict[str, Any] = {
                "owner": owner,
                "name": name,
                "withHistory": any(c.wanted for c in history),
                "withReleases": releases.wanted,
                "releasesAfter": releases.after,
                "merged": f"{base} is:pr is:merged merged:{span}",
                "withMerged": merged.wanted,
                "mergedAfter": merged.after,
                "mergedFirst": merged.first,
                "openedPulls": f"{base} is:pr created:{span}",
                "withOpenedPulls": opened_pulls.wanted,
                "openedPullsAfter": opened_pulls.after,
                "openedPullsFirst": opened_pulls.first,
                "openedIssues": f"{base} is:issue created:{span}",
                "withOpenedIssues": opened_issues.wanted,
                "openedIssuesAfter": opened_issues.after,
                "openedIssuesFirst": opened_issues.first,
            }
            for i, ((since, until), cursor) in enumerate(zip(bounds, history, strict=True)):
                variables |= {
                    f"since{i}": since,
                    f"until{i}": until,
                    f"after{i}": cursor.after,
                    f"with{i}": cursor.wanted,
                }
            data = await self._github.graphql(QUERY, variables, reuse_fetched_after=reuse)
            pages += 1
            repository = data.get("repository")
            if repository is None:
                raise GraphQLError(f"GitHub GraphQL: repository {self._repo} not found", 404)
            if variables["withHistory"]:
                self._take_history(repository, history, gathered)
            if releases.wanted:
                self._take_releases(repository.get("releases"), releases, gathered)
            for key, cursor, into in (
                ("merged", merged, gathered.merged),
                ("openedPulls", opened_pulls, gathered.opened_pulls),
                ("openedIssues", opened_issues, gathered.opened_issues),
            ):
                if cursor.wanted:
                    self._take_search(key, data.get(key), cursor, into, gathered)
            if not any(c.wanted for c in (*history, merged, opened_pulls, opened_issues, releases)):
                return gathered

    def _take_history(
        self, repository: dict[str, Any], cursors: list[_Cursor], gathered: _Gathered
    ) -> None:
        branch = repository.get("defaultBranchRef")
        target = (branch or {}).get("target") or {}
        for i, cursor in enumerate(cursors):
            if not cursor.wanted:
                continue
            connection = target.get(f"h{i}")
            for node in (connection or {}).get("nodes") or []:
                gathered.commits[node["oid"]] = node
            # An empty repository has no default branch: nothing to page.
            cursor.advance(connection)

    def _take_releases(
        self, connection: dict[str, Any] | None, cursor: _Cursor, gathered: _Gathered
    ) -> None:
        nodes = (connection or {}).get("nodes") or []
        gathered.releases.extend(nodes)
        cursor.advance(connection)
        if cursor.wanted and nodes:
            # Newest first by creation: once a page ends before the window, the rest is older.
            last = _Release.model_validate(nodes[-1])
            when = last.createdAt or last.publishedAt
            if when is not None and when < self._window.start:
                cursor.wanted = False
        pages = len(gathered.releases) // RELEASE_PAGE
        if cursor.wanted and pages >= self._limits.release_pages:
            cursor.wanted = False
            gathered.notes.append(f"releases: only the newest {len(gathered.releases)} were read")

    def _take_search(
        self,
        key: str,
        connection: dict[str, Any] | None,
        cursor: _Cursor,
        into: list[dict[str, Any]],
        gathered: _Gathered,
    ) -> None:
        into.extend((connection or {}).get("nodes") or [])
        cursor.advance(connection)
        count = int((connection or {}).get("issueCount") or 0)
        if not cursor.wanted and count > SEARCH_CAP:
            gathered.notes.append(
                f"incomplete: {key} search found {count} but GitHub returns at most {SEARCH_CAP}"
            )

    # -- conversions -----------------------------------------------------------------------------

    def _excerpt(self, value: str | None, limit: int) -> str:
        return self._cuts.body(value, limit)

    def _commit(self, node: _Commit) -> Commit:
        message = self._cuts.message(node.message, self._limits.message_chars)
        author = None
        if node.author is not None:
            author = node.author.user.login if node.author.user else node.author.name
        return Commit(
            sha=node.oid,
            title=node.message.split("\n", 1)[0].strip(),
            url=node.url,
            committed_at=node.committedDate,
            author=author,
            pull_number=pull_number(node.message),
            additions=node.additions,
            deletions=node.deletions,
            files_changed=node.changedFilesIfAvailable,
            message=message,
        )

    def _pulls(self, raw: list[dict[str, Any]], *, merged: bool) -> list[PullRequest]:
        seen: dict[int, _Pull] = {}
        for item in raw:
            if "number" not in item:
                continue  # a search hit of another type (never for is:pr)
            pull = _Pull.model_validate(item)
            when = pull.mergedAt if merged else pull.createdAt
            # The search range is exact to the second; the window check guards the edges.
            if when is not None and self._window.contains(when):
                seen[pull.number] = pull
        ordered = sorted(
            seen.values(), key=lambda p: ((p.mergedAt if merged else p.createdAt), p.number)
        )
        return [
            PullRequest(
                number=p.number,
                title=p.title,
                url=p.url,
                author=p.author.login if p.author else None,
                labels=[label.name for label in p.labels.nodes] if p.labels else [],
                created_at=p.createdAt,
                merged_at=p.mergedAt,
                merge_commit_sha=p.mergeCommit.oid if merged and p.mergeCommit else None,
                additions=p.additions if merged else None,
                deletions=p.deletions if merged else None,
                body=self._excerpt(p.body, self._limits.body_chars),
            )
            for p in ordered
        ]

    def _issues(self, raw: list[dict[str, Any]]) -> list[Issue]:
        seen: dict[int, _Issue] = {}
        for item in raw:
            if "number" not in item:
                continue
            issue = _Issue.model_validate(item)
            if self._window.contains(issue.createdAt):
                seen[issue.number] = issue
        return [
            Issue(
                number=i.number,
                title=i.title,
                url=i.url,
                created_at=i.createdAt,
                author=i.author.login if i.author else None,
                labels=[label.name for label in i.labels.nodes] if i.labels else [],
                comments=i.comments.totalCount if i.comments else 0,
                body=self._excerpt(i.body, self._limits.body_chars),
            )
            for i in sorted(seen.values(), key=lambda i: (i.createdAt, i.number))
        ]

    def _releases(self, raw: list[dict[str, Any]]) -> list[Release]:
        chosen = []
        for item in raw:
            release = _Release.model_validate(item)
            if (
                not release.isDraft
                and release.publishedAt is not None
                and self._window.contains(release.publishedAt)
            ):
                chosen.append(release)
        chosen.sort(key=lambda r: (r.publishedAt, r.tagName))
        return [
            Release(
                tag_name=r.tagName,
                name=r.name or r.tagName,
                published_at=r.publishedAt,
                url=r.url,
                author=r.author.login if r.author else None,
                prerelease=r.isPrerelease,
                body=self._excerpt(r.description, self._limits.release_body_chars),
            )
            for r in chosen
            if r.publishedAt is not None
        ]


def patch_commits(commits: list[Commit], limit: int) -> list[str]:
    """The SHAs of at most `limit` commits worth a REST detail for their patches.

    Commits whose message speaks of a changelog, release, sync or version come first (up to
    half of `limit`, largest first), then the largest by lines changed; a commit that changed
    no lines has nothing to show.
    """

    def size(c: Commit) -> int:
        return (c.additions or 0) + (c.deletions or 0)

    by_size = sorted((c for c in commits if size(c) > 0), key=lambda c: (-size(c), c.sha))
    news = [c for c in by_size if _NEWS_MESSAGE.search(c.message)]
    chosen = [c.sha for c in news[: (limit + 1) // 2]]
    for c in by_size:
        if len(chosen) >= limit:
            break
        if c.sha not in chosen:
            chosen.append(c.sha)
    return chosen[:limit]


_REPO_RE = re.compile(r"^[^/\s]+/[^/\s]+$")


async def collect_repo_graphql(
    github: GitHubClient, repo: str, window: DayWindow, *, limits: Limits = LIMITS
) -> RepoActivity:
    """The activity of `repo` in `window` over GraphQL; GitHubError lets the caller fall back."""
    if not _REPO_RE.match(repo):
        raise GraphQLError(f"not an owner/name repository: {repo!r}")
    return await GraphQLDay(github, repo, window, limits).collect()
