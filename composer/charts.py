"""Inline SVG geometry for the job page: the loss curve and the weight bars.

Plain numbers for the template to draw; no JavaScript, so each htmx refresh of the status
fragment simply redraws them.
"""

from collections.abc import Sequence

WIDTH, HEIGHT, PAD = 480, 160, 6


def loss_curve(history: Sequence[dict], width: int = WIDTH, height: int = HEIGHT) -> dict | None:
    """Polylines of the loss at every step and of the best loss so far."""
    if not history:
        return None
    losses = [h["loss"] for h in history] + [h["best_loss"] for h in history]
    lo, hi = min(losses), max(losses)
    span = (hi - lo) or 1.0
    last = max(len(history) - 1, 1)

    def point(i: int, value: float) -> str:
        x = PAD + (width - 2 * PAD) * i / last
        y = PAD + (height - 2 * PAD) * (hi - value) / span
        return f"{x:.1f},{y:.1f}"

    return {
        "width": width,
        "height": height,
        "loss": " ".join(point(i, h["loss"]) for i, h in enumerate(history)),
        "best": " ".join(point(i, h["best_loss"]) for i, h in enumerate(history)),
        "low": lo,
        "high": hi,
    }


def weight_bars(
    weights: Sequence[float],
    labels: Sequence[str],
    width: int = WIDTH,
    row: int = 18,
    label_width: int = 190,
) -> dict | None:
    """One horizontal bar per input adapter, left of a zero line when negative."""
    if not weights:
        return None
    scale = max(max(abs(w) for w in weights), 1e-9)
    half = (width - label_width) / 2
    mid = label_width + half
    bars = []
    for i, w in enumerate(weights):
        length = (half - PAD) * abs(w) / scale
        bars.append(
            {
                "x": round(mid - length if w < 0 else mid, 1),
                "y": i * row + 2,
                "w": round(length, 1),
                "h": row - 4,
                "text_y": i * row + row - 5,
                "value": w,
                "label": labels[i] if i < len(labels) else f"#{i + 1}",
                "negative": w < 0,
            }
        )
    return {"width": width, "height": len(weights) * row, "mid": mid, "bars": bars}
