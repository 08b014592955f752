"""The built-in GGUF loader: a copy whose path is a GGUF file (LM Studio's ``model.Q4_K_M.gguf``, an Ollama
blob ``blobs/sha256-<hex>``, a file in a hub snapshot) loads through transformers'
``from_pretrained(folder, gguf_file=name)``, the model and its tokenizer alike, dequantized.

Before any weight is read, a file transformers cannot load (an architecture it does not read from GGUF, a
tensor type it cannot dequantize) is refused with what it does support (modelhub/gguf_support.py), and
so is a load_config asking for what a GGUF load cannot do (bitsandbytes on top, the gguf package missing).
The attempt's load_report records ``gguf``: the file, its quantization and the dtype it was dequantized to
(float32 unless the load_config names a dtype: transformers' default for GGUF files).
"""

import importlib.util
import os
import tempfile
from contextlib import contextmanager

from modelhub import hookimpl
from modelhub.loading.types import LoadedModel, LoadRefused

# load_config keys that quantize on load: transformers refuses them beside a GGUF file's own quantization
QUANTIZING_KEYS = ("quantization_config", "load_in_8bit", "load_in_4bit")


@hookimpl(tryfirst=True)  # refuse before any other plugin prepares a load that cannot happen
def adjust_load_kwargs(model, load_config, kwargs):
    if not model.gguf:
        return None
    _refuse_what_cannot_load(model.gguf, load_config)
    if importlib.util.find_spec("gguf") is None:
        raise LoadRefused("Reading GGUF files needs the gguf package, which is not installed where modelhub runs: "
                          "pip install gguf==0.19.0 (it comes with modelhub[ml]).", kind="missing_package",
                          package="gguf")
    kwargs["gguf_file"] = os.path.basename(model.gguf["file"])  # recorded as asked; load_model passes it
    return [f"GGUF {model.gguf['quantization']} file: loaded through gguf_file={kwargs['gguf_file']!r}, "
            "dequantized (transformers unpacks every weight into the load's dtype)."]


def _refuse_what_cannot_load(gguf: dict, load_config: dict) -> None:
    """``gguf``: ModelInfo.gguf, whose ``unsupported`` is gguf_support's reason, read off the header."""
    if gguf.get("unsupported"):
        raise LoadRefused(f"The GGUF file {gguf['file']} cannot be loaded: {gguf['unsupported']}.", kind="refused")
    asked = [key for key in QUANTIZING_KEYS if load_config.get(key)]
    if asked:
        raise LoadRefused(f"A GGUF file is already quantized, and transformers dequantizes it while loading; it cannot "
                          f"quantize it again with bitsandbytes ({', '.join(asked)}). Remove "
                          f"{'it' if len(asked) == 1 else 'them'} from the load config, or load a safetensors copy.",
                          suggestion={key: None for key in asked}, kind="refused")


@hookimpl
def load_model(model, kwargs):
    if not model.gguf:
        return None  # not a GGUF copy: another plugin (the default loader) loads it
    from transformers import AutoModelForCausalLM, AutoTokenizer

    call = {key: value for key, value in kwargs.items() if key not in ("gguf_file", "use_safetensors", "revision")}
    with _named_gguf(model.gguf["file"]) as (folder, name):
        loaded, loading_info = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, output_loading_info=True,
                                                                    **call)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    return LoadedModel(model=loaded, tokenizer=tokenizer, loading_info=loading_info, report=_report(model, loaded))


@contextmanager
def _named_gguf(path: str):
    """The file as transformers wants it: a folder and a name ending in .gguf. An Ollama blob has no
    suffix (transformers would then take it for a torch pickle while choosing the dtype), so it is read
    through a link with one, in a folder of the worker's own (the other tool's files are never touched)."""
    if path.endswith(".gguf"):
        yield os.path.dirname(path), os.path.basename(path)
        return
    with tempfile.TemporaryDirectory(prefix="gguf-", dir=os.getcwd()) as folder:
        name = os.path.basename(path) + ".gguf"
        os.symlink(os.path.abspath(path), os.path.join(folder, name))
        yield folder, name


def _report(model, loaded) -> dict:
    """The attempt's load_report facts of a GGUF load: which file, its type, what it was unpacked to. (With
    the ``kernels`` package, transformers' own GGUF loader keeps some layers packed instead: counted apart.)"""
    dtype = str(loaded.dtype).removeprefix("torch.")
    quantization = model.gguf["quantization"]
    packed = len(getattr(getattr(loaded, "hf_quantizer", None), "packed_modules", None) or ())
    summary = f"GGUF {quantization}, dequantized to {dtype}"
    facts = {"file": model.gguf["file"], "quantization": quantization, "dequantized_to": dtype}
    if packed:
        facts["packed_modules"] = packed
        summary += f" but for {packed} layers kept packed"
    return {"gguf": facts, "quantization": {"method": "gguf", "bits": None, "summary": summary}}


@hookimpl
def plan_load(model, load_config, plan):
    """Preflight: the same refusals as the load (bitsandbytes on a GGUF file); the gguf package is needed."""
    if not model.gguf:
        return None
    _refuse_what_cannot_load(model.gguf, load_config)
    plan.need("gguf", "Reading a GGUF file")
    return [f"GGUF {model.gguf['quantization']} file, dequantized while loading: memory counts its parameters at "
            "the load's dtype, not the file's size."]
