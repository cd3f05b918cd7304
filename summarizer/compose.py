"""Activity → Digest: per-repository sections (model or structured) and the overall summary.

Sections of different repositories are written concurrently (bounded); the summary waits for
them. A repository with nothing new costs no model call; a failed collection becomes a short
Chinese error section. A section the model chain cannot write is written from the data, with
the redacted reason kept for operators (`Section.reason`) and only a short note for readers.
Model-written sections and summaries are cached, so regenerating an unchanged day is free.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import date
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from collectors.activity import DayActivity, RepoActivity
from collectors.cache import KeyValueCache
from summarizer.digest import NO_UPDATES, Digest, Section, Usage
from summarizer.guard import (
    allowed_links,
    clean_model_claims,
    clean_model_markdown,
    escape_markdown_text,
    looks_chinese,
    parse_json_object,
)
from summarizer.llm import AllModelsFailed, LLMClient
from summarizer.noise import DEFAULT_EXCLUDED_AUTHORS, bot_note, without_bots
from summarizer.prompts import (
    PROMPT_VERSION,
    SUMMARY_SCHEMA,
    repo_messages,
    retry_message,
    summary_messages,
)
from summarizer.structured import ERROR_TEXT, structured_section, structured_summary

log = logging.getLogger(__name__)

SECTION_NAMESPACE = "section"
SUMMARY_NAMESPACE = "summary"
NOT_COLLECTED = "not in the collected activity"
# The reader note when the guard removed model-written claims it could not ground.
CLAIMS_NOTE = "本期有 {count} 处模型撰写的内容引用了当天数据中没有的 PR、issue 或提交，已删去。"
# How much of an unusable summary answer is shown back to the model with the retry request.
_ECHO_CHARS = 2000


class _SummaryParts(NamedTuple):
    summary: str
    conclusion: str
    summary_by: str
    reason: str | None  # for operators
    usage: Usage
    claims_removed: int = 0


class SummaryAnswer(BaseModel):
    """The model's overall summary, as SUMMARY_SCHEMA asks for it."""

    model_config = ConfigDict(extra="ignore")

    summary: str
    conclusion: str

    @field_validator("summary", "conclusion", mode="before")
    @classmethod
    def _join_lists(cls, value: object) -> object:
        # Some models answer with a list of sentences; that is still a usable paragraph.
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return "".join(value)
        return value


def _digest_key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def _prose_problem(name: str, text: str) -> str | None:
    """Why a cleaned summary field is not a readable Chinese paragraph, or None."""
    if not text:
        return f"字段 {name} 为空"
    if "```" in text or "~~~" in text or text.lstrip().startswith(("{", "[")):
        return f"字段 {name} 应是段落文字，不能包含 JSON 或代码块"
    if not looks_chinese(text):
        return f"字段 {name} 不是中文"
    return None


def parse_summary(text: str, allowed: set[str]) -> tuple[tuple[str, str] | None, str | None]:
    """A summary answer → ((summary, conclusion) cleaned for readers, None), or (None, error).

    Tolerates code fences and prose around the JSON; the error is short, for the retry prompt.
    """
    parsed, error = _parse_summary(text, allowed)
    return (parsed[0], parsed[1]) if parsed is not None else None, error


def _parse_summary(text: str, allowed: set[str]) -> tuple[tuple[str, str, int] | None, str | None]:
    """As `parse_summary`, with how many ungrounded claims the guard removed."""
    try:
        data = parse_json_object(text)
    except ValueError:
        return None, '没有找到 JSON 对象 {"summary": ..., "conclusion": ...}'
    try:
        answer = SummaryAnswer.model_validate(data)
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
        return None, f"字段 {'、'.join(fields) or 'summary/conclusion'} 缺失或不是字符串"
    summary, removed = clean_model_claims(answer.summary, allowed)
    conclusion, removed_too = clean_model_claims(answer.conclusion, allowed)
    problem = _prose_problem("summary", summary) or _prose_problem("conclusion", conclusion)
    if problem is not None:
        return None, problem
    return (summary, conclusion, removed + removed_too), None


def _section_problem(text: str, allowed: set[str]) -> str | None:
    """Why a model's section is unusable once cleaned, or None."""
    cleaned, _removed = clean_model_claims(text, allowed)
    if not cleaned:
        return "nothing left after cleaning"
    if not looks_chinese(cleaned):
        return "not Chinese"
    if "](" not in cleaned:
        return "no link to the day's activity"
    return None


class Composer:
    """Writes digests from activity, with a model when one is configured."""

    def __init__(
        self,
        llm: LLMClient | None,
        cache: KeyValueCache | None,
        *,
        token_budget: int = 6000,
        concurrency: int = 4,
        exclude_authors: Collection[str] = DEFAULT_EXCLUDED_AUTHORS,
    ) -> None:
        self._llm = llm
        self._cache = cache
        self._exclude = tuple(exclude_authors)
        self._token_budget = token_budget
        self._concurrency = max(1, concurrency)

    async def compose(
        self,
        activity: DayActivity,
        repos: Sequence[str],
        *,
        on_section: Callable[[Section], None] | None = None,
    ) -> Digest:
        """The digest of `activity` for `repos` (in that order), with a summary of that set.

        `on_section` is called as each section is written (progress on a terminal).
        """
        limit = asyncio.Semaphore(self._concurrency)
        # Bot PRs and commits leave here, once: the sections and the summary see the same day.
        chosen = [
            without_bots(
                activity.repo(repo) or RepoActivity.failed(repo, NOT_COLLECTED), self._exclude
            )
            for repo in repos
        ]

        async def bounded(repo_activity: RepoActivity) -> Section:
            async with limit:
                section = await self._section(repo_activity, activity.day)
            if on_section is not None:
                on_section(section)
            return section

        sections = list(await asyncio.gather(*(bounded(a) for a in chosen)))
        summary, conclusion, summary_by, reason, usage, removed = await self._summary(
            sections, chosen
        )
        return Digest(
            day=activity.day,
            timezone=activity.timezone,
            sections=sections,
            summary=summary,
            conclusion=conclusion,
            summary_by=summary_by,
            notes=self._notes(sections, summary_by, removed),
            summary_reason=reason,
            summary_usage=usage,
        )

    def with_sections(self, digest: Digest, extra: Sequence[Section]) -> Digest:
        """`digest` with `extra` sections after its own; its summary stays as written (never
        fed by them), and the reader notes also speak of them."""
        notes = list(digest.notes)
        for note in self._notes(extra, "model"):
            if note not in notes:
                notes.append(note)
        return digest.model_copy(update={"sections": [*digest.sections, *extra], "notes": notes})

    # ------------------------------------------------------------ sections

    async def section(self, activity: RepoActivity, day: date) -> Section:
        """One repository's section: empty, error, cached, model-written, or structured."""
        return await self._section(without_bots(activity, self._exclude), day)

    async def _section(self, activity: RepoActivity, day: date) -> Section:
        """The section of bot-filtered `activity`, ending with the count of bot items left out."""
        section = await self._written(activity, day)
        note = bot_note(activity.bot_items)
        if not note:
            return section
        return section.model_copy(update={"markdown": f"{section.markdown}\n\n{note}"})

    async def _written(self, activity: RepoActivity, day: date) -> Section:
        digest_hash = activity.content_hash()
        if activity.error is not None:
            return Section(
                repo=activity.repo,
                markdown=ERROR_TEXT,
                written_by="error",
                reason=activity.error,
                activity_hash=digest_hash,
            )
        if activity.is_empty:
            return Section(
                repo=activity.repo,
                markdown=NO_UPDATES,
                written_by="empty",
                activity_hash=digest_hash,
            )
        if self._llm is None:
            return self._structured(activity, reason=None)
        key = self._section_key(activity, day)
        cached = await self._cached_section(key)
        if cached is not None:
            # The cache may live in a shared database: guard the text again on the way out.
            markdown, removed = clean_model_claims(cached.markdown, allowed_links(activity))
            removed += cached.claims_removed
            return cached.model_copy(update={"markdown": markdown, "claims_removed": removed})
        try:
            section = await self._model_section(self._llm, activity)
        except AllModelsFailed as exc:
            log.warning("%s: section written without a model: %s", activity.repo, exc)
            return self._structured(activity, reason=str(exc))
        except Exception as exc:  # a bug must not cost readers the section
            log.exception("%s: writing the section failed unexpectedly", activity.repo)
            return self._structured(activity, reason=f"unexpected {type(exc).__name__}")
        if self._cache is not None:
            await self._cache.put(SECTION_NAMESPACE, key, section.model_dump_json())
        return section

    def _structured(self, activity: RepoActivity, *, reason: str | None) -> Section:
        return Section(
            repo=activity.repo,
            markdown=clean_model_markdown(structured_section(activity), allowed_links(activity)),
            written_by="structured",
            reason=reason,
            activity_hash=activity.content_hash(),
        )

    async def _model_section(self, llm: LLMClient, activity: RepoActivity) -> Section:
        messages, report = repo_messages(activity, self._token_budget)
        if report.cut_anything:
            log.info("%s: prompt budget cut %d items", activity.repo, report.items_cut)
        allowed = allowed_links(activity)
        completion = await llm.complete(
            messages, validate=lambda text: _section_problem(text, allowed)
        )
        markdown, removed = clean_model_claims(completion.text, allowed)
        if removed:
            log.info(
                "%s: removed %d ungrounded claims of %s", activity.repo, removed, completion.model
            )
        return Section(
            repo=activity.repo,
            markdown=markdown,
            claims_removed=removed,
            written_by="model",
            model=completion.model,
            activity_hash=activity.content_hash(),
            usage=completion.usage,
        )

    def _chain(self) -> str:
        return ",".join(self._llm.models) if self._llm is not None else ""

    def _section_key(self, activity: RepoActivity, day: date) -> str:
        return "|".join(
            (
                activity.repo,
                day.isoformat(),
                activity.content_hash(),
                PROMPT_VERSION,
                str(self._token_budget),
                self._chain(),
            )
        )

    async def _cached_section(self, key: str) -> Section | None:
        if self._cache is None:
            return None
        raw = await self._cache.get(SECTION_NAMESPACE, key)
        if raw is None:
            return None
        try:
            return Section.model_validate_json(raw)
        except ValidationError:
            log.warning("ignoring an unreadable cached section")
            return None

    # ------------------------------------------------------------ summary

    async def _summary(
        self, sections: Sequence[Section], activities: Sequence[RepoActivity]
    ) -> _SummaryParts:
        """(summary, conclusion, summary_by, reason for operators, usage, claims removed)."""
        allowed = set().union(*(allowed_links(a) for a in activities)) if activities else set()

        def fallback(reason: str | None) -> _SummaryParts:
            summary, conclusion = structured_summary(sections, activities)
            return _SummaryParts(
                clean_model_markdown(summary, allowed),
                clean_model_markdown(conclusion, allowed),
                "structured",
                reason,
                Usage(),
            )

        newsworthy = [s for s in sections if s.written_by in ("model", "structured")]
        if self._llm is None or not newsworthy:
            return fallback(None)
        key = _digest_key(
            PROMPT_VERSION,
            self._chain(),
            json.dumps([[s.repo, s.markdown, s.written_by] for s in sections], ensure_ascii=False),
        )
        cached = await self._cached_summary(key)
        if cached is not None:
            return cached
        try:
            (summary, conclusion, removed), model, usage = await self._ask_summary(
                self._llm, summary_messages(sections, activities), allowed
            )
        except AllModelsFailed as exc:
            log.warning("the summary was written without a model: %s", exc)
            return fallback(str(exc))
        except Exception as exc:  # a bug must not cost readers the digest
            log.exception("writing the summary failed unexpectedly")
            return fallback(f"unexpected {type(exc).__name__}")
        if self._cache is not None:
            value: dict[str, Any] = {"summary": summary, "conclusion": conclusion, "model": model}
            value["usage"] = usage.model_dump_json()
            value["claims_removed"] = removed
            await self._cache.put(SUMMARY_NAMESPACE, key, json.dumps(value, ensure_ascii=False))
        return _SummaryParts(summary, conclusion, model, None, usage, removed)

    async def _ask_summary(
        self, llm: LLMClient, messages: list[dict[str, str]], allowed: set[str]
    ) -> tuple[tuple[str, str, int], str, Usage]:
        """Ask once; on an unusable JSON answer, ask again once with the error."""
        first = await llm.complete(messages, json_schema=SUMMARY_SCHEMA)
        parsed, error = _parse_summary(first.text, allowed)
        if parsed is not None:
            return parsed, first.model, first.usage
        log.info("the summary answer of %s was unusable (%s); asking again", first.model, error)
        retry = [
            *messages,
            {"role": "assistant", "content": first.text[:_ECHO_CHARS]},
            retry_message(error or "格式不对"),
        ]
        second = await llm.complete(
            retry,
            json_schema=SUMMARY_SCHEMA,
            validate=lambda text: parse_summary(text, allowed)[1],
        )
        parsed, error = _parse_summary(second.text, allowed)
        if parsed is None:  # validate() accepted it, so this cannot happen
            raise AllModelsFailed([f"{second.model}: unusable summary ({error})"])
        return parsed, second.model, first.usage + second.usage

    async def _cached_summary(self, key: str) -> _SummaryParts | None:
        if self._cache is None:
            return None
        raw = await self._cache.get(SUMMARY_NAMESPACE, key)
        if raw is None:
            return None
        try:
            value: dict[str, Any] = json.loads(raw)
            usage = Usage.model_validate_json(value["usage"])
            return _SummaryParts(
                str(value["summary"]),
                str(value["conclusion"]),
                str(value["model"]),
                None,
                usage,
                int(value.get("claims_removed", 0)),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable cached summary")
            return None

    # ------------------------------------------------------------ notes

    def _notes(
        self, sections: Iterable[Section], summary_by: str, summary_removed: int = 0
    ) -> list[str]:
        """Short reader notes: which parts were written without a model, and how many
        ungrounded claims the guard removed; never raw errors."""
        sections = list(sections)
        notes = self._writer_notes(sections, summary_by)
        removed = summary_removed + sum(s.claims_removed for s in sections)
        if removed:
            notes.append(CLAIMS_NOTE.format(count=removed))
        return notes

    def _writer_notes(self, sections: list[Section], summary_by: str) -> list[str]:
        if self._llm is None:
            if any(s.written_by == "structured" for s in sections):
                return ["本期简报未使用模型撰写：各仓库小节与摘要均由 GitHub 数据直接整理。"]
            return []
        notes: list[str] = []
        structured = [s.repo for s in sections if s.written_by == "structured"]
        if structured:
            notes.append(
                "以下仓库的小节未经模型撰写，由 GitHub 数据直接整理："
                + "、".join(escape_markdown_text(repo) for repo in structured)
                + "。"
            )
        newsworthy = any(s.written_by in ("model", "structured") for s in sections)
        if summary_by == "structured" and newsworthy:
            notes.append("本期摘要与总结未经模型撰写，由数据直接整理。")
        return notes
