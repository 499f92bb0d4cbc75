"""Public pages that are the same for every visitor (the home page: no form, no token, nobody's
data), rendered once per process and kept, per app.

A kept page is keyed by what it is made of (language, address) and by a version of the data in
it, which the database is asked for at most once per PUBLIC_PAGE_RECHECK_SECONDS (default 1 s):
so the page usually needs no database at all, and an administrator's edit shows within that
time. 0 asks every time (the tests' setting).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from flask import Flask, current_app

_EXTENSION = "qingliu.pagecache"


class PageCache:
    def __init__(self, recheck: float, keep: int = 32) -> None:
        self.recheck, self.keep = recheck, keep
        self._pages: dict[Hashable, str] = {}
        self._versions: dict[str, tuple[float, Hashable]] = {}
        self._lock = threading.Lock()

    def version(self, name: str, load: Callable[[], Hashable]) -> Hashable:
        """`load()`'s value, asked again only when the last answer is older than `recheck`."""
        now = time.monotonic()
        known = self._versions.get(name)
        if known is not None and now - known[0] < self.recheck:
            return known[1]
        value = load()
        self._versions[name] = (now, value)
        return value

    def page(self, key: Hashable, render: Callable[[], str]) -> str:
        page = self._pages.get(key)
        if page is None:
            page = render()
            with self._lock:
                if len(self._pages) >= self.keep:  # old versions, odd addresses: start again
                    self._pages.clear()
                self._pages[key] = page
        return page


def install(app: Flask) -> None:
    app.extensions[_EXTENSION] = PageCache(
        float(app.config.get("PUBLIC_PAGE_RECHECK_SECONDS", 1.0)))


def page_cache() -> PageCache:
    cache: PageCache = current_app.extensions[_EXTENSION]
    return cache
