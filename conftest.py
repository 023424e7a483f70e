"""Test-session defaults shared by the unit tests and the notebooks run by ``pytest --nbval``.

Kernels started by nbval inherit this process's environment, so setting variables here reaches
the notebooks too.
"""

import os
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
#   MKL_CBWR=COMPATIBLE     MKL's reproducibility branch that is the same on Intel and AMD (slower:
#                           the training chapters take two to four times as long under test);
#   ATEN_CPU_CAPABILITY     torch's own kernels at AVX2, also on AVX-512 machines;
#   ONEDNN_MAX_CPU_ISA      likewise for oneDNN;
#   OPENBLAS_CORETYPE       the OpenBLAS under NumPy and SciPy on its Haswell (AVX2) kernels;
#   NPY_DISABLE_CPU_FEATURES  NumPy's ufuncs without their AVX-512 versions.
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
