"""rocm_eager_attention: Phi-family models get eager attention on ROCm/WSL; everything else keeps the default."""

import pytest
from marshmallow import ValidationError

from modelhub.plugins.rocm_eager_attention import FUSED_ATTENTION_FAILS
from tests.plugins.support import load, model_info, notes_of


def test_field_refuses_unknown_implementations(host):
    with pytest.raises(ValidationError) as refused:
        host.fields["attn_implementation"].deserialize("flash_attention_3")
    assert "Must be one of: eager, sdpa, flash_attention_2, flex_attention." in str(refused.value)
    assert host.fields["attn_implementation"].deserialize("eager") == "eager"


@pytest.mark.parametrize("platform", [{"rocm": "6.4.1", "wsl": False}, {"rocm": None, "wsl": True}])
def test_phi_on_rocm_or_wsl_loads_with_eager_attention(host, tiny_models, environment, platform):
    loaded, kwargs, changes = load(host, model_info(tiny_models["phi"]), {}, {**environment, **platform})
    assert kwargs["attn_implementation"] == "eager"
    assert loaded.model.config._attn_implementation == "eager"
    assert "phi models crash or produce NaNs with fused (SDPA) attention on" in notes_of(changes, "rocm_eager_attention")


def test_other_architectures_keep_sdpa(host, tiny_models, rocm_environment):
    loaded, kwargs, changes = load(host, model_info(tiny_models["llama"]), {}, rocm_environment)
    assert "attn_implementation" not in kwargs
    assert loaded.model.config._attn_implementation == "sdpa"


def test_phi_elsewhere_keeps_sdpa(host, tiny_models, environment):
    plain = {**environment, "rocm": None, "wsl": False}
    loaded, kwargs, _ = load(host, model_info(tiny_models["phi"]), {}, plain)
    assert loaded.model.config._attn_implementation == "sdpa"


def test_the_users_choice_is_kept(host, tiny_models, rocm_environment):
    loaded, kwargs, changes = load(host, model_info(tiny_models["phi"]), {"attn_implementation": "sdpa"}, rocm_environment)
    assert loaded.model.config._attn_implementation == "sdpa"
    assert "attn_implementation='sdpa' from the load config kept" in notes_of(changes, "rocm_eager_attention")
    assert "on ROCm under WSL" in notes_of(changes, "rocm_eager_attention")


def test_more_architectures_from_the_environment(host, tiny_models, rocm_environment, monkeypatch):
    monkeypatch.setenv("MODELHUB_EAGER_ARCHITECTURES", " gpt2 , llama")
    loaded, _, _ = load(host, model_info(tiny_models["llama"]), {}, rocm_environment)
    assert loaded.model.config._attn_implementation == "eager"
    assert "llama" not in FUSED_ATTENTION_FAILS  # the built-in list is not changed
