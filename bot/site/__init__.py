"""The web archive: a static site (index, day pages, repository-day pages) and an Atom feed.

`build` writes the pages and the feed from the store's archive, `markdown` turns the readers'
Markdown into safe HTML, `serve` previews the result, `templates` holds the Jinja2 templates.
"""

from bot.site.build import (
    FEED_DAYS,
    MANIFEST,
    SITE_TITLE,
    SiteStats,
    atom_feed,
    build_site,
    detail_groups,
)
from bot.site.markdown import is_safe_url, markdown_renderer, render_markdown_html, repo_slug
from bot.site.serve import make_server, serve, serve_site

__all__ = [
    "FEED_DAYS",
    "MANIFEST",
    "SITE_TITLE",
    "SiteStats",
    "atom_feed",
    "build_site",
    "detail_groups",
    "is_safe_url",
    "make_server",
    "markdown_renderer",
    "render_markdown_html",
    "repo_slug",
    "serve",
    "serve_site",
]
