"""What a load_config will do to a load, as preflight sees it before anything loads: a plain record the
plugins fill in through the ``plan_load`` hook (modelhub/hookspecs.py). No torch here.

Each built-in plugin sets the fields of the keys it owns (``default_loader``: the dtype; ``bitsandbytes``:
8/4-bit; ``device_map``: devices, budgets, disk offload; ``gptq``: a GPTQ checkpoint's bits and packages).
A third-party plugin does the same for its own keys, and may add a memory term of its own
(``extra_terms``: an adapter, a draft model) that preflight shows beside the others.
"""

from dataclasses import dataclass, field

# Bytes per element of the dtypes a load can ask for (and safetensors' names for them).
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "float8_e4m3fn": 1, "float8_e5m2": 1,
               "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "bool": 1}
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                      "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
                      "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


@dataclass
class LoadPlan:
    """How the model will sit in memory. Plugins change it in place from ``plan_load``.

    Devices are named ``cpu``, ``gpu0``, ``gpu1``..., ``disk``. ``budgets`` holds the per-device limits
    the load_config sets (max_memory, in bytes); a device without one may use what the host has free.
    """

    dtype: str | None = None  # dtype of the unquantized weights in memory; None: the checkpoint's own
    checkpoint_dtype: str | None = None  # what the weight files store (set by preflight, for reference)
    quantization: str | None = None  # "bnb_8bit", "bnb_4bit", "gptq", "awq", or a plugin's own name
    weight_bits: float | None = None  # bits per quantized weight element (8, 4, 3, ...)
    quantize_on_load: bool = False  # True: quantized while loading (bitsandbytes); False: pre-quantized files
    quantization_overhead: dict = field(default_factory=dict)  # {"double_quant": bool, "blocksize": 64, ...}
    keep_unquantized: list[str] = field(default_factory=lambda: ["lm_head"])  # module names never quantized
    device: str = "cpu"  # where the whole model goes when it is not spread
    spread: bool = False  # device_map auto/balanced/sequential: accelerate spreads it over the devices
    budgets: dict[str, int] = field(default_factory=dict)  # {"gpu0": bytes, "cpu": bytes}: max_memory
    offload_to_disk: bool = False  # weights past the budgets may go to disk (an offload folder is set)
    offload_folder: str | None = None
    attn_implementation: str | None = None  # None: transformers' default (sdpa)
    packages: dict[str, str] = field(default_factory=dict)  # {package: why it is needed}
    instead: dict[str, dict] = field(default_factory=dict)  # {package: load_config changes that do without it}
    problems: list[dict] = field(default_factory=list)  # {"kind": "capability"|..., "message", "package"}
    extra_terms: list[dict] = field(default_factory=list)  # {"device", "name", "bytes", "detail"}
    notes: list[str] = field(default_factory=list)

    def need(self, package: str, why: str, instead: dict | None = None) -> None:
        """Record that the load imports ``package`` (preflight checks it is installed here); ``instead``:
        the load_config changes that do without it (``None`` values remove keys), offered when it is missing."""
        self.packages.setdefault(package, why)
        if instead is not None:
            self.instead.setdefault(package, instead)

    @property
    def kind(self) -> str:
        """The kind of load, for calibration: loads of one kind err by about the same ratio."""
        base = self.quantization or self.dtype or self.checkpoint_dtype or "unknown"
        placement = "spread" if self.spread else self.device
        return f"{base}/{placement}"

    def as_dict(self) -> dict:
        return {"dtype": self.dtype, "checkpoint_dtype": self.checkpoint_dtype, "quantization": self.quantization,
                "weight_bits": self.weight_bits, "device": self.device, "spread": self.spread,
                "budgets": dict(self.budgets), "offload_to_disk": self.offload_to_disk,
                "attn_implementation": self.attn_implementation, "packages": dict(self.packages),
                "kind": self.kind, "notes": list(self.notes)}
