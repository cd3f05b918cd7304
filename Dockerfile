# aiinfra-digest: the bot and its daily scheduler in one process.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY collectors ./collectors
COPY summarizer ./summarizer
RUN pip install . \
    && useradd --create-home --uid 10001 digest \
    && mkdir -p /data \
    && chown digest:digest /data

USER digest
WORKDIR /data
# SQLite database and caches live in the /data volume unless DATABASE_URL points elsewhere.
ENV DATABASE_URL=sqlite+aiosqlite:////data/aiinfra-digest.db \
    CACHE_DIR=/data/cache
VOLUME ["/data"]

CMD ["aiinfra-digest", "run"]
