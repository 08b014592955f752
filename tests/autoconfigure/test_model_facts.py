"""What the search knows before a try: for a GGUF copy (its path is the file), what its header says, as the
worker reads it, so the plugins' proposals can take it into account (no bitsandbytes on a GGUF file)."""

from modelhub.autoconfigure.model_facts import model_info
from modelhub.models import ModelRegistry


def test_a_gguf_copy_is_known_by_its_header(gguf_model_files):
    path = gguf_model_files.files["Q8_0"]
    info = model_info(ModelRegistry(model_name="tiny/qwen2", hf_path="tiny/qwen2", cache_path=str(path)))
    assert (info.location, info.files) == (str(path.parent), [path.name])
    assert (info.gguf["architecture"], info.gguf["quantization"], info.model_type) == ("qwen2", "Q8_0", "qwen2")
    assert info.gguf["unsupported"] is None


def test_a_folder_copy_is_known_by_its_config(gguf_model_files):
    source = gguf_model_files.source
    info = model_info(ModelRegistry(model_name="tiny/qwen2", hf_path="tiny/qwen2", cache_path=str(source)))
    assert info.gguf is None and info.model_type == "qwen2" and "config.json" in info.files


def test_a_damaged_gguf_file_leaves_the_try_to_say_so(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
    info = model_info(ModelRegistry(model_name="tiny/qwen2", hf_path="tiny/qwen2", cache_path=str(path)))
    assert info.gguf is None and info.location == str(path)
