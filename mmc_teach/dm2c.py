"""DM2C: deep mixed-modal clustering by latent cycle-consistent translation (chapter "DM2C").

Jiang, Xu, Yang, Cao and Huang, "DM2C: Deep Mixed-Modal Clustering", NeurIPS 2019
(:cite:`jiang2019dm2c`). Every sample is seen in ONE modality only: ``X_a`` and ``X_b`` hold
different objects. DM2C learns a latent space per modality (two autoencoders, Eq. dm2c-rec), maps
between the two latent spaces with generators ``G_AB`` and ``G_BA`` that must undo each other
(the L1 cycle loss, Eq. dm2c-cyc, from CycleGAN :cite:`zhu2017cyclegan`) and whose outputs a
Wasserstein critic per space cannot tell from real codes (Eq. dm2c-adv, :cite:`arjovsky2017wgan`;
the critic is kept 1-Lipschitz by weight clipping, Eq. dm2c-clip, or by a gradient penalty,
Eq. dm2c-gp, :cite:`gulrajani2017wgangp`). The full objective is Eq. (dm2c-objective). Finally
every sample is written in one modality's latent space (Eq. dm2c-unify) and k-means clusters
the unified codes. Equation labels refer to ``book/07_dm2c.ipynb``.

Where some samples have both modalities (``fit(X, paired=True)``: one row per sample in both views, a
missing view an all-NaN row, :mod:`mmc_teach.pairing`), those pairs also supervise the translation,
Eq. (pair-translation) of ``book/09_pairing.ipynb``: a paired sample's ``G_AB(z_a)`` should land on its
own ``z_b`` and ``G_BA(z_b)`` on its ``z_a``. Without any pair this is DM2C as above, exactly.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import (
    check_array,
    check_feature_width,
    check_n_clusters,
    check_positive,
    check_random_state,
    check_views,
    get_device,
    seeded,
    torch_seed_from,
)
from .nn import MLPAutoencoder, apply_in_chunks, as_tensor, encode_in_batches, mlp, pretrain_autoencoder
# mixed_modal_split lives with the pairing split (rho = 0) and is importable from here as well.
from .pairing import MixedModalSplit, any_missing_rows, missing_view_mask, mixed_modal_split  # noqa: F401
from .training import train_epochs

__all__ = [
    "DM2C",
    "cycle_loss",
    "pair_translation_loss",
    "cycle_reconstruction_loss",
    "critic_loss",
    "generator_loss",
    "gradient_penalty",
    "clip_weights",
    "make_generator",
    "make_critic",
]

Module = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- equations


def cycle_loss(z: torch.Tensor, forward: Module, backward: Module) -> torch.Tensor:
    """Latent cycle-consistency loss: mean ``|z - backward(forward(z))|``.

    Eq. (dm2c-cyc) of the chapter.
    With ``forward=G_AB, backward=G_BA`` this is L_cyc^A; swapped, L_cyc^B. The L1 norm is
    averaged over the coordinates as well as the batch (``torch``'s ``l1_loss``), i.e. Eq.
    (dm2c-cyc) divided by the latent size, so that ``lambda_cyc`` does not depend on it.
    ``z`` has shape (n, d); the result is a scalar, 0 exactly when ``backward`` inverts ``forward`` on z.
    """
    return nn.functional.l1_loss(backward(forward(z)), z)


def pair_translation_loss(za: torch.Tensor, zb: torch.Tensor, forward: Module, backward: Module) -> torch.Tensor:
    """Eq. (pair-translation): mean ``|forward(za) - zb| + |backward(zb) - za|`` over paired codes.

    Row i of ``za`` and ``zb`` is the same sample seen in both modalities (``forward=G_AB,
    backward=G_BA``). Averaged like :func:`cycle_loss`, so the two weights compare.
    """
    return nn.functional.l1_loss(forward(za), zb) + nn.functional.l1_loss(backward(zb), za)


def cycle_reconstruction_loss(x: torch.Tensor, z: torch.Tensor, decode: Module, forward: Module,
                              backward: Module) -> torch.Tensor:
    """The official code's cycle reconstruction: MSE of ``x`` and ``decode(backward(forward(z)))``.

    Eq. (dm2c-cyc-rec) of the chapter.
    Where Eq. (dm2c-cyc) asks the round trip to return to the same code, this asks it to return to
    a code that *decodes* to the same input: errors in directions the decoder ignores cost nothing.
    ``z`` is the code of ``x`` in its own space (for A: ``forward=G_AB, backward=G_BA, decode=Dec_A``).
    """
    return nn.functional.mse_loss(decode(backward(forward(z))), x)


def critic_loss(critic: Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Wasserstein critic loss (the critic's side of the adversarial term) and the distance estimate.

    Eq. (dm2c-adv) of the chapter.
    The critic maximises E[D(real)] - E[D(fake)], so it minimises the negative. Returns
    ``(loss, wasserstein)`` where ``wasserstein = E[D(real)] - E[D(fake)]`` is the
    Kantorovich-Rubinstein estimate of W1 (up to the critic's Lipschitz constant).
    """
    wasserstein = critic(real).mean() - critic(fake).mean()
    return -wasserstein, wasserstein.detach()


def generator_loss(critic: Module, fake: torch.Tensor) -> torch.Tensor:
    """The generator's side of the adversarial term: -E[D(fake)] (the real term has no generator in it).

    Eq. (dm2c-adv) of the chapter.
    """
    return -critic(fake).mean()


def gradient_penalty(
    critic: Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty: E[(||grad D(x_hat)||_2 - 1)^2] on interpolates.

    Eq. (dm2c-gp) of the chapter.
    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` per row
    (:cite:`gulrajani2017wgangp`): a 1-Lipschitz optimal critic has unit gradient norm on the
    segments between matched real and fake points. ``real`` and ``fake`` have shape (n, d);
    ``generator`` (a CPU ``torch.Generator``) draws eps so runs repeat on any device.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape.")
    eps = torch.rand((real.shape[0], 1), generator=generator).to(device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    # create_graph=True: the penalty itself is differentiated w.r.t. the critic's weights.
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.norm(2, dim=1) - 1.0).pow(2).mean()


@torch.no_grad()
def clip_weights(critic: nn.Module, c: float) -> None:
    """Clamp every parameter of ``critic`` to [-c, c] in place (the original WGAN).

    Eq. (dm2c-clip) of the chapter.
    A network with bounded weights is K-Lipschitz for some K, which is all the Wasserstein
    estimate needs (it is then K times W1).
    """
    for p in critic.parameters():
        p.clamp_(-c, c)


def make_generator(dim: int, hidden: int = 128) -> nn.Sequential:
    """Cross-modal generator on latent codes, ``dim -> hidden -> hidden -> dim`` (G_AB or G_BA)."""
    return mlp([dim, hidden, hidden, dim], activation="leaky_relu")


def make_critic(dim: int, hidden: int = 32) -> nn.Sequential:
    """Wasserstein critic on latent codes, ``dim -> hidden -> 1`` as in the official code (D_A, D_B)."""
    return mlp([dim, hidden, 1], activation="leaky_relu")


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Treat subnormal floats as zero inside the block (CPU), then restore the default.

    Clipped critics produce activations and RMSprop statistics in the subnormal range, where
    x86 CPUs slow down by 10-100x; flushing them changes nothing measurable in the results.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled batches of exactly ``batch_size`` indices (modalities differ in size)."""
    buffer = torch.empty(0, dtype=torch.long)
    while True:
        while len(buffer) < batch_size:
            buffer = torch.cat([buffer, torch.randperm(n, generator=generator)])
        yield buffer[:batch_size]
        buffer = buffer[batch_size:]


# --------------------------------------------------------------------------- estimator


class DM2C(TransformerMixin, ClusterMixin, BaseEstimator):
    """Deep mixed-modal clustering (Jiang et al. 2019), Eq. (dm2c-objective) of the chapter.

    Parameters
    ----------
    n_clusters : int
        Number of clusters k.
    hidden_dims : sequence of int
        Encoder widths of both autoencoders (mirrored in the decoders); the last entry is the size
        of each modality's latent space (official code: 1024, 256, 128 on 2048-d features).
    lambda_cyc, lambda_rec, lambda_adv : float
        Weights of the cycle (lambda_1 in the paper), reconstruction (lambda_2) and adversarial
        terms of Eq. (dm2c-objective). The official code weighs the adversarial term by 0.5.
    lambda_pair : float
        Weight of Eq. (pair-translation), used only with ``fit(X, paired=True)`` and only when some
        samples have both modalities.
    lambda_cyc_rec : float
        Weight of the official code's extra *cycle reconstruction* term, Eq. (dm2c-cyc-rec): the
        round trip decoded and compared with the input. 0 (the paper's objective) leaves it out.
        Measured (``benchmarks/dm2c_levers.py``, five seeds): at weight 1 it puts all of Wikipedia's
        image samples in one cluster (a higher NMI from a collapse) and costs accuracy on MNIST-USPS.
    critic : {"wgan-clip", "wgan-gp"}
        Keep the critics Lipschitz by weight clipping (the official code; RMSprop) or by a gradient
        penalty on interpolates (WGAN-GP; Adam with betas (0.5, 0.9)).
    clip_value : float
        c of Eq. (dm2c-clip).
    gp_weight : float
        Weight of the gradient penalty, Eq. (dm2c-gp) (10 in WGAN-GP).
    n_critic, n_generator : int
        The schedule: the autoencoders and generators are updated on every ``n_critic``-th batch,
        the critics on every ``n_generator``-th. ``n_critic=5, n_generator=1`` is WGAN's (five
        critic updates per generator update); the official DM2C code does the reverse
        (``n_critic=1, n_generator=5``): measured, level on Wikipedia and within the spread between
        seeds on MNIST-USPS, at more time per fit.
    unify : {"a", "b"}
        The latent space every sample is written in before k-means, Eq. (dm2c-unify).
    pretrain_epochs, epochs : int
        Autoencoder pretraining epochs (each modality alone) and joint training epochs.
    lr, critic_lr : float
        Adam learning rate of autoencoders and generators; learning rate of the critics.
    batch_size : int
        Mini-batch size, the same for both modalities.
    generator_hidden, critic_hidden : int
        Hidden widths of the generators and critics.
    cycle, adversarial : bool
        Ablation switches: drop the cycle terms (Eqs. dm2c-cyc and dm2c-cyc-rec) or the critics (and
        the adversarial term) entirely.
    n_init : int
        k-means restarts on the unified codes (the official code uses 20).
    device : str, torch.device or None
        None picks CUDA, then MPS, then the CPU.
    random_state : int, RandomState or None
        Seeds the networks, the batches and k-means; same seed, same result on the CPU.
    verbose : bool
        Progress bars (tqdm, on stderr) over the epochs of each phase; on by default, since a fit can
        take minutes. ``verbose=False`` or the environment variable ``MMC_TEACH_PROGRESS=0`` turns
        them off (the test session does, so notebooks compared by nbval print none).

    Attributes
    ----------
    labels_ : ndarray of shape (n_a + n_b,), or (n_samples,) with ``paired=True``
        Cluster of every training sample: the rows of ``X[0]`` first, then those of ``X[1]``
        (the multi-view convention of the API page; ``np.split(labels_, [n_a])`` separates them).
        With ``paired=True``, one label per sample (row).
    n_samples_views_ : list of int
        Number of training samples of each modality, ``[n_a, n_b]`` (with ``paired=True``: the
        samples that have it).
    n_pairs_ : int
        Samples seen in both modalities (0 unless ``paired=True``).
    n_features_in_views_ : list of int
        Feature count of each modality.
    cluster_centers_ : ndarray of shape (n_clusters, hidden_dims[-1])
        k-means centres in the unified space.
    autoencoders_, generators_, critics_ : nn.ModuleDict
        Keys "a"/"b" for the autoencoders, "ab"/"ba" for G_AB/G_BA, "a"/"b" for D_A/D_B.
    history_ : list of dict
        One dict per joint epoch: reconstruction, cycle, critic, generator, wasserstein (the
        critics' W1 estimate summed over both spaces), gradient_penalty (WGAN-GP only),
        cycle_reconstruction (when ``lambda_cyc_rec > 0``).
    pretrain_history_ : list of two lists
        ``pretrain_autoencoder`` histories of the two autoencoders.

    Examples
    --------
    >>> model = DM2C(n_clusters=10, random_state=0).fit([X_image, X_text])  # doctest: +SKIP
    >>> labels_image, labels_text = np.split(model.labels_, [len(X_image)])   # doctest: +SKIP
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        hidden_dims: Sequence[int] = (256, 32),
        lambda_cyc: float = 1.0,
        lambda_rec: float = 1.0,
        lambda_adv: float = 0.5,
        lambda_cyc_rec: float = 0.0,
        lambda_pair: float = 1.0,
        critic: str = "wgan-clip",
        clip_value: float = 0.05,
        gp_weight: float = 10.0,
        n_critic: int = 5,
        n_generator: int = 1,
        unify: str = "a",
        pretrain_epochs: int = 100,
        epochs: int = 100,
        lr: float = 1e-3,
        critic_lr: float = 5e-4,
        batch_size: int = 128,
        generator_hidden: int = 128,
        critic_hidden: int = 32,
        cycle: bool = True,
        adversarial: bool = True,
        n_init: int = 20,
        device: str | torch.device | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = True,
    ) -> None:
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.lambda_cyc = lambda_cyc
        self.lambda_rec = lambda_rec
        self.lambda_adv = lambda_adv
        self.lambda_cyc_rec = lambda_cyc_rec
        self.lambda_pair = lambda_pair
        self.critic = critic
        self.clip_value = clip_value
        self.gp_weight = gp_weight
        self.n_critic = n_critic
        self.n_generator = n_generator
        self.unify = unify
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.lr = lr
        self.critic_lr = critic_lr
        self.batch_size = batch_size
        self.generator_hidden = generator_hidden
        self.critic_hidden = critic_hidden
        self.cycle = cycle
        self.adversarial = adversarial
        self.n_init = n_init
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        check_n_clusters(self.n_clusters)  # its type first: _check_X compares it with each modality's size
        if self.critic not in ("wgan-clip", "wgan-gp"):
            raise ValueError(f"critic={self.critic!r} must be 'wgan-clip' or 'wgan-gp'.")
        if self.unify not in ("a", "b"):
            raise ValueError(
                f"unify={self.unify!r} must be 'a' (the first modality's latent space) or 'b' (the second's)."
            )
        if isinstance(self.hidden_dims, (str, bytes)) or not isinstance(self.hidden_dims, Sequence) or not self.hidden_dims:
            raise ValueError(f"hidden_dims={self.hidden_dims!r} must be a non-empty sequence of positive integers.")
        for h in self.hidden_dims:
            check_positive("hidden_dims entry", h, integer=True)
        for name in ("n_critic", "n_generator", "batch_size", "generator_hidden", "critic_hidden", "n_init"):
            check_positive(name, getattr(self, name), integer=True)
        for name in ("pretrain_epochs", "epochs"):
            check_positive(name, getattr(self, name), integer=True, allow_zero=True)
        for name in ("lambda_cyc", "lambda_rec", "lambda_adv", "lambda_cyc_rec", "lambda_pair", "gp_weight"):
            check_positive(name, getattr(self, name), allow_zero=True)
        for name in ("clip_value", "lr", "critic_lr"):
            check_positive(name, getattr(self, name))

    def _check_X(self, X: Any, paired: bool = False, fitting: bool = True) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The views (the rows present only), and with ``paired=True`` the ``(n, 2)`` mask of the
        rows present (else None)."""
        if not isinstance(paired, (bool, np.bool_)):
            raise TypeError(f"paired={paired!r} must be True or False.")
        present = None
        if paired:
            views = [check_array(V, f"X[{i}]", allow_nan_rows=True) for i, V in enumerate(_two_views(X))]
            present = missing_view_mask(views, ["X[0]", "X[1]"])  # also: one row per sample in both
            views = [V[p] for V, p in zip(views, present.T)]
        elif any_missing_rows(X):
            raise ValueError("X has NaN; all-NaN rows mark a missing view of a sample, so pass paired=True if row i "
                             "of X[0] and of X[1] is the same sample (the convention of mmc_teach.pairing).")
        else:
            views = check_views(X, "X", min_views=2, max_views=2, paired=False)
        for i, V in enumerate(views):
            if fitting and len(V) < 2:
                raise ValueError(f"X[{i}] has {len(V)} sample(s); each modality needs at least 2.")
            if fitting and not paired and len(V) < self.n_clusters:
                # The critics match each space's code distribution, k modes of it: a modality with
                # fewer samples than clusters cannot show them, and its translation is left to chance.
                raise ValueError(f"X[{i}] has {len(V)} samples, fewer than n_clusters={self.n_clusters}: "
                                 "DM2C needs each modality to have at least one sample per cluster.")
            if not fitting:
                check_feature_width(V, self.n_features_in_views_[i], f"X[{i}]", "DM2C")
        return views, present

    # ------------------------------------------------------------------ fit
    def fit(self, X: Sequence[Any], y: Any = None, *, paired: bool = False) -> DM2C:
        """Fit on ``X = [X_a, X_b]``: two arrays of DIFFERENT samples (rows), one per modality.

        With ``paired=True``, row i of both arrays is the same sample, and a sample that lacks a
        modality has an all-NaN row there (:mod:`mmc_teach.pairing`); the samples with both rows
        also train the translation (Eq. pair-translation), and ``labels_`` has one entry per row.
        Fitted attributes are set only once the fit succeeded.
        """
        self._check_params()
        views, present = self._check_X(X, paired)
        check_n_clusters(self.n_clusters, len(present) if paired else sum(len(V) for V in views))
        rng = check_random_state(self.random_state)
        device = get_device(self.device)
        latent_dim = int(self.hidden_dims[-1])
        with seeded(torch_seed_from(rng), device) as gen, flush_denormal():
            Xa, Xb = (as_tensor(V, device) for V in views)
            aes = nn.ModuleDict(
                {m: MLPAutoencoder(V.shape[1], self.hidden_dims, activation="leaky_relu", batch_norm=True)
                 for m, V in zip("ab", views)}
            ).to(device)
            gens = nn.ModuleDict({k: make_generator(latent_dim, self.generator_hidden) for k in ("ab", "ba")}).to(device)
            crits = nn.ModuleDict({m: make_critic(latent_dim, self.critic_hidden) for m in "ab"}).to(device)
            # Stage 1 (official code): each autoencoder alone, plain reconstruction (Eq. dm2c-rec).
            pretrain_history = [
                pretrain_autoencoder(aes[m], V, epochs=self.pretrain_epochs, batch_size=self.batch_size, lr=self.lr,
                                     noise=0.0, generator=gen, verbose=self.verbose, desc=f"pretrain {m}")
                for m, V in zip("ab", (Xa, Xb))
            ]
            pairs = None
            if present is not None and present.all(axis=1).any():
                # Positions of the paired samples among the rows of Xa and of Xb.
                both = present.all(axis=1)
                pairs = tuple(torch.as_tensor(np.flatnonzero(both[p]), device=device) for p in present.T)
            history = self._train_jointly(aes, gens, crits, Xa, Xb, gen, pairs)
            codes = torch.cat(_unified_codes(aes, gens, self.unify, Xa, Xb))
            km_codes = codes
            if present is not None:
                codes = _per_sample(codes, present, self.unify)
                # k-means sees the samples with the unified modality first, as without pairs (where
                # that order is the rows of Xa, then of Xb): with no pair the run is DM2C's exactly.
                own = present[:, 0 if self.unify == "a" else 1]
                km_codes = codes[torch.as_tensor(np.concatenate([np.flatnonzero(own), np.flatnonzero(~own)]),
                                                 device=codes.device)]
        from .kmeans import KMeans

        km = KMeans(self.n_clusters, n_init=self.n_init, random_state=rng.randint(2**31 - 1), device=device).fit(km_codes)

        self.device_ = device
        self.n_features_in_views_ = [V.shape[1] for V in views]
        self.n_samples_views_ = [len(V) for V in views]
        self.n_pairs_ = 0 if pairs is None else len(pairs[0])
        self.autoencoders_, self.generators_, self.critics_ = aes, gens, crits
        self.pretrain_history_, self.history_ = pretrain_history, history
        self.cluster_centers_ = np.asarray(km.cluster_centers_, dtype=np.float32)
        self.labels_ = self._assign(codes)
        return self

    def _train_jointly(self, aes: nn.ModuleDict, gens: nn.ModuleDict, crits: nn.ModuleDict,
                       Xa: torch.Tensor, Xb: torch.Tensor, gen: torch.Generator,
                       pairs: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[dict[str, float]]:
        """Alternate critic updates with autoencoder+generator updates, Eq. (dm2c-objective).

        The schedule counts the batches of each epoch from 0: its first batch updates both sides.
        ``pairs`` (rows of Xa and of Xb that are the same samples) adds Eq. (pair-translation) to
        every generator update, on a batch of pairs drawn from a stream of its own.
        """
        g_opt = torch.optim.Adam([*aes.parameters(), *gens.parameters()], lr=self.lr, betas=(0.5, 0.999))
        if self.critic == "wgan-clip":
            d_opt: torch.optim.Optimizer = torch.optim.RMSprop(crits.parameters(), lr=self.critic_lr)
        else:
            d_opt = torch.optim.Adam(crits.parameters(), lr=self.critic_lr, betas=(0.5, 0.9))
        batch = min(self.batch_size, len(Xa), len(Xb))
        stream_a, stream_b = _batches(len(Xa), batch, gen), _batches(len(Xb), batch, gen)
        # A lazy stream: without pairs it draws nothing, and the run is the mixed-modal DM2C bit for bit.
        stream_pairs = _batches(len(pairs[0]), min(batch, len(pairs[0])), gen) if pairs is not None else None
        steps = math.ceil(max(len(Xa), len(Xb)) / batch)

        def epoch_batches() -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
            for i in range(steps):
                yield i, Xa[next(stream_a).to(Xa.device)], Xb[next(stream_b).to(Xb.device)]

        def paired_batch() -> tuple[torch.Tensor, torch.Tensor] | None:
            if stream_pairs is None or self.lambda_pair == 0:
                return None
            rows = next(stream_pairs).to(Xa.device)
            return Xa[pairs[0][rows]], Xb[pairs[1][rows]]

        def step(batch: tuple[int, torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
            i, xa, xb = batch
            critic_terms = {}
            if self.adversarial and i % self.n_generator == 0:
                critic_terms = self._critic_step(aes, gens, crits, xa, xb, d_opt, gen)
            terms = {}
            if i % self.n_critic == 0 or not self.adversarial:
                terms = self._generator_step(aes, gens, crits, xa, xb, g_opt, paired_batch())
            # The reconstruction first: a NaN there is the root cause, and the loop names the first term.
            return {**terms, **critic_terms}

        aes.train(), gens.train(), crits.train()
        history = train_epochs(step, epoch_batches, epochs=self.epochs, method="DM2C", verbose=self.verbose)
        aes.eval(), gens.eval(), crits.eval()
        return history

    def _critic_step(self, aes, gens, crits, xa, xb, d_opt, gen) -> dict[str, torch.Tensor]:
        """One update of D_A and D_B on detached codes (the critics' side of Eq. dm2c-adv)."""
        with torch.no_grad():
            za, zb = aes["a"].encode(xa), aes["b"].encode(xb)
            fake_a, fake_b = gens["ba"](zb), gens["ab"](za)
        loss_a, w_a = critic_loss(crits["a"], za, fake_a)
        loss_b, w_b = critic_loss(crits["b"], zb, fake_b)
        loss = loss_a + loss_b
        terms = {}
        if self.critic == "wgan-gp":
            gp = gradient_penalty(crits["a"], za, fake_a, gen) + gradient_penalty(crits["b"], zb, fake_b, gen)
            loss = loss + self.gp_weight * gp
            terms["gradient_penalty"] = gp
        d_opt.zero_grad(set_to_none=True)
        loss.backward()
        d_opt.step()
        if self.critic == "wgan-clip":
            clip_weights(crits, self.clip_value)
        return {"critic": loss, "wasserstein": w_a + w_b, **terms}

    def _generator_step(self, aes, gens, crits, xa, xb, g_opt, pair=None) -> dict[str, torch.Tensor]:
        """One update of both autoencoders (by L_rec) and both generators (by L_cyc, L_adv and,
        given a batch of pairs, L_pair)."""
        (za, xa_hat), (zb, xb_hat) = aes["a"](xa), aes["b"](xb)
        g_ab, g_ba = gens["ab"], gens["ba"]
        rec = nn.functional.mse_loss(xa_hat, xa) + nn.functional.mse_loss(xb_hat, xb)
        loss = self.lambda_rec * rec
        # As in Eq. (dm2c-objective), L_cyc and L_adv depend on the generators only: the codes are
        # detached. Letting them reach the encoders invites a shortcut: shrinking every code makes
        # the L1 cycle loss small, and the decoders' batch norm hides the shrinking from L_rec.
        za, zb = za.detach(), zb.detach()
        cyc = cycle_loss(za, g_ab, g_ba) + cycle_loss(zb, g_ba, g_ab) if self.cycle else rec.new_zeros(())
        loss = loss + self.lambda_cyc * cyc
        terms = {"reconstruction": rec, "cycle": cyc}
        if self.cycle and self.lambda_cyc_rec > 0:
            # Through the detached codes this reaches the generators and the decoders, not the encoders.
            cyc_rec = (cycle_reconstruction_loss(xa, za, aes["a"].decode, g_ab, g_ba)
                       + cycle_reconstruction_loss(xb, zb, aes["b"].decode, g_ba, g_ab))
            loss = loss + self.lambda_cyc_rec * cyc_rec
            terms["cycle_reconstruction"] = cyc_rec
        if self.adversarial:
            adv = generator_loss(crits["a"], g_ba(zb)) + generator_loss(crits["b"], g_ab(za))
            loss = loss + self.lambda_adv * adv
            terms["generator"] = adv
        if pair is not None:
            # Detached like the cycle terms: the pairs teach the translation, not the encoders (whose
            # batch-norm statistics do see the paired batch, as they see every training batch).
            with torch.no_grad():
                pa, pb = aes["a"].encode(pair[0]), aes["b"].encode(pair[1])
            l_pair = pair_translation_loss(pa, pb, g_ab, g_ba)
            loss = loss + self.lambda_pair * l_pair
            terms["pair_translation"] = l_pair
        g_opt.zero_grad(set_to_none=True)
        loss.backward()
        g_opt.step()
        return terms

    # ------------------------------------------------------------------ unify and predict
    @torch.no_grad()
    def _assign(self, codes: torch.Tensor) -> np.ndarray:
        centers = torch.as_tensor(self.cluster_centers_, device=codes.device)
        return apply_in_chunks(lambda c: torch.cdist(c, centers).argmin(dim=1), codes).cpu().numpy()

    def transform(self, X: Sequence[Any], *, paired: bool = False) -> np.ndarray:
        """Unified codes of new samples, all in modality ``unify``'s space: rows of ``X[0]``, then
        ``X[1]``; with ``paired=True`` (as in :meth:`fit`), one code per sample."""
        check_is_fitted(self, "cluster_centers_")
        views, present = self._check_X(X, paired, fitting=False)
        Xa, Xb = (as_tensor(V, self.device_) for V in views)
        codes = torch.cat(_unified_codes(self.autoencoders_, self.generators_, self.unify, Xa, Xb))
        return (codes if present is None else _per_sample(codes, present, self.unify)).cpu().numpy()

    def predict(self, X: Sequence[Any], *, paired: bool = False) -> np.ndarray:
        """Cluster labels of new samples (nearest k-means centre of the unified codes), ordered as
        :meth:`transform` orders them."""
        return self._assign(torch.as_tensor(self.transform(X, paired=paired)))

    def fit_predict(self, X: Sequence[Any], y: Any = None, *, paired: bool = False) -> np.ndarray:
        """Fit and return ``labels_`` (the rows of ``X[0]``, then those of ``X[1]``; per row with ``paired``)."""
        return self.fit(X, paired=paired).labels_


@torch.no_grad()
def _unified_codes(aes: nn.ModuleDict, gens: nn.ModuleDict, unify: str, Xa: torch.Tensor, Xb: torch.Tensor) -> list[torch.Tensor]:
    """Eq. (dm2c-unify): own codes for the target modality, translated codes for the other."""
    za, zb = encode_in_batches(aes["a"], Xa), encode_in_batches(aes["b"], Xb)
    gens.eval()
    if unify == "a":
        return [za, apply_in_chunks(gens["ba"], zb)]
    return [apply_in_chunks(gens["ab"], za), zb]


def _two_views(X: Any) -> list[Any]:
    if isinstance(X, (np.ndarray, torch.Tensor, str, bytes)) or not isinstance(X, Sequence) or len(X) != 2:
        return check_views(X, "X", min_views=2, max_views=2, paired=False)  # raises the usual message
    return list(X)


def _per_sample(codes: torch.Tensor, present: np.ndarray, unify: str) -> torch.Tensor:
    """One unified code per sample from the rows of Xa then Xb: its own code in the ``unify``
    space where it has that modality, else its translated code from the other one."""
    n_a = int(present[:, 0].sum())
    rows = [np.cumsum(present[:, 0]) - 1, n_a + np.cumsum(present[:, 1]) - 1]
    own = 0 if unify == "a" else 1
    pick = np.where(present[:, own], rows[own], rows[1 - own])
    return codes[torch.as_tensor(pick, device=codes.device)]
