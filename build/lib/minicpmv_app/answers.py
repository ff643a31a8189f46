"""How an answer is shown, by its format: plain text (grounding tags gone), or a table a model wrote as HTML.

Model-written HTML is never shown as it came: ``safe_table`` keeps table structure only (nh3, the ammonia
sanitiser): no scripts, no event handlers, no styles, no links or images, no attributes but colspan/rowspan.
No UI toolkit here: the Gradio and Streamlit views both call it.
"""

from __future__ import annotations

import nh3

TABLE_TAGS = {"table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "th", "td", "br"}
TABLE_ATTRIBUTES = {"td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}, "col": {"span"}, "colgroup": {"span"}}


def safe_table(html: str) -> str:
    """The table structure of ``html`` and its text; everything else removed (script and style with their text)."""
    return nh3.clean(html, tags=TABLE_TAGS, attributes=TABLE_ATTRIBUTES, url_schemes=set(), strip_comments=True,
                     link_rel=None).strip()


def is_table(answer: str) -> bool:
    """An answer that is an HTML table (Table Recognition's, however the prompt was sent: button, typed, server)."""
    return answer.lstrip().lower().startswith("<table")


def is_html(turn) -> bool:
    """The answer is shown as HTML: an OCR block prompt asked for a table, or the model wrote one anyway."""
    return getattr(turn, "answer_format", "text") == "html" or is_table(turn.answer)


def shown(turn) -> str:
    """What a person reads for ``turn``'s answer. An HTML answer is always sanitised, whatever its case or whether
    it holds a table at all (a UI may render it as HTML)."""
    if is_html(turn):
        return safe_table(turn.answer)
    return turn.shown_answer
