"""Test-session defaults shared by the unit tests and the notebooks run by ``pytest --nbval``.

Kernels started by nbval inherit this process's environment, so setting variables here reaches
the notebooks too.
"""

import os
import re
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
_SHARED_DATA = _ROOT.parent / "shared" / "data"

# Use the checked-out copy of the data next to the repository when the user did not choose one
# (that is how CI is laid out); otherwise mmc_teach downloads into its per-user cache.
if "MMC_TEACH_DATA" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["MMC_TEACH_DATA"] = str(_SHARED_DATA)
# Progress bars write to stderr, which nbval compares; keep them off under test.
os.environ.setdefault("MMC_TEACH_PROGRESS", "0")
# The offline MiniLM package ships its model; never try to reach a model hub under test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The committed outputs were computed with two torch threads (the CI machine has two cores). float32
# sums depend on how many threads share them, so the test session fixes the count for the kernels it
# starts; a reader running a chapter keeps all their cores (the chapters leave threads to torch).
os.environ.setdefault("OMP_NUM_THREADS", "2")
# The same seed and thread count still give different float32 bits on different CPUs: MKL, torch's
# vectorised kernels and NumPy each pick code for the processor they find (AVX-512 or AVX2, Intel or
# AMD), and a training run amplifies a last-bit difference into a different second decimal of ACC.
# The committed outputs were computed with every library pinned to one code path that all x86-64
# CPUs with AVX2 run alike, and the test session pins the same paths:
#   MKL_CBWR=COMPATIBLE     MKL's reproducibility branch, documented as the one to use across vendors
#                           (slower: the training chapters take two to four times as long under test);
#   ATEN_CPU_CAPABILITY     torch's own kernels at AVX2, also on AVX-512 machines;
#   ONEDNN_MAX_CPU_ISA      likewise for oneDNN;
#   OPENBLAS_CORETYPE       the OpenBLAS under NumPy and SciPy on its Haswell (AVX2) kernels;
#   NPY_DISABLE_CPU_FEATURES  NumPy's ufuncs without their AVX-512 versions.
# Measured limit (2026-12-03): on an AMD EPYC (Zen 4, AVX-512) these pins do NOT reproduce outputs
# computed on Intel: 20 training cells differ. There MKL honours only COMPATIBLE, and in the training
# path nothing else depends on the ISA (torch AVX2/AVX-512, oneDNN, NumPy and the thread count give the
# same bits), so MKL's COMPATIBLE sgemm itself appears to differ between the two vendors. Each vendor
# is deterministic on its own, so the cells that differ keep a second set of reference outputs per CPU
# vendor (tests/cpu_outputs/<vendor>.json, written by `.ci/execute --vendor-outputs`); see
# `pytest_collection_modifyitems` below.
# A reader running a chapter gets none of this and keeps the fast code; a training chapter's results
# then differ from the page by a point or two of ACC, as they would on another machine.
for _name, _value in {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}.items():
    os.environ.setdefault(_name, _value)
# Pretrained autoencoders are cached on disk (mmc_teach.nn.pretrained_autoencoder): a test session
# starts with an empty cache of its own, so that every run measures the cold path and leaves the
# user's cache alone; the chapters share it within the session.
os.environ.setdefault("MMC_TEACH_CACHE", tempfile.mkdtemp(prefix="mmc_teach_cache_"))


# --- Reference outputs per CPU vendor -------------------------------------------------------------
# A notebook's committed outputs come from one CPU vendor (its metadata says which: mmc_teach.outputs_cpu;
# a notebook without it prints the same on every CPU). On another vendor a training cell prints other,
# equally deterministic, numbers. Where those were measured (`.ci/execute --vendor-outputs` on that
# vendor), they are kept in tests/cpu_outputs/<vendor>.json, keyed by notebook, cell id and a hash of the
# cell's source, and nbval compares the cell with them exactly, as everywhere else.
# A notebook that was never measured on this vendor (no entry for it in this vendor's file) is compared
# exactly where it can be, and otherwise with a stated tolerance (`numbers_agree`): the same text, each
# number close to the committed one. That is weaker than an exact match, so it is reported as a warning
# naming the notebook; measuring the notebook on this vendor restores the exact comparison.
CPU_OUTPUTS_DIR = _ROOT / "tests" / "cpu_outputs"
# Tolerance for a notebook not measured on this vendor: a decimal may differ by 0.03 or 5 %, an integer
# (an epoch count, a number of moved pairs) by 5 or 35 %. Measured on the 20 training cells that differ
# between an Intel and an AMD CPU (2026-12-03): 12 agree within it (e.g. 13 against 17 moved pairs);
# 8 do not (chapter 4's ACC 0.48 against 0.51, a count of 487 against 1224; a different sentence in
# chapters 7 and 8), so a training chapter needs its outputs measured on each vendor CI may run on.
DECIMAL_TOLERANCE = (0.03, 0.05)
INTEGER_TOLERANCE = (5, 0.35)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")


def cpu_vendor() -> str:
    """The x86 vendor string of this machine ("GenuineIntel", "AuthenticAMD"), or "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cell_source_hash(source: str) -> str:
    import hashlib

    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def notebook_key(path: Path) -> str:
    """A notebook's key in the vendor files: its path relative to the repository, with slashes."""
    return Path(path).resolve().relative_to(_ROOT).as_posix()


def load_vendor_outputs(vendor: str) -> dict:
    """{notebook key: {cell id: {"source": hash, "outputs": [...]}}} for ``vendor``; empty if none."""
    import json

    path = CPU_OUTPUTS_DIR / f"{vendor}.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["notebooks"]


def vendor_reference_outputs(notebook_path: Path, cell: dict, vendor: str, table: dict | None = None):
    """The outputs ``cell`` should print on ``vendor``, or None when the notebook's own outputs apply."""
    table = load_vendor_outputs(vendor) if table is None else table
    entry = table.get(notebook_key(notebook_path), {}).get(cell.get("id"))
    if entry is None or entry["source"] != cell_source_hash(cell["source"]):
        return None
    return entry["outputs"]


def numbers_agree(reference: str, test: str) -> str | None:
    """None when ``test`` is ``reference`` up to its numbers, each within the tolerance; else the reason."""
    if _NUMBER.sub("#", reference) != _NUMBER.sub("#", test):
        return "the text differs, not only in its numbers"
    for a, b in zip(_NUMBER.findall(reference), _NUMBER.findall(test)):
        decimal = any(c in a + b for c in ".e")
        absolute, relative = DECIMAL_TOLERANCE if decimal else INTEGER_TOLERANCE
        if abs(float(a) - float(b)) > max(absolute, relative * abs(float(a))):
            return f"{b} is not within the tolerance of the committed {a}"
    return None


def _compared_texts(item, outputs) -> dict:
    """The strings nbval compares, grouped by key as nbval groups them (see nbval's compare_outputs)."""
    from collections import defaultdict

    from nbval.plugin import transform_streams_for_comparison

    skip = item.parent.skip_compare
    groups = defaultdict(list)
    for output in transform_streams_for_comparison(outputs):
        for key, value in output.items():
            if key in skip:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in skip:
                        groups[mime].append(item.sanitize(data))
            else:
                groups[key].append(item.sanitize(value))
    return groups


def _tolerant_compare(item, exact_compare):
    """nbval's exact comparison, and where it fails, `numbers_agree` on every compared text."""
    def compare_outputs(test, ref, skip_compare=None):
        if exact_compare(test, ref, skip_compare):
            return True
        exact_failure = list(item.comparison_traceback)
        tested, committed = _compared_texts(item, test), _compared_texts(item, ref)
        reasons = []
        if tested.keys() != committed.keys() or any(len(tested[k]) != len(v) for k, v in committed.items()):
            reasons.append("the cell prints other kinds or numbers of outputs")
        for key, values in committed.items():
            for r, t in zip(values, tested.get(key, [])):
                if not (isinstance(r, str) and isinstance(t, str)):
                    reasons.append(None if r == t else f"{key} differs")
                else:
                    reasons.append(numbers_agree(r, t))
        reasons = [r for r in reasons if r]
        if reasons:
            item.comparison_traceback = exact_failure + [f"(nor within the tolerance: {reasons[0]})"]
            return False
        import warnings

        warnings.warn(f"{item.fspath.basename} cell {item.cell_num}: no reference outputs for this "
                      f"{cpu_vendor()} CPU; matched within the tolerance of conftest.numbers_agree")
        return True
    return compare_outputs


def pytest_collection_modifyitems(session, config, items):
    import nbformat

    vendor = cpu_vendor()
    table = load_vendor_outputs(vendor)
    notebooks = {}
    for item in items:
        cell = getattr(item, "cell", None)
        if type(item).__name__ != "IPyNbCell" or cell is None:
            continue
        path = Path(str(item.fspath))
        if path not in notebooks:
            notebooks[path] = nbformat.read(path, as_version=4).metadata.get("mmc_teach", {}).get("outputs_cpu")
        outputs = vendor_reference_outputs(path, cell, vendor, table)
        if outputs is not None:
            item.cell.outputs = [nbformat.from_dict(output) for output in outputs]
        elif notebooks[path] not in (None, vendor) and notebook_key(path) not in table:
            item.compare_outputs = _tolerant_compare(item, item.compare_outputs)
