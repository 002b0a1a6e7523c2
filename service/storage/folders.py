"""A folder of tables, wherever it is: a local directory, or a prefix in a bucket (the inbox).

Moving an object is a copy then a delete (a store has no rename): a reader sees it in both places
for a moment, never in neither.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from service.storage import objects
from service.storage.locations import ObjectLocation, TableLocation, table_location


def folder_location(text: str | Path, what: str = "") -> TableLocation:
    """``text`` as a folder: a path, or a prefix (its key ending with ``/``)."""
    folder = table_location(text, what)
    if isinstance(folder, ObjectLocation) and folder.key and not folder.key.endswith("/"):
        return folder.with_key(folder.key + "/")
    return folder


def inside(folder: TableLocation, name: str) -> TableLocation:
    """The file or object ``name`` in ``folder``."""
    if isinstance(folder, ObjectLocation):
        return folder.with_key(folder.key + name)
    return folder / name


def make_folder(folder: TableLocation) -> None:
    """Create a local folder (and its parents) if missing; a prefix exists by its objects."""
    if isinstance(folder, Path):
        folder.mkdir(parents=True, exist_ok=True)


def files_in(folder: TableLocation) -> list[TableLocation]:
    """The files directly in ``folder``, sorted by name (a local folder is created if missing)."""
    if isinstance(folder, ObjectLocation):
        return [o for o in objects.listing(folder) if "/" not in o.key[len(folder.key) :]]
    make_folder(folder)
    return sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.name)


def move_into(item: TableLocation, folder: TableLocation) -> TableLocation:
    """Move ``item`` into ``folder`` (created if local), keeping its name; where it is now."""
    target = inside(folder, item.name)
    if isinstance(item, ObjectLocation) and isinstance(target, ObjectLocation):
        objects.rename(item, target)
        return target
    if isinstance(item, Path) and isinstance(target, Path):
        target.parent.mkdir(exist_ok=True)
        shutil.move(str(item), str(target))
        return target
    raise ValueError(f"cannot move {item} into {folder}: one is local, the other in a bucket")


def write_text(item: TableLocation, text: str) -> None:
    """``text`` as the file or object ``item``."""
    if isinstance(item, ObjectLocation):
        objects.put(item, text.encode())
    else:
        item.write_text(text)
