"""The pairing split (paired <-> mixed-modal) and the missing-view convention (all-NaN rows)."""

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from mmc_teach.pairing import missing_view_mask, mixed_modal_split, pairing_split


def paired_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n // 4)
    views = [rng.normal(size=(n, 5)).astype(np.float32) + labels[:, None], rng.normal(size=(n, 3)) - labels[:, None]]
    return SimpleNamespace(views=views, labels=labels, view_names=["image", "text"])


def check_rows(split_views, present, rows, data):
    """Every observed row equals the original row; every missing row is all NaN."""
    for v, X in enumerate(split_views):
        np.testing.assert_array_equal(X[present[:, v]], np.asarray(data.views[v], dtype=X.dtype)[rows[present[:, v]]])
        assert np.isnan(X[~present[:, v]]).all()


def test_fraction_zero_is_the_mixed_modal_split():
    data = paired_data()
    split, mixed = pairing_split(data, 0.0, random_state=3), mixed_modal_split(data, random_state=3)
    for present, rows, kept in ((split.train_present, split.train_rows, mixed.train_pairs),
                                (split.test_present, split.test_rows, mixed.test_pairs)):
        assert (present.sum(axis=1) == 1).all()
        np.testing.assert_array_equal(rows[present[:, 0]], np.sort(kept[0]))
        np.testing.assert_array_equal(rows[present[:, 1]], np.sort(kept[1]))
    check_rows(split.train_views, split.train_present, split.train_rows, data)
    check_rows(split.test_views, split.test_present, split.test_rows, data)
    np.testing.assert_array_equal(split.train_labels, data.labels[split.train_rows])


def test_fraction_one_is_paired_data():
    data = paired_data()
    split = pairing_split(data, 1.0, random_state=0)
    assert split.train_present.all() and split.test_present.all()
    np.testing.assert_array_equal(np.sort(np.concatenate([split.train_rows, split.test_rows])), np.arange(120))
    check_rows(split.train_views, split.train_present, split.train_rows, data)
    assert split.view_names == ["image", "text"] and split.n_clusters == 4 and split.paired_fraction == 1.0


def test_paired_count_and_nesting():
    data = paired_data()
    splits = {rho: pairing_split(data, rho, random_state=1) for rho in (0.0, 0.25, 0.5)}
    n_train = len(splits[0.0].train_rows)
    paired = {rho: set(s.train_rows[s.train_present.all(axis=1)]) for rho, s in splits.items()}
    assert [len(paired[rho]) for rho in (0.0, 0.25, 0.5)] == [0, round(0.25 * n_train), round(0.5 * n_train)]
    assert paired[0.25] <= paired[0.5]
    # The one-view part is the same coin flips at every fraction: unpaired samples keep the same view.
    for rho in (0.25, 0.5):
        single = ~splits[rho].train_present.all(axis=1)
        np.testing.assert_array_equal(splits[rho].train_present[single], splits[0.0].train_present[single])


def test_seeds():
    data = paired_data()
    a, b, c = (pairing_split(data, 0.5, random_state=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.train_present, b.train_present)
    assert not np.array_equal(a.train_rows, c.train_rows)


def test_mask_of_the_split_is_its_present():
    split = pairing_split(paired_data(), 0.4, random_state=2)
    np.testing.assert_array_equal(missing_view_mask(split.train_views), split.train_present)
    np.testing.assert_array_equal(missing_view_mask(split.test_views), split.test_present)


@pytest.mark.parametrize("rho", [-0.1, 1.5, True, "0.5", None])
def test_bad_fraction(rho):
    with pytest.raises(ValueError, match="paired_fraction"):
        pairing_split(paired_data(), rho)


def test_sparse_view_rejected():
    data = paired_data()
    data.views[1] = sp.csr_matrix(data.views[1])
    with pytest.raises(TypeError, match="sparse"):
        pairing_split(data, 0.5)


def test_missing_view_mask_errors():
    a, b = np.ones((4, 2)), np.ones((4, 3))
    a[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"view 0: rows \[1\] are partly NaN"):
        missing_view_mask([a, b])
    a[1] = np.nan
    b[1] = np.nan
    with pytest.raises(ValueError, match=r"samples \[1\] have no view"):
        missing_view_mask([a, b])
    with pytest.raises(ValueError, match="one row per sample"):
        missing_view_mask([np.ones((4, 2)), np.ones((5, 2))])
    with pytest.raises(TypeError, match="dense 2-D float"):
        missing_view_mask([np.ones((4, 2), dtype=int), b])
    with pytest.raises(TypeError, match="dense 2-D float"):
        missing_view_mask([sp.csr_matrix(np.ones((4, 2))), b])
    with pytest.raises(ValueError, match="at least one view"):
        missing_view_mask([])
    b[1] = 1.0
    np.testing.assert_array_equal(missing_view_mask([a, b]), [[True, True], [False, True], [True, True], [True, True]])
    with pytest.raises(ValueError, match=r"views\[1\] has no observed row \(every row is NaN\)"):
        missing_view_mask([a, np.full((4, 3), np.nan)], ["views[0]", "views[1]"])


@pytest.mark.parametrize("empty_view", [0, 1])
def test_multi_view_estimators_name_a_view_that_no_sample_has(empty_view):
    from mmc_teach import CMMC, DM2C

    rng = np.random.RandomState(0)
    views = [rng.rand(40, 6).astype(np.float32), rng.rand(40, 5).astype(np.float32)]
    views[empty_view] = np.full_like(views[empty_view], np.nan)
    with pytest.raises(ValueError, match=rf"views\[{empty_view}\] has no observed row"):
        CMMC(3, random_state=0, device="cpu").fit(views)
    with pytest.raises(ValueError, match=rf"X\[{empty_view}\] has no observed row"):
        DM2C(3, random_state=0, device="cpu").fit(views, paired=True)


def test_standardise_scales_by_the_observed_rows_and_keeps_missing_ones_missing():
    from mmc_teach.utils import standardise

    X = np.array([[1.0, 10.0], [3.0, 10.0], [np.nan, np.nan], [5.0, 10.0]])
    Z = standardise(X)
    assert np.isnan(Z[2]).all() and not np.isnan(Z[[0, 1, 3]]).any()
    np.testing.assert_allclose(Z[[0, 1, 3]], standardise(X[[0, 1, 3]]), rtol=1e-6)
    np.testing.assert_array_equal(Z[[0, 1, 3], 1], 0.0)  # a constant feature becomes 0, not NaN


def separated_data(n=120, seed=0):
    """Four groups far apart in both views: k-means finds them in each view alone."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n // 4)
    views = [rng.normal(size=(n, 5)) * 0.1 + 3 * labels[:, None], rng.normal(size=(n, 3)) * 0.1 - 3 * labels[:, None]]
    return SimpleNamespace(views=views, labels=labels, view_names=["image", "text"])


def test_mean_imputed_kmeans_is_kmeans_on_the_standardised_concatenation_when_complete():
    from mmc_teach import KMeans
    from mmc_teach.pairing import mean_imputed_kmeans
    from mmc_teach.utils import standardise

    data = paired_data()
    expected = KMeans(4, n_init=20, random_state=0).fit_predict(np.hstack([standardise(V) for V in data.views]))
    np.testing.assert_array_equal(mean_imputed_kmeans(data.views, 4), expected)


def test_pairs_align_the_per_view_labellings():
    from mmc_teach.metrics import clustering_accuracy
    from mmc_teach.pairing import aligned_per_view_kmeans

    data = separated_data()
    half = pairing_split(data, 0.5, random_state=0)
    labels = aligned_per_view_kmeans(half.train_views, 4)
    assert clustering_accuracy(half.train_labels, labels) == 1.0  # one numbering for both views
    # Without pairs each view is still clustered perfectly, but the two numberings are unrelated.
    none = pairing_split(data, 0.0, random_state=0)
    labels = aligned_per_view_kmeans(none.train_views, 4)
    for v in range(2):
        rows = none.train_present[:, v]
        assert clustering_accuracy(none.train_labels[rows], labels[rows]) == 1.0
    assert clustering_accuracy(none.train_labels, labels) < 1.0


def test_the_baselines_check_the_convention():
    from mmc_teach.pairing import aligned_per_view_kmeans, mean_imputed_kmeans

    views = [v.copy() for v in paired_data().views]
    views[0][0, 0] = np.nan
    for baseline in (mean_imputed_kmeans, aligned_per_view_kmeans):
        with pytest.raises(ValueError, match="partly NaN"):
            baseline(views, 4)


def test_has_missing_rows_says_when_the_convention_applies():
    from mmc_teach.pairing import has_missing_rows

    X = np.ones((3, 2))
    assert not has_missing_rows(X)
    X[1] = np.nan
    assert has_missing_rows(X) and has_missing_rows(X.astype(np.float32))
    assert not has_missing_rows(np.ones((3, 2), dtype=int))       # integers cannot be missing
    assert not has_missing_rows(np.array([np.nan, 1.0]))          # not a 2-D view
    assert not has_missing_rows([[np.nan, 1.0]])                  # not an array: the estimators' checks decide


def test_mixed_modal_split_is_one_object_in_dm2c_and_pairing():
    # It moved next to the pairing split (its rho = 0); chapters and older code import it from dm2c.
    import mmc_teach.dm2c as dm2c
    import mmc_teach.pairing as pairing

    assert dm2c.mixed_modal_split is pairing.mixed_modal_split
    assert dm2c.MixedModalSplit is pairing.MixedModalSplit


def test_any_missing_rows_over_a_list_of_views():
    from mmc_teach.pairing import any_missing_rows

    full, holed = np.zeros((3, 2)), np.zeros((3, 2))
    holed[1] = np.nan
    assert not any_missing_rows([full, full])
    assert any_missing_rows([full, holed])
    assert not any_missing_rows(holed)  # one array is not a list of views
    assert not any_missing_rows("ab")


def test_disjoint_views_split_keeps_one_view_of_every_pair_and_holds_nothing_out():
    from mmc_teach.datasets import MultiModalDataset
    from mmc_teach.pairing import disjoint_views_split

    rng = np.random.RandomState(0)
    n = 1000
    data = MultiModalDataset("toy", [rng.rand(n, 3).astype(np.float32), rng.rand(n, 2).astype(np.float32)],
                             np.arange(n) % 10, ["a", "b"], [str(c) for c in range(10)])
    split = disjoint_views_split(data, random_state=4)
    both = np.concatenate(split.train_pairs)
    assert sorted(both.tolist()) == list(range(n))  # every pair exactly once, in one view only
    for m in (0, 1):
        np.testing.assert_array_equal(split.train_views[m], data.views[m][split.train_pairs[m]])
        np.testing.assert_array_equal(split.train_labels[m], data.labels[split.train_pairs[m]])
        assert len(split.test_views[m]) == len(split.test_labels[m]) == len(split.test_pairs[m]) == 0
    assert 400 < len(split.train_pairs[0]) < 600  # a fair coin per pair, not an exact half
    assert split.n_clusters == 10 and split.view_names == ["a", "b"]
    again = disjoint_views_split(data, random_state=4)
    np.testing.assert_array_equal(again.train_pairs[0], split.train_pairs[0])
    assert not np.array_equal(disjoint_views_split(data, random_state=5).train_pairs[0], split.train_pairs[0])
    with pytest.raises(ValueError, match="exactly 2"):
        disjoint_views_split(MultiModalDataset("one", [data.views[0]], data.labels, ["a"], data.class_names))
