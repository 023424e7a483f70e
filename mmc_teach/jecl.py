"""JECL: Joint Embedding and Cluster Learning for image-text pairs (chapter "JECL", ``06_jecl``).

Yang, Huang and Howe, "JECL: Joint Embedding and Cluster Learning for Image-Text Pairs",
ICPR 2020 (arXiv:1901.01860, first titled MultiDEC). The paper's equations did not survive in
its text; the formulas below are *the book's reading* of its sentences, numbered as in the chapter:

- Eq. (jecl-q), (jecl-r): Student-t soft assignments q (image) and r (text) -- :func:`~mmc_teach.losses.soft_assignment`.
- Hungarian alignment of text clusters to image clusters -- :func:`align_text_clusters`.
- Eq. (jecl-p): one joint target p_ij ∝ alpha q_ij^2/f_j + (1-alpha) r_ij^2/g_j; the text term is
  dropped for a sample without text -- :func:`joint_target_distribution`.
- Eq. (jecl-kl): KL(P||Q) + KL(P||R), KL(P||R) zero for samples without text -- :func:`joint_clustering_loss`.
- Eq. (jecl-jsd): Jensen-Shannon alignment of q_i and r_i, weight beta -- :func:`jensen_shannon`.
- Eq. (jecl-reg): KL(soft cluster frequency || uniform) per view, weight gamma -- :func:`frequency_regularizer`.
- Eq. (jecl-loss): L = KL(P||Q) + KL(P||R) + beta JSD + gamma Reg; Eq. (jecl-assign): argmax_j alpha q_ij + (1-alpha) r_ij.

Missing captions are all-NaN rows of the text view (the book's convention for a missing view,
:mod:`mmc_teach.pairing`), or equivalently the boolean ``text_mask`` argument of :meth:`JECL.fit`
(True = the sample has text). Missing images are all-NaN rows of the image view, the symmetric case:
such a sample is clustered by its caption alone (its target is the text term of Eq. jecl-p, its
assignment r_i). A partly-NaN row, and a sample with neither view, are rejected.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._base import (
    check_feature_width,
    check_n_clusters,
    check_positive,
    check_random_state,
    check_views,
    get_device,
    minibatches,
    n_minibatches,
    seeded,
    to_numpy,
    torch_seed_from,
)
from .losses import EPS, kl_clustering_loss, soft_assignment
from .metrics import hungarian_match
from .nn import MLPAutoencoder, apply_in_chunks, as_tensor, encode_in_batches, pretrain_autoencoder
from .pairing import has_missing_rows, observed_rows
from .training import SelfTrainingTarget, train_epochs

__all__ = [
    "JECL",
    "align_text_clusters",
    "joint_target_distribution",
    "joint_clustering_loss",
    "jensen_shannon",
    "frequency_regularizer",
    "combined_assignment",
]


# --------------------------------------------------------------------------- equation functions


def align_text_clusters(image_labels: Any, text_labels: Any, n_clusters: int) -> np.ndarray:
    """Hungarian alignment of text clusters to image clusters (chapter section "Cluster alignment").

    Builds the image-cluster x text-cluster confusion matrix and finds the one-to-one matching with
    most pairs in agreement (:func:`mmc_teach.metrics.hungarian_match`; the paper's "max minus
    count" cost is the same problem). Returns ``order`` such that text cluster ``order[j]`` is
    matched to image cluster ``j``: ``text_centers[order]`` puts the text centres in image order.
    Clusters that nobody uses are paired up arbitrarily (in increasing order).
    """
    image_labels, text_labels = to_numpy(image_labels), to_numpy(text_labels)
    mapping = hungarian_match(image_labels, text_labels) if len(text_labels) else {}
    order = np.full(n_clusters, -1, dtype=np.int64)
    for text_cluster, image_cluster in mapping.items():
        order[int(image_cluster)] = int(text_cluster)
    unused = sorted(set(range(n_clusters)) - set(order[order >= 0].tolist()))
    order[order < 0] = unused
    return order


def joint_target_distribution(
    q: torch.Tensor, r: torch.Tensor, has_text: torch.Tensor, alpha: float = 0.5,
    has_image: torch.Tensor | None = None,
) -> torch.Tensor:
    """Joint target P of image and text assignments, Eq. (jecl-p) (the book's reading).

    p_ij ∝ alpha q_ij^2 / f_j + (1 - alpha) r_ij^2 / g_j, rows normalised, with soft cluster
    frequencies f_j = sum_i q_ij over all samples and g_j = sum_i r_ij over samples with text.
    For a sample without text the second term is dropped ("the second term ... is 0"), so its
    target is DEC's image target alone; symmetrically (``has_image`` False) the text target alone,
    and f_j then sums over the samples with an image only.

    Parameters
    ----------
    q : Tensor (n, k)
        Image soft assignments of all samples.
    r : Tensor (n, k)
        Text soft assignments; rows where ``has_text`` is False are ignored.
    has_text : bool Tensor (n,)
    alpha : float in [0, 1]
        Weight of the image term.
    has_image : bool Tensor (n,) or None
        Samples with an image (None: all of them); rows of ``q`` where it is False are ignored.
    """
    with torch.no_grad():
        q = q if has_image is None else q * has_image[:, None]
        image_term = q.pow(2) / q.sum(dim=0).clamp_min(EPS)
        text_r = r * has_text[:, None]  # zero rows for missing text: they add nothing to g_j either
        text_term = text_r.pow(2) / text_r.sum(dim=0).clamp_min(EPS)
        if has_image is None:
            weight = alpha * image_term + (1.0 - alpha) * text_term
        else:  # a sample with one view takes that view's term alone (as for a missing caption)
            w_text = torch.where(has_image, has_text.to(q.dtype) * (1.0 - alpha), 1.0)[:, None]
            weight = torch.where(has_image[:, None] & has_text[:, None], alpha * image_term + (1.0 - alpha) * text_term,
                                 (1.0 - w_text) * image_term + w_text * text_term)
        return weight / weight.sum(dim=1, keepdim=True).clamp_min(EPS)


def joint_clustering_loss(p: torch.Tensor, q: torch.Tensor, r: torch.Tensor, has_text: torch.Tensor,
                          has_image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(P||Q) and KL(P||R) of Eq. (jecl-kl), each averaged over the batch.

    The text term sums only over samples with text and divides by the batch size, so a sample
    without text contributes zero to KL(P||R) (not a renormalised average); likewise the image
    term for a sample without an image (``has_image`` False; None: every sample has one).
    """
    if has_image is None:
        kl_q = kl_clustering_loss(p, q)
    elif bool(has_image.any()):
        kl_q = kl_clustering_loss(p[has_image], q[has_image]) * (has_image.sum() / len(has_image))
    else:
        kl_q = q.new_zeros(())
    if not bool(has_text.any()):
        return kl_q, q.new_zeros(())
    kl_r = kl_clustering_loss(p[has_text], r[has_text]) * (has_text.sum() / len(has_text))
    return kl_q, kl_r


def jensen_shannon(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Row-wise Jensen-Shannon divergence JSD(q_i || r_i), Eq. (jecl-jsd), in nats.

    JSD = 1/2 KL(q || m) + 1/2 KL(r || m) with m = (q + r) / 2. Symmetric, zero iff q_i = r_i and
    at most log 2. Terms with q = 0 (or r = 0) are exactly zero (the limit of x log x), which the
    clamped logs below respect. Returns shape (n,).
    """
    m = 0.5 * (q + r)
    log_m = torch.log(m.clamp_min(EPS))
    kl_qm = (q * (torch.log(q.clamp_min(EPS)) - log_m)).sum(dim=1)
    kl_rm = (r * (torch.log(r.clamp_min(EPS)) - log_m)).sum(dim=1)
    return 0.5 * (kl_qm + kl_rm)


def frequency_regularizer(q: torch.Tensor) -> torch.Tensor:
    """KL(f || u) between the soft cluster frequency f_j = mean_i q_ij and the uniform u_j = 1/k, Eq. (jecl-reg).

    Zero for perfectly balanced soft assignments, log k when every sample is in one cluster: it
    pushes each view away from empty clusters without forcing the two views to agree on sizes.
    """
    if len(q) == 0:
        return q.new_zeros(())
    f = q.mean(dim=0)
    k = q.shape[1]
    return (f * (torch.log(f.clamp_min(EPS)) + np.log(k))).sum()


def combined_assignment(q: torch.Tensor, r: torch.Tensor, has_text: torch.Tensor, alpha: float = 0.5,
                        has_image: torch.Tensor | None = None) -> torch.Tensor:
    """alpha q_i + (1 - alpha) r_i for samples with both views, q_i alone for a sample without
    text and r_i alone for one without an image (``has_image`` False), Eq. (jecl-assign)."""
    w = has_text.to(q.dtype)[:, None] * (1.0 - alpha)
    if has_image is not None:
        w = torch.where(has_image[:, None], w, 1.0)
    return (1.0 - w) * q + w * r


def _soft_assignments(network: tuple, x_image: torch.Tensor, x_text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q and r of every pair, Eqs. (jecl-q) and (jecl-r), chunk by chunk without a graph."""
    image_ae, text_ae, image_mu, text_mu = network
    return apply_in_chunks(lambda xi, xt: (soft_assignment(image_ae.encode(xi), image_mu),
                                           soft_assignment(text_ae.encode(xt), text_mu)), x_image, x_text)


# --------------------------------------------------------------------------- the estimator


class JECL(TransformerMixin, ClusterMixin, BaseEstimator):
    """Joint Embedding and Cluster Learning for image-text pairs (Yang et al., ICPR 2020).

    Two autoencoder-pretrained encoders (image, text) with their own Student-t clustering layers
    are trained towards one joint target distribution, with a Jensen-Shannon alignment term
    (``beta``) and per-view cluster-frequency regularisers (``gamma``). See the module docstring
    for the equations and the chapter "JECL" for the derivation.

    Parameters
    ----------
    n_clusters : int
    alpha : float in [0, 1]
        Weight of the image view in the joint target and the final assignment (paper: 0.5).
    beta : float >= 0
        Weight of the JSD alignment loss (paper: 0.1).
    gamma : float >= 0
        Weight of the frequency regulariser (paper: 0.1).
    hidden_dims : sequence of int
        Encoder widths for both views; the last entry is the embedding size.
    pretrain_epochs, epochs : int
        Autoencoder pretraining epochs per view, and clustering epochs.
    update_interval : int or None
        Mini-batch iterations between two recomputations of the joint target P on the full data
        (the same unit as DEC's); ``None`` means once per pass over the data.
    lr, pretrain_lr : float
        Adam learning rates of the clustering phase and of pretraining.
    batch_size : int
    align_clusters : bool
        Match text clusters to image clusters with the Hungarian algorithm after k-means.
    alignment, regularizer : bool
        Ablation switches: ``False`` drops the JSD term or the frequency regulariser.
    tol : float
        Stop when fewer than this fraction of labels change between two target updates.
    n_init : int
        k-means restarts on each view's embedding for the initial centres (DEC's code uses 20).
    device : str or None
    random_state : int, RandomState or None
    verbose : bool
        Progress bars (tqdm, on stderr) over the epochs of each phase; on by default, since a fit can
        take minutes. ``verbose=False`` or the environment variable ``MMC_TEACH_PROGRESS=0`` turns
        them off (the test session does, so notebooks compared by nbval print none).
    autoencoders : (MLPAutoencoder, MLPAutoencoder) or None
        Pretrained image and text autoencoders to start from (e.g. to share one pretraining
        between ablations). They are deep-copied, so the objects passed are never modified;
        ``pretrain_epochs`` further epochs run on the copies (set 0 to skip).

    Attributes
    ----------
    labels_ : ndarray (n_samples,)
    image_centers_, text_centers_ : ndarray (n_clusters, embedding_dim)
    history_ : list of dict
        Per clustering epoch: ``loss``, ``kl_image``, ``kl_text``, ``jsd``, ``reg``, ``label_change``.
    pretrain_history_ : dict of lists
    """

    def __init__(
        self,
        n_clusters: int,
        *,
        alpha: float = 0.5,
        beta: float = 0.1,
        gamma: float = 0.1,
        hidden_dims: Sequence[int] = (500, 500, 2000, 10),
        pretrain_epochs: int = 100,
        epochs: int = 100,
        update_interval: int | None = None,
        lr: float = 1e-3,
        pretrain_lr: float = 1e-3,
        batch_size: int = 256,
        align_clusters: bool = True,
        alignment: bool = True,
        regularizer: bool = True,
        tol: float = 1e-3,
        n_init: int = 20,
        device: str | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = True,
        autoencoders: Sequence[MLPAutoencoder] | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.hidden_dims = hidden_dims
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.update_interval = update_interval
        self.lr = lr
        self.pretrain_lr = pretrain_lr
        self.batch_size = batch_size
        self.align_clusters = align_clusters
        self.alignment = alignment
        self.regularizer = regularizer
        self.tol = tol
        self.n_init = n_init
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.autoencoders = autoencoders

    # ----------------------------------------------------------------- input handling

    def _check_input(self, views: Any, text_mask: Any, fitting: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The two views (missing rows zeroed), and the masks of the samples with text and with an image."""
        if not fitting:
            check_is_fitted(self, "labels_")
        observed, has_image = None, None
        if isinstance(views, Sequence) and not isinstance(views, (str, bytes)) and len(views) == 2:
            # The book's convention for a missing view (mmc_teach.pairing): an all-NaN row. The
            # rows are zeroed for the encoder; the masks keep them out of every term.
            image, text = to_numpy(views[0]), to_numpy(views[1])
            if has_missing_rows(text):
                observed = observed_rows(text, "views[1] (text)")
                text = np.where(observed[:, None], text, 0.0).astype(text.dtype)
            if has_missing_rows(image):
                has_image = observed_rows(image, "views[0] (image)")
                image = np.where(has_image[:, None], image, 0.0).astype(image.dtype)
            if observed is not None or has_image is not None:
                views = [image, text]
        X_image, X_text = check_views(views, min_views=2, max_views=2)
        n = len(X_image)
        if text_mask is None and observed is not None:
            mask = observed
            if fitting and not mask.any():  # defined (JECL without text is DEC on the images), but rarely meant
                warnings.warn("views[1] (text) has no observed row (every row is NaN): JECL clusters the images "
                              "alone. Pass text_mask=np.zeros(n_samples, dtype=bool) to say this is intended.",
                              UserWarning, stacklevel=3)
        elif text_mask is None:
            if fitting and not np.abs(X_text).any():
                raise ValueError(
                    "views[1] (text) is zero for every sample: if no sample has text, say so with "
                    "text_mask=np.zeros(n_samples, dtype=bool)."
                )
            mask = np.ones(n, dtype=bool)
        else:
            mask = to_numpy(text_mask)
            if mask.dtype != bool:
                raise TypeError(f"text_mask must be a boolean array (True = the sample has text), got dtype {mask.dtype}.")
            if mask.shape != (n,):
                raise ValueError(f"text_mask must have shape ({n},) (one entry per sample), got {mask.shape}.")
            if observed is not None and (mask & ~observed).any():
                rows = np.flatnonzero(mask & ~observed)
                raise ValueError(f"text_mask says samples {rows[:5].tolist()}{' ...' if len(rows) > 5 else ''} have text, but their views[1] rows are NaN "
                                 "(missing); mark missing text one way, by NaN rows or by text_mask.")
        if has_image is None:
            has_image = np.ones(n, dtype=bool)
        else:  # a sample without an image must have text (the convention: no sample without any view)
            empty = np.flatnonzero(~has_image & ~mask)
            if len(empty):
                raise ValueError(f"samples {empty[:5].tolist()}{' ...' if len(empty) > 5 else ''} have no view at all "
                                 "(neither an image nor text).")
        if not fitting:
            check_feature_width(X_image, self.n_features_in_views_[0], "views[0]", "JECL")
            check_feature_width(X_text, self.n_features_in_views_[1], "views[1]", "JECL")
        return X_image, X_text, mask, has_image

    def _check_params(self, n_samples: int) -> None:
        check_n_clusters(self.n_clusters, n_samples)
        check_positive("alpha", self.alpha, allow_zero=True)
        if self.alpha > 1:
            raise ValueError(f"alpha={self.alpha} must be in [0, 1] (weight of the image view).")
        check_positive("beta", self.beta, allow_zero=True)
        check_positive("gamma", self.gamma, allow_zero=True)
        for name in ("pretrain_epochs", "epochs"):
            check_positive(name, getattr(self, name), integer=True, allow_zero=True)
        if self.update_interval is not None:
            check_positive("update_interval", self.update_interval, integer=True)
        for name in ("batch_size", "n_init"):
            check_positive(name, getattr(self, name), integer=True)
        for name in ("lr", "pretrain_lr"):
            check_positive(name, getattr(self, name))
        check_positive("tol", self.tol, allow_zero=True)

    def _make_autoencoders(self, d_image: int, d_text: int, device: torch.device) -> tuple[MLPAutoencoder, MLPAutoencoder]:
        if self.autoencoders is None:
            return MLPAutoencoder(d_image, self.hidden_dims).to(device), MLPAutoencoder(d_text, self.hidden_dims).to(device)
        if len(self.autoencoders) != 2 or not all(isinstance(a, MLPAutoencoder) for a in self.autoencoders):
            raise TypeError("autoencoders must be a pair (image, text) of mmc_teach.nn.MLPAutoencoder or None.")
        for ae, d, name in zip(self.autoencoders, (d_image, d_text), ("image", "text")):
            if ae.input_dim != d:
                raise ValueError(f"the {name} autoencoder expects {ae.input_dim} features but views has {d}.")
        return tuple(copy.deepcopy(a).to(device) for a in self.autoencoders)

    # ----------------------------------------------------------------- training

    def fit(self, views: Sequence[Any], y: Any = None, *, text_mask: Any = None) -> JECL:
        """Fit on ``views = [X_image, X_text]``; ``text_mask[i]`` False means sample i has no text.

        Rows of ``X_text`` where ``text_mask`` is False are ignored (finite values, or all NaN:
        an all-NaN row is a missing caption even without ``text_mask``).
        ``y`` is ignored (scikit-learn convention); pass the mask by keyword. Fitted attributes
        are set only once the fit succeeded.
        """
        if y is not None and to_numpy(y).dtype == bool:
            raise TypeError("fit got a boolean array as y; pass the missing-text mask by keyword: fit(views, text_mask=mask).")
        X_image, X_text, mask, image_mask = self._check_input(views, text_mask, fitting=True)
        self._check_params(len(X_image))
        if image_mask.sum() < self.n_clusters:
            raise ValueError(f"only {int(image_mask.sum())} samples have an image (views[0] rows not NaN), fewer than "
                             f"n_clusters={self.n_clusters}; the image view cannot be clustered.")
        if 0 < mask.sum() < self.n_clusters:
            raise ValueError(
                f"only {int(mask.sum())} samples have text (text_mask), fewer than n_clusters={self.n_clusters}; "
                "the text view cannot be clustered. Use text_mask all False to ignore the text."
            )
        rng = check_random_state(self.random_state)
        device = get_device(self.device)
        k = self.n_clusters
        with seeded(torch_seed_from(rng), device) as generator:
            xi, xt = as_tensor(X_image, device), as_tensor(X_text, device)
            has_text = torch.as_tensor(mask, device=device)
            # None when every sample has its image: the paired model, computed exactly as without masks.
            has_image = None if image_mask.all() else torch.as_tensor(image_mask, device=device)
            # The samples that have each view; a view every sample has is not copied (memory O(data)).
            xi_own = xi if has_image is None else xi[has_image]
            xt_own = xt if mask.all() else xt[has_text]
            image_ae, text_ae = self._make_autoencoders(X_image.shape[1], X_text.shape[1], device)
            # Step 1 (paper, "Parameter initialization"): one denoising autoencoder per view, each
            # pretrained on the samples that have that view.
            pretrain = dict(batch_size=self.batch_size, lr=self.pretrain_lr, generator=generator, verbose=self.verbose)
            pretrain_history = {
                "image": pretrain_autoencoder(image_ae, xi_own, epochs=self.pretrain_epochs, desc="pretrain image", **pretrain),
                "text": pretrain_autoencoder(text_ae, xt_own, epochs=self.pretrain_epochs if mask.any() else 0,
                                             desc="pretrain text", **pretrain),
            }
            # Step 2: k-means on each embedding, then put the text centres in image-cluster order.
            from .kmeans import KMeans

            km_image = KMeans(k, n_init=self.n_init, random_state=rng.randint(2**31 - 1), device=device)
            km_image.fit(encode_in_batches(image_ae, xi_own))
            text_centers = km_image.cluster_centers_  # placeholder when no sample has text
            if mask.sum() >= k:
                km_text = KMeans(k, n_init=self.n_init, random_state=rng.randint(2**31 - 1), device=device)
                km_text.fit(encode_in_batches(text_ae, xt_own))
                order = np.arange(k)
                if self.align_clusters:  # on the samples that have both views (none: nothing to align)
                    both = mask & image_mask
                    order = align_text_clusters(to_numpy(km_image.labels_)[both[image_mask]],
                                                to_numpy(km_text.labels_)[both[mask]], k)
                text_centers = to_numpy(km_text.cluster_centers_)[order]
            image_mu = torch.nn.Parameter(as_tensor(to_numpy(km_image.cluster_centers_), device))
            text_mu = torch.nn.Parameter(as_tensor(to_numpy(text_centers), device))
            network = (image_ae, text_ae, image_mu, text_mu)
            history = self._train(network, xi, xt, has_text, has_image, generator)

        self.device_ = device
        self.n_features_in_views_ = [X_image.shape[1], X_text.shape[1]]
        self.image_module_, self.text_module_ = image_ae, text_ae
        self.image_mu_, self.text_mu_ = image_mu, text_mu
        self.image_centers_, self.text_centers_ = to_numpy(image_mu.detach()), to_numpy(text_mu.detach())
        self.pretrain_history_, self.history_ = pretrain_history, history
        q, r = _soft_assignments(network, xi, xt)
        self.labels_ = to_numpy(combined_assignment(q, r, has_text, self.alpha, has_image).argmax(dim=1))
        return self

    def _train(self, network: tuple, xi: torch.Tensor, xt: torch.Tensor, has_text: torch.Tensor,
               has_image: torch.Tensor | None, generator: torch.Generator) -> list[dict[str, float]]:
        """Alternate: the joint target P on the full data (Step A), then gradient steps with P fixed (Step B)."""
        image_ae, text_ae, image_mu, text_mu = network
        optimizer = torch.optim.Adam([*image_ae.encoder.parameters(), *text_ae.encoder.parameters(), image_mu, text_mu],
                                     lr=self.lr)
        beta = self.beta if self.alignment else 0.0
        gamma = self.gamma if self.regularizer else 0.0

        def compute_target() -> tuple[torch.Tensor, torch.Tensor]:
            q, r = _soft_assignments(network, xi, xt)
            labels = combined_assignment(q, r, has_text, self.alpha, has_image).argmax(dim=1)
            return joint_target_distribution(q, r, has_text, self.alpha, has_image), labels

        interval = self.update_interval or n_minibatches(len(xi), self.batch_size)
        target = SelfTrainingTarget(compute_target, interval, self.tol)

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            p = target.before_step()
            idx = idx.to(xi.device)
            t = has_text[idx]
            i = None if has_image is None else has_image[idx]
            both = t if i is None else t & i  # JSD compares the two views of one sample
            q_b = soft_assignment(image_ae.encode(xi[idx]), image_mu)
            r_b = soft_assignment(text_ae.encode(xt[idx]), text_mu)
            kl_image, kl_text = joint_clustering_loss(p[idx], q_b, r_b, t, i)  # Eq. (jecl-kl)
            jsd = jensen_shannon(q_b[both], r_b[both]).sum() / len(idx) if bool(both.any()) else q_b.new_zeros(())
            reg = frequency_regularizer(q_b if i is None else q_b[i]) + frequency_regularizer(r_b[t])
            loss = kl_image + kl_text + beta * jsd + gamma * reg  # Eq. (jecl-loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return {"loss": loss, "kl_image": kl_image, "kl_text": kl_text, "jsd": jsd, "reg": reg}

        image_ae.train(), text_ae.train()
        history = train_epochs(step, lambda: minibatches(len(xi), self.batch_size, generator), epochs=self.epochs,
                               method="JECL", verbose=self.verbose,
                               epoch_end=lambda epoch: {"label_change": target.label_change})
        image_ae.eval(), text_ae.eval()
        return history

    # ----------------------------------------------------------------- inference

    def _forward(self, views: Sequence[Any], text_mask: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        X_image, X_text, mask, image_mask = self._check_input(views, text_mask, fitting=False)
        xi, xt = as_tensor(X_image, self.device_), as_tensor(X_text, self.device_)
        network = (self.image_module_, self.text_module_, self.image_mu_, self.text_mu_)
        q, r = _soft_assignments(network, xi, xt)
        return q, r, torch.as_tensor(mask, device=self.device_), torch.as_tensor(image_mask, device=self.device_)

    def predict_proba(self, views: Sequence[Any], text_mask: Any = None) -> np.ndarray:
        """Combined soft assignment alpha q + (1 - alpha) r (q alone without text, r alone without an
        image), Eq. (jecl-assign)."""
        q, r, has_text, has_image = self._forward(views, text_mask)
        return to_numpy(combined_assignment(q, r, has_text, self.alpha, None if bool(has_image.all()) else has_image))

    def predict(self, views: Sequence[Any], text_mask: Any = None) -> np.ndarray:
        """Final cluster of each pair: the argmax of :meth:`predict_proba`."""
        return self.predict_proba(views, text_mask).argmax(axis=1)

    def fit_predict(self, views: Sequence[Any], y: Any = None, *, text_mask: Any = None) -> np.ndarray:
        return self.fit(views, text_mask=text_mask).labels_

    def transform(self, views: Sequence[Any], text_mask: Any = None) -> np.ndarray:
        """The pair's two embeddings side by side, shape (n, 2 * embedding_dim).

        The text half is NaN for samples without text (their text embedding does not exist), the
        image half for samples without an image.
        """
        X_image, X_text, mask, image_mask = self._check_input(views, text_mask, fitting=False)
        z_image = encode_in_batches(self.image_module_, as_tensor(X_image, self.device_))
        z_text = encode_in_batches(self.text_module_, as_tensor(X_text, self.device_))
        out = to_numpy(torch.cat([z_image, z_text], dim=1)).copy()
        out[~mask, z_image.shape[1]:] = np.nan
        out[~image_mask, :z_image.shape[1]] = np.nan
        return out
