"""Datamodules: embedded offline demo data, the user's array files and image folders, CIFAR-10.

Imports process/, checkpoint/ (argument rules, target checks), trainer.lightning_api and
writing.ids; never a command. A user's config names the classes exported here.
"""

from litpredict.data.array_file import ArrayFileDataModule
from litpredict.data.arrays import ArrayDataset
from litpredict.data.base import ArrayDataModule, DescribesInputFiles, HasSampleIds
from litpredict.data.cifar10 import CIFAR10DataModule
from litpredict.data.demo import ImageDemo, RegressionDemo, SequenceDemo
from litpredict.data.image_folder import ImageFolderDataModule, ImageFolderDataset

__all__ = [
    "ArrayDataModule",
    "ArrayDataset",
    "ArrayFileDataModule",
    "CIFAR10DataModule",
    "DescribesInputFiles",
    "HasSampleIds",
    "ImageDemo",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "RegressionDemo",
    "SequenceDemo",
]
