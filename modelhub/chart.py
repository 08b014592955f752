"""Server-side SVG charts: no JavaScript library, nothing fetched from elsewhere.

Every piece of text that reaches the SVG (model names, quantization, labels) is escaped here, so a
template can output the result as it is.

A chart is drawn for one ``Layout`` (a size with its font, dot radius and label budget); the SVG scales
to its container's width through its viewBox, so the page draws a wide and a compact one and shows the
one that fits (text scaled to a third of its size is no longer text). Labels carry the full name and are
placed where they overlap no other label and no dot; one that fits nowhere is left out, and its dot still
names its model on hover (``<title>``) and on keyboard focus (static/js/compare.js).
"""

import math
from collections import defaultdict
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

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in SVG units


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the text drawn beside the dot when there is room: the model's full name
    title: str  # the hover text: the whole story of the dot
    status: str = "unknown"
    href: str | None = None  # where its details are (htmx puts them in the modal); None: the dot is not a button


@dataclass(frozen=True)
class Layout:
    """One size of chart: the viewBox, and what stays readable at that size."""

    width: int
    height: int
    font: float  # label and tick font size
    radius: float  # of a dot
    max_labels: int
    ticks: int  # about how many ticks per axis
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


# WIDE is drawn about 1:1 from ~900 px of container up; COMPACT about 1:1 on a phone, with bigger dots
# (a fingertip, not a pointer), taller (the crowd spreads up and down) and a handful of labels where
# they fit: in a crowd, none, and a tap on a dot opens its details, which name it.
WIDE = Layout(width=1000, height=440, font=11, radius=5, max_labels=40, ticks=7)
COMPACT = Layout(width=360, height=400, font=11, radius=6.5, max_labels=6, ticks=5, left=50, right=10, bottom=46)


def scatter(points: list[Point], *, x_label: str, y_label: str, title: str, layout: Layout = WIDE,
            css_class: str = "chart", id_prefix: str = "chart") -> Markup:
    """A scatter plot of ``points`` as an ``<svg>`` that fills its container's width; each dot carries a
    ``<title>`` (hover) and, with an ``href``, is a focusable button opening the model's details."""
    x_low, x_high, x_ticks = _domain([p.x for p in points], layout.ticks)
    y_low, y_high, y_ticks = _domain([p.y for p in points], layout.ticks)

    def sx(value):
        return layout.left + (value - x_low) / (x_high - x_low) * layout.inner_width

    def sy(value):
        return layout.top + layout.inner_height - (value - y_low) / (y_high - y_low) * layout.inner_height

    # Left to right: the order a keyboard user tabs through the dots.
    ordered = sorted(points, key=lambda p: (p.x, -p.y))
    centres = [(sx(p.x), sy(p.y)) for p in ordered]
    bounds = (layout.left, 2, layout.width - 4, layout.top + layout.inner_height)
    labels = place_labels([(cx, cy, text_width(p.label, layout.font)) for (cx, cy), p in zip(centres, ordered)],
                          priority=_priority(ordered), radius=layout.radius, font=layout.font, bounds=bounds,
                          limit=layout.max_labels)
    parts = [
        (f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {layout.width} {layout.height}" '
         f'width="100%" preserveAspectRatio="xMidYMid meet" role="group" aria-labelledby="{id_prefix}-title" '
         f'font-size="{layout.font}">'),
        f'<title id="{id_prefix}-title">{escape(title)}</title>',
        *_axes(layout, x_ticks, y_ticks, sx, sy, x_label, y_label),
        *_points(ordered, centres, labels, layout),
        # Filled in on hover and focus by static/js/compare.js: the name of a dot that has no label.
        '<text class="chart-callout" visibility="hidden" aria-hidden="true"></text>',
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


def _domain(values: list[float], count: int) -> tuple[float, float, list[float]]:
    """An axis for ``values``: the data's range (not from zero: models crowd a band, which then fills the
    chart) with a little room so that no dot sits on an axis, and the round ticks inside it."""
    low, high = min(values), max(values)
    if high - low < 1e-9:  # one value: a range around it, as nice_ticks makes one
        ticks = nice_ticks(low, high, count)
        return ticks[0], ticks[-1], ticks
    room = (high - low) * 0.04
    low, high = (max(0.0, low - room) if low >= 0 else low - room), high + room
    return low, high, [t for t in nice_ticks(low, high, count) if low - 1e-9 <= t <= high + 1e-9]


def format_number(value: float) -> str:
    """Tick and hover numbers: 1200 -> "1,200", 72.5 -> "72.5", 0.25 -> "0.25"."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


# ---- labels ------------------------------------------------------------------------------------------

# Advance widths in em, on the wide side of the sans-serif fonts a browser picks for system-ui (DejaVu
# Sans is the widest common one): an estimate too small would let drawn labels overlap.
_NARROW, _WIDE_CHARS, _CAPS = set("iljtfI.,:;'|!()[]{} "), set("mwMW@%"), 0.72
_NARROW_EM, _WIDE_EM, _DEFAULT_EM = 0.34, 0.92, 0.62


def text_width(text: str, font: float) -> float:
    """About how wide ``text`` is drawn at ``font`` px, never much less than it really is."""
    em = 0.0
    for char in text:
        if char in _NARROW:
            em += _NARROW_EM
        elif char in _WIDE_CHARS:
            em += _WIDE_EM
        elif char.isupper():
            em += _CAPS
        else:
            em += _DEFAULT_EM
    return em * font


def place_labels(anchors: list[tuple[float, float, float]], *, radius: float, font: float, bounds: Box,
                 limit: int, priority: list[int] | None = None) -> dict[int, Box]:
    """Greedy label placement. ``anchors``: each dot's centre and its label's width. Dots are taken in
    ``priority`` order (default: as given); each label tries right of its dot, left, above and below
    starting at the dot, then above and below ending at it, and takes the first spot inside ``bounds`` that overlaps no label placed so far
    and no dot; a label with no such spot is dropped. Returns {anchor index: the label's box}, at most
    ``limit`` of them."""
    height = font * 1.25
    gap = 3.0
    grid = _Grid(cell=max(24.0, font * 4))
    for cx, cy, _ in anchors:
        grid.add((cx - radius - 1, cy - radius - 1, cx + radius + 1, cy + radius + 1))
    placed: dict[int, Box] = {}
    for index in priority if priority is not None else range(len(anchors)):
        if len(placed) == limit:
            break
        cx, cy, width = anchors[index]
        own = (cx - radius - 1, cy - radius - 1, cx + radius + 1, cy + radius + 1)
        reach = radius + gap
        # Each spot keeps one end of the label at its dot (a long name centred above a dot seems to
        # belong to whichever dot is under its middle): right, left, above, below, then above and
        # below ending at the dot.
        spots = (
            (cx + reach, cy - height / 2), (cx - reach - width, cy - height / 2),
            (cx - radius, cy - reach - height), (cx - radius, cy + reach),
            (cx + radius - width, cy - reach - height), (cx + radius - width, cy + reach),
        )
        for x, y in spots:
            box = (x, y, x + width, y + height)
            if _inside(box, bounds) and not grid.hits(box, ignore=own):
                placed[index] = box
                grid.add(box)
                break
    return placed


def _priority(points: list[Point]) -> list[int]:
    """Which dots earn a label first: the best trade-offs (no other model is both better and faster: the
    upper-right frontier), then the fastest of the rest."""
    by_quality = sorted(range(len(points)), key=lambda i: (-points[i].x, -points[i].y))
    frontier, fastest = [], -math.inf
    for i in by_quality:
        if points[i].y > fastest:
            frontier.append(i)
            fastest = points[i].y
    chosen = set(frontier)
    return frontier + sorted((i for i in range(len(points)) if i not in chosen), key=lambda i: -points[i].y)


class _Grid:
    """Boxes bucketed by grid cell, so a candidate is checked against its neighbours only (2,000 dots)."""

    def __init__(self, cell: float):
        self.cell = cell
        self.cells: dict[tuple[int, int], list[Box]] = defaultdict(list)

    def _keys(self, box: Box):
        for gx in range(math.floor(box[0] / self.cell), math.floor(box[2] / self.cell) + 1):
            for gy in range(math.floor(box[1] / self.cell), math.floor(box[3] / self.cell) + 1):
                yield gx, gy

    def add(self, box: Box) -> None:
        for key in self._keys(box):
            self.cells[key].append(box)

    def hits(self, box: Box, ignore: Box | None = None) -> bool:
        return any(other != ignore and overlap(box, other) for key in self._keys(box) for other in self.cells.get(key, ()))


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(box: Box, bounds: Box) -> bool:
    return bounds[0] <= box[0] and bounds[1] <= box[1] and box[2] <= bounds[2] and box[3] <= bounds[3]


# ---- drawing -----------------------------------------------------------------------------------------

def _axes(layout, x_ticks, y_ticks, sx, sy, x_label, y_label) -> list[str]:
    bottom = layout.top + layout.inner_height
    right = layout.left + layout.inner_width
    out = ['<g class="chart-axes" fill="#5f6670" aria-hidden="true">']
    for tick in y_ticks:
        y = sy(tick)
        out.append(f'<line class="grid" x1="{layout.left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e8eb"/>')
        out.append(f'<text x="{layout.left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(format_number(tick))}</text>')
    for tick in x_ticks:
        x = sx(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}" stroke="#5f6670"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{escape(format_number(tick))}</text>')
    out.append(f'<line x1="{layout.left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#5f6670"/>')
    out.append(f'<line x1="{layout.left}" x2="{layout.left}" y1="{layout.top}" y2="{bottom}" stroke="#5f6670"/>')
    middle_x = layout.left + layout.inner_width / 2
    middle_y = layout.top + layout.inner_height / 2
    out.append(f'<text class="axis-title" x="{middle_x:.1f}" y="{layout.height - 8}" text-anchor="middle" font-size="12" fill="#1f2328">{escape(x_label)}</text>')
    out.append(
        f'<text class="axis-title" x="14" y="{middle_y:.1f}" text-anchor="middle" font-size="12" fill="#1f2328" '
        f'transform="rotate(-90 14 {middle_y:.1f})">{escape(y_label)}</text>'
    )
    out.append("</g>")
    return out


def _points(points, centres, labels: dict[int, Box], layout: Layout) -> list[str]:
    """Each dot with its label (if it got one) in one group, its <title> the hover text and, for a screen
    reader, the group's name. With an href the group is a button (static/js/compare.js opens the details
    on click, Enter or Space), so the label is as clickable as the dot. Colours and strokes come from
    compare.css but the fill, so a dot keeps its status colour wherever the SVG is shown."""
    out = ['<g class="chart-points">']
    baseline = layout.font * 0.95  # from a label box's top: the box is 1.25 em high
    for index, (p, (cx, cy)) in enumerate(zip(points, centres)):
        colour = STATUS_COLOURS.get(p.status, STATUS_COLOURS["unknown"])
        if p.href:
            out.append(f'<g class="point-link" tabindex="0" role="button" aria-haspopup="dialog" '
                       f'data-model-name="{escape(p.label)}" data-details="{escape(p.href)}">')
        else:
            out.append('<g class="point-static">')
        out.append(f'<title>{escape(p.title)}</title>'
                   f'<circle class="point status-{escape(p.status)}" cx="{cx:.1f}" cy="{cy:.1f}" r="{layout.radius}" fill="{colour}"/>')
        box = labels.get(index)
        if box is not None:
            # A label left of its dot (or ending at it) is drawn from its end: the estimated width is on the
            # generous side, and the name must end at its dot, not short of it.
            ends_at_dot = box[0] < cx - layout.radius - 0.01
            x, anchor = (box[2], ' text-anchor="end"') if ends_at_dot else (box[0], "")
            out.append(f'<text class="point-label" x="{x:.1f}" y="{box[1] + baseline:.1f}"{anchor} '
                       f'aria-hidden="true">{escape(p.label)}</text>')
        out.append("</g>")
    out.append("</g>")
    return out
