"""Datasets and image pipelines.

``build_dataset(cfg.data, split, img_size, seed)`` gives a ``torch.utils.data.Dataset`` of
``(image: float tensor (C, H, W) normalised, label: int)`` pairs (label -1 when unlabelled);
``dataset_info(cfg.data)`` tells a model its input channels, classes and normalisation first.
Built in: ``shapes`` (procedural, the default), ``digits`` (scikit-learn), ``fashion_mnist`` (IDX
files), ``folder`` (any image directory); video clips ``(C, T, H, W)``: ``moving_shapes`` (procedural,
labels that need the order of the frames) and ``video_folder`` (video files, decoded with PyAV).
``TrajectoryDataset`` serves windows of recorded environment trajectories (``openjepa collect``)
for world models.
"""

from .base import DataError, eval_view, raw_pixels, stratified_split
from .digits import DigitsDataset
from .fashion_mnist import FashionMNIST
from .folder import FolderDataset
from .moving import MovingShapesDataset
from .registry import (DATASETS, DatasetInfo, DatasetSpec, build_dataset, dataset_info, dataset_names, dataset_spec,
                       eval_pipeline, image_stream, prepare_config, register_dataset)
from .shapes import ShapesDataset
from .trajectories import TrajectoryDataset
from .video import ClipSpec, VideoDataset, probe_video, read_frames, write_video
from .transforms import available_transforms, build_pipeline, build_transform, build_transforms

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetInfo",
    "DatasetSpec",
    "DigitsDataset",
    "FashionMNIST",
    "FolderDataset",
    "ClipSpec",
    "MovingShapesDataset",
    "ShapesDataset",
    "TrajectoryDataset",
    "VideoDataset",
    "available_transforms",
    "build_dataset",
    "build_pipeline",
    "image_stream",
    "build_transform",
    "build_transforms",
    "dataset_info",
    "dataset_names",
    "dataset_spec",
    "eval_pipeline",
    "eval_view",
    "prepare_config",
    "probe_video",
    "read_frames",
    "register_dataset",
    "raw_pixels",
    "stratified_split",
    "write_video",
]
