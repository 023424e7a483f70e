"""Sparse input is refused with a message that says sparse and how to convert it (check_array)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmc_teach import DEC, KMeans

ESTIMATORS = [
    lambda: KMeans(2, n_init=1, random_state=0),
    lambda: DEC(2, hidden_dims=(4, 2), pretrain_epochs=1, epochs=1, batch_size=8, random_state=0),
]


def _dense() -> np.ndarray:
    rng = np.random.RandomState(0)
    return np.vstack([rng.normal(0, 0.1, (10, 6)), rng.normal(3, 0.1, (10, 6))])


@pytest.mark.parametrize("make", ESTIMATORS, ids=["KMeans", "DEC"])
@pytest.mark.parametrize("to_sparse", [sp.csr_matrix, sp.csr_array], ids=["csr_matrix", "csr_array"])
def test_sparse_input_is_refused_with_the_conversion(make, to_sparse):
    X = to_sparse(_dense())
    with pytest.raises(TypeError, match=r"X is a sparse matrix of shape \(20, 6\).*X\.toarray\(\)"):
        make().fit(X)
    fitted = make().fit(X.toarray())  # the conversion the message names works
    with pytest.raises(TypeError, match=r"sparse.*X\.toarray\(\)"):
        fitted.predict(X)


def test_sparse_torch_tensor_names_to_dense():
    X = torch.from_numpy(_dense()).to_sparse()
    with pytest.raises(TypeError, match=r"X is a sparse matrix.*X\.to_dense\(\)"):
        KMeans(2, n_init=1, random_state=0).fit(X)
