import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
import torch  # noqa: E402

from islr.errors import UnknownModelError
from islr.features import FeatureConfig
from islr.models import (
    ModelConfig,
    SignClassifier,
    count_parameters,
    create_model,
    model_names,
    registered_model,
)


@pytest.mark.parametrize("name", model_names())
def test_every_model_forward_backward_gradients_and_no_nan(name):
    torch.manual_seed(0)
    model = SignClassifier(
        ModelConfig(name, registered_model(name).test_kwargs),
        FeatureConfig(seq_len=12),
        "hands_pose75",
        3,
        5,
    )
    x = torch.rand(3, 12, 75, 3)
    x[0, :, 33:54] = float("nan")  # a missing hand
    x[1, 4:6] = float("nan")  # missing frames
    logits = model(x)
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()
    logits.sum().backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in params if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    not_finite = [n for n, p in params if not torch.isfinite(p.grad).all()]
    assert not not_finite, f"NaN/Inf gradients: {not_finite}"


@pytest.mark.parametrize("name", model_names())
def test_every_model_gets_seq_len_only_if_it_takes_it(name):
    entry = registered_model(name)
    model = create_model(name, n_features=8, n_classes=3, seq_len=10, **entry.test_kwargs)
    assert model(torch.rand(2, 10, 8)).shape == (2, 3)
    assert set(entry.test_kwargs) <= set(entry.default_kwargs)


@pytest.mark.parametrize("name", model_names())
def test_every_model_gives_its_logits_and_a_unit_embedding(name):
    torch.manual_seed(0)
    model = SignClassifier(
        ModelConfig(name, registered_model(name).test_kwargs),
        FeatureConfig(seq_len=12),
        "hands_pose75",
        2,
        5,
    ).eval()
    x = torch.rand(4, 12, 75, 2)
    x[0, :, 33:54] = float("nan")
    with torch.no_grad():
        logits, embedding = model.logits_and_embedding(x)
        torch.testing.assert_close(logits, model(x))
        torch.testing.assert_close(embedding, model.embed(x))
    assert embedding.shape[0] == 4 and torch.isfinite(embedding).all()
    torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(4))


def test_ensemble_embedding_is_unit_and_its_dot_is_the_members_mean_cosine():
    from islr.models import SignEnsemble

    torch.manual_seed(0)
    config = ModelConfig("conv_transformer", registered_model("conv_transformer").test_kwargs)
    members = [SignClassifier(config, FeatureConfig(seq_len=12), "hands_pose75", 2, 5).eval()
               for _ in range(2)]  # fmt: skip
    ensemble = SignEnsemble(members).eval()
    x = torch.rand(3, 12, 75, 2)
    with torch.no_grad():
        logits, e = ensemble.logits_and_embedding(x)
        torch.testing.assert_close(logits, ensemble(x))
        torch.testing.assert_close(e.norm(dim=-1), torch.ones(3))
        cosines = [(m.embed(x[:1]) * m.embed(x[1:2])).sum() for m in members]
        torch.testing.assert_close((e[0] * e[1]).sum(), sum(cosines) / 2)


def test_registry_finds_every_module_without_an_import_list():
    import pkgutil

    import islr.models

    modules = {m.name for m in pkgutil.iter_modules(islr.models.__path__)}
    assert {"conv_transformer", "seed_transformer"} <= modules
    assert {"conv_transformer", "seed_transformer"} <= set(model_names())
    assert registered_model("seed_transformer").uses_seq_len  # learned positions
    assert not registered_model("conv_transformer").uses_seq_len


def test_seed_transformer_matches_seed_size():
    from islr.training import load_config

    seed_features = load_config("seed").features.for_layout("holistic136")
    model = SignClassifier(ModelConfig("seed_transformer"), seed_features, "holistic136", 3, 123)
    assert model.preprocess.n_features == 408
    assert 7.2e6 < count_parameters(model) < 7.5e6  # the seed reports 7.35M


def test_unknown_model_is_clear():
    with pytest.raises(UnknownModelError, match="unknown model"):
        create_model("nope", 10, 2, 8)


def test_checkpoint_roundtrip_same_predictions(tmp_path):
    from islr.errors import ModelError
    from islr.models import ModelSpec, load_classifier, save_checkpoint

    spec = ModelSpec(
        ModelConfig("conv_transformer", registered_model("conv_transformer").test_kwargs),
        FeatureConfig(seq_len=12),
        "hands_pose75",
        3,
        ["a", "b", "c"],
    )
    model = spec.build().eval()
    x = torch.rand(2, 12, 75, 3)
    path = save_checkpoint(tmp_path / "best.pt", spec, model.state_dict(), epoch=3)
    again, spec2 = load_classifier(tmp_path)
    torch.testing.assert_close(again(x), model(x))
    assert spec2.labels == ["a", "b", "c"] and spec2.extra["epoch"] == 3
    path.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_classifier(path)
