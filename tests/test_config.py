import pytest

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
    with pytest.raises(ConfigError, match="did you mean 'vit_small'"):
        load_config(None, ["model.encoder=vit_smal"])


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


@pytest.mark.parametrize("name", available_configs())
def test_shipped_configs_resolve(name):
    cfg = load_config(name)
    assert "model:" in to_yaml(cfg)


def test_shipped_configs_present():
    assert {"quickstart", "ijepa/fashion_mnist", "ijepa/vit_h14_in1k"} <= set(available_configs())


def test_paper_recipe():
    cfg = load_config("ijepa/vit_h14_in1k")
    assert (cfg.model.encoder, cfg.model.patch_size, cfg.data.batch_size, cfg.train.epochs) == ("vit_huge", 14, 2048, 300)
    assert (cfg.optim.lr, cfg.optim.start_lr, cfg.optim.final_lr, cfg.optim.warmup_epochs) == (1e-3, 2e-4, 1e-6, 40)
    assert (cfg.optim.weight_decay, cfg.optim.final_weight_decay, cfg.optim.ema) == (0.04, 0.4, [0.996, 1.0])
    assert (cfg.model.predictor_depth, cfg.model.predictor_embed_dim) == (12, 384)
    from openjepa.engine.trainer import plan_steps

    plan = plan_steps(cfg, 1_281_167)  # ImageNet-1k train images
    assert plan.steps_per_epoch == 625 and plan.total == 300 * 625 and plan.warmup == 40 * 625
