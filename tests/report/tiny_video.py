"""Tiny video-run settings (``tiny()`` extras) shared by the report tests: a V-JEPA run on
``moving_shapes`` clips of 4 frames, tubelet 2, on a (2, 4, 4) token grid, in seconds on a CPU."""

VJEPA_MASKS = ["mask.groups=[{num_targets: 8, target_scale: [0.15, 0.15]}, {num_targets: 2, target_scale: [0.7, 0.7]}]",
               "mask.merge_targets=true", "mask.context_scale=[1.0,1.0]", "train.loss=l1"]
VIDEO = ["data.frames_per_clip=4", "model.tubelet_size=2", "data.batch_size=16", "train.steps=2", *VJEPA_MASKS]
MOVING = ["data.name=moving_shapes", "data.train_size=32", "data.test_size=16", *VIDEO]
