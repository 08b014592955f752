"""Keeps load configs written for older transformers working on transformers 5.

Saved configs (and the examples users copy from older guides) use keys transformers 5 removed or ignores:
``load_in_8bit``/``load_in_4bit`` and the ``bnb_4bit_*``/``llm_int8_threshold`` options now fail with
"unexpected keyword argument" and belong inside ``quantization_config``; ``torch_dtype`` is deprecated in
favour of ``dtype``; ``low_cpu_mem_usage`` is accepted and silently ignored. This plugin runs first
(``tryfirst``) and rewrites them into today's form, noting each translation, so the plugins after it
(bitsandbytes, device_map ...) only ever see the modern keys.
"""

from marshmallow import fields, validate

from modelhub import hookimpl
from modelhub.fields import StrictBoolean, StrictFloat

# Moved into quantization_config under the same name (BitsAndBytesConfig keeps these argument names).
QUANTIZATION_KEYS = ("load_in_8bit", "load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_compute_dtype",
                     "bnb_4bit_use_double_quant", "llm_int8_threshold")
DTYPES = ("float32", "float16", "bfloat16", "auto")


@hookimpl
def load_config_fields():
    deprecated = "Deprecated: translated by the legacy_keys plugin."
    return {
        "torch_dtype": fields.String(validate=validate.OneOf(DTYPES), metadata={"description": f"{deprecated} Use dtype."}),
        "low_cpu_mem_usage": StrictBoolean(metadata={"description": f"{deprecated} transformers 5 ignores it."}),
        "load_in_8bit": StrictBoolean(metadata={"description": f"{deprecated} Use quantization_config."}),
        "load_in_4bit": StrictBoolean(metadata={"description": f"{deprecated} Use quantization_config."}),
        "bnb_4bit_quant_type": fields.String(validate=validate.OneOf(("nf4", "fp4"))),
        "bnb_4bit_compute_dtype": fields.String(validate=validate.OneOf(("float32", "float16", "bfloat16"))),
        "bnb_4bit_use_double_quant": StrictBoolean(),
        "llm_int8_threshold": StrictFloat(validate=validate.Range(min=0, min_inclusive=False)),
    }


@hookimpl(tryfirst=True)
def adjust_load_kwargs(kwargs):
    notes = []
    if "torch_dtype" in kwargs:
        torch_dtype = kwargs.pop("torch_dtype")
        if "dtype" in kwargs:
            notes.append(f"torch_dtype={torch_dtype!r} ignored: dtype={kwargs['dtype']!r} is also set and wins "
                         "(torch_dtype is the deprecated name of dtype).")
        else:
            kwargs["dtype"] = torch_dtype
            notes.append(f"torch_dtype={torch_dtype!r} renamed to dtype (transformers 5 deprecates torch_dtype).")
    if "low_cpu_mem_usage" in kwargs:
        kwargs.pop("low_cpu_mem_usage")
        notes.append("low_cpu_mem_usage dropped: transformers 5 always loads with low memory use and ignores it.")
    notes.extend(_move_quantization_keys(kwargs))
    return notes


def _move_quantization_keys(kwargs):
    legacy = {key: kwargs.pop(key) for key in QUANTIZATION_KEYS if key in kwargs}
    if not legacy:
        return []
    notes = []
    for flag in ("load_in_8bit", "load_in_4bit"):
        if legacy.get(flag) is False:  # false is the default: nothing to carry over
            del legacy[flag]
            notes.append(f"{flag}=false dropped (it is the default).")
    if not legacy:
        return notes
    existing = kwargs.get("quantization_config")
    if existing is not None and not isinstance(existing, dict):
        # Someone (a plugin) already built a config object; keep it, the old keys cannot be merged in.
        return notes + [f"{', '.join(sorted(legacy))} ignored: quantization_config is already set to {type(existing).__name__}."]
    merged = dict(existing or {})
    for key, value in legacy.items():
        if key in merged and merged[key] != value:
            notes.append(f"{key}={value!r} ignored: quantization_config sets {key}={merged[key]!r} and wins.")
            continue
        merged[key] = value
    kwargs["quantization_config"] = merged
    moved = ", ".join(f"{key}={value!r}" for key, value in legacy.items())
    notes.append(f"{moved} moved into quantization_config: transformers 5 removed these from_pretrained arguments.")
    return notes
