"""What both Gradio demos share: the settings panel (from the schema), a session rendered as chat messages, the
answer stream, refusals shown in the page, launching, ZeroGPU.

Event functions are small and explicit; the conversation's rules live in ``minicpmv_app.session``. Steps that may
refuse (recording a turn, Regenerate, a new image in 2.5) run in the queue's ``ui`` line, which never waits for the
model: Gradio delivers ``gr.Error`` / ``gr.Info`` to the page only from queued events. The answer step is chained
with ``.success()``, so a refused step never starts one.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import weakref
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import gradio as gr

from .. import settings as schema
from ..errors import InvalidInputError, MiniCPMVError
from ..media import documents
from ..media import kinds
from ..media.documents import check_pdf
from ..session import ChatSession, Progress, ReasoningDelta, TextDelta
from . import view, zerogpu
from .i18n import localized, model_status, progress_words, request_language, text

log = logging.getLogger(__name__)

# Uploads in Gradio's cache are deleted an hour after upload (checked every 30 minutes).
UPLOAD_CACHE = (1800, 3600)
# A session untouched for this long is dropped with its pictures (a closed tab is dropped at once).
SESSION_TTL_S = 3 * 3600
# Screen updates at most every 100 ms: a fast model's tokens are batched into one update. Each update costs Gradio
# time on the interpreter that also runs generate(); at 40 ms the app ran at about 0.5 of the model's tokens/s on
# 2 cores, at 100 ms about 0.7 (bench/performance.py, section 1), and ten updates a second still read as smooth.
UPDATE_INTERVAL_S = 0.1
MODEL_QUEUE = "model"  # every step that runs the model waits in this one line
UI_STEP: dict[str, Any] = dict(concurrency_id="ui", concurrency_limit=None)  # quick steps: queued (messages reach the page), never waiting


# -- settings ----------------------------------------------------------------------------------------
@dataclass
class SettingsPanel:
    components: list  # in ``names`` order: answer steps take their values as *values
    names: tuple = schema.NAMES  # the schema's names, less the knobs the model does not take

    def read(self, values) -> dict:
        return schema.from_values(values, self.names)


def settings_panel(label, defaults: Optional[dict] = None, knobs: Optional[dict] = None, *,
                   open: bool = False, server: bool = False, model_presets: Optional[dict] = None) -> SettingsPanel:
    """The schema's settings as components: decoding in a closed accordion, the model's own knobs (``knobs``:
    name -> the model card's default) in an open one, with a note on what a server does with them (``server``).
    ``label`` is the UI's ``i18n.Labels``; ``defaults`` overrides values; ``model_presets`` are the model's own
    sampling values (``Backend.preset_overrides``: a checkpoint's generation_config.json), which the panel starts
    from instead of upstream's preset."""
    defaults = defaults or {}
    knobs = dict(knobs or {})
    mode = defaults.get("decode_type") or schema.SAMPLING
    built: dict[str, Any] = {}

    # What a server does not do is shown disabled, with the reason (chat-completion servers have no beam search:
    # "Beam Search" asks them for greedy decoding, so the number of beams changes nothing).
    unhonoured = {"num_beams": "server_no_beams"} if server else {}

    def usable(setting: schema.Setting, in_mode: str) -> bool:
        return in_mode in setting.modes and setting.name not in unhonoured

    def component(setting: schema.Setting):
        value = defaults.get(setting.name, knobs.get(setting.name, setting.default_for(mode, model_presets)))
        info = label(setting.info) if setting.info else None
        if setting.name in unhonoured:
            info = label(unhonoured[setting.name])
        elem_id = f"setting-{setting.name.replace('_', '-')}"
        # Knobs share a row: each keeps room for its label, and the row wraps in a narrow column (2.5's settings
        # column cut "Thinking" to "Th").
        width: dict[str, Any] = {"min_width": 180} if setting.knob else {}
        if setting.kind == "bool":
            return gr.Checkbox(value=bool(value), label=label(setting.label), info=info, elem_id=elem_id, **width)
        if setting.kind == "choice":
            choices = list(setting.choices) or [(label("decode_sampling"), schema.SAMPLING),
                                                (label("decode_beam"), schema.BEAM_SEARCH)]
            return gr.Radio(choices, value=value, label=label(setting.label), info=info, elem_id=elem_id, **width)
        if setting.kind == "text":
            return gr.Textbox(value or "", label=label(setting.label), lines=2)
        return gr.Slider(setting.minimum or 0, setting.maximum or 0, value=value, step=setting.step,
                         label=label(setting.label), info=info if setting.knob or setting.name in unhonoured else None,
                         elem_id=elem_id, interactive=usable(setting, mode), **width)

    taken = [s for s in schema.SCHEMA if s.knob and s.name in knobs]
    if taken:
        with gr.Accordion(label("model_options"), open=True):
            with gr.Row():
                for setting in taken:
                    built[setting.name] = component(setting)
            if server:
                gr.Markdown(label("server_knobs_note"))
    with gr.Accordion(label("settings"), open=open):
        sliders = [s for s in schema.SCHEMA if s.kind in ("float", "int") and not s.knob]
        built["decode_type"] = component(schema.BY_NAME["decode_type"])
        for row in (sliders[:3], sliders[3:]):
            with gr.Row():
                for setting in row:
                    built[setting.name] = component(setting)
        built["system_prompt"] = component(schema.BY_NAME["system_prompt"])

    def on_decode_change(mode: str):
        # Each mode brings its preset values; only the sliders that mode uses stay editable.
        preset = {**schema.PRESETS[mode], **(model_presets or {}).get(mode, {})}
        return [gr.Slider(interactive=usable(s, mode), **({"value": preset[s.name]} if s.name in preset else {}))
                for s in sliders]

    built["decode_type"].change(on_decode_change, built["decode_type"], [built[s.name] for s in sliders],
                                queue=False, api_visibility="private")
    names = tuple(name for name in schema.NAMES if name in built)
    return SettingsPanel([built[name] for name in names], names)


# -- what the person sees ----------------------------------------------------------------------------
def render(session: ChatSession, lang: str) -> list[dict]:
    """The session as Chatbot messages, block by block of the view (``view.py``): Thinking is a collapsible
    message (open while it is written), a mark joins the answer's bubble, each drawn picture is a file."""
    messages: list[dict] = []
    for number, turn in enumerate(session.turns):
        for asked in view.question_blocks(turn, lang):
            if isinstance(asked, view.File):
                messages.append({"role": "user", "content": {"path": asked.path}})
                if asked.caption:
                    messages.append({"role": "user", "content": asked.caption})
            else:
                messages.append({"role": "user", "content": asked.text})
        answer = None
        for block in view.answer_blocks(turn, lang):
            message: dict[str, Any] = {"role": "assistant", "content": getattr(block, "text", "")}
            if isinstance(block, view.Thinking):
                status = "pending" if block.open else "done"
                # A new id once it is done: Gradio opens or closes a block only when it first draws it.
                message["metadata"] = {"title": text("thinking", lang), "status": status, "id": f"think-{number}-{status}"}
            elif isinstance(block, view.Answer):
                answer = message
            elif isinstance(block, view.Mark):
                if answer is not None:  # said under the answer, in its bubble
                    answer["content"] = f"{answer['content']}\n\n*{block.text}*".strip()
                    continue
                message["content"] = f"*{block.text}*"
            elif isinstance(block, view.RawAnswer):  # its code block has a Copy button
                message["content"] = f"```text\n{block.text}\n```"
                message["metadata"] = {"title": text("raw_answer", lang), "status": "done", "id": f"raw-{number}"}
            elif isinstance(block, view.Figure):
                message["content"] = {"path": figure_file(block.image), "alt_text": block.caption}
            messages.append(message)
    return messages


_FIGURE_FILES: dict[int, str] = {}  # id(drawn picture) -> its file, while the picture lives


def figure_file(figure) -> str:
    """A drawn picture saved once (the turn keeps the picture), under a name of our own in Gradio's upload folder."""
    key = id(figure)
    if key not in _FIGURE_FILES:
        _FIGURE_FILES[key] = save_picture(figure, "figure")
        weakref.finalize(figure, _FIGURE_FILES.pop, key, None)
    return _FIGURE_FILES[key]


def upload_folder() -> Path:
    """Where the app writes pictures of its own (drawn boxes, crops, imports, exports): inside Gradio's upload
    cache, so the page may show them and Gradio deletes them with the other uploads."""
    folder = Path(gr.utils.get_upload_folder()) / "minicpmv-pictures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_picture(picture, prefix: str) -> str:
    handle, path = tempfile.mkstemp(prefix=f"{prefix}-", suffix=".png", dir=upload_folder())
    with os.fdopen(handle, "wb") as file:
        picture.save(file, format="PNG")
    return path


UNUSABLE_FILE = {"pdf_encrypted", "pdf_unreadable", "pdf_no_pages"}


def discard_unusable(files, exc: MiniCPMVError) -> None:
    """After a refusal for an unusable PDF (locked, broken): delete the PDFs that can never be used from Gradio's
    upload cache instead of keeping them for its hour. Other files of the message stay: it may be sent again."""
    if exc.key not in UNUSABLE_FILE:
        return
    cache = Path(gr.utils.get_upload_folder()).resolve()
    for file in files:
        path = Path(file).resolve()
        if not (kinds.is_pdf(path) and cache in path.parents and path.is_file()):
            continue
        try:
            check_pdf(path)
        except MiniCPMVError as problem:
            if problem.key in UNUSABLE_FILE:
                path.unlink(missing_ok=True)


def message_files(message) -> list[str]:
    """The paths of the files waiting in a MultimodalTextbox value (Gradio gives paths or file dicts)."""
    return [f if isinstance(f, str) else f.get("path", "") for f in (message or {}).get("files") or []]


def without_discarded(message):
    """After a refusal: the message box keeps its text and the files that can still be sent; a file that can never
    be used was deleted by ``discard_unusable`` and leaves the box (Enter again sends no stale file)."""
    if not isinstance(message, dict):
        return gr.update()
    files = [f for f in message.get("files") or [] if Path(f if isinstance(f, str) else f.get("path", "")).is_file()]
    return {"text": message.get("text", ""), "files": files}


def refusal(exc: MiniCPMVError, lang: str) -> gr.Error:
    """A refused click, as a message in the page (the session is unchanged)."""
    return error(localized(exc, lang), lang)


# Toasts with their titles in the page's language (Gradio's own read "Error", "Info", "Warning" in every page).
def error(message: str, lang: str) -> gr.Error:
    return gr.Error(message, title=text("toast_error", lang), print_exception=False)


def info(message: str, lang: str) -> None:
    gr.Info(message, title=text("toast_info", lang))


def warning(message: str, lang: str) -> None:
    gr.Warning(message, title=text("toast_warning", lang))


def progress_bar(progress, event: Progress, lang: str) -> None:
    """A session's ``Progress`` on Gradio's bar: frames and pages counted in their unit, encoding as a fraction
    (its words say "k of n")."""
    if event.kind == "encoding":
        progress(event.done / max(1, event.total), desc=progress_words(event, lang))
    else:
        progress((event.done, event.total), desc=progress_words(event, lang),
                 unit=text(f"progress_unit_{event.kind}", lang))


def stream_answer(chat, session: ChatSession, settings: dict, lang: str, progress=None,
                  generate=None) -> Iterator[list[dict]]:
    """Answer the pending turn: the chat as it grows (at most every UPDATE_INTERVAL_S), video decoding as progress."""
    shown_at = 0.0
    for event in session.answer(chat, settings, generate):
        if isinstance(event, Progress):
            if progress is not None:
                progress_bar(progress, event, lang)
        elif isinstance(event, (TextDelta, ReasoningDelta)) and time.monotonic() - shown_at >= UPDATE_INTERVAL_S:
            shown_at = time.monotonic()
            yield render(session, lang)
    yield render(session, lang)


class ChatSteps:
    """The event functions every chat shares; each takes and returns exactly what it names.

    A step that may refuse returns only the session, so a refusal's status badge lands on no visible component;
    ``shown`` then updates the page while ``respond`` (both chained with ``.success``) answers.
    """

    def __init__(self, chat, lang: Optional[str], panel: SettingsPanel):
        self.chat, self.lang, self.panel = chat, lang, panel
        self.generate = zerogpu.generator_for(chat)

    def language(self, request: gr.Request) -> str:
        return request_language(request, self.lang)

    def submit(self, session: ChatSession, text_: str, files: list, request: gr.Request, pages: str = "") -> ChatSession:
        try:
            session.submit(text_, files, pages=pages)
        except MiniCPMVError as exc:
            discard_unusable(files, exc)
            raise refusal(exc, self.language(request)) from None
        return session

    def regenerate(self, session: ChatSession, request: gr.Request) -> ChatSession:
        try:
            session.regenerate()
        except MiniCPMVError as exc:
            raise refusal(exc, self.language(request)) from None
        return session

    def shown(self, session: ChatSession, request: gr.Request):
        """The chat as it now is, and Stop enabled: an answer is coming."""
        return render(session, self.language(request)), gr.Button(interactive=True)

    def settled(self, session: ChatSession, request: gr.Request):
        """The chat as the answer left it."""
        return render(session, self.language(request))

    def respond(self, session: ChatSession, request: gr.Request, progress=gr.Progress(), *values):
        yield from stream_answer(self.chat, session, self.panel.read(values), self.language(request), progress,
                                 self.generate)

    def locate(self, session: ChatSession, phrase: str, picture, request: gr.Request, *, resend: bool = True):
        try:
            session.locate(phrase, picture, resend=resend)
        except MiniCPMVError as exc:
            raise refusal(exc, self.language(request)) from None
        return session

    def recognize(self, session: ChatSession, prompt_text: str, picture, request: gr.Request):
        """One of the model's block prompts (MiniCPM-OCR), about the picture in the message box or the latest one."""
        try:
            prompt = next((p for p in self.chat.prompts if p.text == prompt_text), None)
            if prompt is None:
                raise InvalidInputError("Pick what to recognise.", key="nothing_to_recognize")
            session.recognize(prompt, picture)
        except MiniCPMVError as exc:
            raise refusal(exc, self.language(request)) from None
        return session

    def crop(self, session: ChatSession, choice, request: gr.Request) -> str:
        """The chosen box's crop, saved as a new upload (a name of our own, in Gradio's upload folder)."""
        try:
            if choice is None:
                raise InvalidInputError("No box to zoom into yet: use Locate, or ask where something is.",
                                        key="nothing_to_zoom")
            picture = session.zoom(int(choice))
        except MiniCPMVError as exc:
            raise refusal(exc, self.language(request)) from None
        info(text("zoom_ready", self.language(request)), self.language(request))
        return save_picture(picture, "crop")

    @staticmethod
    def zoom_choices(session: ChatSession):
        """The boxes of the latest grounded answer, for the Zoom picker."""
        choices = [(f"{n + 1}: {r.label or r.kind}", n) for n, r in enumerate(session.regions())]
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, interactive=bool(choices))

    @staticmethod
    def stop(session: ChatSession) -> None:
        session.stop()

    @staticmethod
    def idle():
        return gr.Button(interactive=False)

    def answer_after(self, step, session, chatbot, stop_btn, *, api_name: str, limit: int, then=None):
        """``step`` (refused: nothing more) → the chat shown, and the answer streamed → Stop disabled (and ``then``).

        Showing the chat and joining the model's queue start together once the step succeeds: the answer does not
        wait for a round trip of the page (the first token reaches the browser one request sooner)."""
        idle = then or dict(fn=self.idle, inputs=None, outputs=stop_btn)
        step.success(self.shown, session, [chatbot, stop_btn], queue=False, api_visibility="private")
        answered = step.success(
            self.respond, [session, *self.panel.components], chatbot, api_name=api_name,
            concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
        )
        # The chat as it ended, once more, as a plain request and its response: under load (two CPU-burning
        # processes), an answer that ended within about 0.1 s (a refused 0-byte picture, a one-word answer) sometimes
        # never reached the page while Gradio's front end closed and reopened its event stream (the queue log showed
        # it answered; the page showed no bubble). This reply cannot be lost that way.
        answered.then(self.settled, session, chatbot, queue=False, api_visibility="private")
        return answered.then(**idle, api_visibility="private")


# -- the app ----------------------------------------------------------------------------------------
# Formulas as the models write LaTeX (MiniCPM-OCR answers formulas in LaTeX): $$...$$ and \[...\] on their own
# line, \(...\) inline. A lone $ stays text (prices).
LATEX: list[dict[str, Any]] = [{"left": "$$", "right": "$$", "display": True}, {"left": "\\[", "right": "\\]", "display": True},
         {"left": "\\(", "right": "\\)", "display": False}]


def chat_view(label, key: str = "chat_label", **kwargs) -> gr.Chatbot:
    """A chat view as every tab draws it (LaTeX formulas rendered, no feedback buttons)."""
    return gr.Chatbot(label=label(key), feedback_options=None, latex_delimiters=LATEX, **kwargs)


def blocks(title: str) -> gr.Blocks:
    """The app's Blocks: no telemetry calls, uploads cleaned up."""
    return gr.Blocks(title=title, analytics_enabled=False, delete_cache=UPLOAD_CACHE)


def model_line(demo: gr.Blocks, chat, lang: Optional[str]) -> gr.Markdown:
    """What runs the model; while it loads, how far it is (every second), and if it failed, why. The page is
    served while a model process loads the weights, so this is what a person sees first."""
    line = gr.Markdown(model_status(chat, lang), elem_id="model-status")
    timer = gr.Timer(1.0, active=not chat.status().ready)

    def refresh(request: gr.Request):
        status = chat.status()
        return model_status(chat, request_language(request, lang)), gr.Timer(active=status.state in ("starting", "loading"))

    for event in (timer.tick, demo.load):
        event(refresh, None, [line, timer], show_progress="hidden", api_visibility="private", **UI_STEP)
    return line


def session_state() -> gr.State:
    """Per-browser-session ``ChatSession``; cleared when Gradio drops the session (tab closed)."""
    return gr.State(ChatSession(), time_to_live=SESSION_TTL_S, delete_callback=ChatSession.clear)


def stop_button(label, **kwargs) -> gr.Button:
    """The one Stop: enabled only while an answer is pending or running."""
    return gr.Button(label("stop"), variant="stop", interactive=False, **kwargs)


def document_row(label, target):
    """A PDF's page range, and the document prompts: each puts its (editable) prompt into ``target``, a textbox
    or a multimodal box whose files stay."""
    with gr.Row(equal_height=True):
        pages = gr.Textbox("", label=label("pdf_pages"), placeholder=label("pdf_pages_placeholder"), scale=1,
                           elem_id="pdf-pages")
        with gr.Column(scale=3):
            gr.Markdown(label("doc_presets"))
            with gr.Row():
                for key in documents.PROMPTS:
                    button = gr.Button(label(f"preset_{key}"), size="sm", elem_id=f"preset-{key}")
                    button.click(prompt_filler(key, label.forced), target, target, queue=False, api_visibility="private")
    return pages



def prompt_filler(key: str, forced: Optional[str]):
    def fill(current, request: gr.Request):
        prompt = text(f"prompt_{key}", request_language(request, forced))
        if isinstance(current, dict):  # a MultimodalTextbox: keep the attached files
            return {"text": prompt, "files": current.get("files") or []}
        return prompt

    return fill


def grounding_row(label):
    """Locate (a phrase) and Zoom (a box of the latest grounded answer): textbox, button, picker, button."""
    with gr.Row(equal_height=True):
        locate_text = gr.Textbox(label=label("locate_label"), placeholder=label("locate_placeholder"), scale=3,
                                 elem_id="locate-input")
        locate_btn = gr.Button(label("locate_button"), scale=1, elem_id="locate-button")
        zoom_choice = gr.Dropdown(label=label("zoom_label"), choices=[], value=None, interactive=False, scale=3,
                                  elem_id="zoom-choice")
        zoom_btn = gr.Button(label("zoom_button"), scale=1, elem_id="zoom-button")
    return locate_text, locate_btn, zoom_choice, zoom_btn


def ocr_row(label, prompts):
    """The model's block prompts (MiniCPM-OCR): a picker showing the exact text the model receives, and a button.
    Built for every model, shown only for one with prompts, so the event wiring is the same for all."""
    with gr.Row(equal_height=True, visible=bool(prompts), elem_id="ocr-row"):
        choice = gr.Dropdown(label=label("ocr_label"), choices=[p.text for p in prompts],
                             value=prompts[0].text if prompts else None, scale=3, elem_id="ocr-choice")
        button = gr.Button(label("ocr_button"), scale=1, elem_id="ocr-button")
    return choice, button


# launch() gives up ("When localhost is not accessible, a shareable link must be created") when one HEAD request for
# the page takes over 3 s, as it did on a loaded 2-core machine (seen in the suite under load). The app knows where it
# listens, so that probe is skipped; `_frontend` gates nothing else in the pinned Gradio.
NO_LOCALHOST_PROBE: dict[str, Any] = {"_frontend": False}


def launch(demo: gr.Blocks, args, *, concurrency: int) -> None:
    from ..cli import parse_auth

    demo.queue(default_concurrency_limit=concurrency)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=parse_auth(args.auth),
        max_file_size=args.max_file_size,
        state_session_capacity=args.max_sessions,
        show_error=False,
        **NO_LOCALHOST_PROBE,
        **getattr(demo, "launch_kwargs", {}),
    )
