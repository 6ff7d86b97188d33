"""Image datasets without torchvision: CIFAR python pickles, MNIST-style IDX ``.gz``, synthetic.

Layouts under the data root (``codesign.runtime.data_root.resolve_data_root``):

* ``cifar10``:  ``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch`` (pickled dicts with
  ``b"data"`` uint8 ``[N, 3072]`` and ``b"labels"``). ``cifar100``: ``cifar-100-python/train``,
  ``test`` (``b"fine_labels"``). Missing and online: the official tarball is downloaded into the
  cache, its MD5 checked against the published value, then extracted.
* ``mnist`` / ``fashion-mnist``: ``MNIST/raw`` / ``FashionMNIST/raw`` with the four original IDX
  files (``train-images-idx3-ubyte.gz`` ...), magic ``0x0803`` images / ``0x0801`` labels.
* ``synthetic-images``: 10 classes of 3x16x16 images, a fixed random template per class plus
  Gaussian noise (std 0.6 of the template scale); learnable in a few epochs; for tests.

Validation split: ``val_size`` images are held out of the (subset) training set, seeded, before any
training; ``val_size`` < 1 is a fraction (rounded), >= 1 a count, 0 = no validation set. Model
selection and search read the validation set only; the test set is for reporting.

Images stay uint8 ``[N, C, H, W]`` in memory; :func:`batches` normalises per channel and applies
the CIFAR augmentation (4-pixel zero-padded random crop + horizontal flip) on the fly.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import pickle
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from codesign.runtime.data_root import cache_dir
from codesign.runtime.fetch import fetch, file_digest
from costmodels.errors import CodesignError, unknown
from costmodels.stats import image_key

DATASETS = ("cifar10", "cifar100", "mnist", "fashion-mnist", "synthetic-images")

CIFAR = {
    "cifar10": ("cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                b"labels", 10),
    "cifar100": ("cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                 "eb9058c3a382ffc7106e4002c42a8d85", ["train"], ["test"], b"fine_labels", 100),
}
IDX = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
# Per-channel mean / std of the training images in [0, 1] (standard published values).
NORM = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "synthetic-images": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
}


@dataclass(frozen=True)
class ImageData:
    """Train / validation / test images as uint8 ``[N, C, H, W]`` and int64 labels ``[N]``."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool
    source: str

    def checksum(self) -> str:
        """SHA-256 of the images and labels actually used (train subset and val split included)."""
        h = hashlib.sha256()
        for t in (self.train_x, self.train_y, self.val_x, self.val_y, self.test_x, self.test_y):
            h.update(t.numpy().tobytes())
        return h.hexdigest()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (gzip): big-endian dims after a 4-byte magic whose last byte is ndim; a truncated
    or corrupt file is a one-line error naming it."""
    try:
        with gzip.open(path, "rb") as f:
            b = f.read()
        if len(b) < 4 or b[:2] != b"\x00\x00" or b[2] != 0x08:
            raise ValueError("no IDX uint8 magic")
        nd = b[3]
        dims = [int.from_bytes(b[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
        return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
    except (OSError, EOFError, ValueError, gzip.BadGzipFile) as exc:
        raise CodesignError(f"{path} is truncated or corrupt ({type(exc).__name__}: {str(exc)[:80]}); delete it "
                            "and put the original IDX .gz file there") from None


def _load_idx(name: str, root: Path) -> tuple[np.ndarray, ...]:
    raw = root / IDX[name] / "raw"
    files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    missing = [f for f in files if not (raw / f).is_file()]
    if missing:
        raise CodesignError(
            f"dataset {name!r}: {', '.join(missing)} not found in {raw}; put the original IDX .gz files "
            f"there or pass --data-root / set CODESIGN_DATA to a folder holding {IDX[name]}/raw"
        )
    xtr, ytr, xte, yte = (read_idx(raw / f) for f in files)
    for (img, lab), (fi, fl) in (((xtr, ytr), files[:2]), ((xte, yte), files[2:])):
        if img.ndim != 3 or lab.ndim != 1 or len(img) != len(lab) or len(lab) == 0:
            raise CodesignError(f"dataset {name!r}: {raw / fi} holds {list(img.shape)} images but {raw / fl} "
                                f"{list(lab.shape)} labels; they must match one to one: put the original files there")
        if int(lab.max()) >= 10:
            raise CodesignError(f"dataset {name!r}: {raw / fl} has label {int(lab.max())}; labels must be 0..9: put "
                                "the original file there")
    return xtr[:, None], ytr, xte[:, None], yte


def download_cifar(name: str, dest: Path) -> Path:
    """Download + MD5-check + extract the official tarball into ``dest``; returns the batch folder.

    The tarball arrives as ``<tar>.part`` and is renamed when complete; it is extracted into a
    temporary folder beside the batch folder, which is renamed into place only when every member is
    out, so an interrupted run never leaves a half-filled batch folder that later runs would read."""
    folder, url, md5 = CIFAR[name][0], CIFAR[name][1], CIFAR[name][2]
    made = [q for q in (dest, *dest.parents) if not q.exists()]  # removed again if the download fails
    cache_dir()  # checks the cache is a writable folder (one line if not)
    dest.mkdir(parents=True, exist_ok=True)
    tar = dest / url.rsplit("/", 1)[1]
    part = tar.with_name(tar.name + ".part")
    try:
        if not tar.is_file() or file_digest(tar, "md5") != md5:
            fetch(url, part)
            part.replace(tar)
    except OSError as exc:
        part.unlink(missing_ok=True)
        for q in made:  # deepest first: a failed download leaves no empty cache folders behind
            try:
                q.rmdir()
            except OSError:
                break
        raise CodesignError(
            f"dataset {name!r}: no {folder}/ under the data root and the download from {url} failed "
            f"({getattr(exc, 'reason', None) or exc.__class__.__name__}); place {folder}/ in --data-root or run once "
            "online"
        ) from None
    got = file_digest(tar, "md5")
    if got != md5:
        raise CodesignError(f"dataset {name!r}: {tar} has MD5 {got}, expected {md5}; delete it and retry")
    staging = Path(tempfile.mkdtemp(prefix=f".{folder}.extract-", dir=dest))
    try:
        with tarfile.open(tar, "r:gz") as t:
            _extract_plain(t, staging)
        if not (staging / folder).is_dir():
            raise CodesignError(f"dataset {name!r}: {tar} holds no {folder}/ folder; delete it and retry")
        (staging / folder).replace(dest / folder)
    except (OSError, tarfile.TarError) as exc:  # a full disk, a damaged member
        raise CodesignError(f"dataset {name!r}: extracting {tar} into {dest} failed ({exc}); free space or delete "
                            "the file, and retry") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest / folder


def _extract_plain(t: tarfile.TarFile, into: Path) -> None:
    """Extract ``t`` into ``into``: with tarfile's ``data`` filter where this Python has it (3.10.12+, 3.11.4+:
    ``requires-python`` admits older 3.10s), else only after checking every member is a plain file or folder
    under ``into`` (no absolute path, no ``..``, no link or device), which is what the filter refuses too."""
    if hasattr(tarfile, "data_filter"):
        t.extractall(into, filter="data")
        return
    for m in t.getmembers():
        parts = Path(m.name).parts
        if Path(m.name).is_absolute() or ".." in parts or not (m.isfile() or m.isdir()):
            raise tarfile.TarError(f"member {m.name!r} is not a plain file or folder inside the archive")
    t.extractall(into)


class _DataUnpickler(pickle.Unpickler):
    """CIFAR's python batches are pickles: only numpy arrays and plain containers may be rebuilt from them,
    never another callable (a crafted file cannot run code)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name} from a data file")
        return super().find_class(module, name)


def _load_cifar(name: str, root: Path, download: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Path]:
    folder, _, _, train_files, test_files, key, _ = CIFAR[name]
    base = root / folder
    if not base.is_dir():
        cached = cache_dir(create=False) / "data" / folder
        if cached.is_dir():
            base = cached
        elif download:
            base = download_cifar(name, cached.parent)
        else:
            raise CodesignError(
                f"dataset {name!r}: {base} does not exist and downloading is off; put the official "
                f"{folder}/ pickle batches there or pass --data-root"
            )

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            if not (base / f).is_file():
                raise CodesignError(f"dataset {name!r}: batch file {base / f} is missing; re-extract {folder}/")
            try:
                with open(base / f, "rb") as fh:
                    d = _DataUnpickler(fh, encoding="bytes").load()
                xs.append(np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(d[key], np.int64))
                if len(ys[-1]) != len(xs[-1]) or (len(ys[-1]) and not 0 <= int(ys[-1].min()) <= int(ys[-1].max())
                                                  < CIFAR[name][6]):
                    raise ValueError(f"{len(ys[-1])} labels for {len(xs[-1])} images, or labels outside 0.."
                                     f"{CIFAR[name][6] - 1}")
            except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise CodesignError(f"dataset {name!r}: {base / f} is truncated or corrupt ({type(exc).__name__}); "
                                    f"delete {folder}/ and re-extract it") from None
        return np.concatenate(xs), np.concatenate(ys)

    return (*read(train_files), *read(test_files), base)


def _synthetic(seed: int, n_train: int = 1024, n_test: int = 512) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1234 + seed)
    templates = rng.uniform(0.0, 1.0, size=(10, 3, 16, 16))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, size=n)
        x = templates[y] + 0.6 * 0.29 * rng.standard_normal((n, 3, 16, 16))
        return np.clip(x * 255, 0, 255).astype(np.uint8), y.astype(np.int64)

    return (*draw(n_train), *draw(n_test))


def val_count(val_size: float, n: int) -> int:
    """Images to hold out of ``n``: round(val_size · n) for a fraction, else the count itself."""
    if val_size < 0 or not math.isfinite(val_size):
        raise CodesignError(f"--val-size must be >= 0 (a fraction < 1 or an image count), got {val_size}")
    if val_size >= 1 and not float(val_size).is_integer():
        raise CodesignError(f"--val-size {val_size:g}: give a fraction below 1 (e.g. 0.1) or a whole number of "
                            "images (e.g. 500)")
    k = int(round(val_size * n)) if val_size < 1 else int(val_size)
    if k >= n:
        raise CodesignError(f"--val-size {val_size:g} holds out {k} of {n} training images, leaving none to "
                            "train on; use a smaller --val-size or a larger --train-subset")
    return k


def load_dataset(name: str, root: Path, *, train_subset: int | None = None, seed: int = 0,
                 download: bool = True, val_size: float = 0.0) -> ImageData:
    """Load ``name`` (see ``DATASETS``); ``train_subset`` keeps a seeded random subset of train, then
    ``val_size`` (fraction or count, see the module docstring) of it is held out as validation. Names in
    any case, ``_`` for ``-`` (``MNIST``, ``Fashion_MNIST``), as graph datasets and ``estimate`` take them."""
    given, name = name, image_key(name)
    if name not in DATASETS:
        raise unknown("dataset", given, list(DATASETS))
    if name in CIFAR:
        xtr, ytr, xte, yte, base = _load_cifar(name, root, download)
        k, source = CIFAR[name][6], str(base)  # the folder read: the data root's, or the cache's copy
    elif name in IDX:
        xtr, ytr, xte, yte = _load_idx(name, root)
        k, source = 10, str(root / IDX[name] / "raw")
    else:
        xtr, ytr, xte, yte = _synthetic(seed)
        k, source = 10, "synthetic"
    if train_subset is not None:
        if train_subset < 1:
            raise CodesignError(f"--train-subset must be a positive number of images, got {train_subset}")
        if train_subset < len(ytr):
            idx = np.random.default_rng(seed).permutation(len(ytr))[:train_subset]
            xtr, ytr = xtr[np.sort(idx)], ytr[np.sort(idx)]
    k_val = val_count(val_size, len(ytr))
    perm = np.random.default_rng([seed, 7]).permutation(len(ytr))  # own stream: independent of the subset
    val_idx, tr_idx = np.sort(perm[:k_val]), np.sort(perm[k_val:])
    xva, yva, xtr, ytr = xtr[val_idx], ytr[val_idx], xtr[tr_idx], ytr[tr_idx]
    mean, std = NORM[name]
    return ImageData(name, torch.from_numpy(np.array(xtr)), torch.from_numpy(ytr.astype(np.int64)),
                     torch.from_numpy(np.array(xva)), torch.from_numpy(yva.astype(np.int64)),
                     torch.from_numpy(np.array(xte)), torch.from_numpy(yte.astype(np.int64)),
                     k, mean, std, name in CIFAR, source)


def normalise(x: torch.Tensor, data: ImageData) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` -> float ``(x / 255 - mean_c) / std_c``."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return (x.float() / 255.0 - mean) / std


def augment(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel zero-padded crop + horizontal flip, per image, vectorised ``[N, C, H, W]``."""
    n, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w))
    flip = torch.rand(n, generator=g) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    return xp[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each training batch of ``n`` images: ``batch_size`` each, and a last batch of
    one image joins the one before it (BatchNorm in training mode cannot normalise a single image at
    1x1 spatial size); ``len(...)`` is the steps per epoch that ``codesign.cnn.cost`` prices."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))


def batches(data: ImageData, batch_size: int, g: torch.Generator, *, train: bool = True
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled, normalised (and for CIFAR augmented) training batches (:func:`batch_bounds`); test
    batches in order."""
    x, y = (data.train_x, data.train_y) if train else (data.test_x, data.test_y)
    order = torch.randperm(len(y), generator=g) if train else torch.arange(len(y))
    bounds = batch_bounds(len(y), batch_size) if train else [(i, i + batch_size) for i in range(0, len(y), batch_size)]
    for i, j in bounds:
        idx = order[i:j]
        xb = x[idx]
        if train and data.augment:
            xb = augment(xb, g)  # on uint8, so the padding is black pixels as in the reference code
        yield normalise(xb, data), y[idx]
