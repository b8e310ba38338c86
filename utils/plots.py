"""One figure style for the whole book."""

import matplotlib as mpl
import matplotlib.pyplot as plt

BOOK_STYLE = {
    "figure.figsize": (7.0, 3.8),
    "figure.dpi": 90,
    "savefig.dpi": 90,
    "figure.autolayout": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}


def use_book_style():
    """Apply the book's matplotlib style (called by utils.book.setup_book)."""
    mpl.rcParams.update(BOOK_STYLE)


def plot_learning_curves(histories, metric="loss", title=None, ax=None, log_scale=False):
    """Plot training (dashed) and validation (solid) curves of several Keras histories.

    histories: a dict {model name: keras History or its .history dict}.
    """
    if not histories:
        raise ValueError("histories is empty: pass a dict {name: History}")
    ax = ax or plt.figure().gca()
    for color_index, (name, history) in enumerate(histories.items()):
        logs = getattr(history, "history", history)
        if metric not in logs:
            raise ValueError(f"{name!r} has no metric {metric!r}; it has {sorted(logs)}")
        epochs = range(1, len(logs[metric]) + 1)
        color = f"C{color_index}"
        ax.plot(epochs, logs[metric], "--", color=color, alpha=0.6, label=f"{name} (train)")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], "-", color=color, label=f"{name} (validation)")
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title or f"Learning curves: {metric}")
    ax.legend()
    return ax
