"""A tiny SVG writer for the report's plots: linear scales, readable ticks, escaped elements.

Charts are inline ``<svg>`` elements in the page (no data URIs, no external resources, no ids, so
many charts share a page without clashes).  No ``xmlns`` is written: the HTML parser puts ``<svg>``
in the SVG namespace by itself, and the page names no external address.  Every text and attribute
value goes through :func:`esc` here, so a chart can be put into the page unescaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from harness.termsafe import page_safe

INK, ACCENT, WARN, MUTED, GRID = "#2c4a6e", "#d1495b", "#b7791f", "#5b6b7b", "#e3e8ee"
FONT_PX = 11


def esc(value: object) -> str:
    """Text or an attribute value, safe inside SVG/HTML (quotes included), its control characters shown as
    escapes as everywhere else on the page (harness.termsafe.page_safe)."""
    return escape(page_safe(value), {'"': "&quot;", "'": "&#x27;"})


def num(value: float) -> str:
    """A coordinate: two decimals are finer than a pixel and keep the markup short."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Scale:
    """Maps the data interval [lo, hi] onto the pixel interval [px_lo, px_hi] (either may run backwards)."""

    lo: float
    hi: float
    px_lo: float
    px_hi: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo
        frac = (value - self.lo) / span if span else 0.5
        return self.px_lo + frac * (self.px_hi - self.px_lo)


def nice_step(span: float, count: int, integer: bool = False) -> float:
    """A 1, 2 or 5 times a power of ten that cuts ``span`` into at most about ``count`` parts
    (at least 1 when ``integer``: counts have no half-iterations)."""
    raw = span / max(count, 1) if span > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return max(step, 1.0) if integer else step


def ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values inside [lo, hi]."""
    step = nice_step(hi - lo, count, integer)
    first = math.ceil(lo / step - 1e-9)
    values = [(first + i) * step for i in range(int((hi - lo) / step + 1e-9) + 2)]
    return [round(v, 12) for v in values if lo - 1e-9 * step <= v <= hi + 1e-9 * step]


def tick_label(value: float, step: float) -> str:
    """As many decimals as the step needs, and no more."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{value:.{decimals}f}"


@dataclass
class Canvas:
    """Collects elements; :meth:`render` wraps them in one ``<svg>``."""

    width: int
    height: int
    label: str  # what the chart shows: the svg's own <title> and aria-label
    parts: list[str] = field(default_factory=list)

    def add(self, tag: str, attrs: dict[str, object], title: str | None = None, text: str | None = None) -> None:
        """One element; ``title`` becomes a tooltip (a child <title>), ``text`` its text content."""
        attr = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(num(v) if isinstance(v, float) else v)}"'
                       for k, v in attrs.items() if v is not None)
        inner = (f"<title>{esc(title)}</title>" if title else "") + (esc(text) if text is not None else "")
        self.parts.append(f"<{tag}{attr}>{inner}</{tag}>" if inner else f"<{tag}{attr}/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str = MUTED, width: float = 1.0,
             dash: str | None = None, cls: str | None = None, title: str | None = None) -> None:
        self.add("line", {"class": cls, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "stroke": colour,
                          "stroke_width": width, "stroke_dasharray": dash}, title)

    def rect(self, x: float, y: float, w: float, h: float, colour: str, opacity: float = 1.0,
             cls: str | None = None, title: str | None = None) -> None:
        self.add("rect", {"class": cls, "x": x, "y": y, "width": max(w, 0.0), "height": max(h, 0.0), "fill": colour,
                          "fill_opacity": None if opacity == 1.0 else opacity}, title)

    def circle(self, x: float, y: float, r: float, colour: str, cls: str | None = None,
               title: str | None = None, hollow: bool = False) -> None:
        self.add("circle", {"class": cls, "cx": x, "cy": y, "r": r, "fill": "#fff" if hollow else colour,
                            "stroke": colour, "stroke_width": 1.2 if hollow else None}, title)

    def polyline(self, points: list[tuple[float, float]], colour: str, width: float = 1.2,
                 cls: str | None = None) -> None:
        self.add("polyline", {"class": cls, "points": " ".join(f"{num(x)},{num(y)}" for x, y in points),
                              "fill": "none", "stroke": colour, "stroke_width": width})

    def polygon(self, points: list[tuple[float, float]], colour: str, opacity: float, cls: str | None = None,
                title: str | None = None) -> None:
        self.add("polygon", {"class": cls, "points": " ".join(f"{num(x)},{num(y)}" for x, y in points),
                             "fill": colour, "fill_opacity": opacity, "stroke": "none"}, title)

    def text(self, x: float, y: float, content: str, anchor: str = "start", colour: str = MUTED,
             size: int = FONT_PX, cls: str | None = None, weight: str | None = None) -> None:
        self.add("text", {"class": cls, "x": x, "y": y, "text_anchor": anchor, "fill": colour, "font_size": size,
                          "font_weight": weight}, text=content)

    def render(self) -> str:
        return (f'<svg class="plot" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
                f'height="{self.height}" role="img" aria-label="{esc(self.label)}" '
                f'style="max-width:100%;height:auto;display:block;font-family:system-ui,sans-serif">'
                f"<title>{esc(self.label)}</title>{''.join(self.parts)}</svg>")


def legend(canvas: Canvas, x: float, y: float, entries: list[tuple[str, str, str]]) -> None:
    """A row of (kind, colour, label) entries left to right at ``y`` (outside the data area);
    kind is 'dot', 'band' (translucent), 'box' (solid), 'line' or 'dash'."""
    for kind, colour, label in entries:
        if kind == "dot":
            canvas.circle(x + 5, y - 4, 3.2, colour)
        elif kind in ("band", "box"):
            canvas.rect(x, y - 9, 12, 9, colour, 0.25 if kind == "band" else 1.0)
        else:
            canvas.line(x, y - 4, x + 12, y - 4, colour, 1.5, "4 3" if kind == "dash" else None)
        canvas.text(x + 16, y, label)
        x += 16 + 6.2 * len(label) + 14
