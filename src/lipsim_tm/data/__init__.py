"""Datasets for training and evaluating LipSim: NIGHTS, BAPPS, photo folders and synthetic 2AFC."""

from lipsim_tm.data.bapps import BAPPS2AFCDataset
from lipsim_tm.data.image_folder import ImageFolderDataset
from lipsim_tm.data.images import find_images, load_image, read_image
from lipsim_tm.data.nights import NightsDataset
from lipsim_tm.data.synthetic_2afc import Synthetic2AFCDataset

__all__ = [
    "BAPPS2AFCDataset",
    "ImageFolderDataset",
    "NightsDataset",
    "Synthetic2AFCDataset",
    "find_images",
    "load_image",
    "read_image",
]
