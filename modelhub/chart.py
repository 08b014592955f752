"""Server-side SVG charts: no JavaScript library, nothing fetched from elsewhere.

Every piece of text that reaches the SVG (model names, quantization, labels) is escaped here, so a
template can output the result as it is.
"""

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

# The status colours users know from the badges (green, red, yellow, blue, gray), as saturated dots
# (the badges use the light variants).
STATUS_COLOURS = {
    "compatible": "#28a745",
    "incompatible": "#dc3545",
    "degraded": "#e0a800",
    "testing": "#007bff",
    "unknown": "#6c757d",
}
MAX_LABELS = 20
_CHAR_WIDTH = 6.2  # of the 11px label font, near enough to keep labels from overlapping


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # short text drawn beside the dot
    title: str  # the hover text: the whole story of the dot
    status: str = "unknown"


@dataclass(frozen=True)
class Frame:
    """The plotting area inside the SVG, leaving room for ticks and axis titles."""

    width: int
    height: int
    left: int = 64
    right: int = 20
    top: int = 16
    bottom: int = 52

    @property
    def inner_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def inner_height(self) -> int:
        return self.height - self.top - self.bottom


def scatter(points: list[Point], *, x_label: str, y_label: str, title: str, width: int = 600, height: int = 400) -> Markup:
    """A scatter plot of ``points`` as an ``<svg>`` element; each dot carries a ``<title>`` (hover)."""
    frame = Frame(width, height)
    x_ticks = nice_ticks(min(p.x for p in points), max(p.x for p in points))
    y_ticks = nice_ticks(0, max(p.y for p in points))

    def sx(value):
        return frame.left + (value - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * frame.inner_width

    def sy(value):
        return frame.top + frame.inner_height - (value - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * frame.inner_height

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="chart-title">',
        f'<title id="chart-title">{escape(title)}</title>',
        *_axes(frame, x_ticks, y_ticks, sx, sy, x_label, y_label),
        *_dots(points, sx, sy),
        *_labels(points, sx, sy, frame),
        "</svg>",
    ]
    return Markup("\n".join(parts))


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values covering ``[low, high]``: steps of 1, 2 or 5 times a power of ten."""
    if high <= low:
        low, high = (low - 1, high + 1) if low == 0 else (low - abs(low) * 0.1, high + abs(high) * 0.1)
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [first]
    while ticks[-1] < high - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def format_number(value: float) -> str:
    """Tick and hover numbers: 1200 -> "1,200", 72.5 -> "72.5", 0.25 -> "0.25"."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _axes(frame, x_ticks, y_ticks, sx, sy, x_label, y_label) -> list[str]:
    bottom = frame.top + frame.inner_height
    out = ['<g class="chart-axes" font-size="11" fill="#5f6670">']
    for tick in y_ticks:
        y = sy(tick)
        out.append(f'<line class="grid" x1="{frame.left}" x2="{frame.left + frame.inner_width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e8eb"/>')
        out.append(f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(format_number(tick))}</text>')
    for tick in x_ticks:
        x = sx(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}" stroke="#5f6670"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{escape(format_number(tick))}</text>')
    out.append(f'<line x1="{frame.left}" x2="{frame.left + frame.inner_width}" y1="{bottom}" y2="{bottom}" stroke="#5f6670"/>')
    out.append(f'<line x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" y2="{bottom}" stroke="#5f6670"/>')
    middle_x = frame.left + frame.inner_width / 2
    middle_y = frame.top + frame.inner_height / 2
    out.append(f'<text class="axis-title" x="{middle_x:.1f}" y="{frame.height - 8}" text-anchor="middle" font-size="12" fill="#1f2328">{escape(x_label)}</text>')
    out.append(
        f'<text class="axis-title" x="14" y="{middle_y:.1f}" text-anchor="middle" font-size="12" fill="#1f2328" '
        f'transform="rotate(-90 14 {middle_y:.1f})">{escape(y_label)}</text>'
    )
    out.append("</g>")
    return out


def _dots(points, sx, sy) -> list[str]:
    out = ['<g class="chart-points">']
    for p in points:
        colour = STATUS_COLOURS.get(p.status, STATUS_COLOURS["unknown"])
        out.append(
            f'<circle class="point status-{escape(p.status)}" cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="5" '
            f'fill="{colour}" fill-opacity="0.85" stroke="#fff" stroke-width="1.5"><title>{escape(p.title)}</title></circle>'
        )
    out.append("</g>")
    return out


def _labels(points, sx, sy, frame) -> list[str]:
    """Up to MAX_LABELS labels, highest y first, skipping any that would overlap one already drawn."""
    placed = []
    out = ['<g class="chart-labels" font-size="11" fill="#1f2328">']
    for p in sorted(points, key=lambda p: -p.y):
        if len(placed) == MAX_LABELS:
            break
        text = p.label if len(p.label) <= 24 else p.label[:23] + "…"
        w = len(text) * _CHAR_WIDTH
        y = sy(p.y) + 4
        # Right of the dot, else left of it; a label that fits neither place is left to the hover text.
        sides = [x for x in (sx(p.x) + 8, sx(p.x) - 8 - w) if frame.left <= x and x + w <= frame.width - 2]
        box = next((b for b in ((x, y - 8, x + w, y + 2) for x in sides) if not any(_overlap(b, o) for o in placed)), None)
        if box is None:
            continue
        placed.append(box)
        out.append(f'<text class="point-label" x="{box[0]:.1f}" y="{y:.1f}">{escape(text)}</text>')
    out.append("</g>")
    return out


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
