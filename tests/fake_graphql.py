"""An in-process stand-in for GitHub's GraphQL API on 127.0.0.1, beside `FakeGitHub`.

    async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:   # one data set, two protocols
        rest.add_repo("o/r", commits=[commit(...)], issues=[pull(...), issue(...)])
        client = GitHubClient(rest.url, "token", None, graphql_url=gql.url)
        gql.fail(times=1)                  # an HTTP 502; gql.error(...) a 200 with `errors`
        gql.points_left = 3                # the `rateLimit` budget (points), reset at `reset_at`

Each POST is parsed and validated with graphql-core against a subset of GitHub's schema (the
types and fields the collector asks for, with their real names and arguments) and executed with
resolvers over the repositories of the `FakeGitHub` it is given: the default branch's history
(`since`/`until` inclusive on the committer date, newest first, cursor paging), `search(type:
ISSUE)` understanding `repo:`, `is:pr|issue|merged` and `merged:`/`created:` ranges, and
releases newest first by creation. A query's cost follows GitHub's published formula (requests
each connection needs, assuming every `first` is filled, over 100, at least 1) and is charged
against `points_left`; an over-budget query gets GitHub's RATE_LIMITED error.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiohttp import web
from fake_github import FakeGitHub, FakeRepo
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.error import GraphQLSyntaxError

Json = dict[str, Any]
Info = GraphQLResolveInfo[Any]

SDL = """
scalar DateTime
scalar GitTimestamp
scalar URI

type Query {
  rateLimit: RateLimit
  repository(owner: String!, name: String!): Repository
  search(type: SearchType!, query: String!, first: Int, after: String): SearchResultItemConnection!
}
enum SearchType { ISSUE REPOSITORY USER DISCUSSION }
type RateLimit { cost: Int! limit: Int! remaining: Int! used: Int! resetAt: DateTime! }
type PageInfo { hasNextPage: Boolean! endCursor: String }

type Repository {
  nameWithOwner: String!
  defaultBranchRef: Ref
  releases(first: Int, after: String, orderBy: ReleaseOrder): ReleaseConnection!
}
type Ref { name: String! target: GitObject }
interface GitObject { oid: String! }
type Commit implements GitObject {
  oid: String!
  url: URI!
  message: String!
  messageHeadline: String!
  committedDate: DateTime!
  additions: Int!
  deletions: Int!
  changedFilesIfAvailable: Int
  author: GitActor
  history(first: Int, after: String, since: GitTimestamp, until: GitTimestamp):
    CommitHistoryConnection!
}
type GitActor { name: String user: User }
interface Actor { login: String! }
type User implements Actor { login: String! }
type CommitHistoryConnection { totalCount: Int! pageInfo: PageInfo! nodes: [Commit] }

input ReleaseOrder { field: ReleaseOrderField! direction: OrderDirection! }
enum ReleaseOrderField { CREATED_AT NAME }
enum OrderDirection { ASC DESC }
type ReleaseConnection { totalCount: Int! pageInfo: PageInfo! nodes: [Release] }
type Release {
  tagName: String! name: String url: URI! publishedAt: DateTime createdAt: DateTime!
  isDraft: Boolean! isPrerelease: Boolean! description: String author: User
}

union SearchResultItem = Issue | PullRequest
type SearchResultItemConnection { issueCount: Int! pageInfo: PageInfo! nodes: [SearchResultItem] }
type Label { name: String! }
type LabelConnection { totalCount: Int! nodes: [Label] }
type IssueCommentConnection { totalCount: Int! }
# createdAt is nullable here (DateTime! at GitHub): recorded pull requests lack it.
type PullRequest {
  number: Int! title: String! url: URI! createdAt: DateTime mergedAt: DateTime
  additions: Int! deletions: Int! body: String! author: Actor mergeCommit: Commit
  labels(first: Int, after: String): LabelConnection
}
type Issue {
  number: Int! title: String! url: URI! createdAt: DateTime! body: String! author: Actor
  comments(first: Int): IssueCommentConnection!
  labels(first: Int, after: String): LabelConnection
}
"""

_PR_REF = re.compile(r"\(#(\d+)\)|^Merge pull request #(\d+)")


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _cursor(offset: int) -> str:
    return base64.b64encode(f"cursor:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(base64.b64decode(cursor).decode().split(":", 1)[1])


def _page(items: list[Any], first: int | None, after: str | None) -> Json:
    """A connection's page of `items` (nodes, pageInfo, totalCount)."""
    start = _offset(after)
    size = min(first or 100, 100)
    chunk = items[start : start + size]
    end = start + len(chunk)
    return {
        "totalCount": len(items),
        "pageInfo": {
            "hasNextPage": end < len(items),
            "endCursor": _cursor(end) if chunk else after,
        },
        "nodes": chunk,
    }


@dataclass
class QueryLog:
    """One query the server answered: its variables, cost and whether it errored."""

    variables: Json
    cost: int
    status: int
    errors: list[str] = field(default_factory=list)


class FakeGraphQL:
    """The stand-in server over a FakeGitHub's repositories; an async context manager."""

    def __init__(self, source: FakeGitHub, *, points: int = 5000, delay: float = 0.0) -> None:
        self.source = source
        self.delay = delay
        self.limit = points
        self.points_left = points
        self.reset_at = datetime.fromtimestamp(int(time.time()) + 3600, UTC)
        self.queries: list[QueryLog] = []
        self._faults: list[tuple[int, Json | None]] = []
        self._schema = build_schema(SDL)
        self._wire()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # lifecycle

    async def start(self) -> str:
        """Listen on 127.0.0.1 (random port); returns the endpoint URL."""
        app = web.Application()
        app.router.add_post("/graphql", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/graphql"
        return self.url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGraphQL:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # faults and the log

    def fail(self, *, status: int = 502, times: int = 1) -> None:
        """Answer the next `times` queries with HTTP `status`."""
        self._faults += [(status, None)] * times

    def error(self, message: str, *, kind: str = "INTERNAL", times: int = 1) -> None:
        """Answer the next `times` queries with a 200 carrying a GraphQL error."""
        self._faults += [(200, {"type": kind, "message": message})] * times

    @property
    def points_spent(self) -> int:
        """The points charged so far."""
        return sum(q.cost for q in self.queries if q.status == 200 and not q.errors)

    # serving

    async def _handle(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            body = await request.json()
            query, variables = str(body["query"]), dict(body.get("variables") or {})
        except (ValueError, KeyError, TypeError):
            return web.json_response({"message": "Problems parsing JSON"}, status=400)
        if self._faults:
            status, error = self._faults.pop(0)
            self.queries.append(QueryLog(variables, 0, status, [str(error)] if error else []))
            if error is None:
                return web.Response(status=status, text="<html>Bad Gateway</html>")
            return web.json_response({"data": None, "errors": [error]})
        try:
            document = parse(query)
        except GraphQLSyntaxError as exc:
            return self._errors(variables, [{"message": exc.message}])
        problems = validate(self._schema, document)
        if problems:
            return self._errors(variables, [{"message": p.message} for p in problems])
        cost = query_cost(document, variables)
        if cost > self.points_left:
            return self._errors(
                variables,
                [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user."}],
            )
        self.points_left -= cost
        limit = {
            "cost": cost,
            "limit": self.limit,
            "remaining": self.points_left,
            "used": self.limit - self.points_left,
            "resetAt": self.reset_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        result = execute(
            self._schema, document, root_value={"rateLimit": limit}, variable_values=variables
        )
        assert isinstance(result, ExecutionResult)  # every resolver here is synchronous
        errors: list[Json] = [{"message": e.message, "path": e.path} for e in result.errors or []]
        self.queries.append(QueryLog(variables, cost, 200, [str(e["message"]) for e in errors]))
        answer: Json = {"data": result.data}
        if errors:
            answer["errors"] = errors
        return web.json_response(answer, headers=self._headers())

    def _errors(self, variables: Json, errors: list[Json]) -> web.Response:
        self.queries.append(QueryLog(variables, 0, 200, [e["message"] for e in errors]))
        return web.json_response({"errors": errors}, headers=self._headers())

    def _headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.points_left),
            "X-RateLimit-Reset": str(int(self.reset_at.timestamp())),
            "X-RateLimit-Resource": "graphql",
        }

    # resolvers

    def _wire(self) -> None:
        def fields(name: str) -> Any:
            kind = self._schema.type_map[name]
            assert isinstance(kind, GraphQLObjectType)
            return kind.fields

        query = fields("Query")
        query["repository"].resolve = self._repository
        query["search"].resolve = self._search
        query["rateLimit"].resolve = lambda root, _info: root["rateLimit"]
        commit = fields("Commit")
        commit["history"].resolve = self._history
        repository = fields("Repository")
        repository["releases"].resolve = self._releases
        for name in ("PullRequest", "Issue"):
            kind = fields(name)
            kind["labels"].resolve = lambda item, _info, first=None, after=None: _page(
                item["labels"], first, after
            )

    def _repo(self, full_name: str) -> FakeRepo | None:
        return self.source.repos.get(full_name.lower())

    def _repository(self, _root: Any, _info: Info, owner: str, name: str) -> Any:
        repo = self._repo(f"{owner}/{name}")
        if repo is None:
            return None
        # The branch's head: its history is what the resolvers below serve.
        head = {"__typename": "Commit", "__repo": repo, "oid": repo.info.get("head", "0" * 40)}
        if repo.commits:
            head = _commit_node(repo, repo.commits[0])
        branch = {"name": repo.info.get("default_branch", "main"), "target": head}
        return {
            "nameWithOwner": repo.full_name,
            "defaultBranchRef": branch,
            "__repo": repo,
        }

    def _history(
        self,
        head: Json,
        _info: Info,
        first: int | None = None,
        after: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Json:
        repo: FakeRepo = head["__repo"]
        low = _when(since) if since else None
        high = _when(until) if until else None
        chosen = []
        for listed in repo.commits:  # newest first, as `git log`
            when = _when(listed["commit"]["committer"]["date"])
            if (low is None or when >= low) and (high is None or when <= high):
                chosen.append(_commit_node(repo, listed))
        return _page(chosen, first, after)

    def _releases(
        self,
        repository: Json,
        _info: Info,
        first: int | None = None,
        after: str | None = None,
        orderBy: Json | None = None,  # GitHub's argument name
    ) -> Json:
        repo: FakeRepo = repository["__repo"]
        ordered = sorted(repo.releases, key=lambda r: r.get("created_at") or "", reverse=True)
        if orderBy and orderBy.get("direction") == "ASC":
            ordered.reverse()
        nodes = [
            {
                "tagName": r["tag_name"],
                "name": r.get("name"),
                "url": r.get("html_url") or "",
                "publishedAt": r.get("published_at"),
                "createdAt": r.get("created_at") or r.get("published_at"),
                "isDraft": bool(r.get("draft")),
                "isPrerelease": bool(r.get("prerelease")),
                "description": r.get("body"),
                "author": r.get("author"),
            }
            for r in ordered
        ]
        return _page(nodes, first, after)

    def _search(
        self,
        _root: Any,
        _info: Info,
        type: str,  # GitHub's argument name
        query: str,
        first: int | None = None,
        after: str | None = None,
    ) -> Json:
        terms = parse_search(query)
        repo = self._repo(terms.get("repo", ""))
        hits: list[Json] = []
        if repo is not None and type == "ISSUE":
            for item in repo.issues:
                if _matches(item, terms):
                    hits.append(_search_node(repo, item))
        hits.sort(key=lambda n: n["number"], reverse=True)
        page = _page(hits, first, after)
        return {"issueCount": len(hits), "pageInfo": page["pageInfo"], "nodes": page["nodes"]}


def parse_search(query: str) -> dict[str, Any]:
    """`repo:o/n is:pr is:merged merged:A..B` → {"repo": ..., "is": {...}, "merged": (A, B)}."""
    terms: dict[str, Any] = {"is": set()}
    for token in query.split():
        key, sep, value = token.partition(":")
        if not sep:
            raise ValueError(f"free text is not supported by the fake: {token!r}")
        if key == "repo":
            terms["repo"] = value
        elif key == "is":
            terms["is"].add(value)
        elif key in ("merged", "created"):
            low, dots, high = value.partition("..")
            if not dots:
                raise ValueError(f"only ranges are supported by the fake: {token!r}")
            terms[key] = (_when(low), _when(high))
        else:
            raise ValueError(f"unknown search qualifier {key!r}")
    return terms


def _matches(item: Json, terms: dict[str, Any]) -> bool:
    """Whether an issues-listing item answers the parsed search."""
    kinds: set[str] = terms["is"]
    ref = item.get("pull_request")
    if "pr" in kinds and ref is None:
        return False
    if "issue" in kinds and ref is not None:
        return False
    merged_at = (ref or {}).get("merged_at")
    if "merged" in kinds and not merged_at:
        return False
    for key, value in (("merged", merged_at), ("created", item.get("created_at"))):
        if key in terms:
            low, high = terms[key]
            # Both ends inclusive, to the second, as at GitHub.
            if value is None or not low <= _when(value) <= high:
                return False
    return True


def _commit_node(repo: FakeRepo, listed: Json) -> Json:
    detail = repo.details.get(listed["sha"], listed)
    stats = detail.get("stats") or {}
    files = detail.get("files")
    author = listed["commit"].get("author") or {}
    login = (listed.get("author") or {}).get("login")
    message = listed["commit"]["message"]
    return {
        "__typename": "Commit",
        "__repo": repo,
        "oid": listed["sha"],
        "url": listed.get("html_url") or "",
        "message": message,
        "messageHeadline": message.split("\n", 1)[0],
        "committedDate": listed["commit"]["committer"]["date"],
        "additions": stats.get("additions", 0),
        "deletions": stats.get("deletions", 0),
        "changedFilesIfAvailable": len(files) if files is not None else None,
        "author": {"name": author.get("name"), "user": {"login": login} if login else None},
    }


def _merge_commit(repo: FakeRepo, number: int, sha: str | None) -> Json | None:
    """The commit that landed pull request `number`: by SHA, else by `(#n)` in its headline."""
    if sha and sha in repo.details:
        return repo.details[sha]
    for detail in repo.details.values():
        headline = detail["commit"]["message"].split("\n", 1)[0]
        for match in _PR_REF.finditer(headline):
            if int(match.group(1) or match.group(2)) == number:
                return detail
    return None


def _search_node(repo: FakeRepo, item: Json) -> Json:
    """An issues-listing item as a GraphQL `Issue` or `PullRequest`."""
    labels = [
        {"name": label["name"] if isinstance(label, dict) else label}
        for label in item.get("labels") or []
    ]
    common = {
        "number": item["number"],
        "title": item.get("title") or "",
        "url": item.get("html_url") or "",
        "createdAt": item.get("created_at"),
        "body": item.get("body") or "",
        "author": {"__typename": "User", "login": item["user"]["login"]}
        if item.get("user")
        else None,
        "labels": labels,
    }
    ref = item.get("pull_request")
    if ref is None:
        return {
            "__typename": "Issue",
            **common,
            "comments": {"totalCount": item.get("comments", 0)},
        }
    listed = next((p for p in repo.pulls if p.get("number") == item["number"]), {})
    merged_at = ref.get("merged_at")
    landed = (
        _merge_commit(repo, item["number"], listed.get("merge_commit_sha")) if merged_at else None
    )
    stats = (landed or {}).get("stats") or {}
    return {
        "__typename": "PullRequest",
        **common,
        "mergedAt": merged_at,
        "additions": listed.get("additions", stats.get("additions", 0)),
        "deletions": listed.get("deletions", stats.get("deletions", 0)),
        "mergeCommit": {"oid": landed["sha"]} if landed else None,
    }


# -- GitHub's cost formula -----------------------------------------------------------------------


def query_cost(document: DocumentNode, variables: Json) -> int:
    """Points of a query: requests every connection needs at full pages, over 100, at least 1."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    total = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            total += _requests(definition.selection_set, 1, fragments, variables)
    return max(1, int(total / 100 + 0.5))


def _requests(
    selection: SelectionSetNode | None,
    multiplier: int,
    fragments: dict[str, FragmentDefinitionNode],
    variables: Json,
) -> int:
    if selection is None:
        return 0
    total = 0
    for node in selection.selections:
        if not _included(node, variables):
            continue
        if isinstance(node, FieldNode):
            size = _page_size(node, variables)
            if size is not None:
                total += multiplier
                total += _requests(node.selection_set, multiplier * size, fragments, variables)
            else:
                total += _requests(node.selection_set, multiplier, fragments, variables)
        elif isinstance(node, InlineFragmentNode):
            total += _requests(node.selection_set, multiplier, fragments, variables)
        elif isinstance(node, FragmentSpreadNode):
            spread = fragments[node.name.value]
            total += _requests(spread.selection_set, multiplier, fragments, variables)
    return total


def _page_size(node: FieldNode, variables: Json) -> int | None:
    for argument in node.arguments or ():
        if argument.name.value in ("first", "last"):
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                return int(variables.get(value.name.value) or 0)
    return None


def _included(node: Any, variables: Json) -> bool:
    for directive in getattr(node, "directives", None) or ():
        name = directive.name.value
        if name not in ("include", "skip"):
            continue
        (argument,) = directive.arguments
        value = argument.value
        flag = (
            bool(variables.get(value.name.value))
            if isinstance(value, VariableNode)
            else getattr(value, "value", False) is True
        )
        if (name == "include" and not flag) or (name == "skip" and flag):
            return False
    return True


def dump(data: Any) -> str:
    """JSON of a resolved answer (for debugging a test)."""
    return json.dumps(data, default=str, indent=1)
