"""Helpers for the built-in plugin tests: model descriptions, the full kwargs pipeline and real loads."""

import json
import shutil
from pathlib import Path

from modelhub.loading.pipeline import build_kwargs
from modelhub.loading.types import ModelInfo
from modelhub.plugin_manager import PluginHost

BUILTIN = {"default_loader", "legacy_keys", "rocm_eager_attention", "bitsandbytes", "device_map", "gptq", "safety"}


def model_info(directory, name: str = "tiny", files: list[str] | None = None) -> ModelInfo:
    """A ModelInfo as the worker builds one for a local directory."""
    directory = Path(directory)
    config_file = directory / "config.json"
    return ModelInfo(
        name=name, hf_path=f"test/{name}", location=str(directory),
        config=json.loads(config_file.read_text()) if config_file.exists() else {},
        files=sorted(p.name for p in directory.iterdir()) if files is None else files,
    )


def host_with(module, name: str) -> PluginHost:
    """A host holding exactly one plugin module (no entry points)."""
    host = PluginHost(allow=set())
    host.register(module, name)
    return host


def adjust(host, model, load_config: dict, environment: dict):
    """The final kwargs and the recorded changes, as the worker computes them."""
    return build_kwargs(host, model, load_config, environment)


def load(host, model, load_config: dict, environment: dict):
    """Run the pipeline and load for real; returns (loaded, kwargs, changes)."""
    kwargs, changes = build_kwargs(host, model, load_config, environment)
    loaded = host.hook.load_model(model=model, kwargs=kwargs, environment=environment)
    return loaded, kwargs, changes


def notes_of(changes: list[dict], plugin: str) -> str:
    return " | ".join(note for change in changes if change["plugin"] == plugin for note in change.get("notes", []))


def generate(loaded, new_tokens: int = 3):
    """Generate a few tokens (inputs stay on the CPU: accelerate's hooks move them where needed)."""
    inputs = loaded.tokenizer("The quick brown fox", return_tensors="pt")
    output = loaded.model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False,
                                   pad_token_id=loaded.tokenizer.pad_token_id)
    return output[0, inputs["input_ids"].shape[1]:]


def layer_classes(model) -> set[str]:
    return {type(module).__name__ for module in model.modules()}


def copy_model(source, destination) -> Path:
    shutil.copytree(source, destination)
    return Path(destination)


def edit_config(directory, **changes) -> None:
    config_file = Path(directory) / "config.json"
    config = json.loads(config_file.read_text())
    config.update(changes)
    config_file.write_text(json.dumps(config))


def apply_suggestion(load_config: dict, suggestion: dict) -> dict:
    """A load_config with an Explanation's suggestion applied (None removes a key)."""
    result = dict(load_config)
    for key, value in suggestion.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result
