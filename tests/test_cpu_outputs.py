"""The per-vendor reference outputs (tests/cpu_outputs/, used by conftest.py) stay in step with the book."""
import json
from pathlib import Path

import nbformat
import pytest

import conftest

ROOT = Path(__file__).resolve().parents[1]
VENDOR_FILES = sorted(conftest.CPU_OUTPUTS_DIR.glob("*.json"))


@pytest.mark.parametrize("path", VENDOR_FILES, ids=[p.stem for p in VENDOR_FILES])
def test_vendor_file_matches_the_cells_it_stands_in_for(path):
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["vendor"] == path.stem
    for key, cells in document["notebooks"].items():
        notebook = nbformat.read(ROOT / key, as_version=4)
        assert notebook.metadata.get("mmc_teach", {}).get("outputs_cpu") != path.stem, (
            f"{key} holds {path.stem} outputs itself; its entries in {path.name} are left over")
        by_id = {cell.id: cell for cell in notebook.cells}
        for cell_id, entry in cells.items():
            assert cell_id in by_id and by_id[cell_id].cell_type == "code", f"{key}: no code cell {cell_id}"
            # A changed cell needs its outputs on this vendor measured again (.ci/execute --vendor-outputs).
            assert entry["source"] == conftest.cell_source_hash(by_id[cell_id].source), (
                f"{key} cell {cell_id} changed since its {path.stem} outputs were computed")


def test_vendor_outputs_apply_only_to_the_source_they_were_computed_for(tmp_path, monkeypatch):
    notebook = ROOT / "book" / "01_clustering_metrics.ipynb"
    cell = {"id": "abc", "source": "print(1)"}
    outputs = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    table = {conftest.notebook_key(notebook): {"abc": {"source": conftest.cell_source_hash("print(1)"),
                                                      "outputs": outputs}}}
    assert conftest.vendor_reference_outputs(notebook, cell, "AuthenticAMD", table) == outputs
    assert conftest.vendor_reference_outputs(notebook, {**cell, "source": "print(2)"}, "AuthenticAMD", table) is None
    assert conftest.vendor_reference_outputs(notebook, {**cell, "id": "other"}, "AuthenticAMD", table) is None


def test_cpu_vendor_is_a_plain_string():
    vendor = conftest.cpu_vendor()
    assert isinstance(vendor, str) and vendor and "/" not in vendor


def test_tolerance_accepts_another_cpus_training_noise_and_nothing_more():
    # Measured between an Intel and an AMD CPU (chapter 8): same sentence, other counts.
    assert conftest.numbers_agree("moved 13 pairs: 4 to their own digit, ACC 0.747",
                                  "moved 17 pairs: 7 to their own digit, ACC 0.745") is None
    assert "0.647" in conftest.numbers_agree("ACC 0.747", "ACC 0.647")
    assert "40" in conftest.numbers_agree("epochs 20", "epochs 40")
    assert conftest.numbers_agree("ACC 0.747", "NMI 0.747") is not None
    assert conftest.numbers_agree("ACC 0.747", "ACC 0.747 0.1") is not None
