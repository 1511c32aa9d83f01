"""Datasets and samples: frames on disk (REDS, Vimeo-90K, frame folders, the shared development
data), turned into evaluation clips and training samples (video files are read by
``afvsr.video.reader.VideoReader``).

- ``open_eval_dataset(spec, scale=4, root=None)``: whole clips,
  ``{"lq": (t, 3, h, w), "gt": (t, 3, s*h, s*w), "key"}``.
- ``build_train_dataset(cfg)``: ``SequenceSamples`` or ``RateGroupSamples`` from the ``[data]``
  config section, whose keys are declared in ``TRAIN_DATA_DEFAULTS`` (``afvsr.schema.Field``:
  default, type, allowed values, help).
"""

from afvsr.data.build import (
    EVAL_SPECS,
    TRAIN_DATA_DEFAULTS,
    DataKey,
    build_train_dataset,
    check_train_data_config,
    open_eval_dataset,
)
from afvsr.data.clips import Clip, ClipDataset, ClipGeometry
from afvsr.data.folders import FrameFolders
from afvsr.data.frames import list_frames, read_frame
from afvsr.data.reds import REDS, REDS4, REDSVAL4
from afvsr.data.samples import RateGroupSamples, SequenceSamples
from afvsr.data.shared import SharedData, shared_data_root
from afvsr.data.vimeo import Vimeo90K
from afvsr.frame_groups import group_indices, mirror_index

__all__ = [
    "EVAL_SPECS",
    "REDS",
    "REDS4",
    "REDSVAL4",
    "TRAIN_DATA_DEFAULTS",
    "Clip",
    "ClipDataset",
    "ClipGeometry",
    "DataKey",
    "FrameFolders",
    "RateGroupSamples",
    "SequenceSamples",
    "SharedData",
    "Vimeo90K",
    "build_train_dataset",
    "check_train_data_config",
    "group_indices",
    "list_frames",
    "mirror_index",
    "open_eval_dataset",
    "read_frame",
    "shared_data_root",
]
