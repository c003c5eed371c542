"""Counting the HTTP requests a load sends: urllib3 logs every request line at DEBUG (what an
access log keeps), so a handler on its logger sees each request, retries included."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


class RequestLog(logging.Handler):
    """(method, path, query, status) of every request urllib3 sent while attached."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.requests: list[tuple[str, str, dict[str, list[str]], int]] = []
        self._lock_requests = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        match = _LINE.search(record.getMessage())
        if match:
            url = urlsplit(match["target"])
            with self._lock_requests:
                self.requests.append((match["method"], url.path, parse_qs(url.query), int(match["status"])))

    def count(self, prefix: str = "", method: str | None = None) -> int:
        """Requests whose path starts with `prefix` (and of `method`)."""
        return sum(1 for m, path, _, _ in self.requests if path.startswith(prefix) and method in (None, m))


@contextmanager
def logged_requests() -> Iterator[RequestLog]:
    """Attach a RequestLog to urllib3's connection-pool logger for the block."""
    logger = logging.getLogger("urllib3.connectionpool")
    handler, level = RequestLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
