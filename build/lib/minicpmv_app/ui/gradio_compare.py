"""Gradio: the Compare tab. One message goes to two configurations (model, decoding, thinking, detail); both
answers stream side by side; one Stop ends both. The rules live in ``minicpmv_app.compare``."""

from __future__ import annotations

import time

import gradio as gr

from .. import settings as schema
from ..compare import FIRST, Contenders, answer_both
from ..errors import MiniCPMVError
from ..media import kinds
from ..session import ChatSession, Progress, ReasoningDelta, TextDelta
from . import zerogpu
from .gradio_common import (
    MODEL_QUEUE, UI_STEP, UPDATE_INTERVAL_S, chat_view, discard_unusable, message_files, progress_bar, refusal, render,
    session_state, stop_button,
)

SIDES = ("a", "b")
DETAIL = schema.BY_NAME["downsample_mode"]  # 16x or 4x, as the settings schema says


def side_settings(chat, base: dict, decode_type: str, thinking: bool, detail: str) -> dict:
    """The shared panel's values with this side's choices; knobs the side's model does not take are left out,
    unless the side asks for them (thinking on, 4x): then that side refuses with the reason."""
    chosen = {k: v for k, v in base.items() if not (schema.BY_NAME[k].knob and k not in chat.knobs)}
    chosen["decode_type"] = decode_type
    if "enable_thinking" in chat.knobs or thinking:
        chosen["enable_thinking"] = bool(thinking)
    if "downsample_mode" in chat.knobs or detail != DETAIL.default:
        chosen["downsample_mode"] = detail
    return chosen


def compare_tab(steps, label, contenders: Contenders, limit: int) -> None:
    first_takes = contenders.first.knobs
    controls, chatbots, sessions = [], [], []
    with gr.Row():
        for side in SIDES:
            with gr.Column():
                gr.Markdown(f"### {label('compare_' + side)}")
                model = gr.Dropdown([(contenders.label(n), n) for n in contenders.names], value=FIRST,
                                    label=label("compare_model"), interactive=len(contenders.names) > 1,
                                    elem_id=f"compare-model-{side}")
                with gr.Row():
                    # Side B starts different: thinking on where the model has it, else beam search.
                    beam = side == "b" and "enable_thinking" not in first_takes
                    decode = gr.Radio([(label("decode_sampling"), schema.SAMPLING), (label("decode_beam"), schema.BEAM_SEARCH)],
                                      value=schema.BEAM_SEARCH if beam else schema.SAMPLING, label=label("decode_type"),
                                      elem_id=f"compare-decode-{side}")
                    thinking = gr.Checkbox(side == "b" and "enable_thinking" in first_takes, label=label("setting_thinking"),
                                           elem_id=f"compare-thinking-{side}")
                    detail = gr.Radio(list(DETAIL.choices), value=DETAIL.default, label=label("setting_detail"),
                                      elem_id=f"compare-detail-{side}")
                controls += [model, decode, thinking, detail]
                chatbots.append(chat_view(label, "compare_" + side, height=420, elem_id=f"compare-chat-{side}"))
                sessions.append(session_state())
    box = gr.MultimodalTextbox(placeholder=label("compare_placeholder"), file_types=kinds.UPLOAD_TYPES,
                               file_count="multiple", show_label=False, elem_id="compare-input")
    pages = gr.Textbox("", label=label("pdf_pages"), placeholder=label("pdf_pages_placeholder"),
                       elem_id="compare-pdf-pages")
    with gr.Row():
        stop_btn = stop_button(label, elem_id="compare-stop")
        clear_btn = gr.Button(label("clear"), elem_id="compare-clear")

    def submit(message: dict, pages_: str, model_a: str, model_b: str, session_a: ChatSession,
               session_b: ChatSession, request: gr.Request):
        lang = steps.language(request)
        files = message_files(message)
        try:
            for name in (model_a, model_b):
                contenders.get(name)  # the second model loads here, once (or says why it cannot)
            turn = session_a.submit(message.get("text", ""), files, pages=pages_)
            try:
                session_b.submit(message.get("text", ""), files, pages=pages_)
            except MiniCPMVError:
                session_a.withdraw(turn)
                raise
        except MiniCPMVError as exc:
            discard_unusable(files, exc)
            raise refusal(exc, lang) from None
        return session_a, session_b

    def shown(session_a: ChatSession, session_b: ChatSession, request: gr.Request):
        lang = steps.language(request)
        return render(session_a, lang), render(session_b, lang), gr.Button(interactive=True), \
            gr.MultimodalTextbox(value=None, interactive=False)

    def respond(session_a, session_b, model_a, decode_a, thinking_a, detail_a, model_b, decode_b, thinking_b,
                detail_b, request: gr.Request, progress=gr.Progress(), *values):
        lang, base = steps.language(request), steps.panel.read(values)
        pairs = []
        for session, model, decode, thinking, detail in ((session_a, model_a, decode_a, thinking_a, detail_a),
                                                         (session_b, model_b, decode_b, thinking_b, detail_b)):
            chat = contenders.get(model)
            pairs.append((session, chat, side_settings(chat, base, decode, thinking, detail), generators(chat)))
        shown_at = 0.0
        for _, event in answer_both(pairs):
            if isinstance(event, Progress):
                progress_bar(progress, event, lang)
            elif isinstance(event, (TextDelta, ReasoningDelta)) and time.monotonic() - shown_at >= UPDATE_INTERVAL_S:
                shown_at = time.monotonic()
                yield render(session_a, lang), render(session_b, lang)
        yield render(session_a, lang), render(session_b, lang)

    def settled():
        return gr.Button(interactive=False), gr.MultimodalTextbox(value=None, interactive=True)

    def stop(session_a: ChatSession, session_b: ChatSession):
        session_a.stop()
        session_b.stop()

    def clear(session_a: ChatSession, session_b: ChatSession):
        session_a.clear()
        session_b.clear()
        return [], [], gr.Button(interactive=False)

    generators_made: dict = {}

    def generators(chat):  # one per model: on ZeroGPU each answer runs in a GPU slot
        if id(chat) not in generators_made:
            generators_made[id(chat)] = zerogpu.generator_for(chat)
        return generators_made[id(chat)]

    model_a, model_b = controls[0], controls[4]
    submitted = box.submit(submit, [box, pages, model_a, model_b, *sessions], sessions, api_name="compare_add_turn",
                           **UI_STEP)
    # Shown and answered at once (see ChatSteps.answer_after).
    submitted.success(shown, sessions, [*chatbots, stop_btn, box], queue=False, api_visibility="private")
    submitted.success(
        respond, [*sessions, *controls, *steps.panel.components], chatbots, api_name="compare_respond",
        concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
    ).then(settled, None, [stop_btn, box], api_visibility="private")
    stop_btn.click(stop, sessions, None, queue=False, api_name="compare_stop")
    clear_btn.click(clear, sessions, [*chatbots, stop_btn], queue=False, api_name="compare_clear")
