"""The one training loop of the package, and the self-training schedule DEC and JECL share.

Every estimator trains by epochs of mini-batch steps. :func:`train_epochs` runs them given a *step*
function (one optimiser update on one batch, returning its named loss terms as tensors) and owns
what every method needs around it:

- the loss terms are summed **on the device** and read back once per epoch (a host sync per step
  stalls a GPU; on a CPU it costs little, but one loop for both keeps the methods alike);
- the progress bar (tqdm, off unless ``verbose``; ``MMC_TEACH_PROGRESS=0`` silences it everywhere);
- the NaN/inf check that names the term and the epoch;
- the ``history_`` rows: ``{"epoch": e, <term>: mean over the epoch, ...}``.

:class:`SelfTrainingTarget` is DEC's alternating scheme (Xie et al. 2016, Sec. 3.1.3): a target
computed on the full data every ``interval`` steps and held fixed in between, and the stopping rule
"fewer than a fraction ``tol`` of the labels changed between two target updates".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from ._base import check_finite_losses, progress

__all__ = ["StopTraining", "LossMeter", "train_epochs", "SelfTrainingTarget"]

Step = Callable[[Any], Mapping[str, torch.Tensor]]


class StopTraining(Exception):
    """Raised inside a step to end training; the epoch's steps so far are still recorded."""


class LossMeter:
    """Weighted means of named loss terms, accumulated on the tensors' device.

    Each term keeps its own total weight, so a term computed only on some steps (DM2C's generator
    update every ``n_critic``-th step) is averaged over the steps where it was computed.
    """

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._weights: dict[str, float] = {}

    def add(self, terms: Mapping[str, torch.Tensor], weight: float = 1.0) -> None:
        for name, value in terms.items():
            value = value.detach()
            # float64 sums where the device has it (Apple MPS does not), so long epochs lose no digits.
            value = value.to(torch.float32 if value.device.type == "mps" else torch.float64) * weight
            self._sums[name] = self._sums[name] + value if name in self._sums else value
            self._weights[name] = self._weights.get(name, 0.0) + weight

    def __bool__(self) -> bool:
        return bool(self._sums)

    def means(self) -> dict[str, float]:
        """The means as Python floats: one device-to-host copy for all terms."""
        if not self._sums:
            return {}
        values = torch.stack([s.reshape(()) for s in self._sums.values()]).tolist()
        return {name: v / self._weights[name] for name, v in zip(self._sums, values)}


def _batch_weight(batch: Any) -> float:
    """Index tensors weigh by their size (a per-sample mean over the epoch); anything else counts 1."""
    return float(len(batch)) if isinstance(batch, torch.Tensor) else 1.0


def train_epochs(
    step: Step,
    batches: Callable[[], Iterable[Any]],
    *,
    epochs: int,
    method: str,
    verbose: bool | int = False,
    desc: str | None = None,
    epoch_end: Callable[[int], Mapping[str, float]] | None = None,
) -> list[dict[str, float]]:
    """Run ``epochs`` epochs of ``step(batch)`` for every ``batch`` in ``batches()``.

    Parameters
    ----------
    step : callable
        Performs one update and returns its named loss terms (scalar tensors; detached here).
    batches : callable
        Called once per epoch; yields the epoch's batches (e.g. index tensors from
        ``mmc_teach._base.minibatches``).
    epochs : int
        Number of epochs (0 runs none).
    method : str
        Named in the error message when a term becomes NaN or infinite.
    verbose : bool
        Show a progress bar over the epochs with the last epoch's loss.
    desc : str, optional
        Label of the progress bar (default ``method``).
    epoch_end : callable, optional
        ``epoch_end(epoch)`` returns extra entries for the epoch's record (e.g. a label change).

    Returns
    -------
    history : list of dict
        One record per epoch that ran at least one step: ``epoch`` (1-based) and each term's mean.
        A :class:`StopTraining` raised by ``step`` ends training after recording that epoch.
    """
    history: list[dict[str, float]] = []
    bar = progress(range(1, epochs + 1), verbose, desc or method)
    for epoch in bar:
        meter, stop = LossMeter(), False
        try:
            for batch in batches():
                meter.add(step(batch), _batch_weight(batch))
        except StopTraining:
            stop = True
        if meter:
            record: dict[str, float] = {"epoch": epoch, **meter.means()}
            # The named terms before their sum, so that the message names the culprit.
            check_finite_losses(dict(sorted(((k, v) for k, v in record.items() if k != "epoch"),
                                            key=lambda kv: kv[0] == "loss")), epoch, method)
            if epoch_end is not None:
                record.update(epoch_end(epoch))
            history.append(record)
            if hasattr(bar, "set_postfix") and "loss" in record:
                bar.set_postfix(loss=f"{record['loss']:.4g}")
        if stop:
            break
    return history


class SelfTrainingTarget:
    """A target refreshed on the full data every ``interval`` steps, with the label-change stop.

    ``compute()`` returns ``(target, labels)`` for ALL samples (without a graph). Call
    ``before_step()`` at the start of every step: on steps 0, interval, 2 interval, ... it
    recomputes the target, measures ``label_change`` (the fraction of labels that differ from the
    previous update; from ``initial_labels`` at the first one, or 1.0 without them) and raises
    :class:`StopTraining` when that fraction is below ``tol`` (never at step 0).
    """

    def __init__(
        self,
        compute: Callable[[], tuple[torch.Tensor, torch.Tensor]],
        interval: int,
        tol: float,
        initial_labels: torch.Tensor | None = None,
    ) -> None:
        self.compute, self.interval, self.tol = compute, int(interval), float(tol)
        self.labels = initial_labels
        self.target: torch.Tensor | None = None
        self.iteration = 0
        self.label_change = math.nan
        self.converged = False

    def before_step(self) -> torch.Tensor:
        if self.iteration % self.interval == 0:
            target, labels = self.compute()
            previous, self.labels = self.labels, labels
            self.label_change = 1.0 if previous is None else float((labels != previous).float().mean())
            if self.iteration > 0 and self.label_change < self.tol:
                self.converged = True
                raise StopTraining
            self.target = target
        self.iteration += 1
        assert self.target is not None
        return self.target
