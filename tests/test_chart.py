"""modelhub/chart.py on its own: where labels go (never over another label or a dot, full names, the
best trade-offs first) and what a dot is in the SVG (its hover text, a button that opens the details)."""

import random
import re
import time

from modelhub import chart

BOUNDS = (64, 2, 996, 372)  # the WIDE layout's plotting area, as scatter() passes it


def band(count: int, seed: int = 16) -> list[tuple[float, float, float]]:
    """COUNT dots crowded into one horizontal band of the plot, each with a full-length name's width."""
    rng = random.Random(seed)
    names = [f"{rng.choice(['TheBloke', 'bartowski', 'mistralai'])}/Mistral-7B-code-ft-v{i}-GGUF-Q4_K_M" for i in range(count)]
    return [(rng.uniform(80, 980), rng.uniform(150, 230), chart.text_width(name, 11)) for name in names]


def dot_box(cx, cy, radius=5.0):
    return (cx - radius, cy - radius, cx + radius, cy + radius)


def test_labels_of_200_dots_in_one_band_overlap_no_label_and_no_dot():
    anchors = band(200)
    placed = chart.place_labels(anchors, radius=5, font=11, bounds=BOUNDS, limit=40)
    assert 3 <= len(placed) <= 40  # some fit around the crowd; the rest are left out, not piled up
    boxes = list(placed.items())
    for i, (a_index, a) in enumerate(boxes):
        assert BOUNDS[0] <= a[0] and BOUNDS[1] <= a[1] and a[2] <= BOUNDS[2] and a[3] <= BOUNDS[3]
        assert abs((a[2] - a[0]) - anchors[a_index][2]) < 1e-6  # the whole name's width: never truncated
        for _, b in boxes[i + 1:]:
            assert not chart.overlap(a, b)
        for d_index, (cx, cy, _) in enumerate(anchors):
            if d_index != a_index:
                assert not chart.overlap(a, dot_box(cx, cy)), f"label {a_index} covers dot {d_index}"


def test_a_label_goes_right_else_left_else_above_or_below_its_dot():
    width = 100.0
    alone = chart.place_labels([(300, 200, width)], radius=5, font=11, bounds=BOUNDS, limit=5)
    assert alone[0][0] > 300  # right of the dot
    at_right_edge = chart.place_labels([(950, 200, width)], radius=5, font=11, bounds=BOUNDS, limit=5)
    assert at_right_edge[0][2] < 950  # left of it, ending at it
    # Neighbours close on both sides: above (or below) it, starting at it.
    hemmed = chart.place_labels([(300, 200, width), (330, 200, 10), (270, 200, 10)], radius=5, font=11,
                                bounds=BOUNDS, limit=1)
    box = hemmed[0]
    assert box[3] <= 200 - 5 or box[1] >= 200 + 5
    assert abs(box[0] - (300 - 5)) < 1e-6
    # No room anywhere (dots all around, the edge above): dropped.
    boxed_in = [(300, 10, width)] + [(300 + dx, 10 + dy, 5) for dx in (-20, -10, 10, 20, 30, 60, 90, 110)
                                     for dy in (0, 12, 24)]
    assert 0 not in chart.place_labels(boxed_in, radius=5, font=11, bounds=BOUNDS, limit=50, priority=[0])


def test_the_best_trade_offs_are_labelled_first():
    points = [chart.Point(x=50, y=10, label="org/slow-and-bad", title=""),
              chart.Point(x=90, y=20, label="org/best-quality", title=""),
              chart.Point(x=40, y=100, label="org/fastest", title=""),
              chart.Point(x=60, y=60, label="org/balanced", title=""),
              chart.Point(x=55, y=50, label="org/dominated", title="")]
    order = [points[i].label for i in chart._priority(points)]
    assert order[:3] == ["org/best-quality", "org/balanced", "org/fastest"]  # the frontier, best quality first
    assert order[3:] == ["org/dominated", "org/slow-and-bad"]  # then the fastest of the rest


def test_the_svg_labels_full_names_and_every_dot_is_a_button_with_its_story():
    points = [chart.Point(x=40 + i, y=10 * i + 5, label=f"organisation-{i}/Mistral-7B-code-ft-{i}",
                          title=f"organisation-{i}/Mistral-7B-code-ft-{i} · MMLU {40 + i}", status="compatible",
                          href=f"/models/organisation-{i}/Mistral-7B-code-ft-{i}/details") for i in range(4)]
    svg = str(chart.scatter(points, x_label="MMLU score", y_label="tok/s", title="t"))
    assert 'width="100%"' in svg and 'viewBox="0 0 1000 440"' in svg  # fills its container, any width
    labels = re.findall(r'<text class="point-label"[^>]*>([^<]*)</text>', svg)
    assert sorted(labels) == sorted(p.label for p in points)  # room for all four: each one's full name
    buttons = re.findall(r'<g class="point-link" tabindex="0" role="button" aria-haspopup="dialog" '
                         r'data-model-name="([^"]*)" data-details="([^"]*)">\s*<title>([^<]*)</title><circle', svg)
    assert [(b[0], b[1]) for b in buttons] == [(p.label, p.href) for p in points]  # left to right: the Tab order
    assert [b[2] for b in buttons] == [p.title for p in points]
    assert svg.count('class="chart-callout"') == 1


def test_the_compact_chart_has_bigger_dots_and_few_labels():
    points = [chart.Point(x=i, y=(i * 37) % 101, label=f"o/m{i}", title="") for i in range(60)]
    svg = str(chart.scatter(points, x_label="x", y_label="y", title="t", layout=chart.COMPACT,
                            css_class="chart-compact", id_prefix="chart-compact"))
    assert 'viewBox="0 0 360 400"' in svg and 'id="chart-compact-title"' in svg
    assert f'r="{chart.COMPACT.radius}"' in svg and chart.COMPACT.radius > chart.WIDE.radius
    assert 1 <= svg.count('class="point-label"') <= chart.COMPACT.max_labels
    assert 'class="point-static"' in svg  # no href: a dot, not a button


def test_2000_dots_are_placed_quickly():
    anchors = band(2000, seed=3)
    started = time.perf_counter()
    chart.place_labels(anchors, radius=5, font=11, bounds=BOUNDS, limit=40)
    assert time.perf_counter() - started < 1.0


def test_axes_span_the_data_not_from_zero():
    points = [chart.Point(x=55 + i / 10, y=60 + i / 5, label="o/m", title="") for i in range(100)]
    svg = str(chart.scatter(points, x_label="x", y_label="y", title="t"))
    ticks = re.findall(r'text-anchor="end">([\d.,]+)</text>', svg)  # the y axis's tick labels
    assert ticks and float(ticks[0]) >= 55  # throughputs of 60-80 fill the height, not its top quarter
