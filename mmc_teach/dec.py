"""Deep Embedded Clustering (DEC) and Improved DEC (IDEC) (chapter "DEC and IDEC").

DEC (Xie, Girshick and Farhadi, ICML 2016) pretrains an autoencoder, initialises cluster centres
mu_j with k-means on the embeddings z_i = f(x_i), then trains encoder and centres together by
minimising KL(P || Q) between

- the Student-t soft assignment q_ij, Eq. (dec-q), and
- the sharpened target p_ij, Eq. (dec-p), recomputed on the FULL data every ``update_interval``
  mini-batch iterations and held fixed in between, with the loss Eq. (dec-kl).

Training stops once fewer than a fraction ``tol`` of the labels argmax_j q_ij changed between two
target updates. IDEC (Guo et al., IJCAI 2017) keeps the decoder and minimises
L = L_r + gamma * L_c, Eq. (idec-loss), so that the embedding keeps the local structure the
reconstruction term preserves.

Choices that differ from the papers, and why:

- Pretraining is end-to-end denoising (:func:`mmc_teach.nn.pretrain_autoencoder`) with Adam,
  not greedy layer-wise with SGD: on a few thousand samples it reaches a comparable embedding in
  minutes on a laptop CPU.
- The clustering phase uses Adam (``lr=1e-4``) rather than SGD with momentum; with short
  schedules it converges in fewer epochs.
- ``update_interval`` counts mini-batch iterations as in the paper; its default (``None``) is one
  pass over the data. DEC's code refreshes P every 140 iterations of 256 on 70,000 MNIST digits,
  about twice per pass; a per-pass default does not depend on the data size.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import (
    check_array,
    check_feature_width,
    check_finite_losses,
    check_n_clusters,
    check_positive,
    get_device,
    minibatches,
    progress,
    seeded,
    to_numpy,
    torch_seed_from,
)
from ._base import check_random_state
from .losses import kl_clustering_loss, soft_assignment, target_distribution
from .nn import MLPAutoencoder, as_tensor, encode_in_batches, pretrain_autoencoder

__all__ = ["DEC", "IDEC"]


@torch.no_grad()
def _soft_assignment_in_batches(ae: MLPAutoencoder, centers: torch.Tensor, X: torch.Tensor, alpha: float) -> torch.Tensor:
    """q for every row of ``X`` (Eq. dec-q), without a graph; shape (n, k)."""
    return soft_assignment(encode_in_batches(ae, X), centers, alpha)


class DEC(ClusterMixin, BaseEstimator):
    """Deep Embedded Clustering (Xie et al. 2016), chapter "DEC and IDEC".

    Parameters
    ----------
    n_clusters : int
        Number of clusters k (>= 2).
    hidden_dims : sequence of int
        Encoder widths; the last is the embedding size (DEC: 500, 500, 2000, 10).
    pretrain_epochs : int
        Passes of denoising autoencoder pretraining (0 skips it, e.g. with ``autoencoder=``).
    epochs : int
        Maximum passes over the data in the clustering phase.
    update_interval : int or None
        Mini-batch iterations between two recomputations of the target P on the full data;
        ``None`` means once per pass (``ceil(n_samples / batch_size)``).
    tol : float
        Stop when the fraction of labels that changed between two target updates is below it.
    lr : float
        Adam learning rate of the clustering phase.
    pretrain_lr : float
        Adam learning rate of the pretraining.
    batch_size : int
        Mini-batch size of both phases.
    alpha : float
        Degrees of freedom of the Student-t kernel, Eq. (dec-q).
    noise : float
        Masking-noise probability of the denoising pretraining.
    n_init : int
        k-means restarts for the centre initialisation (DEC's code uses 20).
    device : str or None
        ``None``/``"auto"`` picks CUDA when available, else the CPU.
    random_state : int, RandomState or None
        Seeds the network initialisation, the shuffling and k-means; the global RNGs are untouched.
    verbose : bool
        Progress bars (tqdm) for both phases.
    autoencoder : MLPAutoencoder or None
        A (pretrained) autoencoder to start from, e.g. to share one pretraining between DEC and
        IDEC. It is deep-copied, so the object you pass is never modified; ``pretrain_epochs``
        further epochs are run on the copy (set 0 to skip) and ``hidden_dims`` is ignored.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        argmax_j q_ij on the training data after the last epoch.
    cluster_centers_ : ndarray of shape (n_clusters, embedding_dim)
        Centres mu_j in the embedding space.
    autoencoder_ : MLPAutoencoder
        The fine-tuned autoencoder (DEC trains only its encoder; IDEC both halves).
    history_ : list of dict
        One dict per clustering epoch: ``epoch``, ``iteration``, ``loss`` and its named terms,
        ``delta_label`` (fraction of labels changed at the last target update) and, when ``y`` is
        passed to ``fit``, ``acc``, ``nmi``, ``ari``.
    pretrain_history_ : list of dict
        Per-epoch reconstruction loss of the pretraining.
    n_iter_ : int
        Number of clustering epochs run (the last one may stop early at a target update).
    converged_ : bool
        Whether the label-change stopping rule fired before ``epochs`` ran out.

    Examples
    --------
    >>> X = np.random.RandomState(0).rand(60, 8).astype("float32")
    >>> dec = DEC(3, hidden_dims=(16, 2), pretrain_epochs=2, epochs=2, random_state=0).fit(X)
    >>> dec.labels_.shape, dec.predict_proba(X).shape
    ((60,), (60, 3))
    """

    _method = "DEC"

    def __init__(
        self,
        n_clusters: int = 10,
        hidden_dims: Sequence[int] = (500, 500, 2000, 10),
        pretrain_epochs: int = 100,
        epochs: int = 50,
        update_interval: int | None = None,
        tol: float = 1e-3,
        lr: float = 1e-3,
        pretrain_lr: float = 1e-3,
        batch_size: int = 256,
        alpha: float = 1.0,
        noise: float = 0.2,
        n_init: int = 20,
        device: str | None = None,
        random_state: Any = None,
        verbose: bool = False,
        autoencoder: MLPAutoencoder | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.update_interval = update_interval
        self.tol = tol
        self.lr = lr
        self.pretrain_lr = pretrain_lr
        self.batch_size = batch_size
        self.alpha = alpha
        self.noise = noise
        self.n_init = n_init
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.autoencoder = autoencoder

    # ------------------------------------------------------------------ validation
    def _check_params(self, X: np.ndarray) -> None:
        n_samples, n_features = X.shape
        check_n_clusters(self.n_clusters, n_samples)
        if isinstance(self.hidden_dims, (str, bytes)) or not isinstance(self.hidden_dims, Sequence) or not self.hidden_dims:
            raise ValueError(f"hidden_dims={self.hidden_dims!r} must be a non-empty sequence of positive integers.")
        for h in self.hidden_dims:
            check_positive("hidden_dims entry", h, integer=True)
        check_positive("pretrain_epochs", self.pretrain_epochs, integer=True, allow_zero=True)
        check_positive("epochs", self.epochs, integer=True)
        if self.update_interval is not None:
            check_positive("update_interval", self.update_interval, integer=True)
        check_positive("tol", self.tol, allow_zero=True)
        check_positive("lr", self.lr)
        check_positive("pretrain_lr", self.pretrain_lr)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("alpha", self.alpha)
        check_positive("n_init", self.n_init, integer=True)
        if not (isinstance(self.noise, (int, float)) and 0.0 <= self.noise < 1.0):
            raise ValueError(f"noise={self.noise!r} must be a number in [0, 1).")
        ae = self.autoencoder
        if ae is not None:
            if not isinstance(ae, MLPAutoencoder):
                raise TypeError(f"autoencoder must be an mmc_teach.nn.MLPAutoencoder or None, got {type(ae).__name__}.")
            if ae.input_dim != n_features:
                raise ValueError(f"autoencoder has input_dim={ae.input_dim}, but X has {n_features} features.")

    def _check_gamma(self) -> None:
        """DEC has no reconstruction term; IDEC overrides this."""

    # ------------------------------------------------------------------ training
    def _parameters(self, ae: MLPAutoencoder) -> list[nn.Parameter]:
        # DEC throws the decoder away after pretraining (Xie et al. 2016, Sec. 3.2).
        return list(ae.encoder.parameters())

    def _loss(self, ae: MLPAutoencoder, x: torch.Tensor, p: torch.Tensor) -> dict[str, torch.Tensor]:
        q = soft_assignment(ae.encode(x), self._centers, self.alpha)
        kl = kl_clustering_loss(p, q)  # Eq. (dec-kl)
        return {"loss": kl, "kl": kl}

    def fit(self, X: Any, y: Any = None) -> "DEC":
        """Pretrain, initialise the centres with k-means, then minimise Eq. (dec-kl).

        ``y`` (optional) is used only to report ``acc``/``nmi``/``ari`` in ``history_``; it never
        enters the loss.
        """
        from .kmeans import KMeans  # lazy: the k-means chapter's module

        X = check_array(X, "X")
        self._check_params(X)
        self._check_gamma()
        if y is not None:
            from .metrics import evaluate

            y = to_numpy(y)
            if y.shape != (len(X),):
                raise ValueError(f"y must have shape ({len(X)},) to match X; got {y.shape}.")
        n_samples = len(X)
        rng = check_random_state(self.random_state)
        device = get_device(self.device)
        self.device_ = device
        self.n_features_in_ = X.shape[1]
        Xt = as_tensor(X, device)
        update_interval = self.update_interval or -(-n_samples // self.batch_size)

        with seeded(torch_seed_from(rng), device) as generator:
            if self.autoencoder is not None:
                ae = copy.deepcopy(self.autoencoder).to(device)  # never train the caller's object
            else:
                ae = MLPAutoencoder(X.shape[1], self.hidden_dims).to(device)
            self.pretrain_history_ = pretrain_autoencoder(
                ae, Xt, epochs=self.pretrain_epochs, batch_size=self.batch_size, lr=self.pretrain_lr,
                noise=self.noise, generator=generator, verbose=self.verbose, desc=f"{self._method} pretrain",
            )
            z = encode_in_batches(ae, Xt)
            kmeans = KMeans(self.n_clusters, n_init=self.n_init, random_state=int(rng.randint(2**31 - 1)), device=device).fit(z)
            self._centers = nn.Parameter(torch.zeros(self.n_clusters, z.shape[1], device=device))
            with torch.no_grad():
                self._centers.copy_(torch.as_tensor(to_numpy(kmeans.cluster_centers_), dtype=torch.float32, device=device))
            optimizer = torch.optim.Adam([*self._parameters(ae), self._centers], lr=self.lr)

            labels = torch.as_tensor(to_numpy(kmeans.labels_), device=device).long()
            self.history_: list[dict[str, float]] = []
            self.converged_ = False
            iteration, delta_label = 0, float("nan")
            ae.train()
            for epoch in progress(range(1, self.epochs + 1), self.verbose, f"{self._method} clustering"):
                totals: dict[str, float] = {}
                seen = 0
                for idx in minibatches(n_samples, self.batch_size, generator):
                    if iteration % update_interval == 0:
                        # P on the FULL data (Eq. dec-p), then held fixed for update_interval steps.
                        q_all = _soft_assignment_in_batches(ae, self._centers, Xt, self.alpha)
                        p_all = target_distribution(q_all)
                        new_labels = q_all.argmax(dim=1)
                        delta_label = float((new_labels != labels).float().mean())
                        labels = new_labels
                        if iteration > 0 and delta_label < self.tol:
                            self.converged_ = True
                            break
                    idx = idx.to(device)
                    terms = self._loss(ae, Xt[idx], p_all[idx])
                    optimizer.zero_grad(set_to_none=True)
                    terms["loss"].backward()
                    optimizer.step()
                    iteration += 1
                    for name, value in terms.items():
                        totals[name] = totals.get(name, 0.0) + float(value.detach()) * len(idx)
                    seen += len(idx)
                record: dict[str, float] = {"epoch": epoch, "iteration": iteration}
                record.update({name: value / max(seen, 1) for name, value in totals.items()})
                # Check the named terms before their sum so the message names the culprit.
                terms_first = sorted((k for k in record if k not in ("epoch", "iteration")), key=lambda k: k == "loss")
                check_finite_losses({k: record[k] for k in terms_first}, epoch, self._method)
                record["delta_label"] = delta_label
                if y is not None:
                    record.update({k: v for k, v in evaluate(y, to_numpy(labels)).items() if k in ("acc", "nmi", "ari")})
                if seen > 0:
                    self.history_.append(record)
                if self.converged_:
                    break
            ae.eval()

        self.autoencoder_ = ae
        self.n_iter_ = len(self.history_)
        self.cluster_centers_ = to_numpy(self._centers.detach()).copy()
        self.labels_ = self._predict_tensor(Xt)
        return self

    # ------------------------------------------------------------------ inference
    def _check_X(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "labels_")
        X = check_array(X, "X")
        check_feature_width(X, self.n_features_in_)
        return as_tensor(X, self.device_)

    def _predict_tensor(self, Xt: torch.Tensor) -> np.ndarray:
        return to_numpy(_soft_assignment_in_batches(self.autoencoder_, self._centers, Xt, self.alpha).argmax(dim=1))

    def predict(self, X: Any) -> np.ndarray:
        """Cluster of each row of ``X``: argmax_j q_ij, shape (n_samples,)."""
        return self._predict_tensor(self._check_X(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Soft assignments q_ij of Eq. (dec-q), shape (n_samples, n_clusters), rows summing to 1."""
        return to_numpy(_soft_assignment_in_batches(self.autoencoder_, self._centers, self._check_X(X), self.alpha))

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings z_i = f(x_i), shape (n_samples, embedding_dim)."""
        return to_numpy(encode_in_batches(self.autoencoder_, self._check_X(X)))


class IDEC(DEC):
    """Improved DEC (Guo et al. 2017): L = L_r + gamma * L_c, Eq. (idec-loss).

    Same parameters and attributes as :class:`DEC`, plus ``gamma`` (weight of the clustering
    term, 0.1 in the paper). The decoder is kept and trained, and ``history_`` has a
    ``reconstruction`` term (mean squared error on the clean input) beside ``kl``.
    """

    _method = "IDEC"

    def __init__(
        self,
        n_clusters: int = 10,
        hidden_dims: Sequence[int] = (500, 500, 2000, 10),
        pretrain_epochs: int = 100,
        epochs: int = 50,
        update_interval: int | None = None,
        tol: float = 1e-3,
        lr: float = 1e-3,
        pretrain_lr: float = 1e-3,
        batch_size: int = 256,
        alpha: float = 1.0,
        noise: float = 0.2,
        n_init: int = 20,
        device: str | None = None,
        random_state: Any = None,
        verbose: bool = False,
        autoencoder: MLPAutoencoder | None = None,
        gamma: float = 0.1,
    ) -> None:
        super().__init__(
            n_clusters, hidden_dims, pretrain_epochs, epochs, update_interval, tol, lr, pretrain_lr,
            batch_size, alpha, noise, n_init, device, random_state, verbose, autoencoder,
        )
        self.gamma = gamma

    def _check_gamma(self) -> None:
        check_positive("gamma", self.gamma, allow_zero=True)

    def _parameters(self, ae: MLPAutoencoder) -> list[nn.Parameter]:
        return list(ae.parameters())  # the decoder keeps training: that is IDEC's point

    def _loss(self, ae: MLPAutoencoder, x: torch.Tensor, p: torch.Tensor) -> dict[str, torch.Tensor]:
        z, x_hat = ae(x)
        kl = kl_clustering_loss(p, soft_assignment(z, self._centers, self.alpha))
        reconstruction = nn.functional.mse_loss(x_hat, x)
        return {"loss": reconstruction + self.gamma * kl, "kl": kl, "reconstruction": reconstruction}
