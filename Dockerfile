# aiinfra-digest: the bot and its daily scheduler in one process.
# Two stages: the build stage installs into a virtualenv, the runtime stage copies only that
# virtualenv, so no source tree or build tooling ends up in the image.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, in their own layer: editing the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -r requirements.txt

COPY README.md ./
COPY bot ./bot
COPY collectors ./collectors
COPY summarizer ./summarizer
RUN pip install --no-deps . \
    # The runtime needs neither pip nor setuptools (about 23 MB): the image is never pip-installed into.
    && pip uninstall -q -y pip setuptools


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

# A compact CJK font (WenQuanYi Micro Hei, about 5 MB against 230 MB for fonts-noto-cjk), so the
# chart of the day draws its Chinese labels (without one it falls back to English labels rather
# than boxes).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    # Lists and apt's package caches (over 80 MB) are not needed at run time.
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb

RUN useradd --create-home --uid 10001 digest \
    && mkdir -p /data \
    && chown digest:digest /data
COPY --from=build /opt/venv /opt/venv

USER digest
WORKDIR /data
# SQLite database and caches live in the /data volume unless DATABASE_URL points elsewhere.
ENV DATABASE_URL=sqlite+aiosqlite:////data/aiinfra-digest.db \
    CACHE_DIR=/data/cache
VOLUME ["/data"]

# Healthy while the database answers `SELECT 1` (within 5 s) and every loop of `run` in this
# container (scheduler, Telegram poller) has beaten within three of its intervals.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["aiinfra-digest", "health"]

# `run` ends cleanly on SIGTERM: in-flight deliveries finish or their claims expire.
STOPSIGNAL SIGTERM
CMD ["aiinfra-digest", "run"]
