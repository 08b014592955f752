"""gptq: a GPTQ checkpoint is refused up front, with the install command, when its packages are missing."""

import importlib.util
import sys

import pytest

from modelhub.loading.types import LoadRefused
from tests.plugins.support import adjust, copy_model, edit_config, model_info, notes_of

GPTQ_CONFIG = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}


@pytest.fixture
def gptq_model(tiny_models, tmp_path):
    """The tiny Llama's files with a GPTQ config.json (the weights are not really quantized: enough to be refused)."""
    directory = copy_model(tiny_models["llama"], tmp_path / "gptq")
    edit_config(directory, quantization_config=GPTQ_CONFIG)
    return model_info(directory, name="tiny-gptq")


@pytest.fixture
def fake_gptq_packages(tmp_path, monkeypatch):
    """Importable optimum and gptqmodel stand-ins, to reach the path where the packages are present."""
    for name in ("optimum", "gptqmodel"):
        (tmp_path / "site" / name).mkdir(parents=True)
        (tmp_path / "site" / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def test_missing_packages_are_refused_with_the_install_command(host, gptq_model, environment, monkeypatch):
    for name in ("optimum", "gptqmodel"):  # missing, as on a machine without the gptq extra (find_spec answers None)
        monkeypatch.setitem(sys.modules, name, None)
    assert gptq_model.quantization_method == "gptq"
    with pytest.raises(LoadRefused) as refused:
        adjust(host, gptq_model, {}, environment)
    message = str(refused.value)
    assert "tiny-gptq is a GPTQ checkpoint; loading it needs optimum and gptqmodel" in message
    assert "optimum and gptqmodel are not installed" in message
    assert "pip install 'modelhub[gptq]'" in message and "auto-gptq does not work with transformers 5" in message
    assert (refused.value.kind, refused.value.package) == ("missing_package", "optimum")  # auto-configure's kind


def test_present_packages_let_the_load_go_on(host, gptq_model, environment, fake_gptq_packages):
    kwargs, changes = adjust(host, gptq_model, {}, environment)
    assert "GPTQ checkpoint (4-bit): loaded through optimum" in notes_of(changes, "gptq")


def test_bitsandbytes_on_a_gptq_checkpoint_is_refused(host, gptq_model, environment, fake_gptq_packages):
    with pytest.raises(LoadRefused) as refused:
        adjust(host, gptq_model, {"load_in_8bit": True}, environment)
    assert "already GPTQ-quantized" in str(refused.value)
    assert refused.value.suggestion["load_in_8bit"] is None


def test_other_models_are_left_alone(host, tiny_models, environment):
    _, changes = adjust(host, model_info(tiny_models["llama"]), {}, environment)
    assert notes_of(changes, "gptq") == ""


def test_transformers_gptq_error_is_explained(host, gptq_model, environment):
    # transformers' own words when optimum is missing (quantizers/quantizer_gptq.py); the test extra installs
    # optimum, so the error is raised here as transformers raises it rather than provoked
    error = ImportError("Loading a GPTQ quantized model requires optimum (`pip install optimum`)")
    source = importlib.util.find_spec("transformers.quantizers.quantizer_gptq").origin
    assert str(error) in open(source, encoding="utf-8").read()  # still what transformers says
    explanation = host.hook.explain_failure(model=gptq_model, error=error, load_config={}, kwargs={},
                                            environment=environment)
    assert "transformers 5 needs optimum and gptqmodel (not auto-gptq)" in explanation.cause
    assert "modelhub[gptq]" in explanation.cause


def test_gpu_required_message_is_explained_for_gptq_only(host, gptq_model, tiny_models, environment):
    # transformers says this when optimum is installed but gptqmodel (its CPU path) is not.
    error = RuntimeError("GPU is required to quantize or run quantize model.")
    explanation = host.hook.explain_failure(model=gptq_model, error=error, load_config={}, kwargs={}, environment=environment)
    assert "gptqmodel" in explanation.cause
    assert host.hook.explain_failure(model=model_info(tiny_models["llama"]), error=error, load_config={}, kwargs={},
                                     environment=environment) is None


@pytest.mark.parametrize("text, package", [
    # transformers 5.24's own words (quantizers/quantizer_awq.py, validate_environment)
    ("Loading an AWQ quantized model requires gptqmodel. Please install it with `pip install gptqmodel`", "gptqmodel"),
    ("Loading an AWQ quantized model requires accelerate (`pip install accelerate`)", "accelerate"),
])
def test_transformers_awq_errors_are_explained_with_what_to_install(host, tiny_models, tmp_path, environment, text,
                                                                     package):
    directory = copy_model(tiny_models["llama"], tmp_path / "awq")
    edit_config(directory, quantization_config={"quant_method": "awq", "bits": 4, "group_size": 128,
                                                "version": "gemm", "zero_point": True})
    explanation = host.hook.explain_failure(model=model_info(directory, name="tiny-awq"), error=ImportError(text),
                                            load_config={}, kwargs={}, environment=environment)
    assert "Loading this AWQ checkpoint failed" in explanation.cause
    assert "transformers 5 needs gptqmodel and accelerate (not autoawq)" in explanation.cause
    assert (explanation.kind, explanation.package) == ("missing_package", package)
    install = "pip install 'modelhub[gptq]'" if package == "gptqmodel" else "pip install accelerate==1.15.0"
    assert install in explanation.cause
