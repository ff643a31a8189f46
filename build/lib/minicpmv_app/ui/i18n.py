"""English and Simplified Chinese for every UI: one table per language in ``locales/``.

Static labels in Gradio follow the browser's language through ``gr.I18n`` unless ``--lang`` forces one;
text made while answering (warnings, errors in the chat) uses the request's Accept-Language the same way.
Errors from the Python API carry a ``key`` (see ``errors.py``) that selects their translation here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..errors import MiniCPMVError

LOCALES = Path(__file__).resolve().parent / "locales"
LANGUAGES = {"en": "English", "zh": "简体中文"}
TABLES = {code: json.loads((LOCALES / f"{code}.json").read_text(encoding="utf-8")) for code in LANGUAGES}
DEFAULT = "en"


def text(key: str, lang: Optional[str] = None, **values) -> str:
    table = TABLES.get(lang or DEFAULT, TABLES[DEFAULT])
    return table.get(key, TABLES[DEFAULT][key]).format(**values)


def progress_words(event, lang: Optional[str] = None) -> str:
    """What a progress bar says for a session's ``Progress`` event: decoding a video, rendering PDF pages, or
    encoding pictures (with the estimated time left)."""
    if event.kind == "encoding":  # "k of n" is in the words: the bar gets a fraction (no unit of its own)
        if not event.total:  # before the vision pass: the picture is decoded and sliced
            return text("encoding_picture_start", lang)
        if event.left_s is None or event.done >= event.total:
            return text("encoding_picture", lang, done=event.done, total=event.total)
        return text("encoding_picture_left", lang, done=event.done, total=event.total,
                    seconds=max(1, round(event.left_s)))
    return text("rendering_pdf" if event.kind == "pdf" else "decoding_video", lang)


def language_of(accept_language: Optional[str]) -> str:
    """The first supported language in an Accept-Language header (or a locale like 'zh-CN')."""
    for item in (accept_language or "").split(","):
        code = item.split(";")[0].strip().lower()
        base = code.split("-")[0].split("_")[0]
        if base in LANGUAGES:
            return base
    return DEFAULT


def request_language(request, forced: Optional[str] = None) -> str:
    if forced:
        return forced
    headers = getattr(request, "headers", None) or {}
    return language_of(headers.get("accept-language"))


def localized(exc: BaseException, lang: Optional[str] = None) -> str:
    """An error's message in ``lang``: its translation when it has a key, else its own (English) text.

    In English the exception's own text is shown: it is the most specific (file names, URLs, sizes); the
    English table entries list the keys and are the fallback wording.
    """
    key = getattr(exc, "key", None)
    if (lang or DEFAULT) != DEFAULT and isinstance(exc, MiniCPMVError) and key and f"error.{key}" in TABLES[DEFAULT]:
        try:
            return text(f"error.{key}", lang, **exc.params)
        except (KeyError, IndexError, TypeError, ValueError):  # params that do not fit the translation
            return str(exc)
    return str(exc)


def question(turn, lang: Optional[str] = None) -> str:
    """A turn's question as the person asked it: a label's words (``Turn.label``), else the text sent."""
    if turn.label:
        values = {k: v for k, v in turn.label.items() if k != "key"}
        return text(turn.label["key"], lang, **values)
    return turn.text


def user_message(exc: BaseException, lang: str = DEFAULT) -> str:
    """What the chat shows for a failed answer: our own messages, and anything else without internals."""
    if isinstance(exc, MiniCPMVError):
        return text("error_prefix", lang, message=localized(exc, lang))
    return text("error_prefix", lang, message=text("unexpected_error", lang, kind=type(exc).__name__))


class Labels:
    """Labels for building a Gradio UI: browser-following ``gr.I18n`` keys, or plain text of a forced language."""

    def __init__(self, forced: Optional[str] = None) -> None:
        self.forced = forced
        self.i18n: Optional[Any] = None
        if forced is None:
            import gradio as gr

            # Browsers send zh-CN, zh-Hans or zh; Gradio matches the locale code as sent.
            self.i18n = gr.I18n(en=TABLES["en"], zh=TABLES["zh"], **{"zh-CN": TABLES["zh"], "zh-Hans": TABLES["zh"]})

    def __call__(self, key: str):
        return self.i18n(key) if self.i18n is not None else text(key, self.forced)

    def launch_kwargs(self) -> dict:
        page = {"head": page_language_script(self.forced) + RANGE_NOTE_SCRIPT, "css": TOAST_TITLES_CSS}
        return {"i18n": self.i18n, **page} if self.i18n is not None else page


def page_language_script(forced: Optional[str]) -> str:
    """The page's <html lang>: the forced language, else the browser's, so the CSS below can follow it."""
    value = f"'{forced}'" if forced in TABLES else "(navigator.language || 'en')"
    return f"<script>document.documentElement.lang = {value};</script>"


# A number typed into a slider's box outside its range is clamped by Gradio when the box loses focus, with no word
# said. Read in the capture phase, before Gradio's own handler clamps it, the typed value gets a note under the
# slider in the page's language (the range is the same one the API refuses with, ``settings.SCHEMA``).
RANGE_NOTE_SCRIPT = """<script>
(() => {
  const notes = %s;
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || !["number-input", "range-input"].includes(box.dataset.testid)) return;
    const block = box.closest(".block");
    let note = block && block.querySelector(".range-note");
    const value = parseFloat(box.value), low = parseFloat(box.min), high = parseFloat(box.max);
    if (box.dataset.testid === "range-input" || isNaN(value) || isNaN(low) || isNaN(high)
        || (value >= low && value <= high)) {
      if (note) note.remove();
      return;
    }
    if (!note) {
      note = document.createElement("div");
      note.className = "range-note";
      note.setAttribute("role", "status");
      note.style.cssText = "color: var(--error-text-color); font-size: var(--text-sm); padding-top: 2px";
      block.appendChild(note);
    }
    const words = (document.documentElement.lang || "en").startsWith("zh") ? notes.zh : notes.en;
    note.textContent = words.replace("{low}", box.min).replace("{high}", box.max)
                            .replace("{value}", value < low ? box.min : box.max);
  }, true);
})();
</script>""" % json.dumps({code: TABLES[code]["range_note"] for code in LANGUAGES}, ensure_ascii=False)


# Gradio writes its toast titles ("Error", "Info", "Warning") from the toast's type and never translates them;
# in a Chinese page the app's own words stand in their place.
TOAST_TITLES_CSS = "".join(
    f'html:lang(zh) .toast-title.{kind}{{font-size:0}}'
    f'html:lang(zh) .toast-title.{kind}::before{{content:"{TABLES["zh"]["toast_" + kind]}";font-size:var(--text-md)}}'
    for kind in ("error", "info", "warning")
) + "html:lang(zh) .toast-count{font-size:var(--text-sm)}"


def model_status(chat, lang: Optional[str] = None) -> str:
    """The line under a page's heading: what runs the model once it is loaded; until then how far loading is
    ("Loading the model (reading the weights)… 45%"); or, if it failed, its reason in one line."""
    status = chat.status()
    if status.ready:
        return f"`{chat.backend.describe()}`"
    if status.state == "failed":
        return text("model_status_failed", lang, message=localized(status.error, lang))
    stage = text(f"load_stage_{status.stage}", lang) if f"load_stage_{status.stage}" in TABLES[DEFAULT] else status.stage
    percent = f"{status.fraction:.0%}" if status.fraction is not None else ""
    return text("model_status_loading", lang, stage=stage, percent=percent)
