"""Bar charts as SVG text, drawn on the server: no chart library to install, nothing to run in
the browser, and the same picture in a saved page as on screen. Every bar carries a ``<title>``
(the browser's tooltip) with its exact value."""

from __future__ import annotations

from html import escape

BAR = "#fc4e2a"
GRID = "#ddd"


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def bars(labels: list[str], values: list[float], title: str, unit: str,
         width: int = 720, height: int = 220, css_class: str = "chart") -> str:
    """Vertical bars, one per label, with a labelled y axis."""
    left, right, top, bottom = 48, 8, 24, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(values, default=0))
    n = max(1, len(values))
    slot = plot_w / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" role="img"'
             f' viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f"<title>{escape(title)}</title>",
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"'
                     f' stroke="{GRID}"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                     f"{value:g}</text>")
    parts.append(f'<text x="12" y="{top + plot_h / 2:.0f}" font-size="10" text-anchor="middle"'
                 f' transform="rotate(-90 12 {top + plot_h / 2:.0f})">{escape(unit)}</text>')
    every = max(1, round(n / 24))
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top_value
        x = left + i * slot + slot * 0.1
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}"'
                     f' width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{BAR}">'
                     f"<title>{escape(label)}: {value:g} {escape(unit)}</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x + slot * 0.4:.1f}" y="{height - bottom + 14}"'
                         f' font-size="10" text-anchor="middle">{escape(label[:10])}</text>')
    parts.append("</svg>")
    return "".join(parts)
