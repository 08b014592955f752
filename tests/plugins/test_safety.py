"""safety: trust_remote_code needs the server's permission; pickle weights need the model's own opt-in."""

import pytest
import torch
from marshmallow import ValidationError

from modelhub.loading.types import LoadRefused
from modelhub.plugins.safety import REMOTE_CODE_REFUSED
from tests.plugins.support import adjust, apply_suggestion, copy_model, load, model_info, notes_of


@pytest.fixture
def pickle_model(tiny_models, tmp_path):
    """The tiny Llama with only pytorch_model.bin weights; save_pretrained(safe_serialization=False) writes
    safetensors anyway on transformers 5, so the state dict is pickled by hand."""
    from transformers import AutoModelForCausalLM

    directory = copy_model(tiny_models["llama"], tmp_path / "pickled")
    (directory / "model.safetensors").unlink()
    torch.save(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).state_dict(), directory / "pytorch_model.bin")
    return directory


def test_trust_remote_code_is_refused_when_saved(host):
    with pytest.raises(ValidationError) as refused:
        host.fields["trust_remote_code"].deserialize(True)
    assert refused.value.messages == [REMOTE_CODE_REFUSED]
    assert "start the server with --allow-remote-code (MODELHUB_ALLOW_REMOTE_CODE=1)" in REMOTE_CODE_REFUSED
    assert host.fields["trust_remote_code"].deserialize(False) is False


def test_trust_remote_code_is_accepted_when_the_server_allows_it(host, monkeypatch):
    monkeypatch.setenv("MODELHUB_ALLOW_REMOTE_CODE", "1")
    assert host.fields["trust_remote_code"].deserialize(True) is True
    with pytest.raises(ValidationError):
        host.fields["trust_remote_code"].deserialize("true")


def test_trust_remote_code_is_refused_when_loading(host, tiny_models, environment):
    # A config saved while the server allowed it, loaded by a server that does not.
    with pytest.raises(LoadRefused) as refused:
        adjust(host, model_info(tiny_models["llama"]), {"trust_remote_code": True}, environment)
    assert str(refused.value).startswith("trust_remote_code runs code shipped with the model")
    assert refused.value.kind == "refused"  # auto-configure stops: only the user may allow it


def test_trust_remote_code_loads_when_allowed(host, tiny_models, environment):
    allowed = {**environment, "modelhub": {"allow_remote_code": True}}
    loaded, kwargs, changes = load(host, model_info(tiny_models["llama"]), {"trust_remote_code": True}, allowed)
    assert kwargs["trust_remote_code"] is True and loaded.model is not None
    assert "allowed by the server" in notes_of(changes, "safety")


def test_only_safetensors_by_default(host, tiny_models, environment):
    kwargs, changes = adjust(host, model_info(tiny_models["llama"]), {}, environment)
    assert kwargs == {"use_safetensors": True}
    assert "only safetensors weights are loaded" in notes_of(changes, "safety")


def test_pickle_only_model_is_refused(host, pickle_model, environment):
    with pytest.raises(LoadRefused) as refused:
        adjust(host, model_info(pickle_model, name="pickled"), {}, environment)
    assert str(refused.value) == (
        "pickled ships only pickle .bin weights (pytorch_model.bin), which can run code when loaded; set "
        "\"allow_pickle_weights\": true in its load config to load them anyway.")
    assert refused.value.suggestion == {"allow_pickle_weights": True}
    assert refused.value.kind == "refused"


def test_pickle_only_model_loads_when_allowed(host, pickle_model, tiny_models, environment):
    loaded, kwargs, changes = load(host, model_info(pickle_model), {"allow_pickle_weights": True}, environment)
    assert "allow_pickle_weights" not in kwargs and "use_safetensors" not in kwargs  # not a from_pretrained argument
    reference, _, _ = load(host, model_info(tiny_models["llama"]), {}, environment)
    assert torch.equal(loaded.model.lm_head.weight, reference.model.lm_head.weight)


def test_remote_pickle_only_model_is_explained(host, pickle_model, environment):
    # A hub model: its files are not listed before the load, so transformers refuses instead.
    model = model_info(pickle_model, files=[])
    with pytest.raises(OSError) as raised:
        load(host, model, {}, environment)
    explanation = host.hook.explain_failure(model=model, error=raised.value, load_config={}, kwargs={},
                                            environment=environment)
    assert "only pickle .bin files" in explanation.cause and explanation.kind == "refused"
    loaded, _, _ = load(host, model, apply_suggestion({}, explanation.suggestion), environment)
    assert loaded.model is not None


def test_model_without_weights_is_not_blamed_on_pickle(host, tiny_models, environment, tmp_path):
    directory = copy_model(tiny_models["llama"], tmp_path / "no-weights")
    (directory / "model.safetensors").unlink()
    model = model_info(directory)
    with pytest.raises(OSError) as raised:
        load(host, model, {}, environment)
    explanation = host.hook.explain_failure(model=model, error=raised.value, load_config={}, kwargs={},
                                            environment=environment)
    assert "has no weights file" in explanation.cause and explanation.suggestion is None
