"""Tests for mmc_teach.metrics: brute force, hand-computed values, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from mmc_teach.metrics import (
    align_labels,
    clustering_accuracy,
    evaluate,
    hungarian_match,
    pairwise_f_score,
    purity,
)


def brute_force_acc(y_true, y_pred):
    """ACC by trying every one-to-one map from clusters to classes (tiny cases only)."""
    classes = sorted(set(y_true))
    clusters = sorted(set(y_pred))
    best = 0
    # injective maps from clusters to classes when #clusters <= #classes, else from classes to clusters
    if len(clusters) <= len(classes):
        for image in itertools.permutations(classes, len(clusters)):
            pi = dict(zip(clusters, image))
            best = max(best, sum(pi[p] == t for t, p in zip(y_true, y_pred)))
    else:
        for image in itertools.permutations(clusters, len(classes)):
            inv = dict(zip(image, classes))  # cluster -> class for the chosen clusters only
            best = max(best, sum(inv.get(p) == t for t, p in zip(y_true, y_pred)))
    return best / len(y_true)


def brute_force_pairs(y_true, y_pred):
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(y_true)), 2):
        same_t, same_p = y_true[i] == y_true[j], y_pred[i] == y_pred[j]
        tp += same_t and same_p
        fp += same_p and not same_t
        fn += same_t and not same_p
    return tp, fp, fn


@pytest.mark.parametrize("n_classes,n_clusters", [(3, 3), (3, 2), (2, 4), (4, 3), (1, 3), (3, 1)])
@pytest.mark.parametrize("seed", range(5))
def test_acc_and_f_match_brute_force(n_classes, n_clusters, seed):
    rng = np.random.RandomState(seed)
    y_true = rng.randint(n_classes, size=9).tolist()
    y_pred = rng.randint(n_clusters, size=9).tolist()
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(brute_force_acc(y_true, y_pred))
    tp, fp, fn = brute_force_pairs(y_true, y_pred)
    expected_f = 1.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    assert pairwise_f_score(y_true, y_pred) == pytest.approx(expected_f)


def test_label_values_do_not_matter():
    """Strings, negative and non-contiguous ints give the same numbers as 0..k-1 codes."""
    rng = np.random.RandomState(0)
    codes_t = rng.randint(3, size=30)
    codes_p = rng.randint(4, size=30)
    ref = evaluate(codes_t, codes_p)
    strings_t = np.array(["cat", "dog", "emu"])[codes_t]
    weird_p = np.array([-7, 0, 42, 1000])[codes_p]
    assert evaluate(strings_t, weird_p) == ref
    assert evaluate(list(strings_t), torch.from_numpy(weird_p)) == ref
    assert clustering_accuracy(strings_t, weird_p) == pytest.approx(brute_force_acc(list(strings_t), list(weird_p)))


def test_hand_computed_example():
    # classes: a a a b b c ; clusters: 0 0 1 1 1 2
    y_true = ["a", "a", "a", "b", "b", "c"]
    y_pred = [0, 0, 1, 1, 1, 2]
    # contingency rows a,b,c x cols 0,1,2: a=[2,1,0], b=[0,2,0], c=[0,0,1]
    # ACC: 0->a (2), 1->b (2), 2->c (1) -> 5/6
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(5 / 6)
    # purity: col maxima 2 + 2 + 1 = 5 -> 5/6
    assert purity(y_true, y_pred) == pytest.approx(5 / 6)
    # pairs together in truth: C(3,2)+C(2,2) = 4 ; in prediction: C(2,2)+C(3,2) = 4
    # together in both: (0,1) and (3,4) -> TP = 2, FP = 2, FN = 2 -> F = 4/8
    assert pairwise_f_score(y_true, y_pred) == pytest.approx(0.5)
    assert hungarian_match(y_true, y_pred) == {0: "a", 1: "b", 2: "c"}


def test_purity_rewards_many_clusters_but_acc_does_not():
    y_true = [0, 0, 0, 1, 1, 1]
    singletons = list(range(6))
    assert purity(y_true, singletons) == 1.0
    assert clustering_accuracy(y_true, singletons) == pytest.approx(2 / 6)  # only 2 clusters can be matched
    assert pairwise_f_score(y_true, singletons) == 0.0  # no pair is kept together


def test_fewer_clusters_than_classes():
    y_true = [0, 0, 1, 1, 2, 2]
    one_cluster = [5] * 6
    assert clustering_accuracy(y_true, one_cluster) == pytest.approx(2 / 6)
    assert purity(y_true, one_cluster) == pytest.approx(2 / 6)
    # TP = 3 pairs, FP = 15 - 3 = 12, FN = 0 -> 6 / 18
    assert pairwise_f_score(y_true, one_cluster) == pytest.approx(6 / 18)


def test_evaluate_keys_and_sklearn_agreement():
    rng = np.random.RandomState(1)
    y_true = rng.randint(5, size=200)
    y_pred = np.where(rng.rand(200) < 0.7, y_true, rng.randint(6, size=200))
    scores = evaluate(y_true, y_pred)
    assert list(scores) == ["acc", "nmi", "ari", "f", "purity"]
    assert all(type(v) is float for v in scores.values())
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(y_true, y_pred))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(y_true, y_pred))
    perfect = evaluate(y_true, (y_true + 3) * 2)  # a renaming is a perfect clustering
    assert perfect == {"acc": 1.0, "nmi": 1.0, "ari": 1.0, "f": 1.0, "purity": 1.0}


def test_all_singletons_in_both_is_perfect_f():
    assert pairwise_f_score([1, 2, 3], ["x", "y", "z"]) == 1.0


def test_hungarian_match_and_align_labels():
    reference = np.array([0, 0, 1, 1, 2, 2, 2])
    labels = np.array([9, 9, 4, 4, 7, 7, 3])
    assert hungarian_match(reference, labels) == {9: 0, 4: 1, 7: 2}
    aligned = align_labels(reference, labels)
    # cluster 3 has no partner left: it gets a fresh id (max(reference) + 1)
    assert aligned.tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert aligned.dtype == reference.dtype
    # the partition is unchanged
    assert adjusted_rand_score(labels, aligned) == 1.0
    # aligning to itself is the identity; aligning a permutation undoes it
    assert align_labels(reference, reference).tolist() == reference.tolist()
    perm = np.array([2, 0, 1])[reference]
    assert align_labels(reference, perm).tolist() == reference.tolist()


def test_align_labels_string_reference():
    aligned = align_labels(["a", "a", "b", "b"], [1, 1, 0, 2])
    assert aligned[0] == "a" and aligned[1] == "a"
    assert sorted(map(str, aligned[2:])) == ["0", "b"]  # one of clusters 0/2 gets 'b', the other a fresh 0


BAD_INPUTS = [
    (([0, 1, 2, 3, 4], [0, 1, 2, 3]), "different lengths: 5 != 4"),
    (([], []), "empty"),
    ((np.zeros((3, 2)), np.zeros((3, 2))), "1-D"),
    (([0, 1, 2], np.zeros((3, 1))), "y_pred must be a 1-D"),
    (([0.0, np.nan, 1.0], [0, 1, 1]), "y_true contains NaN"),
    (([0, 1, 1], [0.0, 1.0, np.nan]), "y_pred contains NaN"),
    (([0, None, 1], [0, 1, 1]), "missing labels"),
]


@pytest.mark.parametrize("func", [clustering_accuracy, purity, pairwise_f_score, evaluate, hungarian_match])
@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input(func, args, message):
    with pytest.raises(ValueError, match=message):
        func(*args)


def test_align_labels_bad_input_names_arguments():
    with pytest.raises(ValueError, match="reference and labels have different lengths: 3 != 2"):
        align_labels([0, 1, 2], [0, 1])


def test_mixed_type_label_list_is_refused_not_merged():
    # np.asarray([0, "0", 1, 1]) is ['0', '0', '1', '1']: without the check 0 and "0" become one class.
    with pytest.raises(ValueError, match="y_true mixes label types"):
        evaluate([0, "0", 1, 1], [0, 1, 2, 2])
    with pytest.raises(ValueError, match="y_pred mixes label types"):
        evaluate([0, 1, 2, 2], (0, "0", 1, 1))
    assert evaluate([0, 1.0, 1], [0, 1, 1])["acc"] == 1.0  # ints and floats are one kind (numbers)


@pytest.mark.parametrize("lengths", [(3, 2), (2, 3)])
def test_per_modality_label_list_names_the_argument_and_the_fix(lengths):
    per_modality = [np.zeros(lengths[0], dtype=int), np.ones(lengths[1], dtype=int)]  # like DM2C's labels_
    flat = np.concatenate(per_modality)
    with pytest.raises(ValueError, match=r"y_pred is a sequence of 2 label arrays .*np\.concatenate"):
        evaluate(flat, per_modality)
    with pytest.raises(ValueError, match=r"y_true is a sequence of 2 label arrays .*np\.concatenate"):
        evaluate(per_modality, flat)
    assert evaluate(flat, np.concatenate(per_modality))["acc"] == 1.0
