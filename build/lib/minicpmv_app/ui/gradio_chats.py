"""Gradio: past chats kept in the browser (``gr.BrowserState``), and export / import of a conversation.

The store is ``minicpmv_app.memory``'s dict; the conversation files are ``minicpmv_app.transcript``'s. The server
keeps nothing between requests: the store comes from the browser when a page opens or a chat is saved, and goes
back to it.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import secrets
import tempfile
from pathlib import Path
from typing import Optional

import gradio as gr

from .. import memory, transcript
from ..errors import MiniCPMVError
from ..session import ChatSession
from .gradio_common import UI_STEP, error, info, render, upload_folder, warning
from .i18n import localized, text

log = logging.getLogger(__name__)

STORAGE_KEY = "minicpmv-chats"


def browser_secret() -> str:
    """The key the browser's store is encrypted with. Kept in a file of this installation so a server restart
    can still read what browsers stored (``MINICPMV_BROWSER_SECRET`` overrides it, e.g. on a Space)."""
    if os.environ.get("MINICPMV_BROWSER_SECRET"):
        return os.environ["MINICPMV_BROWSER_SECRET"]
    home = Path(os.environ.get("MINICPMV_HOME") or Path.home() / ".cache" / "minicpmv-app")
    key_file = home / "browser-state.key"
    try:
        if not key_file.is_file():
            home.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(32))
        return key_file.read_text().strip()
    except OSError as exc:
        log.warning("Cannot keep a browser-state key in %s (%s): saved chats will not survive a restart.", home, exc)
        return secrets.token_urlsafe(32)


def save_bytes(data: bytes, suffix: str) -> str:
    handle, path = tempfile.mkstemp(prefix="imported-", suffix=suffix, dir=upload_folder())
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    return path


class ChatsPanel:
    """Past chats (open, new, rename, delete, with the memory used) and export / import, for one chat view.

    ``remember_after(event)`` saves the conversation once ``event`` ends (an answer, a Clear...).
    """

    def __init__(self, demo: gr.Blocks, steps, label, session: gr.State, chatbot: gr.Chatbot):
        self.steps, self.session, self.chatbot = steps, session, chatbot
        self.store = gr.BrowserState(memory.blank(), storage_key=STORAGE_KEY, secret=browser_secret())
        memory.forget_old()
        self.chat_id = gr.State(None)  # which saved chat this tab shows (None: not saved yet)
        with gr.Accordion(label("chats"), open=False, elem_id="chats-panel"):
            with gr.Row(equal_height=True):
                self.picker = gr.Dropdown(label=label("past_chats"), choices=[], value=None, scale=3,
                                          elem_id="past-chats")
                open_btn = gr.Button(label("open_chat"), scale=1, elem_id="open-chat")
                new_btn = gr.Button(label("new_chat"), scale=1, elem_id="new-chat")
                delete_btn = gr.Button(label("delete_chat"), variant="stop", scale=1, elem_id="delete-chat")
            with gr.Row(equal_height=True):
                name = gr.Textbox(label=label("chat_name"), scale=3, elem_id="chat-name")
                rename_btn = gr.Button(label("rename_chat"), scale=1, elem_id="rename-chat")
            self.status = gr.Markdown(elem_id="memory-status")
        with gr.Accordion(label("export"), open=False, elem_id="export-panel"):
            with gr.Row():
                buttons = {kind: gr.Button(label(f"export_{kind}"), size="sm", elem_id=f"export-{kind}")
                           for kind in transcript.EXPORTS}
                importer = gr.UploadButton(label("import_json"), file_types=[".json"], size="sm", elem_id="import-json")
            exported = gr.File(label=label("export_file"), interactive=False, elem_id="exported-file")

        shown = [self.session, self.chatbot, self.chat_id, self.store, self.picker, self.status]
        demo.load(self.reopen, [self.store, self.session], shown, api_visibility="private", **UI_STEP)
        open_btn.click(self.open, [self.picker, self.store, self.session], shown, api_name="open_chat", **UI_STEP)
        new_btn.click(self.new, [self.store, self.session], shown, api_name="new_chat", **UI_STEP)
        delete_btn.click(self.delete, [self.picker, self.store, self.chat_id, self.session], shown,
                         api_name="delete_chat", **UI_STEP)
        rename_btn.click(self.rename, [self.picker, name, self.store], [self.store, self.picker, self.status],
                         api_name="rename_chat", **UI_STEP)
        for kind, button in buttons.items():
            button.click(self.exporter(kind), self.session, exported, api_name=f"export_{kind}", **UI_STEP)
        self.remember_after(importer.upload(self.import_json, [importer, self.store, self.session], shown,
                                            api_name="import_json", **UI_STEP))

    # -- wiring for the demo -------------------------------------------------------------------------
    def remember_after(self, event):
        return event.then(self.remember, [self.session, self.store, self.chat_id],
                          [self.chat_id, self.store, self.picker, self.status], api_visibility="private", **UI_STEP)

    def forget_after(self, event):
        """After Clear: the chat is gone from this browser's memory too."""
        return event.then(self.forget, [self.store, self.chat_id], [self.chat_id, self.store, self.picker, self.status],
                          api_visibility="private", **UI_STEP)

    # -- event functions -----------------------------------------------------------------------------
    def lang(self, request: gr.Request) -> str:
        return self.steps.language(request)

    def listing(self, store: dict, lang: str, value: Optional[str] = None):
        limit = memory.MAX_STORE_BYTES / 1e6
        status = text("memory_used", lang, used=f"{memory.used(store) / 1e6:.2f}", limit=f"{limit:.1f}")
        return gr.Dropdown(choices=memory.choices(store), value=value), status

    def shown(self, session: ChatSession, chat_id, store: dict, lang: str):
        return (session, render(session, lang), chat_id, store, *self.listing(store, lang, chat_id))

    def load_into(self, session: ChatSession, data: str) -> transcript.Transcript:
        loaded = transcript.read(data.encode("utf-8"))
        transcript.restore(session, loaded, save_bytes)
        return loaded

    def reopen(self, store, session: ChatSession, request: gr.Request):
        """A page (re)opens: the chat it showed last comes back."""
        store = memory.normalise(store)
        lang, current = self.lang(request), memory.find(store, store["current"])
        if current is not None and not session.turns:
            try:
                loaded = self.load_into(session, current["data"])
                if loaded.skipped:  # video turns do not come back: say so
                    warning(text("imported_skipped", lang, count=len(loaded.turns), skipped=loaded.skipped), lang)
            except MiniCPMVError as exc:  # a stored chat this version cannot read: say so, keep the rest
                log.warning("A stored chat could not be reopened: %s", exc)
                warning(localized(exc, lang), lang)
                return self.shown(session, None, {**store, "current": None}, lang)
        return self.shown(session, store["current"], store, lang)

    def remember(self, session: ChatSession, store, chat_id, request: gr.Request):
        lang = self.lang(request)
        store = memory.normalise(store)
        if not session.turns or session.busy:
            return chat_id, store, *self.listing(store, lang, chat_id)
        data = transcript.export_json(session, transcript.run_card(self.steps.chat, session),
                                      picture_side=memory.STORE_PICTURE_SIDE)
        try:
            store, chat_id = memory.save(store, chat_id, transcript.default_title(session), data)
        except memory.MemoryFull as exc:
            warning(localized(exc, lang), lang)
        picker, status = self.listing(store, lang, chat_id)
        missing = [name for turn in session.turns for name in transcript.left_out(turn)]
        if missing:  # said in the memory line, not a toast: the failed turn already said why in the chat
            status += " " + text("export_left_out", lang, names=", ".join(missing))
        return chat_id, store, picker, status

    def forget(self, store, chat_id, request: gr.Request):
        store = memory.delete(store, chat_id)
        return None, store, *self.listing(store, self.lang(request))

    def open(self, choice, store, session: ChatSession, request: gr.Request):
        lang, store = self.lang(request), memory.normalise(store)
        chosen = memory.find(store, choice)
        try:
            if chosen is None and memory.listed(store, choice):  # listed, but its file expired or was deleted
                raise memory.InvalidInputError("This chat is no longer kept (not opened for 90 days, or deleted "
                                               "in another tab): delete it from the list.", key="chat_expired")
            if chosen is None:
                raise memory.InvalidInputError("Choose a saved chat first.", key="no_saved_chat")
            self.load_into(session, chosen["data"])
        except MiniCPMVError as exc:
            raise error(localized(exc, lang), lang) from None
        store = {**store, "current": choice}
        return self.shown(session, choice, store, lang)

    def new(self, store, session: ChatSession, request: gr.Request):
        lang, store = self.lang(request), memory.normalise(store)
        try:
            session.replace([])
        except MiniCPMVError as exc:
            raise error(localized(exc, lang), lang) from None
        return self.shown(session, None, {**store, "current": None}, lang)

    def delete(self, choice, store, chat_id, session: ChatSession, request: gr.Request):
        lang = self.lang(request)
        if not memory.listed(memory.normalise(store), choice):  # an expired chat can still be deleted
            raise error(text("error.no_saved_chat", lang), lang)
        if choice == chat_id:  # the chat on screen goes too
            try:
                session.replace([])
            except MiniCPMVError as exc:
                raise error(localized(exc, lang), lang) from None
            chat_id = None
        store = memory.delete(store, choice)
        return self.shown(session, chat_id, store, lang)

    def rename(self, choice, name, store, request: gr.Request):
        lang = self.lang(request)
        try:
            store = memory.rename(store, choice, name)
        except MiniCPMVError as exc:
            raise error(localized(exc, lang), lang) from None
        return store, *self.listing(store, lang, choice)

    def exporter(self, kind: str):
        suffix, _, write = transcript.EXPORTS[kind]

        def export(session: ChatSession, request: gr.Request) -> str:
            if not session.turns:
                raise error(text("nothing_to_export", self.lang(request)), self.lang(request))
            content = write(session, transcript.run_card(self.steps.chat, session))
            missing = [name for turn in session.turns for name in transcript.left_out(turn)]
            if missing:
                info(text("export_left_out", self.lang(request), names=", ".join(missing)), self.lang(request))
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            folder = Path(tempfile.mkdtemp(prefix="export-", dir=upload_folder()))
            path = folder / f"minicpmv-chat-{stamp}{suffix}"
            path.write_text(content, encoding="utf-8")
            return str(path)

        return export

    def import_json(self, file, store, session: ChatSession, request: gr.Request):
        lang, store = self.lang(request), memory.normalise(store)
        path = file if isinstance(file, str) else getattr(file, "name", None)
        if not path:  # an API call without a file
            refused = transcript.ImportRefused("No file was given: send a JSON export of this app.", key="import_not_json")
            raise error(localized(refused, lang), lang)
        try:
            if session.busy:
                session.replace([])  # refuses, with the reason
            loaded = transcript.read(Path(path).read_bytes())
            transcript.restore(session, loaded, save_bytes)
        except MiniCPMVError as exc:
            raise error(localized(exc, lang), lang) from None
        finally:
            Path(path).unlink(missing_ok=True)  # the uploaded file itself is not kept
        info(text("imported_skipped" if loaded.skipped else "imported", lang, count=len(loaded.turns),
                  skipped=loaded.skipped), lang)
        return self.shown(session, None, {**store, "current": None}, lang)
