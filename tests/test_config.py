import dataclasses

import pytest

from openjepa.methods import check_config
from openjepa.config import ConfigError, available_configs, load_config, to_yaml


def test_defaults_are_the_quickstart():
    cfg = load_config()
    assert cfg.data.name == "shapes" and cfg.train.method == "ijepa"


def test_unknown_key_named_with_choices():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["optim.lrr=1e-3"])
    msg = str(e.value)
    assert "optim.lrr" in msg and "did you mean 'optim.lr'" in msg and "warmup_steps" in msg


def test_unknown_top_level_key_in_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optimm:\n  lr: 1.0\n")
    with pytest.raises(ConfigError, match="unknown config key 'optimm'.*did you mean 'optim'"):
        load_config(p)


def test_wrong_type_named():
    with pytest.raises(ConfigError, match="data.batch_size"):
        load_config(None, ["data.batch_size=many"])


def test_bad_choice_lists_choices():
    with pytest.raises(ConfigError, match="multiblock, random"):
        load_config(None, ["mask.sampler=blocks"])
    with pytest.raises(ConfigError, match="did you mean 'vit_small'"):  # registries are checked above config
        check_config(load_config(None, ["model.encoder=vit_smal"]))


def test_impossible_settings():
    with pytest.raises(ConfigError, match="min_keep"):
        load_config(None, ["mask.min_keep=1000"])
    with pytest.raises(ConfigError, match="patch_size"):
        load_config(None, ["model.img_size=30"])


def test_malformed_yaml_and_override(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(p)
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["optim.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config("no/such/config")


def test_unknown_config_name_suggests_the_closest_shipped_one(tmp_path, monkeypatch):
    from openjepa.config.load import resolve_config_path

    monkeypatch.chdir(tmp_path)  # no ./configs/ here: only the shipped configs
    shipped = ", ".join(available_configs())
    for typed in ("ijepa/fashion_mnst", "configs/ijepa/fashion_mnist.yaml"):  # a typo; the pre-package path
        with pytest.raises(ConfigError) as e:
            resolve_config_path(typed)
        assert str(e.value) == (f"config {typed!r} not found (did you mean 'ijepa/fashion_mnist'?); "
                                f"shipped configs: {shipped}")
    with pytest.raises(ConfigError) as e:
        resolve_config_path("zzzz")
    assert str(e.value) == f"config 'zzzz' not found; shipped configs: {shipped}"


def test_shipped_configs_live_in_the_package_and_a_local_one_wins(tmp_path, monkeypatch):
    from pathlib import Path

    import openjepa
    from openjepa.config.load import resolve_config_path

    monkeypatch.chdir(tmp_path)
    package_configs = Path(openjepa.__file__).resolve().parent / "configs"
    assert resolve_config_path("ijepa/fashion_mnist") == package_configs / "ijepa" / "fashion_mnist.yaml"
    (tmp_path / "configs" / "ijepa").mkdir(parents=True)
    (tmp_path / "configs" / "ijepa" / "fashion_mnist.yaml").write_text("run_dir: runs/mine\n")
    assert resolve_config_path("ijepa/fashion_mnist") == tmp_path / "configs" / "ijepa" / "fashion_mnist.yaml"
    assert load_config("ijepa/fashion_mnist").run_dir == "runs/mine"


@pytest.mark.parametrize("name", available_configs())
def test_shipped_configs_resolve(name):
    cfg = load_config(name)
    assert "model:" in to_yaml(cfg)


def test_shipped_configs_present():
    assert {"quickstart", "ijepa/fashion_mnist", "ijepa/vit_h14_in1k", "ijepa/fashion_mnist_sigreg",
            "ijepa/shapes_sigreg", "lejepa/fashion_mnist", "lejepa/shapes", "lejepa/vit_h14_in1k"} <= set(available_configs())


def test_paper_recipe():
    cfg = load_config("ijepa/vit_h14_in1k")
    assert (cfg.model.encoder, cfg.model.patch_size, cfg.data.batch_size, cfg.train.epochs) == ("vit_huge", 14, 2048, 300)
    assert (cfg.optim.lr, cfg.optim.start_lr, cfg.optim.final_lr, cfg.optim.warmup_epochs) == (1e-3, 2e-4, 1e-6, 40)
    assert (cfg.optim.weight_decay, cfg.optim.final_weight_decay, cfg.optim.ema) == (0.04, 0.4, [0.996, 1.0])
    assert (cfg.model.predictor_depth, cfg.model.predictor_embed_dim) == (12, 384)
    from openjepa.engine.trainer import plan_steps

    plan = plan_steps(cfg, 1_281_167)  # ImageNet-1k train images
    assert plan.steps_per_epoch == 625 and plan.total == 300 * 625 and plan.warmup == 40 * 625


@pytest.mark.parametrize("override, key", [
    ("optim.lr=abc", "optim.lr"), ("data.batch_size=1.5", "data.batch_size"), ("train.steps=ten", "train.steps"),
    ("model.patch_size=0", "model.patch_size"), ("model.tubelet_size=0", "model.tubelet_size"),
    ("optim.lr=-1", "optim.lr"), ("optim.lr=nan", "optim.lr"), ("train.epochs=inf", "train.epochs"),
    ("train.log_every=0", "train.log_every"), ("train.ckpt_every=-5", "train.ckpt_every"),
    ("data.val_fraction=1.0", "data.val_fraction"), ("mask.ratio=0", "mask.ratio"),
    ("model.predictor_heads=3", "model.predictor_heads"), ("data.train_size=10", "data.train_size"),
    ("train.spike_factor=0.5", "train.spike_factor"), ("train.spike_window=0", "train.spike_window"),
])
def test_wrong_types_and_impossible_values_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(load_config(None, [override]))


def test_wrong_types_in_yaml_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  batch_size: 1.5\n")
    with pytest.raises(ConfigError, match=r"data\.batch_size.*c\.yaml"):
        load_config(p)
    p.write_text("optim:\n  lr: abc\n")
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        load_config(p)


def test_spike_guard_settings():
    cfg = load_config()
    assert (cfg.train.spike_factor, cfg.train.spike_window) == (0.0, 50)  # off by default
    cfg = load_config(None, ["train.spike_factor=4", "train.spike_window=20"])
    assert (cfg.train.spike_factor, cfg.train.spike_window) == (4.0, 20)


def test_validate_world_names_the_batch_size_and_world_size():
    from openjepa.config.load import validate_world

    cfg = load_config(None, ["data.batch_size=64"])
    validate_world(cfg, 1)
    validate_world(cfg, 8)
    with pytest.raises(ConfigError, match=r"data\.batch_size=64 .*world size 3"):
        validate_world(cfg, 3)


def test_config_errors_come_before_any_model_is_built(tmp_path, capsys, monkeypatch):
    import openjepa.engine.trainer
    from openjepa.cli import main

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(openjepa.engine.trainer, "build_method", no_model)
    for bad in (["optim.lr=abc"], ["mask.min_keep=1000"], ["data.batch_size=1.5"], ["optim.lrr=1"]):
        assert main(["train", f"run_dir={tmp_path / 'run'}", *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("openjepa train: error: ") and bad[0].split("=")[0] in err[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("item, expected", [
    ("optim.lr=abc", "optim.lr: expected a number, got 'abc'"),
    ("optim.lr=true", "optim.lr: expected a number, got true"),
    ("optim.lr=[1,2]", "optim.lr: expected a number, got a list [1, 2]"),
    ("optim.lr={a: 1}", "optim.lr: expected a number, got a mapping {'a': 1}"),
    ("data.batch_size=1.5", "data.batch_size: expected an integer, got 1.5"),
    ("seed=null", "seed: expected an integer, got null"),
    ("train.progress=maybe", "train.progress: expected true or false, got 'maybe'"),
    ("model.encoder=[a,b]", "model.encoder: expected a string, got a list ['a', 'b']"),
    ("eval.protocols=knn", "eval.protocols: expected a list of strings, got 'knn'"),
    ("data.mean=[1,a]", "data.mean[1]: expected a number, got 'a'"),
    ("data.mean=abc", "data.mean: expected a list of numbers or null, got 'abc'"),
    ("world.pretrained=[1]", "world.pretrained: expected a string or null, got a list [1]"),
    ("world.env_kwargs=3", "world.env_kwargs: expected a mapping, got 3"),
])
def test_type_errors_are_plain(item, expected):
    with pytest.raises(ConfigError) as e:
        load_config(None, [item])
    assert str(e.value) == f"{expected} (in override {item!r})"


@pytest.mark.parametrize("item, got", [("train=5", "5"), ("train=[1]", "a list [1]"), ("train=null", "null")])
def test_section_given_a_value(item, got):
    from openjepa.config import TrainConfig

    keys = ", ".join(f.name for f in dataclasses.fields(TrainConfig))
    with pytest.raises(ConfigError) as e:
        load_config(None, [item])
    assert str(e.value) == (f"train: is a section, not a value; set its keys, e.g. train.steps=300 (keys: {keys}; "
                            f"got {got} in override {item!r})")


def test_type_errors_in_yaml_name_the_file(tmp_path):
    for text, expected in (("optim:\n  lr: abc\n", "optim.lr: expected a number, got 'abc'"),
                           ("optim:\n  lr:\n    x: 1\n", "optim.lr: expected a number, got a mapping {'x': 1}")):
        p = tmp_path / "c.yaml"
        p.write_text(text)
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert str(e.value) == f"{expected} (in {p})"
    p.write_text("plan: cem\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith("plan: is a section, not a value; set its keys, e.g. plan.horizon=8 (keys: planner,")
    assert str(e.value).endswith(f"got 'cem' in {p})")


def test_unparsable_override_value():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["optim.betas=[0.9"])
    assert str(e.value).startswith("override 'optim.betas=[0.9': cannot parse the value '[0.9': ")
    assert "\n" not in str(e.value)


def test_every_shipped_config_passes_the_registry_checks_and_builds_its_masks():
    """Each shipped config names registered parts that fit together; its mask groups build on its own grid."""
    from openjepa.data.registry import dataset_spec
    from openjepa.masks import build_mask_sampler
    from openjepa.methods import check_config

    for name in available_configs():
        cfg = load_config(name)
        check_config(cfg)
        m = cfg.model
        frames = cfg.data.frames_per_clip if dataset_spec(cfg.data.name).info.kind == "video" else m.num_frames
        assert frames % m.tubelet_size == 0, name
        grid = (max(frames // m.tubelet_size, 1), m.img_size // m.patch_size, m.img_size // m.patch_size)
        build_mask_sampler(cfg.mask, grid, cfg.seed)


@pytest.mark.parametrize("pretrain, cooldown, px", [("vjepa2/vit_l_256_16f", "vjepa2/vit_l_256_64f_cooldown", 256),
                                                    ("vjepa2/vit_g_256_16f", "vjepa2/vit_g_384_64f_cooldown", 384)])
def test_vjepa2_cooldown_continues_its_pretraining_run(pretrain, cooldown, px):
    """The second phase starts from the first's run directory with the same networks, at 64 frames (and 384 px
    for ViT-g), its learning rate falling linearly from the first phase's constant rate to 1e-6."""
    from openjepa.engine.schedules import lr_at

    a, b = load_config(pretrain), load_config(cooldown)
    assert b.model.pretrained == a.run_dir and b.run_dir != a.run_dir
    same = ("encoder", "patch_size", "tubelet_size", "encoder_kwargs", "predictor_embed_dim", "predictor_depth",
            "predictor_heads")
    assert all(getattr(a.model, k) == getattr(b.model, k) for k in same)
    assert (a.data.frames_per_clip, b.data.frames_per_clip, b.model.img_size) == (16, 64, px)
    assert b.data.train_transforms[0]["size"] == px and b.mask.groups == a.mask.groups
    o, n = b.optim, b.train.steps
    lr = [lr_at(s, n, lr=o.lr, start_lr=o.start_lr, final_lr=o.final_lr, warmup=o.warmup_steps,
                schedule=o.schedule, decay_fraction=o.decay_fraction) for s in (0, n // 2, n)]
    assert lr == pytest.approx([a.optim.lr, (a.optim.lr + 1e-6) / 2, 1e-6])
