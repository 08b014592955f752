"""Pre-quantized checkpoints, built here from a small Llama made locally, each folder as its tool writes it:

- ``gptq``: quantized by gptqmodel (GPTQ, 4-bit, group size 32) on the CPU and saved by it;
- ``awq``: quantized by gptqmodel with AWQ (4-bit GEMM layout, zero points, float16 scales) and written as
  AutoAWQ writes it: config.json's ``quantization_config`` holds AutoAWQ's keys only, no quantize_config.json;
- ``bnb-8bit`` / ``bnb-4bit``: quantized by bitsandbytes while loading (on the CPU) and saved by
  ``save_pretrained`` (int8 weights with their SCB scales; packed nf4 weights with absmax and quant_state).

The tiny models of tests/tiny_models.py are too narrow for GPTQ's groups (hidden size 64): this Llama has
hidden size 128 and 256 MLP units, so every Linear's inputs split into groups of 32.

Everything runs in one child process (``python -m tests.quantized_models SOURCE OUT``): importing gptqmodel
sets process-wide environment variables and thread pools, and it writes a ``logs/`` folder into the current
directory; none of that may leak into the test process. On 2 cores gptqmodel's default thread pool refuses to
start ("Virtual pool 'model_loader:cpu' requests 2 workers but parent 'cpu' only has 1"), hence
GPTQMODEL_CPU_WORKERS. The first run on a machine also compiles gptqmodel's CPU packing extension (~20 s).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

KINDS = ("gptq", "awq", "bnb-8bit", "bnb-4bit")
GROUP_SIZE = 32
# What AutoAWQ writes into config.json (its quant_config): the fields transformers' AwqConfig reads.
AUTOAWQ_CONFIG = {"bits": 4, "group_size": GROUP_SIZE, "modules_to_not_convert": None, "quant_method": "awq",
                  "version": "gemm", "zero_point": True}
CALIBRATION = [
    "The quick brown fox jumps over the lazy dog.",
    "modelhub loads causal language models on awkward hardware.",
    "ROCm under WSL, small GPUs, several disks.",
    "Every load is recorded with its settings.",
] * 4


def build_all(root: Path, tokenizer_source: Path) -> dict[str, Path]:
    """The source Llama and every quantized checkpoint under ``root``: ``{"source": dir, kind: dir}``."""
    built = {"source": build_source(root / "source", tokenizer_source)}
    environment = {**os.environ, "GPTQMODEL_CPU_WORKERS": os.environ.get("GPTQMODEL_CPU_WORKERS", "2"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                                os.environ.get("PYTHONPATH")]))}
    work = root / "work"  # gptqmodel's logs/ land here
    work.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "tests.quantized_models", str(built["source"]), str(root)],
                            cwd=work, env=environment, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"quantizing failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return {**built, **{kind: root / kind for kind in KINDS}}


def build_source(directory: Path, tokenizer_source: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from tests.tiny_models import VOCAB_SIZE

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, max_position_embeddings=256, vocab_size=VOCAB_SIZE,
                         bos_token_id=1, eos_token_id=2, pad_token_id=3)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(directory)
    return directory


def quantize_with_gptqmodel(source: Path, directory: Path, method: str) -> None:
    import torch
    from gptqmodel import GPTQModel, QuantizeConfig
    from gptqmodel.quantization import FORMAT, METHOD
    from gptqmodel.utils.backend import BACKEND

    if method == "awq":
        # AWQ's usual export: GEMM layout with zero points (asymmetric). gptqmodel's AWQ_GEMM packer needs
        # CUDA ("AWQ: CUDA is not available"); its torch packer writes the same layout on the CPU.
        config = QuantizeConfig(bits=4, group_size=GROUP_SIZE, sym=False, quant_method=METHOD.AWQ, format=FORMAT.GEMM)
        backend = BACKEND.AWQ_TORCH
    else:
        config, backend = QuantizeConfig(bits=4, group_size=GROUP_SIZE, sym=True), BACKEND.AUTO
    model = GPTQModel.load(str(source), config, device="cpu", dtype=torch.float16)  # AutoAWQ's scales are fp16
    model.quantize(CALIBRATION, batch_size=4, backend=backend)
    model.save(str(directory))
    if method == "awq":
        _as_autoawq_writes_it(directory)


def _as_autoawq_writes_it(directory: Path) -> None:
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config["quantization_config"] = AUTOAWQ_CONFIG
    config_path.write_text(json.dumps(config, indent=2))
    for extra in ("quantize_config.json", "quant_log.csv"):  # gptqmodel's own files; AutoAWQ writes neither
        (directory / extra).unlink(missing_ok=True)


def quantize_with_bitsandbytes(source: Path, directory: Path, bits: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    options = ({"load_in_8bit": True} if bits == 8 else
               {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": torch.float32})
    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=BitsAndBytesConfig(**options),
                                                 device_map="cpu")
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(source).save_pretrained(directory)


def main(source: Path, root: Path) -> None:
    quantize_with_gptqmodel(source, root / "gptq", "gptq")
    quantize_with_gptqmodel(source, root / "awq", "awq")
    quantize_with_bitsandbytes(source, root / "bnb-8bit", 8)
    quantize_with_bitsandbytes(source, root / "bnb-4bit", 4)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
