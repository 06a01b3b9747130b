"""V-JEPA 2's images trained jointly with clips (``data.images``): the loss, the image grid's masks, bad settings."""

import json

import pytest
import torch

from openjepa.cli import main
from openjepa.config import load_config
from openjepa.data import build_dataset, image_stream
from openjepa.engine.loader import JointLoader, step_loader
from openjepa.engine.trainer import build_fit, to_device
from openjepa.errors import ConfigError
from openjepa.masks.base import MaskGroups
from tests.dist.test_video_dist import VIDEO
from tests.tiny import tiny

IMAGES = "data.images={frames_as_images: true, batch_size: 12}"


def joint_cfg(tmp_path, *extra):
    return load_config(None, tiny(tmp_path / "run", *VIDEO, IMAGES, "data.train_size=48", *extra))


def test_stream_config_and_its_batches(tmp_path):
    cfg = joint_cfg(tmp_path)
    stream = image_stream(cfg)
    assert stream.frames_as_images and stream.batch_size == 12 and stream.images == {}
    fit = build_fit(cfg, resume=False)
    assert isinstance(fit.loader, JointLoader)
    batch = next(iter(fit.loader))
    clips, images = batch["x"], batch["images"]["x"]
    assert clips.shape == (8, 3, 4, 16, 16) and images.shape == (12, 3, 16, 16)  # one-frame items: images
    assert batch["images"]["step"] == batch["step"] == 0
    # The image masks live on the image's (1, 4, 4) grid, the clips' on the (2, 4, 4) grid, both as V-JEPA groups.
    vid, img = batch["masks"], batch["images"]["masks"]
    assert isinstance(img, MaskGroups) and len(img) == len(vid) == 2
    assert max(int(m.targets.idx.max()) for m in img) < 16 <= max(int(m.targets.idx.max()) for m in vid)
    for m in img:  # context and targets disjoint within every group, on the image grid too
        for b in range(12):
            ctx, tgt = (set(s.idx[b][s.valid[b]].tolist() if s.valid is not None else s.idx[b].flatten().tolist())
                        for s in (m.context, m.targets))
            assert ctx and tgt and ctx.isdisjoint(tgt)


def test_loss_is_the_weighted_mean_of_the_two_streams(tmp_path):
    """training_step on a joint batch = (1 - w) * the clips' loss + w * the images' loss, each computed alone."""
    cfg = joint_cfg(tmp_path, "data.image_weight=0.3")
    fit = build_fit(cfg, resume=False)
    batch = to_device(next(iter(fit.loader)), torch.device("cpu"))
    method = fit.method.train()
    joint = method.training_step(batch, 0)
    clips = method.training_step({k: v for k, v in batch.items() if k != "images"}, 0)
    images = method.training_step(batch["images"], 0)
    assert float(joint.loss.detach()) == pytest.approx(0.7 * float(clips.loss.detach()) + 0.3 * float(images.loss.detach()), rel=1e-5)
    assert float(joint.metrics["image_pred_loss"]) == pytest.approx(float(images.metrics["pred_loss"]), rel=1e-6)
    assert float(images.loss.detach()) != pytest.approx(float(clips.loss.detach()), rel=1e-3)  # the streams do differ


def test_patch_embed_img_model_gets_its_own_image_grid(tmp_path):
    """With V-JEPA 2.1's image patch embedding an image is a (1, H, W) grid too, not a repeated tubelet."""
    cfg = joint_cfg(tmp_path, "model.encoder_kwargs={image_patch_embed: true}")
    fit = build_fit(cfg, resume=False)
    batch = next(iter(fit.loader))
    assert fit.method.encoder.token_grid(batch["images"]["x"]) == (1, 4, 4)
    out = fit.method.training_step(batch, 0)
    out.loss.backward()
    assert fit.method.encoder.patch_embed_img.proj.weight.grad.abs().sum() > 0  # images train their own patcher


def test_joint_run_resumes_exactly(tmp_path):
    from openjepa.report.pipeline import train_and_evaluate as train
    from tests.dist.test_torchrun import final

    args = tiny(tmp_path / "run", *VIDEO, IMAGES, "data.train_size=48")
    train(load_config(None, args))
    uninterrupted = final(tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "step_00000006.pt").unlink()  # as if killed after the step-3 checkpoint
    train(load_config(None, args), resume=True)
    resumed = final(tmp_path / "run")
    for k, v in uninterrupted["method"].items():
        assert torch.equal(v, resumed["method"][k]), k
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("image_pred_loss" in r for r in rows)


@pytest.mark.parametrize("extra, needle", [
    (["data.images={frame_as_images: true}"], "data.images: unknown key(s) frame_as_images; choose from:"),
    (["data.images={batch_size: 4}"], "data.images: data.name=moving_shapes holds video data, not images "
                                      "(add frames_as_images: true)"),
    (["data.images={frames_as_images: true, batch_size: 100000}"], "data.images: data.batch_size=100000 exceeds"),
    (["data.image_weight=1.0", IMAGES], "data.image_weight=1.0 must be in (0, 1)"),
])
def test_bad_stream_settings_exit_2(tmp_path, capsys, extra, needle):
    args = tiny(tmp_path / "run", *VIDEO, *extra)
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_stream_refused_on_image_runs_and_other_methods(tmp_path, capsys):
    assert main(["train", *tiny(tmp_path / "a", IMAGES)]) == 2
    assert "data.images adds images to a video run; data.name=shapes holds image data" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="train.method=finetune does not train on a joint image stream"):
        build_fit(load_config(None, tiny(tmp_path / "b", *VIDEO, IMAGES, "data.train_size=48",
                                         "train.method=finetune")), resume=False)


def test_batch_larger_than_the_dataset_is_a_config_error(tmp_path, capsys):
    """A batch that does not fit in the training set (a folder of 3 videos, batch 4) names the key, exit 2."""
    from openjepa.data.video import write_video
    from tests.data.test_video_data import indexed_frames

    for i, c in enumerate("aab"):
        write_video(tmp_path / "v" / c / f"{i}.mp4", indexed_frames(8), fps=8)
    code = main(["train", *tiny(tmp_path / "run", "data.name=video_folder", f"data.root={tmp_path / 'v'}",
                                "data.frames_per_clip=4", "data.frame_step=2", "model.tubelet_size=2", "data.batch_size=4",
                                "data.val_fraction=0.0", "train.steps=2", "eval.at_end=false")])
    err = capsys.readouterr().err
    assert code == 2 and "data.batch_size=4 exceeds the 3 training items of data.name=video_folder" in err
