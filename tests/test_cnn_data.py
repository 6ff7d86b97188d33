"""Image datasets without torchvision: tiny CIFAR pickles and IDX files written by the test."""

from __future__ import annotations

import gzip
import pickle
import urllib.request

import numpy as np
import pytest
import torch

import codesign.runtime.fetch
from codesign.cnn.data import augment, batch_bounds, batches, load_dataset, normalise, read_idx
from costmodels.errors import CodesignError


def _write_cifar10(root, n_per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8),
             b"labels": list(rng.integers(0, 10, size=n_per_batch))}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f)
    return folder


def test_cifar10_pickles_roundtrip(tmp_path):
    folder = _write_cifar10(tmp_path)
    with open(folder / "data_batch_2", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    d = load_dataset("cifar10", tmp_path, download=False)
    assert d.train_x.shape == (20, 3, 32, 32) and d.test_x.shape == (4, 3, 32, 32)
    assert d.train_x.dtype == torch.uint8 and d.num_classes == 10 and d.augment
    # row-major [3072] = R plane, G plane, B plane of 32x32
    assert torch.equal(d.train_x[4, 1, 0, :5], torch.from_numpy(raw[b"data"][0, 1024:1029]))
    assert d.train_y[4] == raw[b"labels"][0]


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 6), ("test", 2)):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": [99] * n,
                         b"coarse_labels": [1] * n}, f)
    d = load_dataset("cifar100", tmp_path, download=False)
    assert d.num_classes == 100 and d.train_y.tolist() == [99] * 6


def test_idx_reader_and_mnist_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    labels = np.array([7, 0, 3], np.uint8)

    def write(path, arr, magic):
        header = bytes([0, 0, 8, magic]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
        with gzip.open(path, "wb") as f:
            f.write(header + arr.tobytes())

    for split in ("train", "t10k"):
        write(raw / f"{split}-images-idx3-ubyte.gz", imgs, 3)
        write(raw / f"{split}-labels-idx1-ubyte.gz", labels, 1)
    assert np.array_equal(read_idx(raw / "train-images-idx3-ubyte.gz"), imgs)
    d = load_dataset("mnist", tmp_path)
    assert d.input_shape == (1, 28, 28) and d.train_y.tolist() == [7, 0, 3] and not d.augment


def test_missing_files_are_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(CodesignError, match=r"fashion-mnist.*train-images-idx3-ubyte.gz.*--data-root"):
        load_dataset("fashion-mnist", tmp_path)
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CodesignError, match="downloading is off"):
        load_dataset("cifar10", tmp_path, download=False)

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(codesign.runtime.fetch.urllib.request, "urlopen", offline)
    with pytest.raises(CodesignError) as exc:
        load_dataset("cifar100", tmp_path, download=True)
    assert "download" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(CodesignError, match="unknown dataset"):
        load_dataset("imagenet", tmp_path)


def test_cifar_download_extracts_whole_or_not_at_all(tmp_path, monkeypatch):
    """The tarball (a small one standing in for the official file) is fetched into the cache and
    extracted; an extraction cut off part-way leaves no batch folder, so the next run extracts again
    (it found the half-filled folder and refused: 'batch file ... is missing'). The data's source
    is the folder read, the cache's copy (it named <data root>/cifar-10-batches-py, which is absent)."""
    import shutil
    import tarfile

    import codesign.cnn.data as cnn_data
    from codesign.runtime.fetch import file_digest

    _write_cifar10(tmp_path / "upstream")
    tar = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(tmp_path / "upstream" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setitem(cnn_data.CIFAR, "cifar10",
                        cnn_data.CIFAR["cifar10"][:2] + (file_digest(tar, "md5"),) + cnn_data.CIFAR["cifar10"][3:])
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    monkeypatch.setattr(cnn_data, "fetch", lambda url, dest: (calls.append(url), shutil.copy(tar, dest)))
    whole = tarfile.TarFile.extractall

    def cut_off(self, path, *args, **kwargs):  # the first member arrives, then the disk is full
        self.extract(self.getmembers()[1], path, filter="data")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", cut_off)
    with pytest.raises(CodesignError, match="No space left on device"):
        load_dataset("cifar10", tmp_path / "root")
    assert not (tmp_path / "cache" / "data" / "cifar-10-batches-py").exists()
    monkeypatch.setattr(tarfile.TarFile, "extractall", whole)
    d = load_dataset("cifar10", tmp_path / "root")
    assert d.train_x.shape == (20, 3, 32, 32) and d.test_x.shape == (4, 3, 32, 32)
    assert d.source == str(tmp_path / "cache" / "data" / "cifar-10-batches-py")
    assert len(calls) == 1  # the verified tarball was kept: the second run did not fetch it again
    assert sorted(p.name for p in (tmp_path / "cache" / "data").iterdir()) == ["cifar-10-batches-py",
                                                                               "cifar-10-python.tar.gz"]


@pytest.mark.parametrize("has_filter", [True, False])
def test_cifar_extraction_refuses_members_outside_the_folder_with_or_without_tarfiles_filter(
        tmp_path, monkeypatch, has_filter):
    """Pythons before 3.10.12 / 3.11.4 have no ``filter="data"`` (``requires-python`` admits them): the
    extraction then checks the members itself; a plain archive extracts, one with a ``..`` member or a
    link is refused either way."""
    import tarfile

    from codesign.cnn.data import _extract_plain

    if not has_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f.txt").write_text("x")
    good, bad, link = tmp_path / "good.tar", tmp_path / "bad.tar", tmp_path / "link.tar"
    with tarfile.open(good, "w") as t:
        t.add(src / "d", arcname="d")
    with tarfile.open(bad, "w") as t:
        t.add(src / "d" / "f.txt", arcname="../escape.txt")
    with tarfile.open(link, "w") as t:
        info = tarfile.TarInfo("d/ln")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    with tarfile.open(good) as t:
        _extract_plain(t, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "f.txt").read_text() == "x"
    for archive in (bad, link):
        with tarfile.open(archive) as t, pytest.raises(tarfile.TarError):
            _extract_plain(t, tmp_path / "out2")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out2" / "d" / "ln").exists()


def test_failed_cifar_download_leaves_no_cache_folders(tmp_path, monkeypatch):
    """Offline, a CIFAR run with a cache folder that does not exist yet is refused in one line and
    creates nothing (it left the cache folder and its parents behind)."""
    import codesign.cnn.data as cnn_data

    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "home" / "cache"))

    def offline(url, dest):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(cnn_data, "fetch", offline)
    with pytest.raises(CodesignError, match="download from https://www.cs.toronto.edu/.*failed .no network"):
        load_dataset("cifar10", tmp_path / "root")
    assert not (tmp_path / "home").exists() and not (tmp_path / "root").exists()


def test_train_subset_and_synthetic_determinism(tmp_path):
    a = load_dataset("synthetic-images", tmp_path, train_subset=100, seed=3)
    b = load_dataset("synthetic-images", tmp_path, train_subset=100, seed=3)
    assert len(a.train_y) == 100 and torch.equal(a.train_x, b.train_x)
    with pytest.raises(CodesignError, match="train-subset"):
        load_dataset("synthetic-images", tmp_path, train_subset=0)


def test_augment_is_a_shifted_or_flipped_crop():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).reshape(2, 1, 6, 6)
    out = augment(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    for i in range(2):  # every output row is a (possibly flipped, zero-padded) window of the padded image
        xp = torch.nn.functional.pad(x[i, 0], (2, 2, 2, 2))
        found = any(
            torch.equal(out[i, 0], w) or torch.equal(out[i, 0], w.flip(1))
            for w in (xp[r:r + 6, c:c + 6] for r in range(5) for c in range(5))
        )
        assert found


def test_batches_normalise_and_cover_the_set(tmp_path):
    d = load_dataset("synthetic-images", tmp_path, train_subset=50)
    ys = torch.cat([y for _, y in batches(d, 16, torch.Generator().manual_seed(0))])
    assert sorted(ys.tolist()) == sorted(d.train_y.tolist())
    x = normalise(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8), d)
    assert x.flatten().tolist() == pytest.approx([2.0, 2.0, 2.0])  # (1 - 0.5) / 0.25


def test_a_last_batch_of_one_image_joins_the_one_before(tmp_path):
    # 49 images in batches of 16 left a last batch of 1, which BatchNorm cannot train on (VGG at 1x1)
    d = load_dataset("synthetic-images", tmp_path, train_subset=49)
    sizes = [len(y) for _, y in batches(d, 16, torch.Generator().manual_seed(0))]
    assert sizes == [16, 16, 17]
    assert batch_bounds(769, 256) == [(0, 256), (256, 512), (512, 769)]
    assert batch_bounds(770, 256) == [(0, 256), (256, 512), (512, 768), (768, 770)]
    assert batch_bounds(1, 256) == [(0, 1)]


def test_image_dataset_names_in_any_case(tmp_path):
    """``MNIST`` and ``Synthetic_Images`` name the datasets ``estimate`` and the graph loaders already took in
    any case (training refused them); results record the canonical name."""
    from codesign.cli import main
    from codesign.cnn.pipeline import CNNTrainConfig

    assert CNNTrainConfig(dataset="Fashion_MNIST").dataset == "fashion-mnist"
    estimate = ["estimate", "--task", "cnn", "--model", "vgg11", "--dataset", "Fashion_MNIST", "--device", "h100"]
    assert main(estimate) == 0
    assert load_dataset("Synthetic_Images", tmp_path).name == "synthetic-images"
    with pytest.raises(CodesignError, match="unknown dataset 'MNISTX'"):
        load_dataset("MNISTX", tmp_path)
