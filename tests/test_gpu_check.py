"""``python -m mmc_teach gpu-check`` on a machine without a GPU: its skip, its exit codes, its table, and
its checks run with the CPU standing in for the GPU (a GPU session runs the same code on CUDA)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mmc_teach import DEC
from mmc_teach import gpu_check
from mmc_teach.__main__ import main

DATA = os.environ.get("MMC_TEACH_DATA")
needs_data = pytest.mark.skipif(not DATA or not Path(DATA, "mnist_usps").is_dir(), reason="set MMC_TEACH_DATA")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_a_gpu_it_says_so_and_exits_0_unless_required(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert main(["gpu-check", "--out", str(out)]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out and not out.exists()
    assert main(["gpu-check", "--out", str(out), "--require"]) == 1


def test_table_renders_a_report():
    report = {"device": "NVIDIA H100", "torch_version": "2.13.0", "cuda_version": "12.8",
              "estimators": [{"estimator": "DEC", "on_device": True, "numpy_io": True, "acc_cpu": 0.61, "acc_gpu": 0.6,
                              "acc_agree": True, "host_syncs": 12, "peak_gpu_mib": 300.5, "seconds_cpu": 9.1,
                              "seconds_gpu": 1.2},
                             {"estimator": "KMeans", "on_device": False, "numpy_io": True, "acc_cpu": 0.5, "acc_gpu": 0.3,
                              "acc_agree": False, "host_syncs": None, "peak_gpu_mib": None, "seconds_cpu": 1.0,
                              "seconds_gpu": 0.1}],
              "kmeans_1e6": {"n": 1_000_000, "k": 100, "features": 32, "seconds_ours": 0.9, "seconds_sklearn_cpu": 20.0,
                             "inertia_ratio": 1.0}}
    table = gpu_check.render_gpu_table(report)
    assert "GPU check on NVIDIA H100 (torch 2.13.0, CUDA 12.8)" in table
    assert "| DEC | yes | yes | 0.61 | 0.6 | yes | 12 | 300.5 | 9.1 | 1.2 |" in table
    assert "| KMeans | NO | yes | 0.5 | 0.3 | NO | - | - | 1.0 | 0.1 |" in table
    assert "k-means, 1,000,000 x 32, k = 100: ours 0.9 s" in table


def test_fitted_tensors_on_finds_every_network_and_tensor():
    X = np.random.RandomState(0).rand(40, 6).astype(np.float32)
    model = DEC(3, hidden_dims=(8, 2), pretrain_epochs=1, epochs=1, random_state=0, device="cpu").fit(X)
    assert gpu_check.fitted_tensors_on(model, torch.device("cpu"))
    assert gpu_check.fitted_tensors_on(model, torch.device("cuda")) is False  # nothing of it is on a GPU
    model.autoencoder_ = [model.autoencoder_]  # inside a list, as DM2C keeps its networks
    assert gpu_check.fitted_tensors_on(model, torch.device("cuda")) is False
    model.autoencoder_, model._centers = None, None
    assert gpu_check.fitted_tensors_on(model, torch.device("cuda")) is None


@needs_data
def test_checks_run_with_the_cpu_standing_in_for_the_gpu():
    from mmc_teach.datasets import MultiModalDataset, load

    full = load("mnist_usps")
    keep = np.arange(0, 5000, 10)  # 500 samples, 50 per class: seconds, not minutes
    data = MultiModalDataset("mnist_usps", [v[keep] for v in full.views], full.labels[keep], full.view_names,
                             full.class_names)
    records = gpu_check.check_estimators(data, "cpu", names=["KMeans", "DEC", "DM2C"])
    assert [r["estimator"] for r in records] == ["KMeans", "DEC", "DM2C"]
    assert records[0]["on_device"] is None  # k-means keeps NumPy centres: nothing to place
    for r in records:
        assert r["on_device"] is not False and r["numpy_io"], r
        assert r["acc_cpu"] == r["acc_gpu"] and r["acc_agree"]  # the same device twice: the same fit
        assert r["host_syncs"] is None and r["peak_gpu_mib"] is None
