"""Tiny real models, built locally (the hub is unreachable): a Llama, a Phi and a GPT-2, each with
random weights saved by save_pretrained (safetensors) and a BPE tokenizer trained here on a little text.
Building all three takes a few seconds; tests build them once per session (see the ``tiny_models``
fixture) and copy one when they need to break it."""

from pathlib import Path

TEXT = (
    "The quick brown fox jumps over the lazy dog. modelhub loads causal language models on awkward "
    "hardware: ROCm under WSL, small GPUs, several disks. Every load is recorded with its settings. "
) * 40
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
VOCAB_SIZE = 1000


def build_tokenizer(directory: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([TEXT], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(directory)
    return fast


def _configs():
    from transformers import GPT2Config, LlamaConfig, PhiConfig

    common = {"vocab_size": VOCAB_SIZE, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3}
    return {
        "llama": LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=4, max_position_embeddings=256, **common),
        "phi": PhiConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=256, **common),
        "gpt2": GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=256, **common),
    }


def build_all(root: Path) -> dict[str, Path]:
    """Build every tiny model under ``root``; returns ``{kind: directory}``."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    tokenizer_dir = root / "_tokenizer"
    tokenizer = build_tokenizer(tokenizer_dir)
    built = {}
    for kind, config in _configs().items():
        directory = root / kind
        model = AutoModelForCausalLM.from_config(config)
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        built[kind] = directory
    return built


# Checkpoints a verdict must see through, each built from scratch (or from a tiny model) into ``directory``
# with the tokenizer of ``tokenizer_source`` (any built model's directory).

def build_tied_llama(directory: Path, tokenizer_source: Path) -> Path:
    """A Llama whose LM head is tied to its embeddings: the checkpoint has no lm_head.weight, and must load."""
    from transformers import AutoModelForCausalLM

    config = _configs()["llama"]
    config.tie_word_embeddings = True
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    return _with_tokenizer(directory, tokenizer_source)


def build_headless_bert(directory: Path, tokenizer_source: Path) -> Path:
    """A BERT saved as BertModel, as sentence-embedding models are: no language-model head at all."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=3)
    BertModel(config).save_pretrained(directory)
    return _with_tokenizer(directory, tokenizer_source)


def build_mismatched_llama(directory: Path, llama: Path, extra_rows: int = 24) -> Path:
    """A copy of the tiny Llama whose saved lm_head has ``extra_rows`` more rows than its config's vocab."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(llama, directory)
    weights = load_file(directory / "model.safetensors")
    head = weights["lm_head.weight"]
    weights["lm_head.weight"] = torch.cat([head, head[:extra_rows]]).contiguous()
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    return directory


def build_t5(directory: Path, tokenizer_source: Path) -> Path:
    """An encoder-decoder (T5): a text model AutoModelForCausalLM cannot load."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=VOCAB_SIZE, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                      decoder_start_token_id=3, pad_token_id=3, eos_token_id=2)
    T5ForConditionalGeneration(config).save_pretrained(directory)
    return _with_tokenizer(directory, tokenizer_source)


def _with_tokenizer(directory: Path, tokenizer_source: Path) -> Path:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(directory)
    return directory
