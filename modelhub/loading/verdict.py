"""Whether a load really worked, judged in the worker on what transformers reports, not on "it returned".

- ``preflight``: before any weight is read, the config's architecture must be one AutoModelForCausalLM can
  load (or ship its own causal-LM code under trust_remote_code); an encoder-decoder such as T5 fails here,
  in words.
- ``check_weights``: after the load, the checkpoint's weights against the model's (``output_loading_info``).
  A weight the model needs that the checkpoint lacks (an LM head, a layer) was newly initialized with
  random values, so the model's output would be noise: the load fails (``MissingWeights``). A weight
  whose shape differs from the config's was replaced the same way (``MismatchedWeights``). Differences
  transformers itself treats as harmless are not failures: a weight tied to one the checkpoint has (an
  LM head tied to the embeddings), buffers (computed at start-up, e.g. rotary ``inv_freq``).
- ``weight_warnings``: weights the checkpoint has and the model does not use are a warning.
- ``continuation_warnings``: a smoke-test continuation that is one token repeated, or only special
  tokens, is a warning, not a verdict (untrained test models produce it too).

Each failure is a ``LoadRefused`` subclass: the worker reports its class name as the error type and its
message as the cause.
"""

from modelhub.loading.types import LoadRefused, ModelInfo

GROUPS_SHOWN = 4  # key patterns named in a message; the rest are counted
# Files sentence-transformers writes beside a model: their presence says what the checkpoint is for.
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")


class NotACausalLM(LoadRefused):
    """The config's architecture has no causal-LM class that AutoModelForCausalLM can load."""


class MissingWeights(LoadRefused):
    """Weights the model needs are not in the checkpoint; transformers filled them with random values."""


class MismatchedWeights(LoadRefused):
    """Checkpoint weights whose shapes differ from what the config gives the model."""


def preflight(model: ModelInfo, kwargs: dict) -> None:
    """Refuse, before loading, a config whose architecture AutoModelForCausalLM cannot load."""
    model_type = model.model_type
    if not model_type:
        return  # no local config.json (a hub id), or a damaged one: from_pretrained says what is wrong
    auto_map = model.config.get("auto_map") or {}
    if kwargs.get("trust_remote_code") and "AutoModelForCausalLM" in auto_map:
        return  # the checkpoint brings its own causal-LM class
    if _causal_lm_supports(model_type) is not False:
        return
    raise NotACausalLM(
        f"'{model_type}' models are not causal language models that AutoModelForCausalLM can load "
        f"({_what_it_is(model_type, model.config)}); modelhub loads and tests causal (decoder-only) language "
        "models, which generate text by continuing a prompt."
        + (" Its auto_map names no AutoModelForCausalLM class either." if auto_map else "")
    )


def _causal_lm_supports(model_type: str) -> bool | None:
    """True or False; None when transformers does not know the model type at all (from_pretrained then
    explains it as an unknown architecture)."""
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return True
    if model_type not in CONFIG_MAPPING:
        return None
    try:  # classes a plugin registered with AutoModelForCausalLM.register count too
        return CONFIG_MAPPING[model_type] in AutoModelForCausalLM._model_mapping
    except Exception:  # noqa: BLE001 - a private table; the public names above are the rule then
        return False


def _what_it_is(model_type: str, config: dict) -> str:
    from transformers.models.auto import modeling_auto as auto

    kinds = (
        ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "encoder-decoder: it generates from an encoded input, "
                                                         "as AutoModelForSeq2SeqLM loads it"),
        ("MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES", "a speech-to-text model"),
        ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "a vision-language model, as AutoModelForImageTextToText "
                                                       "loads it"),
        ("MODEL_FOR_MASKED_LM_MAPPING_NAMES", "an encoder: it fills in masked words and does not continue text"),
    )
    if config.get("is_encoder_decoder"):
        return kinds[0][1]
    for table, words in kinds:
        if model_type in getattr(auto, table, {}):
            return words
    return "transformers has no causal-LM class for this architecture"


def check_weights(model, loading_info: dict | None, files: list[str]) -> None:
    """Fail a load whose checkpoint lacks weights the model needs or has them in other shapes.
    ``files``: the model directory's file names (they can tell what the checkpoint is for)."""
    if not loading_info:
        return  # the plugin that loaded it reported nothing to judge
    mismatched = sorted(loading_info.get("mismatched_keys") or ())
    if mismatched:
        raise MismatchedWeights(_mismatch_words(mismatched))
    needed = needed_missing(model, loading_info.get("missing_keys") or ())
    if needed:
        raise MissingWeights(_missing_words(model, needed, files))


def weight_warnings(loading_info: dict | None) -> list[str]:
    """What is odd about the checkpoint's weights without making the output noise: weights it holds
    that the model does not use."""
    unexpected = sorted((loading_info or {}).get("unexpected_keys") or ())
    if not unexpected:
        return []
    return [f"The checkpoint holds {_count(unexpected, 'weight')} this model does not use ({_patterns(unexpected)}); "
            "transformers ignored them. Harmless if they belong to another head; otherwise the checkpoint may not "
            "be the architecture its config says."]


def needed_missing(model, missing) -> list[str]:
    """The missing keys that leave random weights behind: not buffers (computed when the model is built),
    not weights tied to one the checkpoint has (they share its values)."""
    tied = getattr(model, "all_tied_weights_keys", None) or {}
    buffers = {name for name, _ in model.named_buffers()}
    missing = set(missing)
    return sorted(key for key in missing
                  if key not in buffers and not (key in tied and tied[key] not in missing))


def _missing_words(model, needed: list[str], files: list[str]) -> str:
    prefix = getattr(model, "base_model_prefix", "") or ""
    head = [key for key in needed if prefix and not key.startswith(prefix + ".")]
    body = [key for key in needed if key not in head]
    parts = []
    if head:
        parts.append(f"this checkpoint has no causal-LM head: {_count(head, 'weight')} newly initialized "
                     f"({_patterns(head)})")
    if body:
        parts.append(f"{'it also lacks' if head else 'this checkpoint lacks'} {_count(body, 'weight')} of the model "
                     f"itself, newly initialized ({_patterns(body)})")
    hint = _what_the_checkpoint_is(model, files) if head else ("the checkpoint is incomplete (a missing shard?) or "
                                                               "was saved for another configuration")
    return (f"{'; '.join(parts)}; {hint}. Newly initialized weights are random, so what the model says would be "
            "noise.")


def _what_the_checkpoint_is(model, files: list[str]) -> str:
    found = [name for name in SENTENCE_TRANSFORMERS_FILES if name in files]
    if found:
        return f"it is a sentence-embedding model (sentence-transformers files: {', '.join(found)})"
    saved_as = list(getattr(model.config, "architectures", None) or [])
    if not saved_as:
        return "it looks like a model saved without its language-model head"
    name = saved_as[0]
    if name.endswith(("ForCausalLM", "LMHeadModel")):
        return f"config.json says {name}, so the head's weights should be there: the checkpoint is incomplete"
    if name.endswith("Model"):
        return (f"it looks like a sentence-embedding model (config.json says {name}: a base model saved without "
                "any head)")
    return f"config.json says {name}: it was saved for another task, not for generating text"


def _mismatch_words(mismatched) -> str:
    shown = [f"{name} (checkpoint {_shape(checkpoint)}, model {_shape(expected)})"
             for name, checkpoint, expected in mismatched[:GROUPS_SHOWN]]
    more = f" and {len(mismatched) - GROUPS_SHOWN} more" if len(mismatched) > GROUPS_SHOWN else ""
    return (f"{_count(mismatched, 'weight')} in the checkpoint {'has' if len(mismatched) == 1 else 'have'} another "
            f"shape than config.json gives the model: {'; '.join(shown)}{more}. transformers would replace "
            f"{'it' if len(mismatched) == 1 else 'them'} with random values; config.json does not describe these "
            "weights (edited, or from another version of the model).")


def _shape(shape) -> str:
    return "×".join(str(size) for size in shape) or "scalar"


def _count(items, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _patterns(keys: list[str]) -> str:
    """Keys grouped for a sentence: "cls.predictions.*", "model.layers.3.*", or the key when alone."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split(".")
        # cut after a layer's index (model.layers.3), else after the first two names (cls.predictions)
        cut = next((i + 1 for i, part in enumerate(parts[:-1]) if part.isdigit()), min(2, len(parts) - 1))
        groups.setdefault(".".join(parts[:cut]), []).append(key)
    named = [members[0] if len(members) == 1 else f"{prefix}.*" for prefix, members in groups.items()]
    more = f" and {len(named) - GROUPS_SHOWN} more groups" if len(named) > GROUPS_SHOWN else ""
    return ", ".join(named[:GROUPS_SHOWN]) + more


def continuation_warnings(smoke: dict, tokenizer) -> list[str]:
    """Warnings for a degenerate smoke-test continuation; never a failure (untrained models say this too)."""
    ids = list(smoke.get("token_ids") or [])
    special = set(getattr(tokenizer, "all_special_ids", None) or ())
    said = "The smoke test's continuation"  # of the fixed prompt, shown beside it
    if not ids:
        return [f"{said} is empty: the model ended its answer at once."]
    if all(token in special for token in ids):
        return [f"{said} is only special tokens (padding, end of text): {_count(ids, 'token')}, no text."]
    if len(ids) > 1 and len(set(ids)) == 1:
        token = tokenizer.decode([ids[0]])
        return [f"{said} repeats one token ({token!r}) for all {len(ids)} new tokens: an untrained or broken model "
                "does this; a trained one rarely does."]
    if not (smoke.get("output") or "").strip():
        return [f"{said} decodes to no visible text ({_count(ids, 'token')})."]
    return []
