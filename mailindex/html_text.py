"""The visible text of an HTML document: shared by the body text (parse) and attachments (attachment_text)."""

from __future__ import annotations

import re

__all__ = ["html_to_text", "MAX_HTML_BYTES"]

MAX_HTML_BYTES = 4 << 20  # HTML handed to the HTML parser per part

_lexbor = None


def html_to_text(html: str) -> str:
    """Visible text of an HTML document (script/style dropped), words separated by spaces."""
    global _lexbor
    try:
        if _lexbor is None:
            from selectolax.lexbor import LexborHTMLParser

            _lexbor = LexborHTMLParser
        tree = _lexbor(html)
        tree.strip_tags(["script", "style", "noscript", "template"])
        root = tree.root
        if root is None:
            return ""
        return root.text(separator=" ").replace("\xa0", " ")
    except Exception:  # noqa: BLE001
        return re.sub(r"<[^>]*>", " ", html)
