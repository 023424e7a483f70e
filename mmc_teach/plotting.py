"""The book's figure style: one colour-blind-safe palette and consistent defaults for every chapter.

Call :func:`use_book_style` once in a notebook's import cell; every later figure then uses the
Okabe-Ito palette :data:`PALETTE` (distinguishable with the common colour-vision deficiencies and in
greyscale print by lightness), labelled, readable axes and one figure size. :func:`cluster_colors`
gives one colour per cluster for scatter plots; with more than eight clusters add :data:`MARKERS`
so that clusters stay apart without relying on colour alone.

Figures also need alt text on the site: give the code cell the metadata
``{"mystnb": {"image": {"alt": "what the figure shows"}}}``.

>>> from mmc_teach.plotting import use_book_style, PALETTE
>>> use_book_style()
>>> PALETTE[0]
'#E69F00'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PALETTE", "OKABE_ITO", "MARKERS", "SEQUENTIAL_CMAP", "DIVERGING_CMAP", "BOOK_RC", "cluster_colors", "image_grid", "use_book_style"]

#: The eight Okabe-Ito colours by name (Okabe & Ito 2008, "Color Universal Design").
OKABE_ITO: Mapping[str, str] = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}

#: Colour cycle of every figure: Okabe-Ito, ordered so that the first colours differ most in hue and
#: lightness; black comes last because it dominates a scatter plot.
PALETTE: tuple[str, ...] = (
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["blue"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["yellow"],
    OKABE_ITO["black"],
)

# Beyond eight categories no palette stays distinguishable for every reader; these colours (Paul
# Tol's "muted" scheme, also colour-blind-safe) extend the cycle, and markers carry the difference.
_EXTRA: tuple[str, ...] = (
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
    "#DDCC77", "#CC6677", "#882255", "#AA4499", "#DDDDDD",
)

#: Marker shapes to pair with :data:`PALETTE` when a plot has many clusters.
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")

#: Perceptually uniform, colour-blind-safe colour maps for continuous values and signed values.
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"

#: The rcParams :func:`use_book_style` sets (a plain dict, so a chapter can inspect or extend it).
BOOK_RC: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 2.0,
    "lines.markersize": 6,
    "scatter.edgecolors": "none",
    "image.cmap": SEQUENTIAL_CMAP,
}
# Deliberately not set: a layout engine (a chapter's plt.tight_layout() would then warn, and warnings
# break nbval's output comparison) and axes.grid (grid lines would cross heatmaps drawn with imshow).


def cluster_colors(n: int) -> list[str]:
    """One colour per cluster: the Okabe-Ito palette, extended past eight clusters.

    Parameters
    ----------
    n : int
        Number of clusters (or classes), at least 1.

    Returns
    -------
    colors : list of str
        ``n`` hex colours; the first eight are :data:`PALETTE`. Past eight, colours repeat after
        18, so also vary the marker (:data:`MARKERS`) in such plots.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    cycle = PALETTE + _EXTRA
    return [cycle[i % len(cycle)] for i in range(n)]


def use_book_style(**overrides: Any) -> None:
    """Set matplotlib's defaults to the book's style (call once, in a notebook's import cell).

    Sets the colour cycle to :data:`PALETTE` and the rcParams in :data:`BOOK_RC`. rcParam names
    contain dots, so pass overrides as an unpacked dict: ``use_book_style(**{"figure.figsize": (8, 4)})``.

    Parameters
    ----------
    **overrides
        rcParams to set after the book's defaults.

    Raises
    ------
    KeyError
        If an override names an rcParam matplotlib does not know.
    """
    import matplotlib as mpl

    mpl.rcParams.update(BOOK_RC)
    mpl.rcParams["axes.prop_cycle"] = mpl.cycler(color=list(PALETTE))
    for key, value in overrides.items():
        mpl.rcParams[key] = value


def image_grid(
    rows: Sequence[Any],
    image_shape: tuple[int, int],
    *,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    cell_size: float = 0.55,
) -> Any:
    """Draw rows of flattened grey-scale images, one row per group (e.g. per cluster); returns the figure.

    Parameters
    ----------
    rows : sequence of array-likes of shape (n_images, height * width)
        The images of each row; rows may have different lengths (a short row leaves blanks).
    image_shape : (height, width)
        How to reshape one flattened image.
    row_labels : sequence of str, optional
        A label left of each row.
    title : str, optional
        The figure's title.
    cell_size : float
        Inches per image.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [np.asarray(r, dtype=float).reshape(-1, *image_shape) for r in rows]
    if not rows:
        raise ValueError("rows is empty: nothing to draw.")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"row_labels has {len(row_labels)} entries for {len(rows)} rows.")
    n_cols = max(1, max(len(r) for r in rows))
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell_size * n_cols + 1.0, cell_size * len(rows) + 0.4),
                             squeeze=False)
    for i, images in enumerate(rows):
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(images):
                ax.imshow(images[j], cmap="gray_r", vmin=0.0, vmax=max(1.0, float(images[j].max())))
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
