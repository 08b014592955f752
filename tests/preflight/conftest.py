"""Models on disk for preflight's tests: the tiny models, a sharded copy of the Llama, and rows for them."""

import json

import pytest

from modelhub.extensions import db
from modelhub.models import ModelRegistry


@pytest.fixture(scope="session")
def sharded_llama(tiny_models, tmp_path_factory):
    """The tiny Llama saved in several shards, with model.safetensors.index.json."""
    from transformers import AutoModelForCausalLM

    directory = tmp_path_factory.mktemp("sharded") / "llama"
    AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).save_pretrained(directory, max_shard_size="300KB")
    return directory


@pytest.fixture
def register(app):
    """``register(name, directory, load_config=None)``: a registry row whose files are ``directory``."""

    def add(name, directory, load_config=None):
        with app.app_context():
            row = ModelRegistry(model_name=name, hf_path=name, cache_location="custom",
                                cache_path=str(directory) if directory else None,
                                load_config=json.dumps(load_config) if load_config is not None else None)
            db.session.add(row)
            db.session.commit()
            return row.id

    return add


def host(ram=16 * 2**30, limit=None, gpus=(), packages=None, **extra):
    """Host facts as preflight reads them, chosen by the test (no psutil, no database)."""
    return {"ram_available_bytes": ram, "ram_total_bytes": 2 * ram, "memory_limit_bytes": limit,
            "gpus": list(gpus), "gpus_known": True, "packages": dict(packages or {}), "baseline_rss_bytes": None,
            "recent_attempts": [], "offload_dir": None, "source": "test", **extra}
