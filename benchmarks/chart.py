"""A grouped bar chart as a standalone SVG, written by hand (no plotting library needed)."""

from __future__ import annotations

from html import escape

COLOURS = ["#9e9e9e", "#5b7db1", "#e07b39", "#6aa84f", "#b45f9e", "#c9a227"]


def bar_panel(
    title: str,
    groups: list[str],
    series: dict[str, list[float | None]],
    unit: str,
    *,
    x: float,
    y: float,
    width: float,
    height: float,
    reference: float | None = None,
    cap: float | None = None,
) -> list[str]:
    """SVG elements for one panel: ``series[name][i]`` is the bar of ``name`` in ``groups[i]``.

    With ``cap``, the scale stops there: a taller bar is cut (drawn hatched) and keeps its label.
    """
    out = [
        f'<text x="{x + width / 2:.1f}" y="{y + 16:.1f}" text-anchor="middle" '
        f'font-size="15" font-weight="bold">{escape(title)}</text>'
    ]
    top, bottom, left = y + 30, y + height - 40, x + 50
    plot_width = width - 60
    values = [v for vals in series.values() for v in vals if v is not None]
    peak = max([*values, reference or 0.0]) * 1.12 or 1.0
    if cap is not None:
        peak = min(peak, cap)
    out.append(
        f'<line x1="{left}" y1="{bottom}" x2="{left + plot_width}" y2="{bottom}" stroke="#333"/>'
    )
    for step in range(5):
        value = peak * step / 4
        ypos = bottom - (bottom - top) * step / 4
        out.append(
            f'<line x1="{left}" y1="{ypos:.1f}" x2="{left + plot_width}" y2="{ypos:.1f}" '
            f'stroke="#e5e5e5"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{ypos + 4:.1f}" text-anchor="end" font-size="11">'
            f"{value:.3g}</text>"
        )
    out.append(
        f'<text x="{x + 12}" y="{(top + bottom) / 2:.1f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 {x + 12} {(top + bottom) / 2:.1f})">{escape(unit)}</text>'
    )
    group_width = plot_width / max(len(groups), 1)
    bar_width = group_width * 0.8 / max(len(series), 1)
    for g, group in enumerate(groups):
        gx = left + g * group_width + group_width * 0.1
        for s, (_name, vals) in enumerate(series.items()):
            value = vals[g]
            if value is None:
                continue
            bar_height = (bottom - top) * min(value, peak) / peak
            bx = gx + s * bar_width
            out.append(
                f'<rect x="{bx:.1f}" y="{bottom - bar_height:.1f}" width="{bar_width - 2:.1f}" '
                f'height="{bar_height:.1f}" fill="{COLOURS[s % len(COLOURS)]}"'
                + (' stroke="#000" stroke-dasharray="3 3"/>' if value > peak else "/>")
            )
            out.append(
                f'<text x="{bx + bar_width / 2 - 1:.1f}" y="{bottom - bar_height - 3:.1f}" '
                f'text-anchor="middle" font-size="9">{value:.3g}</text>'
            )
        out.append(
            f'<text x="{gx + group_width * 0.4:.1f}" y="{bottom + 16:.1f}" text-anchor="middle" '
            f'font-size="11">{escape(group)}</text>'
        )
    if reference is not None:
        ypos = bottom - (bottom - top) * reference / peak
        out.append(
            f'<line x1="{left}" y1="{ypos:.1f}" x2="{left + plot_width}" y2="{ypos:.1f}" '
            f'stroke="#333" stroke-dasharray="4 3"/>'
        )
    legend_x = left
    for s, name in enumerate(series):
        out.append(
            f'<rect x="{legend_x:.1f}" y="{bottom + 26:.1f}" width="10" height="10" '
            f'fill="{COLOURS[s % len(COLOURS)]}"/>'
        )
        out.append(
            f'<text x="{legend_x + 14:.1f}" y="{bottom + 35:.1f}" font-size="11">'
            f"{escape(name)}</text>"
        )
        legend_x += 24 + 7 * len(name)
    return out


def svg(panels: list[list[str]], *, width: float, height: float, caption: str) -> str:
    body = "\n".join(element for panel in panels for element in panel)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n{body}\n'
        f'<text x="8" y="{height - 6:.0f}" font-size="10" fill="#555">{escape(caption)}</text>\n'
        "</svg>\n"
    )
