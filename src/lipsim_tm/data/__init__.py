"""Datasets for training and evaluating LipSim: NIGHTS, BAPPS, photo folders and synthetic 2AFC."""

from lipsim_tm.data.bapps import BAPPS2AFCDataset
from lipsim_tm.data.distortions import DISTORTION_FAMILIES, apply_distortion
from lipsim_tm.data.image_folder import ImageFolderDataset
from lipsim_tm.data.images import find_images, load_image, safe_join
from lipsim_tm.data.nights import NIGHTS_SPLITS, NightsDataset
from lipsim_tm.data.synthetic_2afc import Labeller, Synthetic2AFCDataset, TripletSpec, embedding_labeller
from lipsim_tm.data.transforms import ColorJitter

__all__ = [
    "DISTORTION_FAMILIES",
    "NIGHTS_SPLITS",
    "BAPPS2AFCDataset",
    "ColorJitter",
    "ImageFolderDataset",
    "Labeller",
    "NightsDataset",
    "Synthetic2AFCDataset",
    "TripletSpec",
    "apply_distortion",
    "embedding_labeller",
    "find_images",
    "load_image",
    "safe_join",
]
