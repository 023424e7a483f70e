"""The OFFICIAL DM2C code (Jiang et al., NeurIPS 2019, github.com/jiangyangby/DM2C) on our Wikipedia split.

Nothing of the official code is copied here: ``--official-repo PATH`` points at an extracted tree of
that repository, whose ``code/model.py`` is imported as it is. Its ``MultimodalGAN.__init__`` builds
the networks and the optimizers (``DeepAE`` autoencoders 2048-1024-256-128 with LeakyReLU(0.2) and
batch norm, the two cross-modal generators ``img2txt`` / ``txt2img`` (DeepAE 128-128-256-128), the
two critics 128-32-1, Adam for the pretraining, RMSprop for the WGAN), and its own
``MultimodalGAN.pretrain`` pretrains the autoencoders. The joint training (``MultimodalGAN.train``)
and the embedding (``MultimodalGAN.embedding``) cannot be called as they are (see adaptation 1), so
the loop below follows them step by step, each step naming the official line it follows
(``model.py`` of commit 72230ba6ba03d0233df3d3ea242fac61657122f2).

The data are those of ``benchmarks/dm2c.py``: ``mixed_modal_split(load("wikipedia", texts=False),
test_size=1/3, random_state=0)``, each modality z-scored with its own training statistics (1,910
training samples: 946 images, 964 texts; 128-d image and 10-d text features). Hyper-parameters are
those of the official README commands: pretraining 150 epochs, batch 128, Adam(betas 0.5, 0.999,
weight decay 1e-4 -- the default, which the pretraining commands do not change), lr 1e-4 for the
image autoencoder and 1e-5 for the text one; joint training 220 epochs, ``--gan_type wasserstein
--lr_g 1e-4 --lr_d 5e-5 --lr_ae 5e-4 --weight_decay 0 --lamda3 0.5 --lamda1 1``, weight clipping
0.05, the critics updated every 5th batch (``update_d_freq``), the cycle reconstruction term
(weight 1, hard-wired in ``train``); then scikit-learn's ``KMeans(10, max_iter=1000, tol=5e-5,
n_init=20)`` on the training codes, text codes mapped into the image space by ``txt2img``
(``unify_modal='img'``, the official default). The codes unified into the text space (``img2txt``)
are clustered as well and recorded under ``txt_space``; the test samples are labelled with
``KMeans.predict`` as the official script does and recorded under ``test``.

Adaptations (what our data or this machine force; nothing else changed):

1. input widths are ours, image 128 and text 10 (the official data are PCA-reduced to 2048 for
   both): ``config['img_input_dim']=128, config['txt_input_dim']=10``, the hidden widths of the
   official Wikipedia config kept. The official ``train``/``embedding`` take one mixed batch tensor
   ``feats`` and index it by modality, which needs both modalities to have the same width; here
   each mixed batch (the same shuffled batches of 128 mixed samples) is gathered from the two
   modalities' own tensors instead, and the loop is written out following ``train`` line by line;
2. no GPU: the official code calls ``.cuda()`` on every batch; ``torch.Tensor.cuda`` is made the
   identity when CUDA is absent, and the data loaders use no worker processes (``n_cpu`` 8);
3. the data come from our split through small loaders (``_build_dataloader`` /
   ``_build_pretrain_dataloader`` overridden) instead of the official ``.mat`` files; no
   checkpoints and no TensorBoard writer (``tensorboardX`` is stubbed when absent);
   ``utils.py`` imports ``sklearn.metrics.cluster.supervised`` (gone since scikit-learn 0.24) and
   ``munkres``: the first is aliased to ``sklearn.metrics.cluster``, the second stubbed (only its
   ``best_map`` metric uses it, and we score with ``mmc_teach.metrics.evaluate``);
4. the pretrained autoencoders are handed over in memory (``load_state_dict``, what
   ``load_pretrain_cpt(..., only_weight=True)`` does with the saved files); every phase (image
   pretraining, text pretraining, joint training) starts with ``torch.manual_seed(seed)`` as each
   official command does with ``--seed``; k-means gets ``random_state=seed`` (unseeded in the
   official script), and only the last epoch is clustered (the official script clusters after
   every epoch, for printing only).

Usage: ``python benchmarks/dm2c_official.py --official-repo /tmp/dm2c_official [--seeds 0 1 2]
[--pretrain-epochs 150] [--joint-epochs 220] [--out benchmarks/results/dm2c_official.jsonl]``.
Appends one JSON line per seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, Dataset

from mmc_teach.datasets import load
from mmc_teach.metrics import evaluate
from mmc_teach.pairing import mixed_modal_split

ADAPTATIONS = ("input widths 128 (image) / 10 (text) instead of 2048, hidden widths kept; joint loop and "
               "embedding written out following model.py train()/embedding() because one mixed batch "
               "tensor cannot hold two widths (same shuffled mixed batches of 128); CPU: .cuda() made "
               "the identity, no loader workers; our split fed through overridden loaders, no "
               "checkpoints/TensorBoard; pretrained AEs handed over in memory; torch.manual_seed(seed) "
               "at each of the 3 phases; k-means random_state=seed, last epoch only")


def prepare():
    """The data of ``benchmarks/dm2c.py``'s ``prepare('wikipedia')`` (its four lines, repeated)."""
    ds = load("wikipedia", texts=False)
    split = mixed_modal_split(ds, test_size=1 / 3, random_state=0)
    scalers = [StandardScaler().fit(V) for V in split.train_views]
    train = [s.transform(V).astype(np.float32) for s, V in zip(scalers, split.train_views)]
    test = [s.transform(V).astype(np.float32) for s, V in zip(scalers, split.test_views)]
    return split, train, test


def import_official(repo: Path):
    """Import the official ``model.py`` (``repo/code`` or ``repo``) with the stubs its imports need."""
    code = repo / "code" if (repo / "code" / "model.py").exists() else repo
    if not (code / "model.py").exists():
        raise SystemExit(f"no model.py under {repo}")
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        stub = types.ModuleType("tensorboardX")

        class SummaryWriter:  # noqa: D401 - a do-nothing writer
            def __init__(self, *a, **k):
                pass

            def add_scalar(self, *a, **k):
                pass

        stub.SummaryWriter = SummaryWriter
        sys.modules["tensorboardX"] = stub
    try:
        import sklearn.metrics.cluster.supervised  # noqa: F401
    except ImportError:
        import sklearn.metrics.cluster as cluster
        sys.modules["sklearn.metrics.cluster.supervised"] = cluster
    try:
        import munkres  # noqa: F401
    except ImportError:
        stub = types.ModuleType("munkres")

        class Munkres:
            def compute(self, *a, **k):
                raise NotImplementedError("munkres is stubbed: score with mmc_teach.metrics.evaluate")

        stub.Munkres = Munkres
        sys.modules["munkres"] = stub
    # model.py calls logging.basicConfig(filename='output.log'): a root handler makes that a no-op.
    if not logging.getLogger().handlers:
        logging.getLogger().addHandler(logging.NullHandler())
    sys.path.insert(0, str(code))
    import model as official  # the official code/model.py
    logging.getLogger(official.__name__).disabled = True  # its per-batch log lines and settings dump
    return official


class Rows(Dataset):
    """One modality's feature rows (what the official ``SFeatDataSet`` yields: the feature alone)."""

    def __init__(self, X: np.ndarray):
        self.X = torch.from_numpy(X)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i]


def make_runner_class(official):
    class OfficialDM2C(official.MultimodalGAN):
        """``MultimodalGAN`` fed our data: only the data plumbing, checkpoints and writer are overridden."""

        def __init__(self, args, config, train):
            self._train_views = train
            super().__init__(args, config)
            # Keep the official logger quiet (it adds a stream and a file handler per instance).
            for handler in list(self.logger.handlers):
                handler.close()
                self.logger.removeHandler(handler)
            self.logger.propagate = False

        def _build_dataloader(self):  # official: MFeatDataSet on train_file.mat / test_file.mat
            pass

        def _build_pretrain_dataloader(self, modal="img"):  # official: SFeatDataSet on train_{modal}.mat
            X = self._train_views[0 if modal == "img" else 1]
            return DataLoader(Rows(X), batch_size=self.args.batch_size, shuffle=True, num_workers=0)

        def set_writer(self):  # official: a tensorboardX SummaryWriter in log_dir
            self.writer = None

        def save_pretrain_cpt(self, epoch, modal="img"):
            pass

        def save_cpt(self, epoch):
            pass

    return OfficialDM2C


def official_args(**changes) -> argparse.Namespace:
    """The defaults of the official ``train.py`` argparse, with the README command's changes."""
    defaults = dict(n_epochs=200, batch_size=128, lr_g=1e-4, lr_d=1e-4, lr_ae=1e-4, b1=0.5, b2=0.999,
                    weight_decay=1e-4, lamda1=1.0, lamda3=1.0, gan_type="naive", clip_value=0.05,
                    n_cpu=0, seed=2018, update_p_freq=10, update_d_freq=5, tol=1e-3, save_freq=25,
                    log_freq=5, test_freq=1, pretrain="None", dataset="wikipedia", data_dir="",
                    log_dir="", cpt_dir="", img_cptpath="", txt_cptpath="", dm2c_cptpath="")
    defaults.update(changes)
    return argparse.Namespace(**defaults)


def official_config() -> dict:
    """train.py's Wikipedia config with our input widths (adaptation 1)."""
    return {"img_input_dim": 128, "txt_input_dim": 10, "n_clusters": 10,
            "img_hiddens": [1024, 256, 128], "txt_hiddens": [1024, 256, 128],
            "img2txt_hiddens": [128, 256, 128], "txt2img_hiddens": [128, 256, 128],
            "has_filename": True, "batchnorm": True, "cuda": False, "device": torch.device("cpu"),
            "log_file": "dm2c_official.txt"}


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def joint_epoch(model, img: torch.Tensor, txt: torch.Tensor, modality: torch.Tensor) -> dict:
    """One epoch of the official ``MultimodalGAN.train`` (model.py lines 173-276), step by step."""
    args = model.args
    model.set_model_status(training=True)                                       # l.174
    n_img = len(img)
    loader = DataLoader(torch.arange(len(modality)), batch_size=args.batch_size, shuffle=True)  # l.316-318
    for step, ids in enumerate(loader):                                         # l.175
        modalitys = modality[ids]                                               # l.179
        img_idx = modalitys == 0                                                # l.181
        txt_idx = modalitys == 1                                                # l.182
        model.optimizer_G.zero_grad()                                           # l.188
        img_feats = img[ids[img_idx]]                                           # l.190 (adaptation 1)
        txt_feats = txt[ids[txt_idx] - n_img]                                   # l.191 (adaptation 1)
        img_batch_size = img_feats.size(0)                                      # l.192
        txt_batch_size = txt_feats.size(0)                                      # l.193
        imgs_recon, imgs_latent = model.imgAE(img_feats)                        # l.194
        txts_recon, txts_latent = model.txtAE(txt_feats)                        # l.195
        img2txt_recon, _ = model.img2txt(imgs_latent)                           # l.196
        img_latent_recon, _ = model.txt2img(img2txt_recon)                      # l.197
        txt2img_recon, _ = model.txt2img(txts_latent)                           # l.198
        txt_latent_recon, _ = model.img2txt(txt2img_recon)                      # l.199
        img_recon_loss = F.mse_loss(img_feats, imgs_recon)                      # l.201
        txt_recon_loss = F.mse_loss(txt_feats, txts_recon)                      # l.202
        img_cycle_loss = F.l1_loss(imgs_latent, img_latent_recon)               # l.203
        txt_cycle_loss = F.l1_loss(txts_latent, txt_latent_recon)               # l.204
        img_cycle_recon_loss = F.mse_loss(img_feats, model.imgAE.decoder(img_latent_recon))  # l.205-206
        txt_cycle_recon_loss = F.mse_loss(txt_feats, model.txtAE.decoder(txt_latent_recon))  # l.207-208
        recon_loss = (img_recon_loss + txt_recon_loss                           # l.209-211
                      + (img_cycle_loss + txt_cycle_loss) * args.lamda1
                      + (img_cycle_recon_loss + txt_cycle_recon_loss))
        img_real = torch.ones(img_batch_size, 1)                                # l.213
        txt_real = torch.ones(txt_batch_size, 1)                                # l.215
        if args.gan_type == "naive":                                            # l.218-220
            d_loss = (model.adv_loss_fn(model.D_img(txt2img_recon), txt_real)
                      + model.adv_loss_fn(model.D_txt(img2txt_recon), img_real))
        else:                                                                   # l.221-223
            d_loss = -model.D_img(txt2img_recon).mean() - model.D_txt(img2txt_recon).mean()
        G_loss = recon_loss + args.lamda3 * d_loss                              # l.225
        G_loss.backward()                                                       # l.227
        model.optimizer_G.step()                                                # l.228
        if (step + 1) % args.update_d_freq == 0:                                # l.234
            model.optimizer_D.zero_grad()                                       # l.235
            if args.gan_type == "naive":                                        # l.237-242
                img_fake = torch.zeros(img_batch_size, 1)
                txt_fake = torch.zeros(txt_batch_size, 1)
                img_D_loss = (model.adv_loss_fn(model.D_img(imgs_latent.detach()), img_real)
                              + model.adv_loss_fn(model.D_img(txt2img_recon.detach()), txt_fake)) / 2
                txt_D_loss = (model.adv_loss_fn(model.D_txt(txts_latent.detach()), txt_real)
                              + model.adv_loss_fn(model.D_txt(img2txt_recon.detach()), img_fake)) / 2
            else:                                                               # l.243-247
                img_D_loss = (model.D_img(txt2img_recon.detach()).mean()
                              - model.D_img(imgs_latent.detach()).mean())
                txt_D_loss = (model.D_txt(img2txt_recon.detach()).mean()
                              - model.D_txt(txts_latent.detach()).mean())
            D_loss = (img_D_loss + txt_D_loss) * args.lamda3                    # l.242 / l.248
            D_loss.backward()                                                   # l.249
            model.optimizer_D.step()                                            # l.250
            if args.gan_type == "wasserstein":                                  # l.253-259
                for p in model.D_img.parameters():
                    p.data.clamp_(-args.clip_value, args.clip_value)
                for p in model.D_txt.parameters():
                    p.data.clamp_(-args.clip_value, args.clip_value)
    return {"G_loss": G_loss.item(), "D_loss": D_loss.item(), "img_recon": img_recon_loss.item(),
            "txt_recon": txt_recon_loss.item(), "img_cycle": img_cycle_loss.item(),
            "txt_cycle": txt_cycle_loss.item()}


@torch.no_grad()
def embedding(model, img: torch.Tensor, txt: torch.Tensor, unify_modal: str = "img") -> np.ndarray:
    """The official ``MultimodalGAN.embedding`` (model.py lines 278-309): image codes, then text codes.

    Batch norm runs in eval mode there, so one pass over all rows gives what its batches of 128 give.
    """
    model.set_model_status(training=False)                                      # l.279
    _, imgs_latent = model.imgAE(img)                                           # l.289
    _, txts_latent = model.txtAE(txt)                                           # l.290
    if unify_modal == "img":                                                    # l.292-295
        codes = [imgs_latent, model.txt2img(txts_latent)[0]]
    elif unify_modal == "txt":                                                  # l.296-299
        codes = [model.img2txt(imgs_latent)[0], txts_latent]
    else:                                                                       # l.300-302
        codes = [imgs_latent, txts_latent]
    return torch.cat(codes).numpy()


def score(y: np.ndarray, labels: np.ndarray, n_img: int) -> dict:
    m = evaluate(y, labels)
    halves = [(y[:n_img], labels[:n_img]), (y[n_img:], labels[n_img:])]
    return {"acc": round(m["acc"], 4), "nmi": round(m["nmi"], 4), "ari": round(m["ari"], 4),
            "per_modality_acc": {name: round(evaluate(yy, ll)["acc"], 4)
                                 for name, (yy, ll) in zip(("image", "text"), halves)},
            "clusters_used": {name: int(len(np.unique(ll))) for name, (_, ll) in zip(("image", "text"), halves)}}


def run_seed(official, split, train, test, seed: int, pretrain_epochs: int, joint_epochs: int,
             workdir: str) -> dict:
    Runner = make_runner_class(official)
    config = official_config()
    common = dict(log_dir=workdir, cpt_dir=workdir, seed=seed)
    start = time.perf_counter()
    # README: python train.py --pretrain img --lr_ae 1e-4 --log_freq 15 --n_epochs 150 (train.py l.69, l.111-112)
    seed_all(seed)
    pre_img = Runner(official_args(pretrain="img", lr_ae=1e-4, log_freq=15, n_epochs=pretrain_epochs, **common),
                     config, train)
    pre_img.pretrain("img")
    # README: python train.py --pretrain txt --lr_ae 1e-5 --log_freq 15 --n_epochs 150
    seed_all(seed)
    pre_txt = Runner(official_args(pretrain="txt", lr_ae=1e-5, log_freq=15, n_epochs=pretrain_epochs, **common),
                     config, train)
    pre_txt.pretrain("txt")
    pretrain_seconds = time.perf_counter() - start
    # README: python3 train.py --pretrain load_ae ... --lr_g 1e-4 --lr_d 5e-5 --lr_ae 5e-4
    #   --gan_type wasserstein --n_epochs 220 --weight_decay 0 --lamda3 0.5 --lamda1 1
    seed_all(seed)
    model = Runner(official_args(pretrain="load_ae", lr_g=1e-4, lr_d=5e-5, lr_ae=5e-4, gan_type="wasserstein",
                                 n_epochs=joint_epochs, weight_decay=0.0, lamda3=0.5, lamda1=1.0, **common),
                   config, train)
    model.imgAE.load_state_dict(pre_img.imgAE.state_dict())                     # train.py l.116, model.py l.423
    model.txtAE.load_state_dict(pre_txt.txtAE.state_dict())                     # train.py l.117, model.py l.423
    img, txt = (torch.from_numpy(V) for V in train)
    modality = torch.cat([torch.zeros(len(img), dtype=torch.long), torch.ones(len(txt), dtype=torch.long)])
    losses = {}
    for epoch in range(joint_epochs):                                           # train.py l.119
        losses = joint_epoch(model, img, txt, modality)                         # train.py l.120
    train_seconds = time.perf_counter() - start
    y = np.concatenate(split.train_labels)
    y_test = np.concatenate(split.test_labels)
    test_img, test_txt = (torch.from_numpy(V) for V in test)
    out = {}
    for unify in ("img", "txt"):
        codes = embedding(model, img, txt, unify)                               # train.py l.121-122
        km = KMeans(config["n_clusters"], max_iter=1000, tol=5e-5, n_init=20,    # train.py l.125-126
                    random_state=seed).fit(codes)
        res = score(y, km.labels_, len(img))
        test_pred = km.predict(embedding(model, test_img, test_txt, unify))     # train.py l.123-124, l.128
        t = evaluate(y_test, test_pred)
        res["test"] = {"acc": round(t["acc"], 4), "nmi": round(t["nmi"], 4), "ari": round(t["ari"], 4)}
        out[unify] = res
    seconds = time.perf_counter() - start
    return {"dataset": "wikipedia", "seed": seed, **out["img"], "unify": "img",
            "txt_space": {"unify": "txt", **out["txt"]},
            "seconds": round(seconds, 1), "pretrain_seconds": round(pretrain_seconds, 1),
            "train_seconds": round(train_seconds, 1),
            "epochs": {"pretrain": pretrain_epochs, "joint": joint_epochs},
            "final_losses": {k: round(v, 4) for k, v in losses.items()},
            "n_train": int(len(y)), "kept": [int(len(img)), int(len(txt))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-repo", required=True, type=Path)
    parser.add_argument("--official-commit", default=None,
                        help="the commit the tree was extracted from (default: git rev-parse in the tree)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--pretrain-epochs", type=int, default=150)
    parser.add_argument("--joint-epochs", type=int, default=220)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dm2c_official.jsonl")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    commit = a.official_commit
    if commit is None:
        try:
            commit = subprocess.run(["git", "-C", str(a.official_repo), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = "unknown"
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self  # adaptation 2
    official = import_official(a.official_repo)
    split, train, test = prepare()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in a.seeds:
        with tempfile.TemporaryDirectory() as workdir:
            row = run_seed(official, split, train, test, seed, a.pretrain_epochs, a.joint_epochs, workdir)
        row = {"dataset": row.pop("dataset"), "seed": row.pop("seed"), "official_commit": commit, **row,
               "adaptations": ADAPTATIONS, "torch": torch.__version__, "threads": a.threads,
               "machine": platform.processor() or platform.machine()}
        with a.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"seed {seed}: acc {row['acc']:.4f} nmi {row['nmi']:.4f} ari {row['ari']:.4f} "
              f"per-modality {row['per_modality_acc']} clusters {row['clusters_used']} | txt space acc "
              f"{row['txt_space']['acc']:.4f} nmi {row['txt_space']['nmi']:.4f} | {row['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
