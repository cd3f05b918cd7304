"""What a changed file is worth to a reader, and the parts of its patch that carry the news.

One ranking for everyone: the collector spends a commit's patch budget in this order, the prompt
shows patches in this order, and the no-model digest reads the same changelog lines. Release
notes come first (they are not files); then changelogs, then README and docs, then source, then
tests/examples/benchmarks; generated, lock, vendored and binary files are worth their name only.
"""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import PurePosixPath


class Worth(IntEnum):
    """A changed file's rank: lower is shown first."""

    CHANGELOG = 0
    DOCS = 1
    SOURCE = 2
    SUPPORT = 3
    NAME_ONLY = 4


_CHANGELOG = re.compile(r"^(change[-_ ]?log|changes|news|release[-_ ]?notes?|history)(\.|$)", re.I)
_README = re.compile(r"^readme(\.|$)", re.I)
_DOC_EXT = {".md", ".rst", ".adoc", ".txt"}
_DOC_DIRS = {"doc", "docs", "documentation"}
_SUPPORT_DIRS = {
    "test",
    "tests",
    "testing",
    "example",
    "examples",
    "benchmark",
    "benchmarks",
    "bench",
}
_VENDORED_DIRS = {
    "third_party",
    "thirdparty",
    "3rdparty",
    "vendor",
    "vendored",
    "external",
    "extern",
}
_LOCK_NAMES = {
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "cargo.lock",
    "pipfile.lock",
    "go.sum",
    "composer.lock",
    "gemfile.lock",
}
_BINARY_EXT = {
    ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".pdf", ".so", ".a", ".o", ".bin", ".pt",
    ".pth", ".safetensors", ".onnx", ".whl", ".zip", ".gz", ".tar", ".tgz", ".xz", ".npy", ".npz",
    ".pkl", ".pyc", ".cubin", ".fatbin", ".ttf", ".woff", ".woff2", ".mp4", ".webp",
}  # fmt: skip
_GENERATED = re.compile(r"(_pb2(_grpc)?\.pyi?|\.pb\.(h|cc|go)|\.min\.(js|css)|\.generated\.\w+)$")


def worth(filename: str) -> Worth:
    """The rank of a changed file by what its diff tells a reader."""
    path = PurePosixPath(filename)
    name = path.name
    lowered = {part.lower() for part in path.parts[:-1]}
    suffix = path.suffix.lower()
    if (
        name.lower() in _LOCK_NAMES
        or suffix in _BINARY_EXT
        or _GENERATED.search(name)
        or lowered & _VENDORED_DIRS
    ):
        return Worth.NAME_ONLY
    if _CHANGELOG.match(name):
        return Worth.CHANGELOG
    if _README.match(name) or (suffix in _DOC_EXT and not lowered & _SUPPORT_DIRS):
        return Worth.DOCS
    if lowered & _DOC_DIRS:
        return Worth.DOCS
    if lowered & _SUPPORT_DIRS or name.startswith(("test_", "bench_")):
        return Worth.SUPPORT
    return Worth.SOURCE


def is_news(filename: str) -> bool:
    """True for a changelog or a README: its added lines are the day's news, shown first."""
    name = PurePosixPath(filename).name
    return bool(_CHANGELOG.match(name) or _README.match(name))


def value_order(filename: str, changed_lines: int) -> tuple[int, int, int]:
    """Sort key: rank, then a top-level file before a nested one, then the biggest change."""
    return (worth(filename), filename.count("/") if is_news(filename) else 0, -changed_lines)


def added_lines(patch: str | None) -> list[str]:
    """The non-blank lines a unified-diff patch adds, without the leading `+`."""
    lines = []
    for line in (patch or "").splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            text = line[1:].rstrip()
            if text.strip():
                lines.append(text)
    return lines


# A licence notice is a run of comment lines containing one of these.
_LICENCE_WORDS = re.compile(
    r"spdx-|copyright|licensed under|license, version|redistribution and use|"
    r"permission is hereby granted|all rights reserved|without warranties|warranty",
    re.IGNORECASE,
)
_COMMENT = re.compile(r"^\s*(#|//|/\*|\*|\*/|--|;;)")


def strip_licence(patch: str) -> str:
    """`patch` without licence/copyright/SPDX comment blocks (diff prefixes are kept)."""
    lines = patch.splitlines()
    kept: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if not any(_LICENCE_WORDS.search(line) for line in run):
            kept.extend(run)
        run.clear()

    for line in lines:
        body = line[1:] if line[:1] in ("+", "-", " ") else line
        if not line.startswith("@@") and _COMMENT.match(body):
            run.append(line)
            continue
        flush()
        kept.append(line)
    flush()
    return "\n".join(kept)


_OUTLINED = "[new file, "
_DOCSTRING = re.compile(r'^\s*[rRuU]?("""|\'\'\')')
_SIGNATURE = re.compile(
    r"^(?:async\s+def|def|class|struct|union|enum|template\s*<|namespace|typedef|using)\b"
    r"|^ {4}(?:async\s+def|def)\s"
    r"|__global__|__device__\s+\w[\w:<>,\s*&]*\(|^\s*@(?:cute\.kernel|cute\.jit|triton\.jit)"
)


def outline(patch: str, limit: int) -> str:
    """A new file's module docstring and top-level signatures, within `limit` characters."""
    code = [line[1:] for line in strip_licence(patch).splitlines() if line.startswith("+")]
    if code and code[0].startswith(_OUTLINED):  # already an outline (made by the collector)
        text = "\n".join(code)
        return text if len(text) <= limit else text[:limit].rstrip() + "\n…"
    picked: list[str] = []
    start = next((i for i, line in enumerate(code) if line.strip()), len(code))
    if start < len(code) and _DOCSTRING.match(code[start]):
        quote = _DOCSTRING.match(code[start])[1]  # type: ignore[index]
        end = start
        rest = code[start].split(quote, 1)[1]
        if quote not in rest:
            end = next((i for i in range(start + 1, len(code)) if quote in code[i]), start)
        picked.extend(code[start : end + 1])
    signatures = [line.rstrip() for line in code if _SIGNATURE.search(line)]
    total = len(code)
    head = f"{_OUTLINED}{total} lines: docstring and signatures only]"
    text = "\n".join([head, *picked, *signatures])
    return text if len(text) <= limit else text[:limit].rstrip() + "\n…"
