"""Checks the loading paths that need a GPU, through modelhub's own worker pipeline.

Run on a machine with an NVIDIA GPU (the CPU-only test suite cannot cover these):

    python scripts/gpu_check.py [--out DIR]

For each case it runs ``modelhub.loading.worker.run`` exactly as a load worker does (plugins build the
kwargs, from_pretrained, the smoke test) on tiny models built locally, then inspects the loaded model:

- the classic 8-bit config ({"load_in_8bit": true, "device_map": "auto"}): Linear8bitLt layers on cuda;
- 4-bit nf4 with bfloat16 compute: Linear4bit layers on cuda;
- the usual Phi config with a GPU: bfloat16, eager attention, on cuda;
- max_memory {"0": "15GiB", "cpu": "30GiB"}: the JSON string key "0" becomes GPU 0 and is kept;
- device_map across GPU and CPU, from a max_memory budget and from an explicit map: hf_device_map
  holds both the GPU and "cpu", and generation still works.

Prints one line per case and writes gpu_check.json (to --out, default the current directory). Exit 0
when every case passes.
"""

import argparse
import json
import sys
import tempfile
import traceback
from pathlib import Path

# For tests.tiny_models; appended, so that an installed modelhub (with its plugins) comes first.
sys.path.append(str(Path(__file__).resolve().parent.parent))


class Recorder:
    """Stands in for the worker's stdout channel: keeps the messages."""

    def __init__(self):
        self.messages = []

    def send(self, event, **fields):
        self.messages.append({"event": event, **fields})


def layer_types(model) -> set[str]:
    return {type(module).__name__ for module in model.modules()}


def placements(model) -> set[str]:
    """Where accelerate put the modules (transformers sets no hf_device_map when all sit on one device)."""
    return {str(v) for v in (getattr(model, "hf_device_map", None) or {}).values()}


def devices(model) -> set[str]:
    return {str(p.device) for p in model.parameters()}


def build_models(root: Path) -> dict:
    from tests.tiny_models import build_all

    built = build_all(root)
    # A bigger one, so that a small GPU budget splits it between the GPU and the CPU.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    config = LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=512, num_hidden_layers=8,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=1, eos_token_id=2, pad_token_id=3)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "llama-medium")
    AutoTokenizer.from_pretrained(built["llama"]).save_pretrained(root / "llama-medium")
    built["llama-medium"] = root / "llama-medium"
    return built


EXPLICIT_MAP = {"model.embed_tokens": 0, "model.rotary_emb": 0, "model.layers.0": 0, "model.layers.1": "cpu",
                "model.norm": "cpu", "lm_head": "cpu"}

CASES = [
    ("8-bit (load_in_8bit, the legacy key)", "llama", {"load_in_8bit": True, "device_map": "auto"},
     lambda m: "Linear8bitLt" in layer_types(m) and any(d.startswith("cuda") for d in devices(m))),
    ("4-bit nf4", "llama", {"quantization_config": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                                    "bnb_4bit_compute_dtype": "bfloat16"}, "device_map": "auto"},
     lambda m: "Linear4bit" in layer_types(m) and any(d.startswith("cuda") for d in devices(m))),
    ("default Phi config on GPU", "phi", {"torch_dtype": "bfloat16", "attn_implementation": "eager", "device_map": "auto",
                                    "low_cpu_mem_usage": True},
     lambda m: str(m.dtype) == "torch.bfloat16" and m.config._attn_implementation == "eager"
     and devices(m) == {"cuda:0"}),
    ("max_memory string GPU key", "llama", {"device_map": "auto", "max_memory": {"0": "15GiB", "cpu": "30GiB"}},
     lambda m: devices(m) == {"cuda:0"}),
    # About 23 MB of weights: a 12 MiB GPU budget takes some layers, the rest goes to the CPU.
    ("GPU+CPU from max_memory", "llama-medium", {"device_map": "auto", "max_memory": {"0": "12MiB", "cpu": "10GiB"}},
     lambda m: placements(m) >= {"0", "cpu"}),
    ("GPU+CPU explicit map", "llama", {"device_map": EXPLICIT_MAP}, lambda m: placements(m) == {"0", "cpu"}),
]


def run_case(label, directory, config, check) -> dict:
    from modelhub.loading import worker

    recorder = Recorder()
    request = {"model_name": f"gpu-check/{label}", "hf_path": "gpu-check/tiny", "cache_path": str(directory),
               "load_config": config, "settings": {"offload_dir": tempfile.mkdtemp()}}
    result = {"case": label, "load_config": config}
    try:
        loaded = worker.run(request, recorder)
        final = recorder.messages[-1]
        result.update(final_kwargs=final.get("final_kwargs"), plugin_changes=final.get("plugin_changes"))
        if loaded is None:
            result.update(passed=False, error=final.get("error_message"), explanation=final.get("explanation"))
            return result
        model = loaded.model
        result.update(smoke_test=final.get("smoke_test"), devices=sorted(devices(model)),
                      hf_device_map={k: str(v) for k, v in (getattr(model, "hf_device_map", None) or {}).items()},
                      dtype=str(model.dtype), attention=model.config._attn_implementation,
                      layers=sorted(t for t in layer_types(model) if "Linear" in t))
        result["passed"] = bool(check(model))
        del loaded, model
    except Exception as error:  # noqa: BLE001 - a case's crash is its failure, the others still run
        result.update(passed=False, error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
    finally:
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="where to write gpu_check.json")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU here: this script checks the GPU-only paths.")
        return 2
    with tempfile.TemporaryDirectory() as root:
        models = build_models(Path(root))
        results = [run_case(label, models[kind], config, check) for label, kind, config, check in CASES]
    report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "transformers": __import__("transformers").__version__, "results": results}
    Path(args.out, "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"GPU: {report['gpu']}, torch {report['torch']}, transformers {report['transformers']}")
    for result in results:
        detail = result.get("error") or f"devices={result.get('devices')} map={result.get('hf_device_map')} " \
                                         f"layers={result.get('layers')} out={result.get('smoke_test', {}).get('output')!r}"
        print(f"{'PASS' if result['passed'] else 'FAIL'}  {result['case']}: {detail}")
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
