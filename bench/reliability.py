"""Reliability and security figures for the 2.6 Gradio app running the tiny model on loopback.

    python bench/reliability.py            # prints the table (about two minutes on 2 CPU cores)

What it measures: bad inputs through the Python API and the running app (each must get a clear message or a
normal answer, the next request must succeed, nothing may be written outside temp folders); 8 concurrent
sessions (answers must not cross sessions, the queue must serve them in order); 200 turns in one session and
200 sessions in a row (resident memory, temp files); how fast Stop frees the model for the next user.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bad_inputs import CASES, python_request  # noqa: E402
from minicpmv_app.ports import free_port  # noqa: E402  (the other benches import it from here too)

WARNING = "⚠️"


@contextmanager
def serve(chat, build_demo=None, **launch):
    """The 2.6 demo on a free loopback port; yields (url, client factory)."""
    from gradio_client import Client

    if build_demo is None:
        from minicpmv_app.ui.gradio_26 import build_demo
    demo = build_demo(chat)
    port = free_port()
    demo.queue(default_concurrency_limit=chat.backend.concurrency)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **{"max_file_size": "5mb", **launch, **getattr(demo, "launch_kwargs", {})})
    factory = lambda **kw: Client(f"http://127.0.0.1:{port}/", verbose=False, **kw)  # noqa: E731
    factory.queue_log = record_queue(demo)
    try:
        yield f"http://127.0.0.1:{port}/", factory
    finally:
        demo.close()


def record_queue(demo) -> dict:
    """The server's own view of its queue: (api name, session) as each event arrives and as each starts."""
    log: dict[str, list] = {"arrived": [], "started": []}
    queue = demo._queue
    push, process = queue.push, queue.process_events

    async def recorded_push(body, request, username):
        log["arrived"].append((demo.fns[body.fn_index].api_name, body.session_hash))
        return await push(body, request, username)

    async def recorded_process(events, batch, begin_time, fn):
        log["started"].append((fn.api_name, events[0].session_hash))
        return await process(events, batch, begin_time, fn)

    queue.push, queue.process_events = recorded_push, recorded_process
    return log


def force_long_answers(chat):
    """Make the model use its whole token budget (a trained tiny model stops after one word): for Stop tests."""
    model = chat.backend.model
    original = model.generate

    def generate(*args, **kwargs):
        kwargs["min_new_tokens"] = kwargs.get("max_new_tokens", 1)
        return original(*args, **kwargs)

    model.generate = generate
    return lambda: setattr(model, "generate", original)


def settings(max_new_tokens=8):
    return ("Sampling", 0.7, 0.8, 100, 1.05, 3, max_new_tokens, "")


def text_of(bubble) -> str:
    content = bubble["content"]
    parts = content if isinstance(content, list) else [content]
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in parts)


def answer_text(display) -> str:
    """The answer in a chat display: the last assistant bubble with text that is not a titled block (Thinking, the
    raw answer) nor a picture (boxes drawn)."""
    for bubble in reversed(display):
        if bubble.get("role") == "assistant" and not (bubble.get("metadata") or {}).get("title"):
            text = text_of(bubble)
            if text:
                return text
    return ""


def ask(client, text, files=(), max_new_tokens=8):
    """One turn through the app's API. Returns (display, the refusal's message or None).

    A refused turn raises in the API with the message the page shows (the app's ``gr.Error``).
    """
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    payload = []
    for path in files:
        payload.append(handle_file(path) if Path(path).exists() else {"path": path, "meta": {"_type": "gradio.FileData"}})
    try:
        client.predict({"text": text, "files": payload}, api_name="/add_turn")
    except AppError as exc:
        return [], str(exc)
    return client.submit(*settings(max_new_tokens), api_name="/respond").result(), None


def tree_snapshot(folder: Path) -> set:
    return {p for p in folder.rglob("*") if ".git" not in p.parts and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts}


# -- bad inputs --------------------------------------------------------------------------------------
def bad_inputs_api(chat, folder: Path) -> list[dict]:
    from minicpmv_app.errors import MiniCPMVError

    rows = []
    for case in CASES:
        text, files = case.make(folder)
        try:
            chat.chat(python_request(text, files), max_new_tokens=4)
            outcome, message = "answered", ""
        except MiniCPMVError as exc:
            outcome, message = "refused", str(exc)
        except Exception as exc:  # an untyped exception is a bug: it is counted as not clean
            outcome, message = "crashed", f"{type(exc).__name__}: {exc}"
        next_ok = isinstance(chat.chat({"question": [{"role": "user", "content": "still there?"}]}, max_new_tokens=2), str)
        rows.append(dict(case=case.name, expect=case.expect, outcome=outcome, message=message[:90],
                         clean=outcome == case.expect and next_ok))
    return rows


def bad_inputs_app(client_factory, folder: Path) -> list[dict]:
    rows = []
    for case in CASES:
        text, files = case.make(folder)
        client = client_factory()
        try:
            display, refused = ask(client, text, files, max_new_tokens=4)
            last = text_of(display[-1]) if display else ""
            if refused:
                outcome, message = "refused", refused
            elif last.startswith(WARNING):
                outcome, message = "refused", last
            else:
                outcome, message = "answered", ""
        except Exception as exc:  # Gradio itself refused the request (e.g. a file outside its upload folder)
            outcome, message = "refused", f"(rejected by the server: {type(exc).__name__})"
        follow_up, _ = ask(client_factory(), "still there?")
        next_ok = bool(follow_up) and not text_of(follow_up[-1]).startswith(WARNING)
        rows.append(dict(case=case.name, expect=case.expect, outcome=outcome, message=message[:90],
                         clean=outcome == case.expect and next_ok))
    return rows


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def bad_inputs_page(url: str, folder: Path, *, lang: str = "en") -> list[dict]:
    """The same cases typed and attached in Chromium: what the page shows (a message in a toast or in the chat,
    or an answer), and whether the next question then works. A path like ``../`` cannot be typed into a browser's
    file picker: that case is not applicable there."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        # One page for every case, as one person trying them in turn: each bad input must leave that page
        # working, and Clear between cases keeps one case's pictures out of the next one's history.
        page = browser.new_page(locale="zh-CN" if lang == "zh" else "en-US")
        page.goto(url)
        box = page.locator("#chat-input textarea")
        box.wait_for()
        bots = page.locator('[data-testid="bot"]')
        for case in CASES:
            text, files = case.make(folder)
            if any(not Path(f).exists() for f in files):
                rows.append(dict(case=case.name, expect=case.expect, outcome="n/a", message="", clean=True))
                continue
            outcome, message = _page_turn(page, box, text, files)
            while page.get_by_label("Remove file").count():
                page.get_by_label("Remove file").first.click()
            next_outcome, _ = _page_turn(page, box, "still there?", [])
            rows.append(dict(case=case.name, expect=case.expect, outcome=outcome, message=message[:90],
                             clean=outcome == case.expect and next_outcome == "answered"))
            page.locator("#clear-button").click()
            # Close this case's toasts too: one that timed out during the next case would hide that case's own.
            deadline = time.time() + 30
            for close in page.locator('[data-testid="toast-close"]').all():
                close.dispatch_event("click")  # a toast already leaving is not "stable" enough for a real click
            while (bots.count() or page.locator('[data-testid="toast-body"]').count()) and time.time() < deadline:
                time.sleep(0.1)
        browser.close()
    return rows


def _page_turn(page, box, text: str, files: list) -> tuple[str, str]:
    """Send one turn in the page; returns ("refused" | "answered" | "nothing shown", what the page said)."""
    bots = page.locator('[data-testid="bot"]')
    toasts = page.locator('[data-testid="toast-body"].error')  # a refusal (an info toast is not one)
    bots_before, toasts_before = bots.count(), toasts.count()
    if files:
        page.locator("#chat-input input[type=file]").set_input_files([str(f) for f in files])
        deadline = time.time() + 30
        while page.get_by_label("Remove file").count() < len(files) and toasts.count() == toasts_before:
            if time.time() > deadline:
                break
            time.sleep(0.1)
    box.fill(text)
    box.press("Enter")
    deadline = time.time() + 120
    while time.time() < deadline:
        if toasts.count() > toasts_before:
            return "refused", toasts.last.inner_text().strip().split("\n")[-1]  # the toast's message line
        if bots.count() > bots_before and box.is_editable():
            shown = bots.last.inner_text().strip()
            if shown:
                return ("refused" if shown.startswith(WARNING) else "answered"), shown
        time.sleep(0.1)
    return "nothing shown", ""


# -- many users --------------------------------------------------------------------------------------
def concurrent_sessions(client_factory, images: list, question: str, max_new_tokens=24) -> dict:
    """Every session uploads its own image, then all ask at once.

    Returns each session's answer and display, and the order in which the server received the answer requests
    and started them (its queue log, by session). Use with ``force_long_answers`` so each answer takes long
    enough for all eight to wait in the queue.
    """
    from gradio_client import handle_file

    clients = [client_factory() for _ in images]
    for client, image in zip(clients, images):
        client.predict({"text": question, "files": [handle_file(image)]}, api_name="/add_turn")
    log = client_factory.queue_log
    arrived_before, started_before = len(log["arrived"]), len(log["started"])
    jobs = [client.submit(*settings(max_new_tokens), api_name="/respond") for client in clients]
    displays = [job.result(timeout=300) for job in jobs]
    sessions = {client.session_hash for client in clients}

    def answers_of(entries):
        return [session for name, session in entries if name == "respond" and session in sessions]

    return dict(answers=[answer_text(d) for d in displays], displays=displays,
                arrival_order=answers_of(log["arrived"][arrived_before:]),
                start_order=answers_of(log["started"][started_before:]))


# -- long sessions -----------------------------------------------------------------------------------
def rss_mb(pid=None) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def long_session(client_factory, turns: int, pid=None) -> dict:
    client = client_factory()
    start = rss_mb(pid)
    answered = 0
    for turn in range(turns):
        display, _ = ask(client, f"Turn {turn}: hi", max_new_tokens=2)
        answered += not text_of(display[-1]).startswith(WARNING)
        if turn % 20 == 19:  # keep the history under the context limit, as a user pressing Clear would
            client.predict(api_name="/clear")
    return dict(turns=turns, answered=answered, rss_start=start, rss_end=rss_mb(pid))


def bad_picture_then_export(client_factory, folder: Path) -> dict:
    """A 0-byte picture in a chat between good turns, then every export: what each export holds and names."""
    client = client_factory()
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    first, _ = ask(client, "What colour is the shape?", [str(folder / "user_0.png")])
    failed, _ = ask(client, "What colour is the shape?", [str(empty)])
    made = {}
    for kind in ("json", "html", "markdown"):
        path = client.predict(api_name=f"/export_{kind}")
        made[kind] = Path(path).read_text(encoding="utf-8")
    record = json.loads(made["json"])
    return dict(failed_message=answer_text(failed)[:60], exports=sum(bool(v) for v in made.values()),
                left_out=[n for t in record["turns"] for n in t["left_out"]],
                answered=[t["answer"] for t in record["turns"] if t["state"] == "answered"])


def zero_page_pdf(client_factory, folder: Path) -> str:
    from pypdf import PdfWriter

    path = folder / "zero-pages.pdf"
    PdfWriter().write(str(path))
    _, message = ask(client_factory(), "What is on the page?", [str(path)])
    return message or "(answered)"


def photo_turns_in_memory(count: int, folder: Path) -> dict:
    """How many photo-size turns (4032x3024 JPEG) the browser memory holds, as the app stores them."""
    from minicpmv_app import memory, transcript
    from minicpmv_app.session import ChatSession, State, Turn
    from minicpmv_app.tiny_task import draw

    from PIL import ImageDraw

    # Every turn its own photo (the memory keeps shrunk copies by content, so one photo repeated would flatter it).
    bases = [draw(colour, shape, size=(4032, 3024)) for colour in ("green", "red", "blue", "yellow")
             for shape in ("circle", "square", "triangle")]
    os.environ["MINICPMV_HOME"] = str(folder / "home")  # the vault in the temp folder, not the user's
    store, kept, chat_id = memory.empty(), 0, None
    session = ChatSession()
    for index in range(count):
        photo, picture = folder / f"photo-{index}.jpg", bases[index % len(bases)].copy()
        ImageDraw.Draw(picture).rectangle((0, 0, 40, 40), fill=(index % 256, index // 256, 0))
        picture.save(photo, quality=90)
        session.turns.append(Turn(f"photo {index}", [str(photo)], State.ANSWERED, answer="green"))
        data = transcript.export_json(session, {}, picture_side=memory.STORE_PICTURE_SIDE)
        try:
            store, chat_id = memory.save(store, chat_id, "photos", data)
        except memory.MemoryFull:
            break
        kept = index + 1
    reopened = memory.find(store, chat_id)
    return dict(asked=count, kept=kept, limit_mb=memory.MAX_STORE_BYTES / 1e6,
                reopened=len(json.loads(reopened["data"])["turns"]) if reopened else 0)


def mixed_turns(client_factory, turns: int, folder: Path, pid) -> dict:
    """``turns`` turns of every kind (small and photo-size pictures, a 2-page A4 PDF, bad files, a refused PDF,
    exports, an import), RSS sampled for the UI process and for its model process: growth after warm-up (the first
    tenth) is what a leak would show."""
    import psutil
    from gradio_client import handle_file

    from minicpmv_app.tiny_task import draw

    empty = folder / "empty.png"
    empty.write_bytes(b"")
    garbage = folder / "garbage.pdf"
    garbage.write_bytes(b"not a pdf" * 50)
    photo = folder / "photo.jpg"
    draw("blue", "circle", size=(4032, 3024)).save(photo, quality=90)
    document = folder / "two-pages.pdf"
    pages = [draw(c, s, size=(1240, 1754)) for c, s in (("red", "square"), ("green", "triangle"))]
    pages[0].save(document, save_all=True, append_images=pages[1:], resolution=150)

    def both() -> tuple[float, float]:
        children = psutil.Process(pid).children(recursive=True)
        return rss_mb(pid), sum(child.memory_info().rss for child in children) / 2**20

    client, samples, warm = client_factory(), [], None
    for turn in range(turns):
        kind = turn % 10
        if kind in (0, 1, 2):
            ask(client, "What colour is the shape?", [str(folder / f"user_{turn % 4}.png")])
        elif kind == 3:
            ask(client, "What colour is the shape?", [str(photo)])
        elif kind == 4:
            ask(client, "What colour is the second page?", [str(document)])
        elif kind == 5:
            ask(client, "What colour is the shape?", [str(empty)])
        elif kind == 6:
            ask(client, "What is on the page?", [str(garbage)])
        elif kind == 7:
            client.predict(api_name="/export_html")
        elif kind == 8:
            exported = client.predict(api_name="/export_json")
            from minicpmv_app import memory

            client.predict(handle_file(exported), memory.blank(), api_name="/import_json")
        else:
            client.predict(api_name="/clear")
        if turn + 1 == max(1, turns // 10):
            warm = both()
        if (turn + 1) % max(1, turns // 5) == 0:
            samples.append(tuple(round(x) for x in both()))
    end = both()
    return dict(turns=turns, rss_warm=warm, rss_end=end, samples=samples,
                growth=tuple((e - w) / w for e, w in zip(end, warm)))


def many_sessions(client_factory, count: int, image: str, pid=None) -> dict:
    """``count`` new sessions in a row, each with a picture; RSS sampled every quarter."""
    start = rss_mb(pid)
    answered, fresh, samples = 0, 0, []
    client = client_factory()
    for index in range(count):
        # A new session hash is a new session to the server (its own state, uploads and heartbeat), without
        # fetching the app's config again as a new Client would (about a quarter of this loop's time).
        client.reset_session()
        display, _ = ask(client, "What colour?", [image], max_new_tokens=2)
        answered += not text_of(display[-1]).startswith(WARNING)
        fresh += sum(m["role"] == "assistant" for m in display) == 1  # no earlier session's turn in it
        if (index + 1) % max(1, count // 4) == 0:
            samples.append(round(rss_mb(pid)))
    return dict(sessions=count, answered=answered, fresh=fresh, rss_start=start, rss_end=rss_mb(pid), rss_samples=samples)


@contextmanager
def serve_process(*args, model: str = "tiny"):
    """``web_demo_2.6.py --model tiny`` as its own process: its memory is measured without the clients'."""
    import subprocess

    from gradio_client import Client

    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "web_demo_2.6.py"), "--model", model, "--port", str(port), *args],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 300
    while True:
        try:
            Client(url, verbose=False)
            break
        except Exception:
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError("the demo did not start")
            time.sleep(0.5)
    try:
        yield url, (lambda **kw: Client(url, verbose=False, **kw)), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- stop under load -----------------------------------------------------------------------------------
def stop_latency(client_factory) -> dict:
    """User A streams a long answer (4000 tokens asked), B waits in the queue; A presses Stop.

    Returns the seconds until B's answer starts, A's final answer, and whether B was answered.
    """
    a, b = client_factory(), client_factory()
    a.predict({"text": "Talk for a long time.", "files": []}, api_name="/add_turn")
    job_a = a.submit(*settings(4000), api_name="/respond")
    while len(job_a.outputs()) < 2:
        time.sleep(0.02)
    b.predict({"text": "My turn?", "files": []}, api_name="/add_turn")
    job_b = b.submit(*settings(4000), api_name="/respond")
    time.sleep(0.3)
    stopped_at = time.time()
    a.predict(api_name="/stop")
    while not job_b.outputs():
        time.sleep(0.01)
    latency = time.time() - stopped_at
    b.predict(api_name="/stop")
    final_a = job_a.result(timeout=60)
    final_b = job_b.result(timeout=60)
    return dict(latency=latency, answer_a=answer_text(final_a), b_answered=final_b[-1]["role"] == "assistant")


def gradio_cache_files() -> int:
    cache = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
    return sum(1 for p in cache.rglob("*") if p.is_file()) if cache.exists() else 0


def main() -> None:
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.tiny_task import COLOURS, draw

    chat = MiniCPMVChat("tiny", device="cpu")
    before_tree = tree_snapshot(ROOT)
    cache_before = gradio_cache_files()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        api_rows = bad_inputs_api(chat, folder)
        with serve(chat) as (url, client):
            app_rows = bad_inputs_app(client, folder)
            for index, colour in enumerate(list(COLOURS)[:4]):
                draw(colour, "square").save(folder / f"user_{index}.png")
            exports = bad_picture_then_export(client, folder)
            zero_pages = zero_page_pdf(client, folder)
            page_rows = bad_inputs_page(url, folder)
            colours = list(COLOURS)
            images = []
            for index, colour in enumerate(colours):
                path = folder / f"user_{index}.png"
                draw(colour, "square").save(path)
                images.append(str(path))
            restore = force_long_answers(chat)
            crowd = concurrent_sessions(client, images, "What colour is the shape?")
            restore()
            # Forced long answers run on past the colour word: compare how each starts.
            cross_talk = sum(not answer.startswith(colour) for answer, colour in zip(crowd["answers"], colours))
            fair = crowd["start_order"] == crowd["arrival_order"]
            restore = force_long_answers(chat)
            latency = stop_latency(client)["latency"]
            restore()
        cache_after = gradio_cache_files()
        # Memory of the app alone, in its own process; --max-sessions 50 shows where it levels off.
        with serve_process("--max-sessions", "50") as (_, client, pid):
            long_run = long_session(client, 200, pid)
            sessions = many_sessions(client, 200, images[0], pid)
            mixed = mixed_turns(client, 500, folder, pid)
        photos = photo_turns_in_memory(200, folder)
    written_outside = sorted(str(p.relative_to(ROOT)) for p in tree_snapshot(ROOT) - before_tree)

    import gradio
    import torch
    import transformers

    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores; python {platform.python_version()}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}, gradio {gradio.__version__}")
    print()
    print(f"{'bad input':<30} {'expected':<9} {'Python API':<10} {'app API':<9} {'page shows':<11} clean")
    for api, app, page in zip(api_rows, app_rows, page_rows):
        print(f"{api['case']:<30} {api['expect']:<9} {api['outcome']:<10} {app['outcome']:<9} {page['outcome']:<11} "
              f"{'yes' if api['clean'] and app['clean'] and page['clean'] else 'NO'}")
    clean = sum(a["clean"] for a in api_rows) + sum(a["clean"] for a in app_rows)
    page_shown = sum(p["clean"] and p["outcome"] != "n/a" for p in page_rows)
    print()
    print(f"{'figure':<56} value")
    rows = [
        ("inputs tried (API + app)", len(api_rows) + len(app_rows)),
        ("handled cleanly (expected outcome, next request ok)", clean),
        ("the same cases in Chromium: the page shows it, next question ok", f"{page_shown} of {len(page_rows)}"),
        ("concurrent sessions (each its own colour)", len(colours)),
        ("cross-talk found (answer not the session's colour)", cross_talk),
        ("queue started answers in the order they arrived (server's log)", "yes" if fair else "no"),
        ("200 turns in one session: answered", long_run["answered"]),
        ("  RSS start -> end (MB)", f"{long_run['rss_start']:.0f} -> {long_run['rss_end']:.0f}"),
        ("200 sessions in a row (--max-sessions 50): answered", sessions["answered"]),
        ("  RSS start -> end (MB)", f"{sessions['rss_start']:.0f} -> {sessions['rss_end']:.0f}"),
        ("  RSS after 50 / 100 / 150 / 200 sessions (MB)", " / ".join(map(str, sessions["rss_samples"]))),
        *loss_rows(exports, zero_pages, photos, mixed),
        ("Stop -> next user's answer starts (s)", f"{latency:.2f}"),
        ("upload files left in Gradio's cache after shutdown", cache_after - cache_before),
        ("files written outside temp folders", len(written_outside)),
    ]
    for name, value in rows:
        print(f"{name:<56} {value}")


def loss_rows(exports: dict, zero_pages: str, photos: dict, mixed: dict) -> list[tuple[str, str]]:
    """The table rows of issue 29's measurements (bad files and exports, a 0-page PDF, memory, RSS)."""
    return [
        ("a 0-byte picture, then every export: the failed turn says", exports["failed_message"]),
        ("  exports made / good turns kept / files named as left out",
         f"{exports['exports']} of 3 / {exports['answered']} / {exports['left_out']}"),
        ("a 0-page PDF: the page says", zero_pages[:60]),
        ("200 photo turns (4032x3024) in the memory: kept / reopened",
         f"{photos['kept']} of {photos['asked']} / {photos['reopened']} ({photos['limit_mb']:.0f} MB a browser)"),
        *((f"500 mixed turns (pictures, PDFs, bad files, exports, imports): {who} RSS",
           f"{mixed['rss_warm'][i]:.0f} after warm-up -> {mixed['rss_end'][i]:.0f} MB ({mixed['growth'][i]:+.1%})")
          for i, who in enumerate(("UI", "model process"))),
        ("  RSS every 100 turns, UI + model process (MB)",
         " / ".join(f"{ui}+{model}" for ui, model in mixed["samples"])),
    ]


def new_rows() -> None:
    """Only the rows added for issue 29 (``--new-rows``): bad files and exports, a 0-page PDF, photo turns in the
    memory, RSS over 500 mixed turns."""
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.tiny_task import COLOURS, draw

    chat = MiniCPMVChat("tiny", device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for index, colour in enumerate(list(COLOURS)[:4]):
            draw(colour, "square").save(folder / f"user_{index}.png")
        with serve(chat) as (_, client):
            exports = bad_picture_then_export(client, folder)
            zero_pages = zero_page_pdf(client, folder)
        with serve_process("--max-sessions", "50") as (_, client, pid):
            mixed = mixed_turns(client, 500, folder, pid)
        photos = photo_turns_in_memory(200, folder)
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores; python {platform.python_version()}")
    rows = loss_rows(exports, zero_pages, photos, mixed)
    print(f"{'figure':<64} value")
    for name, value in rows:
        print(f"{name:<64} {value}")


if __name__ == "__main__":
    new_rows() if "--new-rows" in sys.argv else main()
