"""Bad input, many users, long sessions, Stop under load, secure defaults (bench/reliability.py prints the figures)."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench import reliability as rel
from bench.bad_inputs import CASES
from minicpmv_app.tiny_task import COLOURS, draw

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app(trained_chat):
    with rel.serve(trained_chat) as served:
        yield served


def test_bad_inputs_through_the_python_api(trained_chat, tmp_path):
    before = rel.tree_snapshot(ROOT)
    rows = rel.bad_inputs_api(trained_chat, tmp_path)
    assert [r for r in rows if not r["clean"]] == []
    assert len(rows) == len(CASES) == 15
    assert all(r["message"] for r in rows if r["outcome"] == "refused")
    assert rel.tree_snapshot(ROOT) == before  # nothing written into the project


def test_bad_inputs_through_the_running_app(app, tmp_path):
    _, client = app
    before = rel.tree_snapshot(ROOT)
    rows = rel.bad_inputs_app(client, tmp_path)
    assert [r for r in rows if not r["clean"]] == []
    assert rel.tree_snapshot(ROOT) == before


@pytest.mark.slow
def test_bad_inputs_in_the_page(app, tmp_path):
    """Each bad input typed and attached in Chromium: the page shows the refusal (a message in a toast or in the
    chat) or the answer, and the next question works."""
    from tests.ui.conftest import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    url, _ = app
    rows = rel.bad_inputs_page(url, tmp_path)
    assert [r for r in rows if not r["clean"]] == []
    assert all(r["message"] for r in rows if r["outcome"] == "refused")


@pytest.mark.slow
def test_eight_concurrent_sessions_keep_their_own_pictures_in_queue_order(app, trained_chat, tmp_path):
    _, client = app
    colours = list(COLOURS)[:8]
    images = []
    for index, colour in enumerate(colours):
        path = tmp_path / f"user_{index}.png"
        draw(colour, "square").save(path)
        images.append(str(path))
    restore = rel.force_long_answers(trained_chat)  # longer answers, so that all eight wait in the queue
    try:
        crowd = rel.concurrent_sessions(client, images, "What colour is the shape?")
    finally:
        restore()
    # Forced long answers run on past the colour word, so compare how each starts: no answer crossed sessions.
    assert [answer[: len(colour)] for answer, colour in zip(crowd["answers"], colours)] == colours
    # One model, served first come first served, as the server itself saw the requests arrive and start.
    assert len(crowd["arrival_order"]) == 8 and crowd["start_order"] == crowd["arrival_order"]
    for display, image in zip(crowd["displays"], images):
        shown = [p["file"] for b in display if b["role"] == "user" for p in b["content"] if p.get("type") == "file"]
        assert len(shown) == 1 and Path(shown[0]["path"] if isinstance(shown[0], dict) else shown[0]).name == Path(image).name


@pytest.mark.slow
def test_two_hundred_turns_and_two_hundred_sessions(app, tmp_path):
    _, client = app
    long_run = rel.long_session(client, 200)
    assert long_run["answered"] == 200
    image = tmp_path / "one.png"
    draw("green", "circle").save(image)
    sessions = rel.many_sessions(client, 200, str(image))
    assert sessions["answered"] == sessions["fresh"] == 200  # each answered in a session of its own
    # Memory settles: sessions and their pictures are not kept forever (figures in bench/reliability.py).
    assert sessions["rss_end"] - long_run["rss_start"] < 400


def test_stop_frees_the_model_for_the_next_user(app, trained_chat):
    _, client = app
    restore = rel.force_long_answers(trained_chat)
    try:
        outcome = rel.stop_latency(client)
    finally:
        restore()
    # A asked for 4000 tokens (one character or more each) and was stopped long before; B was then answered.
    assert 0 < len(outcome["answer_a"]) < 2000 and outcome["b_answered"]


def test_uploads_over_the_size_limit_are_refused(trained_chat, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + os.urandom(2 * 2**20))
    with rel.serve(trained_chat, max_file_size="1mb") as (_, client):
        session = client()
        with pytest.raises(Exception):
            session.predict({"text": "?", "files": [handle_file(str(big))]}, api_name="/add_turn")
        display, _ = rel.ask(client(), "still serving?")
        assert display[-1]["role"] == "assistant"


def test_an_unexpected_failure_shows_a_message_not_internals(trained_chat, monkeypatch):
    """What a debug mode would leak (a traceback, source paths) never reaches the person; the app keeps serving."""
    model = trained_chat.backend.model
    original = model.generate

    def broken(*args, **kwargs):
        raise KeyError("internal_state_table")

    with rel.serve(trained_chat) as (_, client):
        monkeypatch.setattr(model, "generate", broken)
        display, _ = rel.ask(client(), "Will this fail?")
        shown = rel.text_of(display[-1])
        assert shown.startswith("⚠️") and "KeyError" in shown
        assert "Traceback" not in shown and ".py" not in shown and "line " not in shown
        monkeypatch.setattr(model, "generate", original)
        display, _ = rel.ask(client(), "And now?")
        assert not rel.text_of(display[-1]).startswith("⚠️")


SPY = textwrap.dedent('''
    import os, socket
    _log = os.environ["NETWORK_SPY_LOG"]
    _loopback = ("127.", "::1", "localhost", "0.0.0.0")
    def _note(what):
        with open(_log, "a") as handle:
            handle.write(what + "\\n")
    _connect = socket.socket.connect
    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(_loopback):
            _note(f"connect {host}")
        return _connect(self, address)
    socket.socket.connect = connect
    _getaddrinfo = socket.getaddrinfo
    def getaddrinfo(host, *args, **kwargs):
        if host and not str(host).startswith(_loopback) and host not in ("localhost",):
            _note(f"lookup {host}")
        return _getaddrinfo(host, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo
''')


def test_no_network_calls_at_start(tmp_path):
    """Start the 2.6 demo with a socket spy, use it once: it must not try to reach any non-loopback host."""
    from gradio_client import Client

    from tests.ui.conftest import free_port

    (tmp_path / "sitecustomize.py").write_text(SPY)
    log = tmp_path / "network.log"
    port = free_port()
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               NETWORK_SPY_LOG=str(log), HF_HUB_OFFLINE="1")
    # The spy itself works: a lookup of a public name is logged (it fails here, offline, which is fine).
    subprocess.run([sys.executable, "-c", "import socket\ntry: socket.getaddrinfo('example.com', 80)\nexcept OSError: pass"],
                   env=env, check=True)
    assert "lookup example.com" in log.read_text()
    log.unlink()
    process = subprocess.Popen([sys.executable, str(ROOT / "web_demo_2.6.py"), "--model", "tiny", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        client = None
        while client is None:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:
                if process.poll() is not None or time.time() > deadline:
                    raise AssertionError(process.stdout.read() if process.poll() is not None else "no start")
                time.sleep(0.5)
        client.predict({"text": "hello", "files": []}, api_name="/add_turn")
        client.submit("Sampling", 0.7, 0.8, 100, 1.05, 3, 4, "", api_name="/respond").result()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not log.exists() or log.read_text().strip() == "", log.read_text()
