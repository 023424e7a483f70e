"""Contrastive multi-modal clustering, CMMC (Xu et al. 2021; chapter "CMMC").

CMMC (arXiv 2106.11193 v1) names three parts; its published successor MFLVC (Xu et al., CVPR
2022) fills in the details, and this module follows that design. Equation labels refer to the
chapter ``08_cmmc``:

1. one autoencoder per modality, kept reconstructing (:math:`L_R`, Eq. ``cmmc-rec``), so the
   low-level features ``z^m`` stay modality specific;
2. the feature contrastive module: a shared head ``h^m = normalize(W_F z^m)`` trained with
   :func:`nt_xent` (Eq. ``cmmc-ntxent``) between every pair of modalities;
3. the label contrastive module: a shared softmax head ``q^m = softmax(W_L z^m)`` whose cluster
   COLUMNS are contrasted across modalities (:func:`label_contrastive_loss`, Eq. ``cmmc-label``)
   plus the cluster-size term :func:`cluster_entropy_term` (Eq. ``cmmc-entropy``);
4. pseudo labels: k-means on the min-max scaled ``h^m``, matched to the current predictions by
   the Hungarian algorithm (:func:`matched_pseudo_labels`, Eq. ``cmmc-match``), then fine-tuning
   with cross-entropy on the logits (Eq. ``cmmc-ce``). The loss is MFLVC's full-batch one (one step
   per epoch), its gradient summed over mini-batch chunks so that memory does not grow with n.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

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
    torch_seed_from,
)
from .kmeans import KMeans
from .metrics import hungarian_match
from .nn import MLPAutoencoder, apply_in_chunks, as_tensor, pretrain_autoencoder
from .pairing import any_missing_rows, missing_view_mask
from .training import train_epochs

__all__ = [
    "AUTO_EPOCHS",
    "PAPER_SCHEDULE",
    "resolve_epochs",
    "nt_xent",
    "cluster_entropy_term",
    "label_contrastive_loss",
    "min_max_scale",
    "matched_pseudo_labels",
    "CMMCNetwork",
    "CMMC",
]


#: ``"auto"`` epochs: (at least this many epochs, at least this many mini-batch steps) per phase.
#: The contrastive phase needs a number of gradient steps, not of passes: 30 epochs are 600 steps
#: on MNIST-USPS (5000 samples) but 180 on Caltech-2V (1400), too few there (benchmarks/cmmc.py).
AUTO_EPOCHS: dict[str, tuple[int, int]] = {"pretrain": (10, 200), "contrastive": (30, 600)}

#: MFLVC's network and schedule (Xu et al. 2022; BDGP: 10 contrastive epochs): ``CMMC(k, **PAPER_SCHEDULE)``.
PAPER_SCHEDULE: dict = {"hidden_dims": (500, 500, 2000, 512), "high_dim": 128, "pretrain_epochs": 200,
                        "contrastive_epochs": 50, "finetune_epochs": 50, "n_init": 100}


def resolve_epochs(epochs: int | str, phase: str, n_samples: int, batch_size: int) -> int:
    """The number of epochs of ``phase``: ``epochs`` itself, or for ``"auto"`` the rule of :data:`AUTO_EPOCHS`."""
    if epochs != "auto":
        return int(epochs)
    min_epochs, min_steps = AUTO_EPOCHS[phase]
    return max(min_epochs, -(-min_steps // n_minibatches(n_samples, batch_size)))


# --------------------------------------------------------------------------- equations


def nt_xent(h_a: torch.Tensor, h_b: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    """NT-Xent between two paired sets of vectors, Eq. (cmmc-ntxent) (SimCLR's loss).

    Row i of ``h_a`` and row i of ``h_b`` are a positive pair; the other 2N-2 rows of both sets
    are negatives. With cosine similarity s and the self-similarity masked out, each of the 2N
    anchors a contributes ``-s(a, a+)/tau + log sum_{b != a} exp(s(a, b)/tau)``; the loss is the
    mean over the 2N anchors (so the loss is symmetric in the two views).

    Parameters
    ----------
    h_a, h_b : Tensor of shape (N, d)
        Paired vectors (normalised here, so any scale is fine).
    tau : float
        Temperature: small values sharpen the softmax over similarities.

    Returns
    -------
    Tensor, scalar.
    """
    n = h_a.shape[0]
    h = F.normalize(torch.cat([h_a, h_b]), dim=1)  # (2N, d), unit rows
    sim = h @ h.T / tau  # (2N, 2N) cosine similarities / tau
    # A sample is trivially similar to itself; -inf removes it from the 2N-1-way softmax.
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=h.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    rows = torch.arange(2 * n, device=h.device)
    positive = torch.cat([rows[n:], rows[:n]])  # anchor i in view a <-> i in view b
    return (torch.logsumexp(sim, dim=1) - sim[rows, positive]).mean()


def cluster_entropy_term(q: torch.Tensor) -> torch.Tensor:
    """Cluster-size term log K + sum_k p_k log p_k, Eq. (cmmc-entropy).

    ``p_k`` is the share of the batch assigned to cluster k (column mean of ``q``). The term is
    log K minus the entropy of ``p``: 0 for equal cluster sizes, log K when everything collapses
    into one cluster, so minimising it works against the trivial one-cluster solution.

    Parameters
    ----------
    q : Tensor of shape (N, K), rows summing to one.
    """
    p = q.sum(dim=0) / q.sum()  # (K,)
    # xlogy gives 0 * log 0 = 0 for an empty cluster instead of NaN.
    return np.log(q.shape[1]) + torch.special.xlogy(p, p).sum()


def label_contrastive_loss(q_a: torch.Tensor, q_b: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Label contrastive loss of two modalities, Eq. (cmmc-label).

    Column k of ``q^m`` (length N) describes cluster k by which samples it holds. The same
    cluster in the other modality is the positive, the 2K-2 other columns are negatives:
    NT-Xent on the TRANSPOSED assignments, plus the cluster-size term of each modality.

    Parameters
    ----------
    q_a, q_b : Tensor of shape (N, K)
        Soft cluster assignments of the same N samples in two modalities.
    tau : float
        Temperature of the column contrast (1.0 in MFLVC).
    """
    return nt_xent(q_a.T, q_b.T, tau) + cluster_entropy_term(q_a) + cluster_entropy_term(q_b)


def min_max_scale(h: torch.Tensor) -> torch.Tensor:
    """Scale every column of ``h`` to [0, 1] (scikit-learn's MinMaxScaler), before k-means."""
    low, high = h.min(dim=0).values, h.max(dim=0).values
    return (h - low) / (high - low).clamp_min(1e-12)  # a constant column maps to 0


def matched_pseudo_labels(pseudo: np.ndarray, predicted: np.ndarray, n_clusters: int) -> np.ndarray:
    """Rename k-means pseudo labels to agree with the current predictions, Eq. (cmmc-match).

    k-means numbers its clusters arbitrarily. The renaming that maximises the number of samples
    whose pseudo label equals the prediction is a maximum-weight matching on the K x K
    confusion matrix, solved by the Hungarian algorithm (``mmc_teach.metrics.hungarian_match``).
    Training on the renamed labels then refines the clusters instead of permuting them.

    Parameters
    ----------
    pseudo : int array of shape (N,)
        k-means labels in 0..K-1 on the high-level features.
    predicted : int array of shape (N,)
        Current predictions ``argmax_k q_ik`` in 0..K-1.
    n_clusters : int
        K. Pseudo clusters left unmatched (when the predictions use fewer than K clusters) take
        the unused ids in increasing order, so every target stays a valid class index.
    """
    pseudo, predicted = np.asarray(pseudo, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    mapping = hungarian_match(predicted, pseudo)  # {pseudo cluster: predicted cluster}
    unused = iter(sorted(set(range(n_clusters)) - set(mapping.values())))
    for c in range(n_clusters):
        if c not in mapping:
            mapping[c] = next(unused)
    lookup = np.array([mapping[c] for c in range(n_clusters)], dtype=np.int64)
    return lookup[pseudo]


# --------------------------------------------------------------------------- network


class CMMCNetwork(nn.Module):
    """One autoencoder per modality plus the two shared heads.

    ``forward`` returns four lists (one entry per modality): low-level features ``z`` (N, d_z),
    high-level features ``h`` (N, high_dim, unit rows), cluster logits (N, K) and reconstructions.
    """

    def __init__(self, input_dims: Sequence[int], n_clusters: int, hidden_dims: Sequence[int], high_dim: int) -> None:
        """``hidden_dims`` are the encoder widths; the last is the width of the low-level features z^m."""
        super().__init__()
        self.autoencoders = nn.ModuleList(MLPAutoencoder(d, hidden_dims) for d in input_dims)
        feature_dim = int(hidden_dims[-1])
        # Shared across modalities: the heads map every modality into ONE space / ONE set of clusters.
        self.feature_head = nn.Linear(feature_dim, high_dim)
        self.label_head = nn.Linear(feature_dim, n_clusters)  # logits; softmax applied where needed

    def forward(self, xs: Sequence[torch.Tensor], decode: bool = True) -> tuple[list, list, list, list]:
        zs, hs, logits, x_hats = [], [], [], []
        for ae, x in zip(self.autoencoders, xs):
            z = ae.encode(x)
            zs.append(z)
            hs.append(F.normalize(self.feature_head(z), dim=1))
            logits.append(self.label_head(z))
            # The decoders cost as much as the encoders; fine-tuning and inference skip them.
            x_hats.append(ae.decode(z) if decode else None)
        return zs, hs, logits, x_hats


# --------------------------------------------------------------------------- estimator


class CMMC(TransformerMixin, ClusterMixin, BaseEstimator):
    """Contrastive multi-modal clustering for two or more paired modalities.

    Incomplete data: a sample that lacks modality m has an all-NaN row in ``views[m]`` (the book's
    missing-view convention, :mod:`mmc_teach.pairing`). Each autoencoder then reconstructs only the
    rows it has, the feature and label contrast of a pair of modalities use only the samples that
    have both, the pseudo labels of modality m come from its own samples, and a sample's cluster is
    the argmax of the mean of q^m over the modalities it has. With every row present this is
    exactly the paired model.

    Parameters
    ----------
    n_clusters : int
        Number of clusters K.
    high_dim : int
        Width of the high-level features h^m (128).
    tau_feature, tau_label : float
        Temperatures of the feature (0.5) and label (1.0) contrast.
    hidden_dims : tuple of int
        Encoder widths of every autoencoder; the last is the width of the low-level features z^m.
        The default 256, 256, 128 is a CPU-sized network; MFLVC uses 500, 500, 2000, 512
        (:data:`PAPER_SCHEDULE`).
    pretrain_epochs, contrastive_epochs : int or "auto"
        Lengths of the first two phases. ``"auto"`` counts gradient steps rather than epochs, since
        a small data set has few batches per epoch: at least :data:`AUTO_EPOCHS` epochs and
        steps (pretraining 10 epochs and 200 batches, contrastive training 30 epochs and
        600 batches). With the other defaults this is the fast CPU schedule measured in
        ``benchmarks/cmmc.py`` (``benchmarks/results/cmmc_schedules.json``); MFLVC trains 200 and 50 epochs.
    finetune_epochs : int
        Full-batch fine-tuning steps (50, as MFLVC: on Caltech-2V 20 steps give a lower ACC).
    lr : float
        Adam learning rate of all phases.
    batch_size : int
        Mini-batch size of pretraining and contrastive training; fine-tuning takes one full-batch
        step per epoch, its gradient summed over chunks of this size.
    feature_contrast, label_contrast, finetune : bool
        Ablation switches for the feature module, the label module and the fine-tuning phase.
    n_init : int
        k-means restarts for the pseudo labels (MFLVC uses 100).
    device : str or None
        Torch device; ``None`` picks CUDA if available.
    random_state : int, RandomState or None
        Seeds weights, batch order and k-means.
    verbose : bool
        Progress bars (tqdm, on stderr) over the epochs of each phase; on by default, since a fit can
        take minutes. ``verbose=False`` or the environment variable ``MMC_TEACH_PROGRESS=0`` turns
        them off (the test session does, so notebooks compared by nbval print none).

    Attributes
    ----------
    labels_ : ndarray (n_samples,)
        Cluster of every training sample: argmax of the mean over modalities of q^m.
    labels_before_finetune_ : ndarray (n_samples,)
        The same after the contrastive phase, before fine-tuning (equal to ``labels_`` with
        ``finetune=False``): what the pseudo labels changed.
    epochs_ : dict
        The epochs each phase ran (``"auto"`` resolved): keys ``pretrain``, ``contrastive``, ``finetune``.
    network_ : CMMCNetwork
    history_ : list of dict
        One record per epoch: ``phase`` and the named loss terms.

    Examples
    --------
    >>> model = CMMC(n_clusters=10, random_state=0).fit([X_mnist, X_usps])   # doctest: +SKIP
    >>> model.labels_[:5]                                                      # doctest: +SKIP
    """

    def __init__(
        self,
        n_clusters: int,
        *,
        high_dim: int = 128,
        tau_feature: float = 0.5,
        tau_label: float = 1.0,
        hidden_dims: Sequence[int] = (256, 256, 128),
        pretrain_epochs: int | str = "auto",
        contrastive_epochs: int | str = "auto",
        finetune_epochs: int = 50,
        lr: float = 3e-4,
        batch_size: int = 256,
        feature_contrast: bool = True,
        label_contrast: bool = True,
        finetune: bool = True,
        n_init: int = 10,
        device: str | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = True,
    ) -> None:
        self.n_clusters = n_clusters
        self.high_dim = high_dim
        self.tau_feature = tau_feature
        self.tau_label = tau_label
        self.hidden_dims = hidden_dims
        self.pretrain_epochs = pretrain_epochs
        self.contrastive_epochs = contrastive_epochs
        self.finetune_epochs = finetune_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.feature_contrast = feature_contrast
        self.label_contrast = label_contrast
        self.finetune = finetune
        self.n_init = n_init
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _validate_params(self, n_samples: int) -> None:
        check_n_clusters(self.n_clusters, n_samples)
        if isinstance(self.hidden_dims, (str, bytes)) or not isinstance(self.hidden_dims, Sequence) or not self.hidden_dims:
            raise ValueError(f"hidden_dims={self.hidden_dims!r} must be a non-empty sequence of positive integers.")
        for h in self.hidden_dims:
            check_positive("hidden_dims entry", h, integer=True)
        for name in ("high_dim", "batch_size", "n_init"):
            check_positive(name, getattr(self, name), integer=True)
        for name in ("pretrain_epochs", "contrastive_epochs", "finetune_epochs"):
            value = getattr(self, name)
            if name != "finetune_epochs" and isinstance(value, str):
                if value != "auto":
                    raise ValueError(f"{name}={value!r} must be a non-negative integer or 'auto'.")
                continue
            check_positive(name, value, integer=True, allow_zero=True)
        for name in ("tau_feature", "tau_label", "lr"):
            check_positive(name, getattr(self, name))
        if not (self.label_contrast or self.finetune):
            raise ValueError(
                "label_contrast=False together with finetune=False leaves the cluster head untrained; "
                "enable at least one of them."
            )

    def fit(self, views: Sequence, y: None = None) -> "CMMC":
        """Train on paired ``views`` (a list of arrays, one per modality, same rows). ``y`` is ignored.

        Fitted attributes are set only once the fit succeeded.
        """
        views, present = _missing_rows(views)
        n = len(views[0])
        self._validate_params(n)
        rng = check_random_state(self.random_state)
        device = get_device(self.device)
        dims = [X.shape[1] for X in views]
        epochs = {"pretrain": resolve_epochs(self.pretrain_epochs, "pretrain", n, self.batch_size),
                  "contrastive": resolve_epochs(self.contrastive_epochs, "contrastive", n, self.batch_size),
                  "finetune": int(self.finetune_epochs) if self.finetune else 0}
        history: list[dict] = []
        with seeded(torch_seed_from(rng), device) as gen:
            xs = [as_tensor(X, device) for X in views]
            masks = None if present is None else [torch.as_tensor(p, device=device) for p in present.T]
            net = CMMCNetwork(dims, self.n_clusters, [int(h) for h in self.hidden_dims], self.high_dim).to(device)

            # Phase 1, Eq. (cmmc-rec): each autoencoder learns its own modality (plain MSE, as MFLVC).
            for m, (ae, x) in enumerate(zip(net.autoencoders, xs)):
                x = x if masks is None else x[masks[m]]  # the rows this modality has
                for rec in pretrain_autoencoder(ae, x, epochs=epochs["pretrain"], batch_size=self.batch_size,
                                                lr=self.lr, noise=0.0, generator=gen, verbose=self.verbose,
                                                desc=f"pretrain view {m}"):
                    history.append({"phase": "pretrain", "view": m, **rec})

            # Phase 2, Eq. (cmmc-total): contrast high-level features and cluster columns, keep reconstructing.
            optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)

            def contrastive_step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
                idx = idx.to(device)
                terms = self._contrastive_terms(net, [x[idx] for x in xs], None if masks is None else [m[idx] for m in masks])
                terms["loss"] = sum(terms.values())
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                return terms

            net.train()
            for rec in train_epochs(contrastive_step, lambda: self._contrastive_batches(n, gen),
                                    epochs=epochs["contrastive"], method="CMMC contrastive training",
                                    verbose=self.verbose, desc="contrastive"):
                history.append({"phase": "contrastive", **rec})

            net.eval()
            before = self._predict_tensors(net, xs, masks)
            # Phase 3, Eqs. (cmmc-match, cmmc-ce): fine-tune on matched k-means pseudo labels.
            if self.finetune:
                pseudo = self._pseudo_labels(net, xs, rng, device, masks)
                for rec in self._finetune(net, xs, pseudo, self._phase_optimizer(net, optimizer), epochs["finetune"], masks):
                    history.append({"phase": "finetune", **rec})
            net.eval()
        self.device_ = device
        self.n_features_in_views_ = dims
        self.network_ = net
        self.history_ = history
        self.epochs_ = epochs
        self.labels_before_finetune_ = before
        self.labels_ = self._predict_tensors(net, xs, masks) if self.finetune else before
        return self

    @staticmethod
    @torch.no_grad()
    def _predict_tensors(net: CMMCNetwork, xs: list[torch.Tensor], masks: list[torch.Tensor] | None = None) -> np.ndarray:
        """argmax of the mean over modalities of q^m, for the training tensors (network in eval mode)."""
        logits = apply_in_chunks(lambda *x: net(list(x), decode=False)[2], *xs)
        return _mean_over_present([torch.softmax(lm, dim=1) for lm in logits], masks).argmax(dim=1).cpu().numpy()

    def _contrastive_terms(self, net: CMMCNetwork, xs: list[torch.Tensor],
                           masks: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The named terms of Eq. (cmmc-total) on one mini-batch (``masks``: the rows each modality has)."""
        _, hs, logits, x_hats = net(xs)
        qs = [torch.softmax(lm, dim=1) for lm in logits]
        zero = xs[0].new_zeros(())
        if masks is None:
            reconstruction = sum(F.mse_loss(xh, x) for xh, x in zip(x_hats, xs))
        else:  # each autoencoder on the rows it has
            reconstruction = sum(F.mse_loss(xh[m], x[m]) for xh, x, m in zip(x_hats, xs, masks) if m.any())
        terms = {"reconstruction": reconstruction, "feature_contrastive": zero, "label_contrastive": zero}
        for a, b in combinations(range(len(xs)), 2):  # every pair of modalities
            h_a, h_b, q_a, q_b = hs[a], hs[b], qs[a], qs[b]
            if masks is not None:  # only the samples that have both modalities form positive pairs
                both = masks[a] & masks[b]
                if int(both.sum()) < 2:
                    continue
                h_a, h_b, q_a, q_b = h_a[both], h_b[both], q_a[both], q_b[both]
            if self.feature_contrast:
                terms["feature_contrastive"] = terms["feature_contrastive"] + nt_xent(h_a, h_b, self.tau_feature)
            if self.label_contrast:
                terms["label_contrastive"] = terms["label_contrastive"] + label_contrastive_loss(q_a, q_b, self.tau_label)
        return terms

    # Hooks that benchmarks/cmmc.py overrides to measure MFLVC's implementation choices.
    def _contrastive_batches(self, n: int, generator: torch.Generator):
        """One epoch's mini-batches of the contrastive phase (the last one may be smaller)."""
        return minibatches(n, self.batch_size, generator)

    def _phase_optimizer(self, net: CMMCNetwork, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Fine-tuning continues with the contrastive phase's Adam (MFLVC keeps one Adam throughout)."""
        return optimizer

    def _finetune_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed cross-entropy on the LOGITS: ``F.cross_entropy`` applies a stable log-softmax itself."""
        return F.cross_entropy(logits, targets, reduction="sum")

    def _pseudo_labels(self, net: CMMCNetwork, xs: list[torch.Tensor], rng: np.random.RandomState,
                       device: torch.device, masks: list[torch.Tensor] | None = None) -> list[np.ndarray]:
        """k-means on each modality's min-max scaled high-level features (of the rows it has)."""
        net.eval()
        hs = apply_in_chunks(lambda *x: net(list(x), decode=False)[1], *xs)
        if masks is not None:
            hs = [h[m] for h, m in zip(hs, masks)]
        return [np.asarray(KMeans(self.n_clusters, n_init=self.n_init, random_state=rng.randint(2**31 - 1),
                                  device=device).fit(min_max_scale(h)).labels_, dtype=np.int64) for h in hs]

    def _finetune(self, net: CMMCNetwork, xs: list[torch.Tensor], pseudo: list[np.ndarray],
                  optimizer: torch.optim.Optimizer, epochs: int,
                  masks: list[torch.Tensor] | None = None) -> list[dict[str, float]]:
        """Eq. (cmmc-ce): one full-batch step per epoch, as MFLVC, its gradient summed chunk by chunk.

        With ``masks``, modality m's pseudo labels cover the rows it has, and only those rows count.
        """
        n = len(xs[0])

        def step(_: None) -> dict[str, torch.Tensor]:
            net.train()
            logits = apply_in_chunks(lambda *x: net(list(x), decode=False)[2], *xs)
            if masks is None:
                targets = [torch.as_tensor(matched_pseudo_labels(p, lm.argmax(dim=1).cpu().numpy(), self.n_clusters),
                                           device=lm.device) for p, lm in zip(pseudo, logits)]
            else:  # a full-length target per modality, -1 (ignored) where the modality is missing
                targets = []
                for p, lm, m in zip(pseudo, logits, masks):
                    t = torch.full((n,), -1, dtype=torch.int64, device=lm.device)
                    t[m] = torch.as_tensor(matched_pseudo_labels(p, lm[m].argmax(dim=1).cpu().numpy(), self.n_clusters),
                                           device=lm.device)
                    targets.append(t)
            optimizer.zero_grad(set_to_none=True)
            total = xs[0].new_zeros(())
            for start in range(0, n, self.batch_size):
                rows = slice(start, start + self.batch_size)
                _, _, chunk_logits, _ = net([x[rows] for x in xs], decode=False)
                if masks is None:
                    loss = sum(self._finetune_loss(lm, t[rows]) for lm, t in zip(chunk_logits, targets)) / n
                else:  # the rows of this chunk that each modality has
                    kept = [t[rows] >= 0 for t in targets]
                    loss = sum(self._finetune_loss(lm[k], t[rows][k]) for lm, t, k in zip(chunk_logits, targets, kept)) / n
                loss.backward()
                total = total + loss.detach()
            optimizer.step()
            return {"cross_entropy": total}

        return train_epochs(step, lambda: [None], epochs=epochs, method="CMMC fine-tuning",
                            verbose=self.verbose, desc="fine-tune")

    # ------------------------------------------------------------------ inference
    def _forward(self, views: Sequence, outputs: Sequence[int]) -> tuple[list[list[torch.Tensor]], list[torch.Tensor] | None]:
        """The requested outputs of :meth:`CMMCNetwork.forward` (0: z, 1: h, 2: logits), chunk by chunk.

        Only what is asked for is kept, so that predicting needs memory for the logits, not for z.
        """
        check_is_fitted(self, "network_")
        views, present = _missing_rows(views)
        if len(views) != len(self.n_features_in_views_):
            raise ValueError(f"views has {len(views)} views, but the model was fitted on {len(self.n_features_in_views_)}.")
        for m, (X, d) in enumerate(zip(views, self.n_features_in_views_)):
            check_feature_width(X, d, f"views[{m}]", type(self).__name__)
        self.network_.eval()
        forward = lambda *x: [self.network_(list(x), decode=False)[i] for i in outputs]  # noqa: E731
        result = apply_in_chunks(forward, *(as_tensor(X, self.device_) for X in views))
        masks = None if present is None else [torch.as_tensor(p, device=self.device_) for p in present.T]
        return result, masks

    def predict_proba(self, views: Sequence) -> np.ndarray:
        """Mean over the modalities a sample has of the soft assignments q^m, shape (n_samples, K)."""
        (logits,), masks = self._forward(views, [2])
        return _mean_over_present([torch.softmax(lm, dim=1) for lm in logits], masks).cpu().numpy()

    def predict(self, views: Sequence) -> np.ndarray:
        """Cluster index of each sample: argmax of :meth:`predict_proba`."""
        return self.predict_proba(views).argmax(axis=1)

    def transform(self, views: Sequence) -> np.ndarray:
        """High-level features: the mean over the modalities a sample has of h^m, shape (n_samples, high_dim)."""
        (hs,), masks = self._forward(views, [1])
        return _mean_over_present(hs, masks).cpu().numpy()

    def transform_views(self, views: Sequence, level: str = "high") -> list[np.ndarray]:
        """Per-modality features: ``level="low"`` gives z^m (width ``hidden_dims[-1]``), ``"high"`` gives h^m.

        A sample that lacks modality m gets an all-NaN row in that modality's features.
        """
        if level not in ("low", "high"):
            raise ValueError(f"level={level!r} must be 'low' or 'high'.")
        (features,), masks = self._forward(views, [0 if level == "low" else 1])
        out = [t.cpu().numpy() for t in features]
        if masks is not None:
            for f, m in zip(out, masks):
                f[~m.cpu().numpy()] = np.nan
        return out

    def fit_predict(self, views: Sequence, y: None = None) -> np.ndarray:
        return self.fit(views).labels_


def _missing_rows(views: Sequence) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Checked views with missing rows (all NaN, :mod:`mmc_teach.pairing`) set to 0, and the
    ``(n, V)`` mask of the rows present, or None when every sample has every modality.

    Incomplete data needs dense views: integer ones count as complete, sparse ones are rejected.
    """
    if any_missing_rows(views):
        views = [X.astype(np.float32) if isinstance(X, np.ndarray) and X.dtype.kind in "biu" else X for X in views]
        present = missing_view_mask(views, [f"views[{m}]" for m in range(len(views))])
        views = [np.where(p[:, None], X, 0).astype(X.dtype) for X, p in zip(views, present.T)]
        return check_views(views, "views", min_views=2), present
    return check_views(views, "views", min_views=2), None


def _mean_over_present(per_modality: list[torch.Tensor], masks: list[torch.Tensor] | None) -> torch.Tensor:
    """Mean over modalities, sample by sample over the modalities it has (all of them without masks)."""
    if masks is None:
        return torch.stack(per_modality).mean(dim=0)
    weights = torch.stack([m.to(per_modality[0].dtype) for m in masks])[:, :, None]
    return (torch.stack(per_modality) * weights).sum(dim=0) / weights.sum(dim=0)
