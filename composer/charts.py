"""What the job page draws: the loss curve (inline SVG with axes) and the weights table.

Plain numbers for the template; no JavaScript, so each htmx refresh of the status fragment
simply redraws them.
"""

from collections.abc import Sequence

# The plot area sits inside margins that hold the tick labels (left) and steps (bottom).
WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 70, 24, 10, 36


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi == lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def loss_curve(history: Sequence[dict], width: int = WIDTH, height: int = HEIGHT) -> dict | None:
    """Polylines of the loss at every step and of the best loss so far, with value ticks on
    the y axis and step numbers on the x axis (steps whose loss was not finite are left out:
    stored as None)."""
    history = [h for h in history if h["loss"] is not None and h["best_loss"] is not None]
    if not history:
        return None
    losses = [h["loss"] for h in history] + [h["best_loss"] for h in history]
    lo, hi = min(losses), max(losses)
    span = (hi - lo) or 1.0
    first, last = history[0]["step"], history[-1]["step"]
    steps = (last - first) or 1
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def x(step: float) -> float:
        return round(LEFT + plot_w * (step - first) / steps, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (hi - value) / span, 1)

    def line(key: str) -> str:
        return " ".join(f"{x(h['step'])},{y(h[key])}" for h in history)

    step_ticks = sorted({first, (first + last) // 2, last})
    return {
        "width": width,
        "height": height,
        "left": LEFT,
        "right": width - RIGHT,
        "top": TOP,
        "bottom": height - BOTTOM,
        "loss": line("loss"),
        "best": line("best_loss"),
        "y_ticks": [{"y": y(v), "value": v} for v in _ticks(lo, hi)],
        "x_ticks": [{"x": x(s), "step": s} for s in step_ticks],
        "label_y": height - 4,
        "middle": round(TOP + plot_h / 2, 1),
        "low": lo,
        "high": hi,
    }


# Inputs at weight 0 listed under the weights table at most: a screened job's N can be 500.
FOLDED_MOST = 100


def weight_table(
    weights: Sequence[float],
    inputs: Sequence[tuple[str, str | None]],
    screening: Sequence[dict] | None = None,
    searched: Sequence[int] = (),
    most: int = FOLDED_MOST,
) -> dict:
    """The weights table of `inputs` ((label, catalog URL or None) by input position).

    `rows`: the inputs that carry weight (non-zero, or `searched` over), the largest in
    magnitude first (a weight of -0.9 moves the result more than one of 0.1); `percent` is
    the bar's length relative to the largest magnitude (a negative weight's bar is red).
    `folded`: the others (weight 0), by screening loss, best first, a loss that was not
    finite (stored as None) last (input order without a `screening`: `by_loss` False), at
    most `most` of them; `zero` counts them all and `more` those left out.
    """
    scale = max((abs(w) for w in weights), default=0.0) or 1.0
    losses = {row["index"]: row["loss"] for row in screening or ()}
    searched = set(searched)
    carried, zero = [], []
    for i, w in enumerate(weights):
        label, url = inputs[i] if i < len(inputs) else (f"#{i + 1}", None)
        row = {
            "label": label,
            "url": url,
            "value": w,
            "percent": round(100 * abs(w) / scale, 1),
            "negative": w < 0,
            "loss": losses.get(i),
        }
        (carried if w or i in searched else zero).append(row)
    carried.sort(key=lambda r: -abs(r["value"]))
    if losses:
        zero.sort(key=lambda r: (r["loss"] is None, r["loss"]))
    return {
        "by_loss": bool(losses),
        "rows": carried,
        "folded": zero[:most],
        "zero": len(zero),
        "more": max(0, len(zero) - most),
    }
