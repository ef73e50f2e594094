"""The report's plots: matplotlib (Agg), PNG, opaque white background, labelled axes with units."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ayakit.io import atomic_path  # noqa: E402


@functools.cache
def style() -> dict:
    """Colours and sizes from the packaged style file."""
    text = resources.files("ayakit.report").joinpath("templates/style.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def tier_color(tier: str | None) -> str:
    """The colour of a resource tier."""
    colors = style()["tier_colors"]
    return colors.get(tier or "unknown", colors["unknown"])


def _figure(n_bars: int = 0):
    s = style()
    width = min(s["max_width"], max(s["min_width"], n_bars * s["bar_width_per_language"] + 1.5))
    fig, ax = plt.subplots(figsize=(width, s["height"]))
    fig.patch.set_facecolor("white")
    fig.patch.set_alpha(1.0)
    ax.set_facecolor("white")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=style()["dpi"], facecolor="white", transparent=False)
    plt.close(fig)
    return path


def _tier_legend(ax, tiers: Sequence[str]) -> None:
    present = [t for t in ("high", "mid", "low", "unknown") if t in set(tiers)]
    ax.legend(handles=[Patch(color=tier_color(t), label=f"{t}-resource" if t != "unknown" else t)
                       for t in present], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, framealpha=1.0)


def language_bars(path: Path, labels: list[str], values: list[float], tiers: list[str], ylabel: str,
                  title: str, markers: list[float | None] | None = None, marker_label: str = "",
                  hline: float | None = None, hline_label: str = "") -> Path:
    """Bars per language coloured by tier; optional hollow markers (e.g. the baseline) and a horizontal line (chance)."""
    fig, ax = _figure(len(labels))
    xs = range(len(labels))
    ax.bar(xs, values, color=[tier_color(t) for t in tiers], width=0.8)
    handles_extra = []
    if markers is not None:
        pts = [(x, m) for x, m in zip(xs, markers) if m is not None]
        if pts:
            handles_extra.append(ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker="_", s=60,
                                            color="black", linewidths=1.6, label=marker_label, zorder=3))
    if hline is not None:
        handles_extra.append(ax.axhline(hline, color=style()["series_colors"]["chance"], linestyle="--",
                                        linewidth=1, label=hline_label))
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=90, fontsize=7 if len(labels) > 30 else 9)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_xlabel("language (ISO 639-3)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    _tier_legend(ax, tiers)
    if handles_extra:
        first = ax.get_legend()
        ax.add_artist(first)
        ax.legend(handles=handles_extra, loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8, framealpha=1.0)
    return _save(fig, path)


def grouped_bars(path: Path, groups: list[str], series: dict[str, list[float]], ylabel: str, title: str,
                 xlabel: str, colors: dict[str, str] | None = None) -> Path:
    """Bars of several named series side by side for each group (requested vs realised, baseline vs trained)."""
    fig, ax = _figure(len(groups) * max(1, len(series)))
    n = max(1, len(series))
    width = 0.8 / n
    palette = style()["series_colors"]
    for i, (name, values) in enumerate(series.items()):
        offs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        color = (colors or {}).get(name) or palette.get(name)
        bars = ax.bar(offs, values, width=width, label=name, color=color)
        ax.bar_label(bars, fmt="%.2f" if max(values or [0]) <= 1.5 else "%.1f", fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.margins(y=0.15)
    ax.legend(fontsize=8, framealpha=1.0, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def loss_curves(path: Path, train: list[tuple[int, float]], validation: list[tuple[int, float]]) -> Path:
    """Training and validation loss against the optimiser step."""
    fig, ax = _figure()
    colors = style()["series_colors"]
    if train:
        ax.plot([s for s, _ in train], [v for _, v in train], color=colors["train"], linewidth=1.2,
                label="train loss")
    if validation:
        ax.plot([s for s, _ in validation], [v for _, v in validation], color=colors["validation"], marker="o",
                markersize=4, linewidth=1.2, label="validation loss")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy loss (nats per token)")
    ax.set_title("Loss curves", fontsize=11)
    ax.legend(fontsize=8, framealpha=1.0)
    return _save(fig, path)
