"""The book's figure style: palette contents, colour-blind-safe ordering and rcParams."""

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl
import matplotlib.pyplot as plt
import pytest

from mmc_teach import plotting
from mmc_teach.plotting import MARKERS, OKABE_ITO, PALETTE, cluster_colors, use_book_style


def test_palette_is_okabe_ito_without_duplicates():
    assert len(PALETTE) == 8
    assert set(PALETTE) == set(OKABE_ITO.values())
    assert PALETTE[0] == "#E69F00" and PALETTE[-1] == "#000000"


@pytest.mark.parametrize("n", [1, 3, 8, 10, 18])
def test_cluster_colors_distinct_up_to_18(n):
    colors = cluster_colors(n)
    assert len(colors) == n
    assert len(set(colors)) == n
    assert colors[: min(n, 8)] == list(PALETTE[: min(n, 8)])


def test_cluster_colors_cycle_past_18():
    colors = cluster_colors(20)
    assert colors[18] == colors[0] and colors[19] == colors[1]
    assert len(MARKERS) >= 10


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_cluster_colors_rejects_bad_n(bad):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        cluster_colors(bad)


def test_use_book_style_sets_cycle_and_rc():
    with mpl.rc_context():
        use_book_style(**{"figure.figsize": (3.0, 2.0)})
        cycle = [c["color"] for c in mpl.rcParams["axes.prop_cycle"]]
        assert cycle == list(PALETTE)
        assert tuple(mpl.rcParams["figure.figsize"]) == (3.0, 2.0)
        assert mpl.rcParams["axes.spines.top"] is False
        assert mpl.rcParams["image.cmap"] == plotting.SEQUENTIAL_CMAP
        # the first line drawn takes the first palette colour
        fig, ax = plt.subplots()
        (line,) = ax.plot([0, 1], [0, 1])
        assert mpl.colors.to_hex(line.get_color()).upper() == PALETTE[0]
        plt.close(fig)


def test_use_book_style_rejects_unknown_rcparam():
    with mpl.rc_context():
        with pytest.raises(KeyError):
            use_book_style(**{"figure.no_such_key": 1})
