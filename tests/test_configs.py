"""Named recipes ship in the package; `islr train` without --config trains `default`."""

import dataclasses

import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
from typer.testing import CliRunner

from islr.cli import build_app
from islr.errors import ConfigError
from islr.training.config import CONFIG_DIR, config_names, load_config, resolve_config


def test_shipped_configs_are_in_the_package():
    assert {"default", "seed"} <= set(config_names())
    assert CONFIG_DIR.parent.name == "islr" and (CONFIG_DIR / "default.yaml").is_file()
    for name in config_names():
        load_config(name)  # every shipped recipe is valid


def test_no_config_is_the_default_recipe():
    assert load_config(None) == load_config("default")
    assert load_config(None) == load_config(CONFIG_DIR / "default.yaml")
    # ... and not the dataclass defaults, which a YAML file only starts from
    from islr.training import TrainConfig

    assert load_config(None) != TrainConfig()
    assert dataclasses.asdict(load_config("seed"))["model"]["name"] == "seed_transformer"


def test_resolve_config_errors(tmp_path):
    assert resolve_config("seed") == CONFIG_DIR / "seed.yaml"
    own = tmp_path / "seed"  # an existing path wins over a shipped name
    own.write_text("seed: 3\n")
    assert resolve_config(own) == own
    with pytest.raises(ConfigError, match="shipped: default, seed"):
        resolve_config("nonesuch")


def test_train_help_lists_the_shipped_configs():
    result = CliRunner().invoke(build_app(), ["train", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "default | seed" in result.output


def test_a_recipe_brings_its_stream_settings_to_the_export() -> None:
    """The default recipe carries its calibrated unknown-sign threshold into its models."""
    from islr.modelfile import recipe_stream

    cfg = load_config(None)
    assert 0.5 <= cfg.stream["threshold"] < 1.0

    class Spec:  # what recipe_stream reads of a checkpoint's ModelSpec
        extra = {"train_config": cfg.to_dict()}

    assert recipe_stream(Spec()).threshold == cfg.stream["threshold"]
    with pytest.raises(ConfigError, match="config.stream"):
        load_config(None, ["stream.threshold=2"])


def test_the_augment_fallback_is_the_default_recipes_per_clip_augmentation():
    """A sign added to a model whose file carries no recipe is augmented with AugmentConfig()'s
    defaults: they must be the default recipe's (mixup and stream segments are not per clip)."""
    from islr.features.augment import augmentation_steps
    from islr.features.config import AugmentConfig

    recipe = load_config("default").augment
    assert augmentation_steps(recipe) == augmentation_steps(AugmentConfig())
    assert AugmentConfig.from_dict(dataclasses.asdict(recipe)) == recipe
