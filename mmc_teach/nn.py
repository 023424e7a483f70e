"""The one MLP autoencoder of the book and its pretraining routine (chapter "Autoencoders").

DEC, IDEC, JECL, DM2C and CMMC all build on :class:`MLPAutoencoder` and
:func:`pretrain_autoencoder`; nothing else in the package defines an autoencoder.

The architecture follows DEC (Xie et al. 2016): d-500-500-2000-10 fully connected layers with
ReLU, a linear embedding layer and a mirrored decoder. Pretraining is end-to-end denoising
(masking noise on the input, MSE reconstruction), a faster stand-in for DEC's greedy layer-wise
schedule that reaches similar embeddings on the book's data.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._base import check_positive, get_device, minibatches, seeded
from .training import train_epochs

__all__ = [
    "MLPAutoencoder",
    "mlp",
    "initialize_weights",
    "make_optimizer",
    "pretrain_autoencoder",
    "pretrained_autoencoder",
    "cache_dir",
    "apply_in_chunks",
    "encode_in_batches",
    "as_tensor",
]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def mlp(
    dims: Sequence[int],
    activation: str = "relu",
    batch_norm: bool = False,
    dropout: float = 0.0,
    final_activation: str | None = None,
) -> nn.Sequential:
    """A stack of ``Linear`` layers through ``dims``; hidden layers get activation (+ BN, dropout).

    The last layer is linear unless ``final_activation`` names one (e.g. ``"sigmoid"`` for
    pixel intensities in [0, 1]).
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not one of {sorted(_ACTIVATIONS)}.")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(_ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    if final_activation is not None:
        if final_activation not in _ACTIVATIONS:
            raise ValueError(f"final_activation={final_activation!r} is not one of {sorted(_ACTIVATIONS)}.")
        layers.append(_ACTIVATIONS[final_activation]())
    return nn.Sequential(*layers)


#: Weight initialisations of :func:`initialize_weights`; the names say whose default each one is.
INITIALIZATIONS = ("torch", "variance_scaling", "glorot")


def initialize_weights(module: nn.Module, scheme: str = "torch") -> nn.Module:
    """Re-initialise every ``Linear`` layer of ``module`` in place; returns ``module``.

    - ``"torch"``: leave PyTorch's default, weights and biases U(-b, b) with b = 1/sqrt(fan_in).
    - ``"variance_scaling"``: DEC's reference code on MNIST (Keras ``VarianceScaling(1/3, "fan_in",
      "uniform")``): weights U(-b, b) with the same b = 1/sqrt(fan_in), biases zero. It differs
      from ``"torch"`` only in the biases.
    - ``"glorot"``: Keras's default, used by DEC's reference code on USPS: weights
      U(-b, b) with b = sqrt(6 / (fan_in + fan_out)), biases zero.
    """
    if scheme not in INITIALIZATIONS:
        raise ValueError(f"init={scheme!r} is not one of {INITIALIZATIONS}.")
    if scheme == "torch":
        return module
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            with torch.no_grad():
                if scheme == "glorot":
                    nn.init.xavier_uniform_(layer.weight)
                else:
                    bound = 1.0 / np.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound)
                layer.bias.zero_()
    return module


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder ``input_dim -> hidden_dims -> mirrored back``.

    Parameters
    ----------
    input_dim : int
        Number of input features d.
    hidden_dims : sequence of int
        Encoder widths; the last entry is the embedding size (DEC: 500, 500, 2000, 10).
    activation : str
        Hidden activation: ``relu`` (DEC), ``leaky_relu`` (DM2C), ``elu``, ``tanh`` or ``sigmoid``.
    batch_norm : bool
        Batch normalisation after each hidden linear layer.
    dropout : float
        Dropout after each hidden layer (besides the input noise used in pretraining).
    output_activation : str or None
        Activation of the reconstruction, e.g. ``"sigmoid"`` for data in [0, 1].

    Examples
    --------
    >>> ae = MLPAutoencoder(784, [500, 500, 2000, 10])
    >>> z, x_hat = ae(torch.zeros(4, 784))
    >>> tuple(z.shape), tuple(x_hat.shape)
    ((4, 10), (4, 784))
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (500, 500, 2000, 10),
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        output_activation: str | None = None,
    ) -> None:
        super().__init__()
        hidden_dims = [int(h) for h in hidden_dims]
        if input_dim < 1 or not hidden_dims or min(hidden_dims) < 1:
            raise ValueError(f"input_dim={input_dim} and hidden_dims={hidden_dims} must be positive.")
        self.input_dim = int(input_dim)
        self.embedding_dim = hidden_dims[-1]
        self.encoder = mlp([input_dim, *hidden_dims], activation, batch_norm, dropout)
        self.decoder = mlp([*hidden_dims[::-1], input_dim], activation, batch_norm, dropout, output_activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding z = f(x), shape (n, embedding_dim)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction x_hat = g(z), shape (n, input_dim)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)


def make_optimizer(name: str | torch.optim.Optimizer, parameters: Any, lr: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    """``"adam"`` -> Adam(lr), ``"sgd"`` -> SGD(lr, momentum); an optimiser instance is returned as is."""
    if isinstance(name, torch.optim.Optimizer):
        return name
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    if name == "sgd":
        if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
            raise ValueError(f"momentum={momentum!r} must be a number in [0, 1).")
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum)
    raise ValueError(f"optimizer={name!r} must be 'adam', 'sgd' or a torch.optim.Optimizer.")


def pretrain_autoencoder(
    autoencoder: MLPAutoencoder,
    X: torch.Tensor,
    *,
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-3,
    noise: float = 0.2,
    optimizer: str | torch.optim.Optimizer = "adam",
    momentum: float = 0.9,
    generator: torch.Generator | None = None,
    verbose: bool = False,
    desc: str = "pretrain",
) -> list[dict[str, float]]:
    """Train ``autoencoder`` to reconstruct ``X`` from a corrupted copy (denoising, MSE).

    Masking noise zeroes each input entry with probability ``noise`` (DEC's dropout 0.2), which
    forces the code to capture structure rather than copy pixels. ``optimizer`` is ``"adam"``
    (learning rate ``lr``), ``"sgd"`` (``lr`` with ``momentum``: DEC's reference code uses
    SGD(1, 0.9) on MNIST), or an optimiser over the autoencoder's parameters built by the caller,
    so that several calls continue one run (a study that scores the embedding every few thousand
    steps). ``X`` must already be a float tensor on the autoencoder's device. Returns the
    per-epoch history ``[{"epoch", "reconstruction"}]``.
    """
    check_positive("epochs", epochs, integer=True, allow_zero=True)
    check_positive("batch_size", batch_size, integer=True)
    check_positive("lr", lr)
    if not 0.0 <= noise < 1.0:
        raise ValueError(f"noise={noise} must be in [0, 1).")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    optimizer = make_optimizer(optimizer, autoencoder.parameters(), lr, momentum)

    def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        x = X[idx.to(X.device)]
        x_in = x
        if noise > 0:
            # The mask is drawn on the CPU generator so CPU and GPU runs corrupt the same entries.
            x_in = x * (torch.rand(x.shape, generator=generator) >= noise).to(x.device)
        _, x_hat = autoencoder(x_in)
        loss = nn.functional.mse_loss(x_hat, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"reconstruction": loss}

    autoencoder.train()
    history = train_epochs(step, lambda: minibatches(len(X), batch_size, generator), epochs=epochs,
                           method="autoencoder pretraining", verbose=verbose, desc=desc)
    autoencoder.eval()
    return history


CACHE_ENV_VAR = "MMC_TEACH_CACHE"


def cache_dir() -> Path:
    """Where pretrained autoencoders are kept: ``$MMC_TEACH_CACHE``, else the per-user cache folder."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    import pooch

    return Path(pooch.os_cache("mmc_teach")) / "autoencoders"


def pretrained_autoencoder(
    X: Any,
    hidden_dims: Sequence[int] = (500, 500, 1000, 10),
    *,
    epochs: int = 150,
    batch_size: int = 256,
    lr: float = 1e-3,
    noise: float = 0.2,
    activation: str = "relu",
    batch_norm: bool = False,
    random_state: int = 0,
    device: str | torch.device | None = None,
    cache: bool = True,
    verbose: bool = False,
) -> MLPAutoencoder:
    """An autoencoder pretrained on ``X`` by :func:`pretrain_autoencoder`, computed once and cached.

    Pretraining is the expensive part of DEC, IDEC and JECL, and several chapters and the benchmark
    need the same autoencoders. The weights are stored under :func:`cache_dir` keyed by everything
    that determines them (the data's bytes, the architecture, the schedule, the seed, the torch
    version and the device type), written atomically, so a cached and a freshly trained autoencoder
    are the same, bit for bit, on the CPU. A cache file that cannot be read is trained again.
    ``cache=False`` always trains and writes nothing. The returned network is in eval mode; its
    pretraining history is ``autoencoder.pretrain_history``.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"X must be a finite 2-D array of shape (n_samples, n_features); got shape {X.shape}.")
    check_positive("random_state", random_state, integer=True, allow_zero=True)
    torch_device = get_device(device)
    settings = {"shape": list(X.shape), "hidden_dims": [int(h) for h in hidden_dims], "epochs": epochs,
                "batch_size": batch_size, "lr": lr, "noise": noise, "activation": activation,
                "batch_norm": batch_norm, "seed": random_state, "torch": str(torch.__version__),
                "device": torch_device.type}
    digest = hashlib.sha256(X.tobytes() + json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir() / f"ae-{digest}.pt"
    # Built inside seeded(): the initial weights draw from torch's generator, which must stay as it was.
    with seeded(int(random_state), torch_device) as generator:
        ae = MLPAutoencoder(X.shape[1], hidden_dims, activation=activation, batch_norm=batch_norm).to(torch_device)
        if cache and path.is_file():
            try:
                saved = torch.load(path, map_location=torch_device, weights_only=True)
                ae.load_state_dict(saved["state_dict"])
                ae.pretrain_history = saved["history"]
                return ae.eval()
            except Exception:  # a truncated or foreign file: train again and overwrite it
                pass
        history = pretrain_autoencoder(ae, as_tensor(X, torch_device), epochs=epochs, batch_size=batch_size, lr=lr,
                                       noise=noise, generator=generator, verbose=verbose)
    ae.pretrain_history = history
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save({"state_dict": ae.state_dict(), "history": history, "settings": settings}, f)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return ae.eval()


@torch.no_grad()
def apply_in_chunks(fn: Callable[..., Any], *tensors: torch.Tensor, chunk_size: int = 4096) -> Any:
    """``fn(*tensors)`` computed on row chunks without a graph and concatenated along rows.

    Inference on the full data (embeddings, soft assignments, a target distribution's inputs)
    then needs memory for one chunk's activations, not for all n samples. ``fn`` may return a
    tensor or (nested) tuples/lists of tensors with one row per input row; ``None`` entries stay.
    """
    n = len(tensors[0])
    parts = [fn(*(t[i : i + chunk_size] for t in tensors)) for i in range(0, n, chunk_size)]
    return _concatenate(parts) if parts else fn(*tensors)


def _concatenate(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if first is None:
        return None
    return type(first)(_concatenate(list(column)) for column in zip(*parts))


def encode_in_batches(autoencoder: MLPAutoencoder, X: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Embed ``X`` without building a graph, in chunks so large inputs fit in memory."""
    was_training = autoencoder.training
    autoencoder.eval()
    codes = apply_in_chunks(autoencoder.encode, X, chunk_size=batch_size)
    autoencoder.train(was_training)
    return codes


def as_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float32 tensor on ``device`` from a validated NumPy array."""
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)
