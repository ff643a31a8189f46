"""The OpenAI-compatible backend against `transformers serve` running the tiny checkpoint (a real server),
and against small loopback servers that fail in the ways real ones do."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chat import MiniCPMVChat, img2base64
from minicpmv_app.backends.openai_api import OpenAIBackend
from minicpmv_app.errors import GenerationError, ModelLoadError
from minicpmv_app.media.video import load_video
from minicpmv_app.messages import Conversation, Message, parse_request
from minicpmv_app.ports import free_port


@pytest.fixture(scope="module")
def served_chat(tiny_server):
    return MiniCPMVChat(api_base=tiny_server["api_base"], api_model=tiny_server["model"])


def ask(text, image=None):
    return {"image": image, "question": json.dumps([{"role": "user", "content": text}])}


def test_upstream_call_through_the_server(served_chat, image_file):
    answer = served_chat.chat(ask("What is in the image?", img2base64(image_file())), max_new_tokens=8)
    assert isinstance(answer, str) and answer
    assert served_chat.backend.last_usage.completion_tokens <= 8


def test_stream_arrives_in_pieces(served_chat):
    # Random weights may end at once on one prompt: a stream that works arrives in pieces on one of three.
    sizes = []
    for prompt in ("Tell me a story.", "Count to twenty.", "Describe the sea."):
        sizes.append(len(list(served_chat.stream(ask(prompt), max_new_tokens=40))))
        if sizes[-1] > 1:
            break
    assert max(sizes) > 1, sizes


def test_images_reach_the_server(served_chat, image_file):
    served_chat.chat(ask("One image", img2base64(image_file())), max_new_tokens=2)
    one = served_chat.backend.last_usage.prompt_tokens
    msgs = [{"role": "user", "content": [{"type": "image", "pairs": img2base64(image_file(name="a.png"))},
                                         {"type": "image", "pairs": img2base64(image_file(name="b.png"))}, "One image"]}]
    served_chat.chat({"question": json.dumps(msgs)}, max_new_tokens=2)
    two = served_chat.backend.last_usage.prompt_tokens
    served_chat.chat(ask("One image"), max_new_tokens=2)
    text_only = served_chat.backend.last_usage.prompt_tokens
    assert text_only < one < two


def test_multi_turn_history_is_sent(served_chat):
    msgs = [{"role": "user", "content": "hello"}]
    first = served_chat.chat({"question": json.dumps(msgs)}, max_new_tokens=4)
    short = served_chat.backend.last_usage.prompt_tokens
    msgs += [{"role": "assistant", "content": first}, {"role": "user", "content": "and more"}]
    served_chat.chat({"question": json.dumps(msgs)}, max_new_tokens=4)
    assert served_chat.backend.last_usage.prompt_tokens > short


def test_video_goes_as_frames(served_chat, clip):
    video = load_video(clip(seconds=3, fps=5))
    body = served_chat.backend.request_body(Conversation([Message("user", [video, "What happens?"])]), served_chat.settings())
    parts = body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"]
    "".join(served_chat.stream_conversation(Conversation([Message("user", ["What happens?"])]), served_chat.settings(max_new_tokens=3)))
    text_only = served_chat.backend.last_usage.prompt_tokens
    "".join(served_chat.stream_conversation(Conversation([Message("user", [video, "What happens?"])]), served_chat.settings(max_new_tokens=3)))
    assert served_chat.backend.last_usage.prompt_tokens > text_only  # the frames reached the server


def test_presets_map_to_the_request_and_rejected_extras_are_dropped(served_chat, tiny_server):
    body = served_chat.backend.request_body(Conversation([Message("user", ["hi"])]), served_chat.settings(temperature=0.3, top_k=7))
    assert (body["temperature"], body["top_p"]) == (0.3, 0.8)
    beam = served_chat.backend.request_body(Conversation([Message("user", ["hi"])]), served_chat.settings(decode_type="Beam Search"))
    assert beam["temperature"] == 0.0 and "top_p" not in beam
    # transformers serve refuses top_k/repetition_penalty: the first request retries without them.
    fresh = MiniCPMVChat(api_base=tiny_server["api_base"], api_model=tiny_server["model"])
    assert "extra_body" in fresh.backend.request_body(Conversation([Message("user", ["hi"])]), fresh.settings(top_k=7))
    fresh.chat(ask("hi"), max_new_tokens=2, top_k=7)
    assert fresh.backend.last_usage.completion_tokens >= 1  # the retried request was answered
    # Only what it refused is dropped: thinking (chat_template_kwargs), which it reads, is still sent, and top_k
    # still reaches it inside the generation config it does read.
    again = fresh.backend.request_body(Conversation([Message("user", ["hi"])]), fresh.settings(top_k=7))
    assert set(again["extra_body"]) == {"chat_template_kwargs", "generation_config"}
    assert again["extra_body"]["chat_template_kwargs"] == {"enable_thinking": False}
    assert json.loads(again["extra_body"]["generation_config"])["top_k"] == 7


def test_gradio_demo_on_top_of_the_server(served_chat):
    from minicpmv_app.ui.gradio_26 import build_demo
    from tests.ui.conftest import served

    with served(build_demo(served_chat), concurrency=served_chat.backend.concurrency) as (_, client):
        session = client()
        session.predict({"text": "Hello server", "files": []}, api_name="/add_turn")
        final = session.submit("Sampling", 0.7, 0.8, 100, 1.05, 3, 8, "", api_name="/respond").result()
        assert final[-1]["role"] == "assistant"
        assert not "".join(p.get("text", "") for p in final[-1]["content"]).startswith("⚠️")


def test_unreachable_server_is_a_clear_error():
    port = free_port()  # nothing listens there
    with pytest.raises(ModelLoadError, match="is it running"):
        MiniCPMVChat(api_base=f"http://127.0.0.1:{port}/v1")
    chat = MiniCPMVChat(api_base=f"http://127.0.0.1:{port}/v1", api_model="m")
    with pytest.raises(GenerationError, match="is it running"):
        chat.chat(ask("hi"))


def test_wrong_model_name(tiny_server):
    chat = MiniCPMVChat(api_base=tiny_server["api_base"], api_model="no/such-model")
    with pytest.raises(GenerationError, match="--api-model"):
        chat.chat(ask("hi"), max_new_tokens=2)


class FlakyServer:
    """A loopback OpenAI-style server that misbehaves on purpose: 500s, or a stream cut mid-answer."""

    def __init__(self, mode):
        outer = self
        self.mode = mode

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._json(200, {"object": "list", "data": [{"id": "flaky", "object": "model"}]})

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.mode == "500":
                    return self._json(500, {"error": {"message": "CUDA out of memory"}})
                if outer.mode == "slow":
                    time.sleep(3)
                    return self._json(200, {})
                if outer.mode == "reasoning":
                    return self._reasoning_stream()
                if outer.mode == "message":
                    return self._reasoning_stream(whole=True)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", "100000")  # promises more than it sends
                self.end_headers()
                for word in ("Hello", " there"):
                    chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "flaky",
                             "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-answer

            def _reasoning_stream(self, whole=False):
                # vLLM with a reasoning parser (OpenBMB/MiniCPM-V#1016): reasoning in `reasoning_content` (SGLang
                # and newer vLLM: `reasoning`) with `content: null`, then the answer in `content`. `whole`: one
                # chunk holding the whole `message` (with `message.reasoning`), as some servers send.
                deltas = [{"reasoning_content": "The shape", "content": None}, {"reasoning": " looks red.", "content": None},
                          {"content": "red"}, {"content": " square."}]
                choices = [[{"index": 0, "delta": d, "finish_reason": None}] for d in deltas]
                if whole:
                    choices = [[{"index": 0, "message": {"role": "assistant", "reasoning": "The shape looks red.",
                                                         "content": "red square."}, "finish_reason": "stop"}]]
                body = "".join(
                    "data: " + json.dumps({"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "flaky",
                                           "choices": c}) + "\n\n"
                    for c in choices) + "data: [DONE]\n\n"
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _json(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def flaky():
    servers = []

    def make(mode):
        servers.append(FlakyServer(mode))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_server_error_is_reported(flaky):
    chat = MiniCPMVChat(api_base=flaky("500").url)
    assert chat.backend.model == "flaky"  # the only listed model is picked
    with pytest.raises(GenerationError, match="out of memory"):
        chat.chat(ask("hi"))


def test_dropped_stream_keeps_what_arrived_and_says_so(flaky):
    from minicpmv_app.session import ChatSession, Failed, State, TextDelta

    chat = MiniCPMVChat(api_base=flaky("drop").url)
    session = ChatSession()
    session.submit("hi")
    events = list(session.answer(chat, {"max_new_tokens": 10}))
    assert any(isinstance(e, TextDelta) for e in events)  # what arrived was shown ...
    assert isinstance(events[-1], Failed) and "dropped mid-answer" in str(events[-1].error)  # ... and why it ended
    assert session.state == State.FAILED and session.history() == []  # history stays well formed
    session.regenerate()  # and Regenerate retries it
    assert session.state == State.PENDING


def test_timeout(flaky):
    chat = MiniCPMVChat(backend=OpenAIBackend(flaky("slow").url, model="flaky", timeout=0.5))
    with pytest.raises(GenerationError, match="in time"):
        chat.chat(ask("hi"))


def test_video_url_mode_sends_the_sampled_frames_as_one_clip(clip):
    """For servers that take video_url (vLLM): the frames go as one small MP4 data URL."""
    import base64
    import io

    import av

    backend = OpenAIBackend("http://127.0.0.1:9/v1", model="m", video_mode="video_url")  # nothing is sent
    video = load_video(clip(seconds=3, fps=5))
    parts = backend.request_messages(Conversation([Message("user", [video, "What happens?"])]))[-1]["content"]
    assert [p["type"] for p in parts] == ["video_url", "text"]
    header, data = parts[0]["video_url"]["url"].split(",", 1)
    assert header == "data:video/mp4;base64"
    with av.open(io.BytesIO(base64.b64decode(data))) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(video) == 3


def test_thinking_through_transformers_serve(trained_server, tmp_path):
    """The toggle goes as chat_template_kwargs; the server's reasoning arrives as reasoning_content deltas
    (transformers serve reads the tiny's response template), apart from the answer, and is not sent back."""
    import random

    from minicpmv_app.reasoning import Reasoning
    from minicpmv_app.tiny_task import draw_with_box

    picture = tmp_path / "shape.png"
    draw_with_box("green", "circle", size=(160, 160), rng=random.Random(3))[0].save(picture)
    chat = MiniCPMVChat(api_base=trained_server["api_base"], api_model=trained_server["model"])
    assert chat.knobs["enable_thinking"] is False
    request = {"image": img2base64(str(picture)), "question": json.dumps([{"role": "user", "content": "What colour is the shape?"}])}
    reply = chat.chat(request, with_reasoning=True, enable_thinking=True, sampling=False, max_new_tokens=24)
    assert reply.answer.strip() == "green" and "I see a green" in reply.reasoning
    assert chat.chat(request, enable_thinking=True, sampling=False, max_new_tokens=24).strip() == "green"
    pieces = list(chat.stream(request, reasoning=True, enable_thinking=True, max_new_tokens=24))
    assert any(isinstance(p, Reasoning) for p in pieces)
    plain = chat.chat(request, with_reasoning=True, enable_thinking=False, sampling=False, max_new_tokens=24)
    assert plain.answer.strip() == "green" and plain.reasoning == ""
    body = chat.backend.request_body(parse_request(request), chat.settings(enable_thinking=True))
    assert body["extra_body"]["chat_template_kwargs"] == {"enable_thinking": True}


@pytest.mark.parametrize("mode", ["reasoning", "message"])
def test_reasoning_deltas_with_null_content_are_kept_apart(flaky, mode):
    chat = MiniCPMVChat(api_base=flaky(mode).url)
    reply = chat.chat(ask("What is it?"), with_reasoning=True)
    assert reply == ("red square.", "The shape looks red.")
    assert chat.chat(ask("What is it?")) == "red square."


def test_grounding_through_transformers_serve(trained_server, tmp_path):
    """The tags arrive in the server's text: the session finds the box and draws it, as in-process."""
    import random

    from minicpmv_app.session import ChatSession
    from minicpmv_app.tiny_task import draw_with_box

    image, _ = draw_with_box("orange", "square", size=(180, 140), rng=random.Random(5))
    picture = tmp_path / "shape.png"
    image.save(picture)
    chat = MiniCPMVChat(api_base=trained_server["api_base"], api_model=trained_server["model"])
    session = ChatSession()
    session.submit("Where is the shape?", [str(picture)])
    list(session.answer(chat, {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 24}))
    turn = session.turns[-1]
    assert turn.shown_answer.strip() == "orange square"
    (region,) = turn.regions
    # Where the tiny puts the box is its own accuracy (README, "--model tiny"); here: a box, tied to the picture.
    assert region.image == 0 and region.kind == "box" and 0 <= region.bounds[0] < region.bounds[2] <= 1
    assert len(turn.figures()) == 1


def test_an_answer_cut_off_at_max_tokens_is_flagged_by_the_servers_finish_reason(trained_server):
    """transformers serve ends a budget-limited answer with finish_reason "length"; the session marks the turn,
    and a sampled answer in-process is flagged the same way (tests/test_session.py has the greedy one)."""
    from minicpmv_app.reasoning import BudgetSpent

    chat = MiniCPMVChat(api_base=trained_server["api_base"], api_model=trained_server["model"])
    pieces = list(chat.stream(ask("Describe the picture in detail."), max_new_tokens=2, reasoning=True))
    assert isinstance(pieces[-1], BudgetSpent)
    assert not any(isinstance(p, BudgetSpent) for p in chat.stream(ask("Describe it."), max_new_tokens=2))


def test_a_sampled_native_answer_cut_off_at_max_tokens_is_flagged(trained_chat):
    from minicpmv_app.reasoning import BudgetSpent

    pieces = list(trained_chat.stream(ask("Describe the picture in detail."), max_new_tokens=1, reasoning=True,
                                      decode_type="Sampling"))
    assert isinstance(pieces[-1], BudgetSpent)


def test_sampling_on_transformers_serve_really_samples(trained_server):
    """transformers serve ignores a request's temperature unless its generation config turns sampling on; the
    app sends one, so a hot temperature gives different answers (greedy gives one)."""
    chat = MiniCPMVChat(api_base=trained_server["api_base"], api_model=trained_server["model"])
    question = ask("Describe the picture in detail.")
    hot = {chat.chat(question, temperature=5.0, top_k=0, top_p=1.0, max_new_tokens=8) for _ in range(10)}
    assert len(hot) > 1
    greedy = {chat.chat(question, decode_type="Beam Search", max_new_tokens=8) for _ in range(3)}
    assert len(greedy) == 1


def test_a_setting_the_server_does_not_honour_is_disabled_with_its_reason(served_chat, tiny_chat):
    """Chat-completion servers have no beam search: the number of beams is shown disabled, saying why, in both
    modes; the in-process panel keeps it editable under Beam Search."""
    from minicpmv_app.ui.gradio_26 import build_demo

    def beams(chat, decode_type):
        config = build_demo(chat, lang="en", defaults={"decode_type": decode_type}).config
        return next(c["props"] for c in config["components"] if c["props"].get("elem_id") == "setting-num-beams")

    for mode in ("Sampling", "Beam Search"):
        shown = beams(served_chat, mode)
        assert shown["interactive"] is False and "no beam search" in shown["info"]
    assert beams(tiny_chat, "Beam Search")["interactive"] is not False
