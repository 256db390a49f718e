#!/usr/bin/env python3
"""Generate the SVG figures used by the deck sources.

Pure Python (standard library only) and fully deterministic: running it twice
produces byte-identical files.  Output goes to ``source/images/`` next to this
script's parent directory.

    python scripts/make_figures.py

Figures:
    images/bias-variance.svg  -- bias^2 / variance / irreducible / total error
    images/activations.svg    -- common neural-network activation functions

Each SVG draws its own white background card, so it stays readable on both
light and dark Anki themes.
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "source" / "images"

WIDTH, HEIGHT = 600, 400
FONT = "Helvetica, Arial, 'DejaVu Sans', sans-serif"

# Okabe-Ito palette (colour-blind safe), dark enough for a white background.
BLUE = "#0072B2"
VERMILION = "#D55E00"
GREEN = "#009E73"
PURPLE = "#8E44AD"
AMBER = "#B07800"
GREY = "#6B6B6B"
INK = "#1A1A1A"
AXIS = "#333333"
GRID = "#E3E3E3"


def fmt(v: float) -> str:
    """Format a coordinate with fixed precision (avoids '-0.00')."""
    s = f"{v:.2f}"
    if s == "-0.00":
        s = "0.00"
    # trim trailing zeros for compactness, deterministically
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def polyline(points, colour, width=2.5, dash=None) -> str:
    pts = " ".join(f"{fmt(x)},{fmt(y)}" for x, y in points)
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<polyline points="{pts}" fill="none" stroke="{colour}" '
        f'stroke-width="{width}" stroke-linejoin="round" stroke-linecap="round"{dash_attr}/>'
    )


def text(x, y, s, size=13, colour=INK, anchor="start", weight="normal", extra="") -> str:
    return (
        f'<text x="{fmt(x)}" y="{fmt(y)}" font-size="{size}" fill="{colour}" '
        f'text-anchor="{anchor}" font-weight="{weight}"{extra}>{escape(s)}</text>'
    )


def svg_document(title: str, desc: str, body: list[str]) -> str:
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="title desc" '
        f'font-family="{FONT}">',
        f'<title id="title">{escape(title)}</title>',
        f'<desc id="desc">{escape(desc)}</desc>',
        # Explicit light card so the figure reads well on dark themes too.
        f'<rect x="0.5" y="0.5" width="{WIDTH - 1}" height="{HEIGHT - 1}" rx="10" fill="#FFFFFF" stroke="#D0D7DE"/>',
    ]
    return "\n".join(head + body + ["</svg>", ""])


def legend(x, y, entries, row=20, box_w=200) -> list[str]:
    """entries: list of (label, colour, width, dash)."""
    h = row * len(entries) + 12
    out = [
        f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{box_w}" height="{h}" rx="6" '
        f'fill="#FFFFFF" fill-opacity="0.92" stroke="#C8C8C8"/>'
    ]
    for i, (label, colour, width, dash) in enumerate(entries):
        cy = y + 16 + i * row
        out.append(polyline([(x + 10, cy), (x + 38, cy)], colour, width, dash))
        out.append(text(x + 46, cy + 4.5, label, size=13))
    return out


# ---------------------------------------------------------------------------
# Figure 1: bias-variance trade-off
# ---------------------------------------------------------------------------


def bias_variance_svg() -> str:
    left, right, top, bottom = 70.0, 575.0, 50.0, 338.0
    y_max = 1.6
    noise = 0.15

    def bias2(t):
        return 0.8 * math.exp(-4.0 * t)

    def variance(t):
        return 0.04 * math.exp(3.2 * t)

    def total(t):
        return bias2(t) + variance(t) + noise

    def px(t):
        return left + t * (right - left)

    def py(e):
        return bottom - e / y_max * (bottom - top)

    n = 200
    ts = [i / n for i in range(n + 1)]
    # Analytic optimum of total error: d/dt = 0  <=>  exp(7.2 t) = 3.2 / 0.128
    t_opt = math.log(3.2 / 0.128) / 7.2
    e_opt = total(t_opt)

    body: list[str] = []
    body.append(text(WIDTH / 2, 30, "Bias–variance trade-off", size=17, anchor="middle", weight="bold"))

    # Region shading
    body.append(
        f'<rect x="{fmt(left)}" y="{fmt(top)}" width="{fmt(px(t_opt) - left)}" '
        f'height="{fmt(bottom - top)}" fill="{BLUE}" fill-opacity="0.06"/>'
    )
    body.append(
        f'<rect x="{fmt(px(t_opt))}" y="{fmt(top)}" width="{fmt(right - px(t_opt))}" '
        f'height="{fmt(bottom - top)}" fill="{VERMILION}" fill-opacity="0.06"/>'
    )
    body.append(
        text((left + px(t_opt)) / 2, top + 22, "Underfitting", size=14, colour=BLUE, anchor="middle", weight="bold")
    )
    body.append(text((left + px(t_opt)) / 2, top + 39, "(high bias)", size=12, colour=BLUE, anchor="middle"))
    body.append(
        text(
            (px(t_opt) + right) / 2, top + 22, "Overfitting", size=14, colour=VERMILION, anchor="middle", weight="bold"
        )
    )
    body.append(text((px(t_opt) + right) / 2, top + 39, "(high variance)", size=12, colour=VERMILION, anchor="middle"))

    # Curves
    body.append(polyline([(px(t), py(noise)) for t in ts], GREY, 2.2, "7 5"))
    body.append(polyline([(px(t), py(bias2(t))) for t in ts], BLUE, 2.5))
    body.append(polyline([(px(t), py(variance(t))) for t in ts], VERMILION, 2.5))
    body.append(polyline([(px(t), py(total(t))) for t in ts], INK, 3.5))

    # Optimum marker
    xo, yo = px(t_opt), py(e_opt)
    body.append(
        f'<line x1="{fmt(xo)}" y1="{fmt(top)}" x2="{fmt(xo)}" y2="{fmt(bottom)}" '
        f'stroke="{GREEN}" stroke-width="1.8" stroke-dasharray="4 4"/>'
    )
    body.append(f'<circle cx="{fmt(xo)}" cy="{fmt(yo)}" r="6" fill="{GREEN}" stroke="#FFFFFF" stroke-width="2"/>')
    body.append(text(xo + 10, yo - 12, "optimum", size=13, colour=GREEN, weight="bold"))

    # Axes
    body.append(
        f'<line x1="{fmt(left)}" y1="{fmt(bottom)}" x2="{fmt(right + 8)}" '
        f'y2="{fmt(bottom)}" stroke="{AXIS}" stroke-width="1.6"/>'
    )
    body.append(
        f'<line x1="{fmt(left)}" y1="{fmt(bottom)}" x2="{fmt(left)}" '
        f'y2="{fmt(top - 8)}" stroke="{AXIS}" stroke-width="1.6"/>'
    )
    body.append(
        f'<polygon points="{fmt(right + 14)},{fmt(bottom)} {fmt(right + 4)},'
        f'{fmt(bottom - 5)} {fmt(right + 4)},{fmt(bottom + 5)}" fill="{AXIS}"/>'
    )
    body.append(
        f'<polygon points="{fmt(left)},{fmt(top - 14)} {fmt(left - 5)},'
        f'{fmt(top - 4)} {fmt(left + 5)},{fmt(top - 4)}" fill="{AXIS}"/>'
    )
    body.append(text(left, bottom + 18, "low", size=12, colour=GREY, anchor="start"))
    body.append(text(right, bottom + 18, "high", size=12, colour=GREY, anchor="end"))
    body.append(text((left + right) / 2, bottom + 40, "Model complexity", size=14, anchor="middle"))
    body.append(
        text(
            28,
            (top + bottom) / 2,
            "Error",
            size=14,
            anchor="middle",
            extra=f' transform="rotate(-90 28 {fmt((top + bottom) / 2)})"',
        )
    )

    # Legend (placed in the empty area right of the optimum)
    body.extend(
        legend(
            px(0.52),
            py(1.33),
            [
                ("Total error", INK, 3.5, None),
                ("Bias²", BLUE, 2.5, None),
                ("Variance", VERMILION, 2.5, None),
                ("Irreducible error", GREY, 2.2, "7 5"),
            ],
            box_w=168,
        )
    )

    return svg_document(
        "Bias–variance trade-off",
        "As model complexity grows, squared bias falls and variance rises; the "
        "irreducible error is flat. Total error is U-shaped with its minimum at the "
        "optimal complexity; left of it the model underfits, right of it it overfits.",
        body,
    )


# ---------------------------------------------------------------------------
# Figure 2: activation functions
# ---------------------------------------------------------------------------


def activations_svg() -> str:
    left, right, top, bottom = 58.0, 575.0, 50.0, 355.0
    x_min, x_max = -4.0, 4.0
    y_min, y_max = -1.5, 3.0

    def px(x):
        return left + (x - x_min) / (x_max - x_min) * (right - left)

    def py(y):
        return bottom - (y - y_min) / (y_max - y_min) * (bottom - top)

    def sigmoid(x):
        return 1.0 / (1.0 + math.exp(-x))

    def gelu(x):
        return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))

    def leaky(x):
        return x if x > 0 else 0.1 * x

    funcs = [
        ("sigmoid", sigmoid, BLUE, 2.5, None),
        ("tanh", math.tanh, VERMILION, 2.5, None),
        ("ReLU", lambda x: max(0.0, x), INK, 3.0, None),
        ("leaky ReLU (α = 0.1)", leaky, AMBER, 2.5, "8 5"),
        ("GELU", gelu, GREEN, 2.5, "2 4"),
    ]

    body: list[str] = []
    body.append(text(WIDTH / 2, 30, "Activation functions", size=17, anchor="middle", weight="bold"))

    # Grid + tick labels
    for xi in range(int(x_min), int(x_max) + 1):
        body.append(
            f'<line x1="{fmt(px(xi))}" y1="{fmt(top)}" x2="{fmt(px(xi))}" '
            f'y2="{fmt(bottom)}" stroke="{GRID}" stroke-width="1"/>'
        )
        body.append(text(px(xi), bottom + 17, str(xi).replace("-", "−"), size=11, colour=GREY, anchor="middle"))
    for yi in (-1, 0, 1, 2, 3):
        body.append(
            f'<line x1="{fmt(left)}" y1="{fmt(py(yi))}" x2="{fmt(right)}" '
            f'y2="{fmt(py(yi))}" stroke="{GRID}" stroke-width="1"/>'
        )
        body.append(text(left - 8, py(yi) + 4, str(yi).replace("-", "−"), size=11, colour=GREY, anchor="end"))
    # Zero axes
    body.append(
        f'<line x1="{fmt(left)}" y1="{fmt(py(0))}" x2="{fmt(right)}" '
        f'y2="{fmt(py(0))}" stroke="{AXIS}" stroke-width="1.4"/>'
    )
    body.append(
        f'<line x1="{fmt(px(0))}" y1="{fmt(top)}" x2="{fmt(px(0))}" '
        f'y2="{fmt(bottom)}" stroke="{AXIS}" stroke-width="1.4"/>'
    )
    body.append(
        f'<rect x="{fmt(left)}" y="{fmt(top)}" width="{fmt(right - left)}" '
        f'height="{fmt(bottom - top)}" fill="none" stroke="#BBBBBB"/>'
    )

    # Curves, clipped to the plot rectangle
    body.append(
        f'<clipPath id="plot"><rect x="{fmt(left)}" y="{fmt(top)}" '
        f'width="{fmt(right - left)}" height="{fmt(bottom - top)}"/></clipPath>'
    )
    body.append('<g clip-path="url(#plot)">')
    n = 320
    xs = [x_min + (x_max - x_min) * i / n for i in range(n + 1)]
    for _, f, colour, width, dash in funcs:
        body.append(polyline([(px(x), py(f(x))) for x in xs], colour, width, dash))
    body.append("</g>")

    body.append(text((left + right) / 2, bottom + 38, "input x", size=13, anchor="middle"))
    body.extend(
        legend(px(-3.85), py(2.9), [(name, colour, width, dash) for name, _, colour, width, dash in funcs], box_w=190)
    )

    return svg_document(
        "Activation functions",
        "Sigmoid (range 0 to 1), tanh (range -1 to 1), ReLU, leaky ReLU with slope "
        "0.1 for negative inputs, and GELU plotted for inputs from -4 to 4.",
        body,
    )


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    outputs = {
        "bias-variance.svg": bias_variance_svg(),
        "activations.svg": activations_svg(),
    }
    for name, content in outputs.items():
        path = IMAGES / name
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(content)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
