"""Outside text (plan, device, build and file names, utterance ids, a runner's reason) made safe to print on
a terminal or to write into XML.  A control character shows as its escape (``\\x1b``), so a name can neither
drive the terminal (colours, titles, hidden text, a cleared screen) nor make ``junit.xml`` ill-formed, and
the reader still sees that it was there.
"""

from __future__ import annotations

import re

# C0 controls but tab (newline too: one printed line per item), DEL, C1 controls, and the bidirectional
# overrides and isolates that reorder what a terminal shows ("Trojan Source").
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_TERMINAL_UNSAFE_KEEP_NEWLINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Everything XML 1.0 does not allow (its Char production), lone surrogates included.
_XML_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def term_safe(text: object, keep_newlines: bool = False) -> str:
    """``str(text)`` with every character that could steer a terminal shown as its escape."""
    pattern = _TERMINAL_UNSAFE_KEEP_NEWLINES if keep_newlines else _TERMINAL_UNSAFE
    return pattern.sub(_escape, str(text))


# In a page, only what a browser would drop or show as nothing: C0 controls but tab and line breaks, DEL and C1;
# and lone surrogates (a file name that is not UTF-8, as Python decodes it), which no page can be encoded with.
# (Right-to-left marks stay: a Hebrew or Arabic transcript needs them, and HTML lays them out safely.)
_PAGE_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def page_safe(text: object) -> str:
    """``str(text)`` with control characters shown as escapes, for HTML pages (which escape the rest)."""
    return _PAGE_UNSAFE.sub(_escape, str(text))


def xml_safe(text: object) -> str:
    """``str(text)`` with every character XML 1.0 forbids shown as its escape (ElementTree escapes the rest)."""
    return _XML_UNSAFE.sub(_escape, str(text))


def rich_safe(text: object) -> str:
    """Outside text for rich to print: no control characters, and no markup of its own ('[red]' in a name)."""
    from rich.markup import escape

    return escape(term_safe(text))
