"""Files appear whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.files import replaced_atomically, write_bytes_atomically


def test_a_file_replaced_atomically_appears_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    """The new content replaces the old; nothing else is left in the folder."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    write_bytes_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """An error while writing: the old file is untouched, the half-written one removed."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def write_half() -> None:
        with replaced_atomically(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("disk hiccup")

    with pytest.raises(RuntimeError):
        write_half()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
