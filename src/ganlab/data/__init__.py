"""Datamodules: Gaussian mixtures with known modes, and image datasets scaled to [-1, 1]."""

from ganlab.data.base import GANDataModule
from ganlab.data.images import (
    CIFAR10,
    MNIST,
    FashionMNIST,
    ImageDataModule,
    ImageFolder,
    MNISTOffline,
    resolve_path,
)
from ganlab.data.stream import MinibatchStream, generator_for
from ganlab.data.toy import Gaussian1D, GaussianMixtureDataModule, ToyGrid, ToyRing

__all__ = [
    "CIFAR10",
    "MNIST",
    "FashionMNIST",
    "GANDataModule",
    "Gaussian1D",
    "GaussianMixtureDataModule",
    "ImageDataModule",
    "ImageFolder",
    "MNISTOffline",
    "MinibatchStream",
    "ToyGrid",
    "ToyRing",
    "generator_for",
    "resolve_path",
]
