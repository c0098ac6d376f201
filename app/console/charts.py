"""Charts drawn on the server as SVG by pygal (no script, no CDN): what the page shows is
what the server computed."""

from __future__ import annotations

import re

import pygal
from pygal.style import Style

SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
STYLE = Style(background="white", plot_background="white", foreground="#1f2328",
              foreground_strong="#1f2328", foreground_subtle="#6b7280",
              colors=("#e4572e", "#2563eb", "#16a34a", "#b45309"),
              font_family="Noto Sans CJK SC, PingFang SC, sans-serif",
              label_font_size=14, major_label_font_size=14, legend_font_size=15,
              title_font_size=17)


def _finish(chart) -> str:
    """Inline SVG without pygal's script (the tooltips' config): the console runs no inline
    script, and the chart needs none to be read."""
    svg = chart.render(is_unicode=True, disable_xml_declaration=True)
    return SCRIPT.sub("", svg)


def daily_line(title: str, days: list[str], series: dict[str, list[int]]) -> str:
    chart = pygal.Line(style=STYLE, height=300, width=480, show_dots=False, fill=False,
                       x_label_rotation=0, show_minor_x_labels=False, js=[],
                       x_labels_major_every=max(1, len(days) // 6), truncate_label=-1,
                       legend_at_bottom=True, title=title)
    chart.x_labels = days
    for name, values in series.items():
        chart.add(name, values)
    return _finish(chart)


def bars(title: str, labels: list[str], values: list[int], name: str) -> str:
    chart = pygal.Bar(style=STYLE, height=300, width=480, js=[], show_legend=False,
                      title=title, truncate_label=-1)
    chart.x_labels = labels
    chart.add(name, values)
    return _finish(chart)


def funnel(title: str, steps: list[tuple[str, int]]) -> str:
    chart = pygal.HorizontalBar(style=STYLE, height=60 + 40 * len(steps), width=480, js=[],
                                show_legend=False, title=title, print_values=True)
    chart.x_labels = [label for label, _ in steps]
    chart.add("", [value for _, value in steps])
    return _finish(chart)
