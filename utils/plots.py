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


def plot_learning_curves(
    histories, metric="loss", title=None, ax=None, log_scale=False
):
    """Plot training (dashed) and validation (solid) curves of several Keras histories.

    histories: a dict {model name: keras History or its .history dict}.
    """
    if not histories:
        raise ValueError("histories is empty: pass a dict {name: History}")
    ax = ax or plt.figure().gca()
    for color_index, (name, history) in enumerate(histories.items()):
        logs = getattr(history, "history", history)
        if metric not in logs:
            raise ValueError(
                f"{name!r} has no metric {metric!r}; it has {sorted(logs)}"
            )
        epochs = range(1, len(logs[metric]) + 1)
        color = f"C{color_index}"
        ax.plot(
            epochs, logs[metric], "--", color=color, alpha=0.6, label=f"{name} (train)"
        )
        if f"val_{metric}" in logs:
            ax.plot(
                epochs,
                logs[f"val_{metric}"],
                "-",
                color=color,
                label=f"{name} (validation)",
            )
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title or f"Learning curves: {metric}")
    ax.legend()
    return ax


# Diagram primitives: the boxes, nodes, operators and arrows of the book's box-and-arrow figures
# (utils.diagrams builds each figure from them). Coordinates are data coordinates of `ax`; each
# primitive returns the artists it added.


def _point(name, value):
    """`value` as an (x, y) pair of floats, or a ValueError that names the argument."""
    try:
        x, y = (float(coordinate) for coordinate in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair of numbers (x, y), got {value!r}"
        ) from None
    return x, y


def _positive(name, value):
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def draw_box(
    ax,
    center,
    text,
    color,
    width=0.8,
    height=0.5,
    text_color="white",
    fontsize=11,
    alpha=0.85,
    edgecolor=None,
):
    """A filled rectangle centred on `center` with `text` in its middle (a layer, a gate, a state).

    color fills the box (and draws its edge, unless edgecolor is given). Returns (rectangle, text).
    Pass text="" for an unlabelled box, e.g. a light background panel with alpha=1 and an edgecolor.
    """
    x, y = _point("center", center)
    _positive("width", width)
    _positive("height", height)
    colors = (
        {"color": color}
        if edgecolor is None
        else {"facecolor": color, "edgecolor": edgecolor}
    )
    rectangle = ax.add_patch(
        plt.Rectangle(
            (x - width / 2, y - height / 2), width, height, alpha=alpha, **colors
        )
    )
    label = ax.text(
        x, y, text, ha="center", va="center", fontsize=fontsize, color=text_color
    )
    return rectangle, label


def draw_node(ax, center, text, fontsize=12, facecolor="w", boxstyle="round"):
    """A text node: `text` centred on `center` inside a rounded frame (a variable of a graph).

    Returns the text; its frame is text.get_bbox_patch().
    """
    x, y = _point("center", center)
    frame = {"boxstyle": boxstyle, "fc": facecolor}
    return ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, bbox=frame)


def draw_operator(
    ax, center, symbol, radius=0.22, fontsize=13, facecolor="white", edgecolor="0.2"
):
    """An operator circle (×, +) of radius `radius` on `center` with `symbol` in it.

    Returns (circle, text). The circle is round only if the axes have equal x and y scales.
    """
    x, y = _point("center", center)
    _positive("radius", radius)
    circle = ax.add_patch(
        plt.Circle((x, y), radius, facecolor=facecolor, edgecolor=edgecolor)
    )
    label = ax.text(x, y, symbol, ha="center", va="center", fontsize=fontsize)
    return circle, label


def draw_arrow(ax, start, end, color="0.3", lw=1.2, curve=0.0, **style):
    """An arrow from `start` to `end` (the head at `end`), drawn with ax.annotate.

    curve: bends the arrow into an arc (matplotlib's arc3 `rad`; positive bends to the left of the
    direction of travel, e.g. 0.4 or -0.4 for a feedback arrow). Further `style` keys go to the
    arrow's arrowprops, e.g. arrowstyle="<->", shrinkA=14, shrinkB=14 (points left free at each end).
    Returns the annotation.
    """
    start, end = _point("start", start), _point("end", end)
    if start == end:
        raise ValueError(
            f"an arrow needs two different points, got start = end = {start}"
        )
    arrowprops = {"arrowstyle": "->", "color": color, "lw": lw}
    if curve:
        arrowprops["connectionstyle"] = f"arc3,rad={curve}"
    return ax.annotate("", end, start, arrowprops=arrowprops | style)


def draw_line(ax, points, color="0.3", lw=1.2):
    """A plain polyline through `points` (two or more (x, y) pairs), without arrowhead: a wire.

    Returns the Line2D.
    """
    points = [_point("each point", point) for point in points]
    if len(points) < 2:
        raise ValueError(f"a line needs at least two points, got {len(points)}")
    xs, ys = zip(*points, strict=True)
    (line,) = ax.plot(xs, ys, "-", color=color, lw=lw)
    return line


def frame_diagram(ax, xlim, ylim, title):
    """Finish a diagram: the visible region xlim x ylim, no axes (a diagram has no scale), a title."""
    for name, limits in (("xlim", xlim), ("ylim", ylim)):
        low, high = _point(name, limits)
        if not low < high:
            raise ValueError(
                f"{name} must be (low, high) with low < high, got {limits!r}"
            )
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_axis_off()
    ax.set_title(title)
    return ax
