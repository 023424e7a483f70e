"""Pure functions behind the chapters' interactive labs (ipywidgets).

Each lab in the book is a thin ``ipywidgets.interact`` wrapper around one function here; the
function takes plain numbers and arrays, returns plain arrays, and is unit-tested, so the static
figure that replaces the widget in the rendered book is computed by exactly the same code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["critic_landscape", "sharpening_demo", "joint_target_demo", "kmeans_steps", "contrastive_temperature"]


def critic_landscape(
    real: Any,
    fake: Any,
    critic: str = "wgan-clip",
    clip_value: float = 0.05,
    gp_weight: float = 10.0,
    steps: int = 300,
    lr: float | None = None,
    hidden: int = 32,
    grid_size: int = 60,
    margin: float = 0.5,
    random_state: int = 0,
) -> dict[str, np.ndarray | float]:
    """Train a fresh Wasserstein critic between two fixed 2-D point clouds; return its landscape.

    The lab of chapter "DM2C": how the Lipschitz constraint (weight clipping with ``clip_value``,
    Eq. dm2c-clip, or a gradient penalty with ``gp_weight``, Eq. dm2c-gp) shapes the critic
    ``D`` that :class:`mmc_teach.DM2C` trains on latent codes (same ``make_critic`` network, same
    ``critic_loss``, ``clip_weights`` and ``gradient_penalty``).

    Parameters
    ----------
    real, fake : array of shape (n, 2) and (m, 2)
        The two clouds; the critic learns to score ``real`` high and ``fake`` low.
    critic : {"wgan-clip", "wgan-gp", "none"}
        Lipschitz constraint; ``"none"`` trains the unconstrained critic (its scores blow up).
    clip_value, gp_weight : float
        Strength of each constraint.
    steps : int
        Full-batch critic updates (RMSprop for clipping and ``"none"``, Adam for WGAN-GP).
    lr : float or None
        Learning rate; None uses 5e-3 (clip, none) or 1e-3 (gp).
    hidden : int
        Width of the critic's hidden layer.
    grid_size, margin : int, float
        The landscape is evaluated on a ``grid_size x grid_size`` grid covering both clouds plus ``margin``.
    random_state : int
        Seeds the critic's initialisation and the interpolates.

    Returns
    -------
    dict with ``xx``, ``yy`` (grid coordinates, shape (grid_size, grid_size)), ``values`` (D on the
    grid), ``grad_norm`` (||grad D|| on the grid), ``wasserstein`` (final E[D(real)] - E[D(fake)])
    and ``max_abs_weight`` (largest critic weight in absolute value).
    """
    import torch

    from ._base import check_positive, seeded
    from .dm2c import clip_weights, critic_loss, flush_denormal, gradient_penalty, make_critic

    real_np = np.asarray(real, dtype=np.float32)
    fake_np = np.asarray(fake, dtype=np.float32)
    for name, arr in (("real", real_np), ("fake", fake_np)):
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
            raise ValueError(f"{name} must be a non-empty array of shape (n, 2); got shape {arr.shape}.")
    if critic not in ("wgan-clip", "wgan-gp", "none"):
        raise ValueError(f"critic={critic!r} must be 'wgan-clip', 'wgan-gp' or 'none'.")
    check_positive("clip_value", clip_value)
    check_positive("gp_weight", gp_weight, allow_zero=True)
    check_positive("steps", steps, integer=True, allow_zero=True)
    lr = (1e-3 if critic == "wgan-gp" else 5e-3) if lr is None else check_positive("lr", lr)
    with seeded(int(random_state)) as gen, flush_denormal():
        D = make_critic(2, hidden)
        real_t, fake_t = torch.from_numpy(real_np), torch.from_numpy(fake_np)
        if critic == "wgan-gp":
            opt: torch.optim.Optimizer = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.9))
            # the penalty pairs real and fake rows, so both are cut to the smaller cloud
            n = min(len(real_t), len(fake_t))
        else:
            opt = torch.optim.RMSprop(D.parameters(), lr=lr)
        for _ in range(steps):
            loss, _ = critic_loss(D, real_t, fake_t)
            if critic == "wgan-gp":
                loss = loss + gp_weight * gradient_penalty(D, real_t[:n], fake_t[:n], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if critic == "wgan-clip":
                clip_weights(D, clip_value)
        both = np.vstack([real_np, fake_np])
        lo, hi = both.min(axis=0) - margin, both.max(axis=0) + margin
        xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], grid_size), np.linspace(lo[1], hi[1], grid_size))
        grid = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)).requires_grad_(True)
        values = D(grid)
        (grad,) = torch.autograd.grad(values.sum(), grid)
        with torch.no_grad():
            wasserstein = float(D(real_t).mean() - D(fake_t).mean())
            max_w = float(max(p.abs().max() for p in D.parameters()))
    return {
        "xx": xx,
        "yy": yy,
        "values": values.detach().numpy().reshape(xx.shape),
        "grad_norm": grad.norm(dim=1).numpy().reshape(xx.shape),
        "wasserstein": wasserstein,
        "max_abs_weight": max_w,
    }


def sharpening_demo(z: Any, centers: Any, alpha: float = 1.0, power: float = 2.0) -> dict[str, np.ndarray]:
    """Soft assignments q and sharpened targets p for a few embedded points (lab of "DEC and IDEC").

    ``q`` is the Student-t kernel with ``alpha`` degrees of freedom, Eq. (dec-q); ``p`` raises it to
    ``power`` and divides by the soft cluster sizes, Eq. (dec-p) (DEC uses ``power=2``). Both come
    from :mod:`mmc_teach.losses`, the code :class:`mmc_teach.DEC` trains with.

    Parameters
    ----------
    z : array of shape (n, d)
        Embedded points (the cluster frequencies f_j are taken over these n points).
    centers : array of shape (k, d)
        Cluster centres mu_j.
    alpha, power : float
        Degrees of freedom of the kernel and the sharpening exponent, both > 0.

    Returns
    -------
    dict with ``q`` and ``p`` (shape (n, k), rows summing to one) and ``entropy_q``, ``entropy_p``
    (shape (n,), in nats): lower entropy = a more confident assignment.
    """
    import torch

    from ._base import check_positive
    from .losses import soft_assignment, target_distribution

    check_positive("alpha", alpha)
    check_positive("power", power)
    z_np = np.asarray(z, dtype=np.float64)
    mu_np = np.asarray(centers, dtype=np.float64)
    if z_np.ndim != 2 or mu_np.ndim != 2 or z_np.shape[1] != mu_np.shape[1] or not len(z_np) or not len(mu_np):
        raise ValueError(
            f"z and centers must be non-empty 2-D arrays with the same number of columns; got shapes {z_np.shape} and {mu_np.shape}."
        )
    q = soft_assignment(torch.from_numpy(z_np), torch.from_numpy(mu_np), float(alpha))
    p = target_distribution(q, power=float(power))
    q_np, p_np = q.numpy(), p.numpy()

    def entropy(r: np.ndarray) -> np.ndarray:
        return -(r * np.log(np.clip(r, 1e-300, None))).sum(axis=1)

    return {"q": q_np, "p": p_np, "entropy_q": entropy(q_np), "entropy_p": entropy(p_np)}


def joint_target_demo(q: Any, r: Any, alpha: float = 0.5, has_text: Any = None) -> dict[str, np.ndarray]:
    """JECL's joint target P for given image and text assignments (lab of chapter "JECL").

    ``p`` is :func:`mmc_teach.jecl.joint_target_distribution`, Eq. (jecl-p) (the book's reading):
    p_ij ∝ alpha q_ij^2 / f_j + (1 - alpha) r_ij^2 / g_j, the text term dropped where ``has_text``
    is False -- the code :class:`mmc_teach.JECL` trains with. Sliding ``alpha`` from 0 to 1 moves the
    target from the text's opinion to the image's.

    Parameters
    ----------
    q, r : array of shape (n, k)
        Image and text soft assignments (rows are normalised here).
    alpha : float in [0, 1]
        Weight of the image term.
    has_text : bool array of shape (n,) or None
        Which samples have text (None: all).

    Returns
    -------
    dict with ``p`` (n, k), ``follows_image`` and ``follows_text`` (bool (n,): the target's top
    cluster is the image's / the text's top cluster) and ``combined`` (n, k), the final soft
    assignment alpha q + (1 - alpha) r of Eq. (jecl-assign).
    """
    import torch

    from .jecl import combined_assignment, joint_target_distribution

    q_np, r_np = np.asarray(q, dtype=np.float64), np.asarray(r, dtype=np.float64)
    if q_np.ndim != 2 or q_np.shape != r_np.shape or not q_np.size:
        raise ValueError(f"q and r must be non-empty 2-D arrays of the same shape; got {q_np.shape} and {r_np.shape}.")
    if (q_np < 0).any() or (r_np < 0).any():
        raise ValueError("q and r must be non-negative (soft assignments).")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha={alpha} must be in [0, 1].")
    mask = np.ones(len(q_np), dtype=bool) if has_text is None else np.asarray(has_text, dtype=bool)
    if mask.shape != (len(q_np),):
        raise ValueError(f"has_text must have shape ({len(q_np)},), got {mask.shape}.")
    qt = torch.from_numpy(q_np / q_np.sum(axis=1, keepdims=True))
    rt = torch.from_numpy(r_np / np.clip(r_np.sum(axis=1, keepdims=True), 1e-300, None))
    mt = torch.from_numpy(mask)
    p = joint_target_distribution(qt, rt, mt, float(alpha)).numpy()
    top = p.argmax(axis=1)
    return {
        "p": p,
        "follows_image": top == q_np.argmax(axis=1),
        "follows_text": (top == r_np.argmax(axis=1)) & mask,
        "combined": combined_assignment(qt, rt, mt, float(alpha)).numpy(),
    }


def kmeans_steps(
    X: Any, n_clusters: int, n_steps: int = 10, random_state: int = 0, init: str = "random"
) -> dict[str, np.ndarray]:
    """Every intermediate state of Lloyd's algorithm (lab of chapter "k-means").

    Step 0 holds the initial centres; step t + 1 moves every centre to the mean of the points
    assigned to it at step t, Eq. (eq-kmeans-update), and reassigns every point to its nearest
    centre, Eq. (eq-kmeans-assign). A cluster that loses all its points keeps its centre (the
    library's :class:`mmc_teach.KMeans` re-seeds it instead). Plain NumPy, as the chapter's
    from-scratch cells.

    Parameters
    ----------
    X : array of shape (n, d)
        Data (the lab uses d = 2 so that it can draw the steps).
    n_clusters : int
        Number of clusters k (1 <= k <= n).
    n_steps : int
        Number of Lloyd iterations to record (>= 0).
    random_state : int
        Seeds the initialisation.
    init : {"random", "k-means++"} or array of shape (k, d)
        ``"random"``: k distinct data points; ``"k-means++"``: the greedy seeding of
        :func:`mmc_teach.kmeans.kmeans_plusplus`; an array: these starting centres.

    Returns
    -------
    dict with ``centers`` (n_steps + 1, k, d), ``labels`` (n_steps + 1, n) -- the assignment to
    that step's centres -- and ``inertia`` (n_steps + 1,), which never increases.
    """
    from ._base import check_array, check_n_clusters, check_positive, check_random_state

    X = check_array(X, "X", dtype=np.float64)
    k = check_n_clusters(n_clusters, len(X), minimum=1)
    check_positive("n_steps", n_steps, integer=True, allow_zero=True)
    rng = check_random_state(random_state)
    if not isinstance(init, str):
        centers = check_array(init, "init", dtype=np.float64)
        if centers.shape != (k, X.shape[1]):
            raise ValueError(f"init has shape {centers.shape}, expected (n_clusters, n_features) = {(k, X.shape[1])}.")
    elif init == "random":
        centers = X[rng.choice(len(X), size=k, replace=False)]
    elif init == "k-means++":
        import torch

        from .kmeans import kmeans_plusplus

        centers = kmeans_plusplus(torch.from_numpy(X), k, rng)[0].numpy()
    else:
        raise ValueError(f"init={init!r} must be 'random' or 'k-means++'.")
    all_centers, all_labels, all_inertia = [], [], []
    for step in range(n_steps + 1):
        if step > 0:  # update: each centre moves to the mean of its points
            centers = np.stack([X[labels == j].mean(axis=0) if (labels == j).any() else centers[j] for j in range(k)])
        sq = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)  # (n, k)
        labels = sq.argmin(axis=1)
        all_centers.append(centers.copy())
        all_labels.append(labels)
        all_inertia.append(sq[np.arange(len(X)), labels].sum())
    return {"centers": np.stack(all_centers), "labels": np.stack(all_labels), "inertia": np.array(all_inertia)}


def contrastive_temperature(similarities: Any, tau: float = 0.5, positive: int = 0) -> dict[str, np.ndarray | float]:
    """What one anchor of NT-Xent sees at temperature ``tau`` (the lab of chapter "CMMC").

    The anchor's term of Eq. (cmmc-ntxent) is a softmax over its 2N-1 candidates (every sample
    but itself), with logits ``s / tau``; the loss is ``-log p[positive]``. Its gradient with
    respect to the similarities is ``(p - onehot(positive)) / tau``: every negative is pushed
    away with weight ``p_j / tau``, so a small ``tau`` concentrates the push on the hardest
    (most similar) negatives, a large one spreads it evenly. Same computation as
    :func:`mmc_teach.cmmc.nt_xent`, for one anchor, in NumPy.

    Parameters
    ----------
    similarities : array of shape (m,)
        Cosine similarities (in [-1, 1]) of the anchor to its m candidates, self excluded.
    tau : float
        Temperature, > 0.
    positive : int
        Index of the positive candidate in ``similarities``.

    Returns
    -------
    dict with ``probabilities`` (m,), ``loss`` (float), ``gradient`` (m,) = d loss / d similarities.

    Examples
    --------
    >>> out = contrastive_temperature([0.9, 0.1, -0.5], tau=1.0)
    >>> round(out["loss"], 4)
    0.5282
    """
    from ._base import check_positive

    s = np.asarray(similarities, dtype=np.float64)
    if s.ndim != 1 or s.size < 1:
        raise ValueError(f"similarities must be a non-empty 1-D array, got shape {s.shape}.")
    if not np.isfinite(s).all():
        raise ValueError("similarities contains NaN or infinity.")
    check_positive("tau", tau)
    if not 0 <= int(positive) < s.size:
        raise ValueError(f"positive={positive} must index one of the {s.size} similarities.")
    logits = s / tau
    # Subtracting the maximum before exp is the logsumexp trick: no overflow for tiny tau.
    shifted = logits - logits.max()
    log_p = shifted - np.log(np.exp(shifted).sum())
    p = np.exp(log_p)
    onehot = np.zeros_like(p)
    onehot[int(positive)] = 1.0
    return {"probabilities": p, "loss": float(-log_p[int(positive)]) + 0.0, "gradient": (p - onehot) / tau}
