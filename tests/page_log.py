"""When a test fails, what the browser and the Gradio server did during it: the page's API requests and console
errors, and each event the queue received, started and finished, with times. A test that times out waiting for the
page then says whether the event left the page, reached the server, or never finished.

A diagnostic only: it changes nothing the app does, and it records only while a test runs.
"""

from __future__ import annotations

import functools
import time
import weakref

import pytest

_LOG: list[str] = []
_T0 = [time.monotonic()]
_PATCHED = [False]
_PAGES: list = []  # the pages watched during the current test
_QUEUES: list = []  # weak references to the Gradio queues that received events during the current test


def _say(line: str) -> None:
    if len(_LOG) < 2000:
        _LOG.append(f"{time.monotonic() - _T0[0]:7.2f}s {line}")


def _watch_page(page) -> None:
    _PAGES.append(page)
    def request(req):
        if "/gradio_api/" in req.url and "/file=" not in req.url:
            body = (req.post_data or "")[:120] if req.method == "POST" else ""
            _say(f"page → {req.method} {req.url.split('/gradio_api/')[-1][:60]} {body}")

    def failed(req):
        _say(f"page ✗ {req.url.split('/gradio_api/')[-1][:60]} {req.failure}")

    page.on("request", request)
    page.on("requestfailed", failed)
    page.on("console", lambda msg: msg.type in ("error", "warning") and _say(f"console {msg.type}: {msg.text[:200]}"))
    page.on("pageerror", lambda exc: _say(f"page error: {str(exc)[:200]}"))


def _patch() -> None:
    """Browsers, contexts and pages made by any test get the watchers; the Gradio queue reports its events."""
    if _PATCHED[0]:
        return
    _PATCHED[0] = True
    try:
        from playwright.sync_api import Browser
    except ImportError:
        Browser = None
    if Browser is not None:
        def pages(make):
            @functools.wraps(make)
            def wrapped(self, *args, **kwargs):
                made = make(self, *args, **kwargs)
                _watch_page(made)
                return made
            return wrapped

        def contexts(make):
            @functools.wraps(make)
            def wrapped(self, *args, **kwargs):
                made = make(self, *args, **kwargs)
                made.on("page", _watch_page)
                return made
            return wrapped

        Browser.new_page = pages(Browser.new_page)
        Browser.new_context = contexts(Browser.new_context)
    try:
        from gradio import queueing
    except ImportError:
        return
    push, process = queueing.Queue.push, queueing.Queue.process_events

    async def pushed(self, body, request, username):
        name = _name(self, body.fn_index)
        _say(f"server ← event {name} session {str(body.session_hash)[:6]}")
        return await push(self, body, request, username)

    async def processed(self, events, batch, begin_time, fn):
        _say(f"server ▶ {fn.name} ({len(events)} event(s), waited {time.time() - begin_time:.1f}s)")
        try:
            return await process(self, events, batch, begin_time, fn)
        finally:
            _say(f"server ■ {fn.name}")

    queueing.Queue.push, queueing.Queue.process_events = pushed, processed
    start, close, loop = queueing.Queue.start, queueing.Queue.close, queueing.Queue.start_processing

    def started(self):
        _QUEUES.append(weakref.ref(self))
        _say(f"server queue {id(self):x} started")
        return start(self)

    def closed(self):
        _say(f"server queue {id(self):x} closed")
        return close(self)

    async def looping(self):
        try:
            return await loop(self)
        except BaseException as exc:  # the queue's loop ended by an error stops the queue: Gradio then answers 503
            _say(f"server queue {id(self):x} loop ended: {type(exc).__name__}: {str(exc)[:120]}")
            raise

    queueing.Queue.start, queueing.Queue.close, queueing.Queue.start_processing = started, closed, looping


def _name(queue, fn_index) -> str:
    try:
        return queue.blocks.fns[fn_index].name
    except Exception:
        return str(fn_index)


@pytest.fixture(autouse=True)
def page_log():
    _patch()
    _LOG.clear()
    _PAGES.clear()
    _QUEUES.clear()
    _T0[0] = time.monotonic()
    yield _LOG


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and _LOG:
        report.sections.append(("page and queue log", "\n".join(_LOG[-300:] + _shown())))


def _shown() -> list[str]:
    """What each page of the test shows now: its chat, its toasts, its status lines."""
    lines = [f"server queue {id(q):x}: stopped={q.stopped} max_size={q.max_size} waiting={len(q)}"
             for q in (ref() for ref in _QUEUES) if q is not None]
    for number, page in enumerate(_PAGES):
        try:
            if page.is_closed():
                continue
            seen = {name: page.locator(selector).all_inner_texts() for name, selector in (
                ("user", '[data-testid="user"]'), ("bot", '[data-testid="bot"]'), ("toasts", '[data-testid="toast-body"]'),
                ("status", "#model-status, #memory-status"))}
            lines.append(f"page {number} shows: " + "; ".join(f"{k} {[t.strip()[:120] for t in v]}" for k, v in seen.items()))
        except Exception as exc:  # a page whose browser is gone says so
            lines.append(f"page {number}: {type(exc).__name__}")
    return lines
