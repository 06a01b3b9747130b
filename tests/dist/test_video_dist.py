"""V-JEPA on clips: two gloo ranks follow the one-process trajectory, and an interrupted run resumes exactly.

``moving_shapes`` renders each clip from (seed, split, index) alone, and the V-JEPA mask groups are drawn per
sample from (seed, step, rank, position in the global batch), so which rank draws an item changes nothing.
"""

from pathlib import Path

import pytest
import torch

from openjepa.config import load_config
from openjepa.report.pipeline import train_and_evaluate as train
from tests.dist.test_torchrun import final, losses, torchrun
from tests.tiny import tiny

VIDEO = ["data.name=moving_shapes", "data.frames_per_clip=4", "model.tubelet_size=2", "data.batch_size=8",
         "model.img_size=16", "model.patch_size=4", "train.steps=6", "train.ckpt_every=3", "train.loss=l1",
         "eval.at_end=false", "monitor.every=0", "optim.clip_grad=1.0", "mask.merge_targets=true",
         "mask.context_scale=[1.0,1.0]", "mask.min_keep=2",
         "mask.groups=[{num_targets: 4, target_scale: [0.15, 0.15]}, {num_targets: 1, target_scale: [0.5, 0.5]}]"]


JOINT = ["data.images={frames_as_images: true, batch_size: 12}", "data.train_size=48"]  # V-JEPA 2's image stream


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], JOINT], ids=["clips", "clips+images"])
def test_video_two_ranks_match_one_rank(tmp_path, extra):
    train(load_config(None, tiny(tmp_path / "one", *VIDEO, *extra)))
    torchrun(tmp_path / "two", base=VIDEO + extra)
    one, two = final(tmp_path / "one"), final(tmp_path / "two")
    assert len(two["rng_ranks"]) == 2 and two["step"] == one["step"] == 6
    assert losses(tmp_path / "two") == pytest.approx(losses(tmp_path / "one"), rel=1e-4)
    assert one["method"]["predictor.mask_token"].shape[0] == 2  # one mask token per group
    for k, v in one["method"].items():
        assert torch.allclose(v, two["method"][k], rtol=1e-4, atol=1e-5), k


def test_video_resume_equals_uninterrupted(tmp_path):
    run = tmp_path / "run"
    train(load_config(None, tiny(run, *VIDEO)))
    uninterrupted = final(run)
    (run / "checkpoints" / "step_00000006.pt").unlink()  # as if killed after the step-3 checkpoint
    train(load_config(None, tiny(run, *VIDEO)), resume=True)
    resumed = final(run)
    assert resumed["step"] == 6
    for k, v in uninterrupted["method"].items():
        assert torch.equal(v, resumed["method"][k]), k
