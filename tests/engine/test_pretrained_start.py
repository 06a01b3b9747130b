"""`model.pretrained=SRC`: a fresh run starts from a source's encoder, EMA teacher and predictor (where present)."""

from __future__ import annotations

import pytest
import torch

from openjepa.cli import main
from openjepa.config import load_config
from openjepa.engine.runs import load_run
from openjepa.engine.trainer import load_pretrained_parts, prepare
from openjepa.interop.sources import load_part
from openjepa.methods import build_method
from tests.tiny import tiny

QUIET = ("eval.at_end=false", "monitor.every=0")


def _equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_run_starts_from_every_part_of_another(tmp_path, capsys):
    src = tmp_path / "src"
    assert main(["train", *tiny(src, "train.steps=3", *QUIET)]) == 0
    _, ref, _, _ = load_run(src)
    cfg = prepare(load_config(None, tiny(tmp_path / "new", f"model.pretrained={src}", *QUIET)))
    method = build_method(cfg, 10)
    assert not _equal(method.encoder, ref.encoder)  # a fresh init differs
    load_pretrained_parts(method, cfg, load_part)
    assert _equal(method.encoder, ref.encoder) and _equal(method.target.encoder, ref.target.encoder)
    assert _equal(method.predictor, ref.predictor)
    assert not _equal(method.encoder, ref.target.encoder)  # the student came from the student, not the teacher
    assert main(["train", *tiny(tmp_path / "cli", "train.steps=2", f"model.pretrained={src}", *QUIET)]) == 0


def test_a_lone_encoder_seeds_student_and_teacher_and_keeps_the_predictor(tmp_path, capsys):
    src = tmp_path / "src"
    assert main(["train", *tiny(src, "train.steps=3", *QUIET)]) == 0
    exported = src / "encoder.safetensors"
    cfg = prepare(load_config(None, tiny(tmp_path / "new", f"model.pretrained={exported}", *QUIET)))
    method = build_method(cfg, 10)
    own_predictor = {k: v.clone() for k, v in method.predictor.state_dict().items()}
    capsys.readouterr()
    load_pretrained_parts(method, cfg, load_part)
    out = capsys.readouterr().out
    assert "has no predictor" in out
    target = load_part(exported, "target")
    assert _equal(method.encoder, target) and _equal(method.target.encoder, target)
    assert all(torch.equal(v, own_predictor[k]) for k, v in method.predictor.state_dict().items())


@pytest.mark.parametrize("pos", ["sincos", "rope"])
def test_a_cooldown_run_continues_at_longer_clips_and_higher_resolution(tmp_path, pos):
    """V-JEPA 2's progressive phase: a run at 8 frames x 24 px starts from one at 4 frames x 16 px. Every trained
    weight comes over as is; a fixed sin-cos table is the new grid's own (the same code at every old position)."""
    from openjepa.layers import sincos_embed
    from tests.dist.test_video_dist import VIDEO

    src = tmp_path / "src"
    enc = f"model.encoder_kwargs={{pos: {pos}}}"
    assert main(["train", *tiny(src, *VIDEO, enc, *QUIET)]) == 0
    _, ref, _, _ = load_run(src)
    long = ("data.frames_per_clip=8", "model.img_size=24", "optim.schedule=wsd", "optim.decay_fraction=1.0",
            "optim.warmup_steps=0")
    cfg = prepare(load_config(None, tiny(tmp_path / "cool", *VIDEO, enc, *long, f"model.pretrained={src}", *QUIET)))
    method = build_method(cfg, 10)
    load_pretrained_parts(method, cfg, load_part)
    assert method.encoder.grid == (4, 6, 6) and ref.encoder.grid == (2, 4, 4)
    for mine, theirs in ((method.encoder, ref.encoder), (method.target.encoder, ref.target.encoder),
                         (method.predictor, ref.predictor)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            if k.endswith("pos_embed"):
                assert pos == "sincos" and a[k].shape != b[k].shape
                grid, dim = mine.grid, a[k].shape[-1]
                assert torch.equal(a[k][0], sincos_embed(dim, grid, video=True))
                # the old grid's positions keep their code: (t, h, w) < (2, 4, 4) of the new table = the old table
                old = a[k][0].reshape(*grid, dim)[:2, :4, :4].reshape(-1, dim)
                assert torch.allclose(old, b[k][0], atol=1e-6)
            else:
                assert torch.equal(a[k], b[k]), k
    assert main(["train", *tiny(tmp_path / "cli", *VIDEO, enc, *long, "train.steps=2", f"model.pretrained={src}",
                                *QUIET)]) == 0
