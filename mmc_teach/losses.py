"""Loss terms shared by the deep clustering methods (chapter "DEC and IDEC").

The equation numbers refer to the chapter ``04_dec_idec``; JECL, DM2C and CMMC import these
rather than re-deriving them.

- :func:`soft_assignment` -- Student-t kernel q_ij, Eq. (dec-q) (Xie et al. 2016, Eq. 1).
- :func:`target_distribution` -- sharpened target p_ij, Eq. (dec-p) (Xie et al. 2016, Eq. 3).
- :func:`kl_clustering_loss` -- KL(P || Q), Eq. (dec-kl) (Xie et al. 2016, Eq. 2).
"""

from __future__ import annotations

import torch

__all__ = ["soft_assignment", "target_distribution", "kl_clustering_loss", "EPS"]

# Probabilities are clamped at EPS before a log so that an exactly-zero entry never gives log(0).
EPS = 1e-12


def soft_assignment(z: torch.Tensor, centers: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student-t soft assignment of embeddings to cluster centres, Eq. (dec-q).

    q_ij = (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha + 1) / 2), normalised over j.

    Parameters
    ----------
    z : Tensor of shape (n, d)
        Embedded samples.
    centers : Tensor of shape (k, d)
        Cluster centres mu_j.
    alpha : float
        Degrees of freedom of the Student t distribution (1 in DEC).

    Returns
    -------
    q : Tensor of shape (n, k)
        Rows sum to one.
    """
    squared_distance = torch.cdist(z, centers).pow(2)  # (n, k)
    # Working in log space keeps the power numerically safe for large distances or small alpha.
    log_kernel = -(alpha + 1.0) / 2.0 * torch.log1p(squared_distance / alpha)
    return torch.softmax(log_kernel, dim=1)


def target_distribution(q: torch.Tensor, power: float = 2.0) -> torch.Tensor:
    """Auxiliary target distribution P, Eq. (dec-p).

    p_ij = (q_ij^power / f_j) / sum_j' (q_ij'^power / f_j'), with soft cluster frequencies
    f_j = sum_i q_ij. Raising to ``power`` (2 in DEC) sharpens confident assignments; dividing by
    f_j stops large clusters from absorbing everything. Computed without gradient: P is a fixed
    target while Q is trained towards it.

    Parameters
    ----------
    q : Tensor of shape (n, k)
        Soft assignments (rows sum to one), ideally over the full data set.
    power : float
        Sharpening exponent.

    Returns
    -------
    p : Tensor of shape (n, k), rows summing to one.
    """
    with torch.no_grad():
        frequency = q.sum(dim=0).clamp_min(EPS)  # (k,)
        weight = q.pow(power) / frequency
        return weight / weight.sum(dim=1, keepdim=True).clamp_min(EPS)


def kl_clustering_loss(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) averaged over the samples of the batch, Eq. (dec-kl).

    L = (1/n) sum_i sum_j p_ij log(p_ij / q_ij). Gradients flow into ``q`` (and so into the
    encoder and the centres); ``p`` is treated as a constant.
    """
    p = p.detach()
    return (p * (torch.log(p.clamp_min(EPS)) - torch.log(q.clamp_min(EPS)))).sum(dim=1).mean()
