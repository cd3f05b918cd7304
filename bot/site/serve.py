"""`aiinfra-digest serve`: a local preview of the built site (read-only, no directory listing)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class _Handler(http.server.SimpleHTTPRequestHandler):
    # Say the charset: without it some browsers guess, and Chinese turns into mojibake.
    extensions_map = {  # noqa: RUF012 (the base class declares it a plain attribute)
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".html": "text/html; charset=utf-8",
        ".xml": "application/atom+xml; charset=utf-8",
        ".css": "text/css; charset=utf-8",
    }

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the CLI's logging says where the site is served."""


def make_server(
    out_dir: Path, host: str = "127.0.0.1", port: int = 8000
) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the built site (port 0 picks a free port; see `server_address`)."""
    handler = functools.partial(_Handler, directory=str(out_dir))
    return http.server.ThreadingHTTPServer((host, port), handler)


async def serve_site(
    out_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the built site until cancelled (for `aiinfra-digest serve` under asyncio.run).

    The server runs in a thread; cancelling (Ctrl-C) shuts it down. `on_ready` gets the URL.
    """
    server = make_server(out_dir, host, port)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="site-server", daemon=True
    )
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host!s}:{bound_port}/"
    log.info("serving %s at %s", out_dir, url)
    if on_ready is not None:
        on_ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        server.shutdown()  # returns within the serve_forever poll interval
        server.server_close()
        thread.join()


def serve(out_dir: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the built site until interrupted (blocking; outside an event loop)."""
    with make_server(out_dir, host, port) as server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
