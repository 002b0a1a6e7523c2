"""The ``enrich-inbox`` flow: enrich every file dropped in an inbox folder, then file it away.

Each input becomes an ``enrich-file`` subflow run writing ``OUTBOX/<full name>.enriched.<format>``
(``a.csv`` -> ``a.csv.enriched.parquet``: ``a.csv`` and ``a.ndjson`` never share an output). The
input moves to ``INBOX/done/`` when its job finished; to ``INBOX/failed/`` when it did not, with
the reason beside it (``failed/<name>.reason.txt``) and its job's state cleared, so dropping the
file again starts it afresh (answers already received come from the response cache). A file is
picked up once and nothing is lost. Hidden files (``.name``) are left alone: write a file under a
hidden or foreign name and rename it into place, so a sweep never reads it half-written. A sweep
stopped midway (serve shut down) leaves its input in the inbox and its checkpoint next to the
output: the next sweep resumes it. INBOX and OUTBOX may be prefixes in a bucket
(``s3://bucket/inbox/``): the objects directly under it are swept alike (``service.storage.folders``).
"""

from __future__ import annotations

import anyio.to_thread
from prefect import flow, get_run_logger

from flows.enrich_file import enrich_file
from flows.parameters import EnrichFileOptions
from service import (
    FORMATS,
    TableLocation,
    discard_state,
    files_in,
    folder_location,
    inside,
    make_folder,
    move_into,
    write_text,
)


def _file_failed(path: TableLocation, inbox: TableLocation, output: TableLocation, reason: str) -> None:
    """Move ``path`` to ``failed/`` with its reason beside it; clear its job's state."""
    failed = inside(inbox, "failed/")
    moved = move_into(path, failed)
    write_text(inside(failed, moved.name + ".reason.txt"), reason + "\n")
    discard_state(output)


def _new_inputs(inbox: TableLocation, outbox: TableLocation) -> list[TableLocation]:
    make_folder(outbox)
    return [p for p in files_in(inbox) if p.suffix.lower() in FORMATS and not p.name.startswith(".")]


def output_for(path: TableLocation, outbox: TableLocation, output_format: str) -> TableLocation:
    """Where the inbox file ``path`` is enriched to: its whole name kept, so no two collide."""
    return inside(outbox, f"{path.name}.enriched.{output_format}")


@flow(name="enrich-inbox")
async def enrich_inbox(
    inbox: str, outbox: str, spec: str, output_format: str = "parquet", cache_dir: str | None = None
) -> dict[str, str]:
    """Enrich each new file of INBOX (a folder, or a prefix: s3://bucket/inbox/) with SPEC into
    OUTBOX (with the response cache at ``cache_dir``, if any); returns {file name: "done" |
    "failed"}."""
    logger = get_run_logger()
    inbox_at, outbox_at = folder_location(inbox, "inbox "), folder_location(outbox, "outbox ")
    # A file dropped again under the same name is a new version: its output is replaced.
    options = EnrichFileOptions(cache_dir=cache_dir, overwrite=True)
    results: dict[str, str] = {}
    for path in await anyio.to_thread.run_sync(_new_inputs, inbox_at, outbox_at):
        output = output_for(path, outbox_at, output_format)
        state = await enrich_file(
            input=str(path), spec=spec, output=str(output), options=options, return_state=True
        )
        if state.is_completed():
            await anyio.to_thread.run_sync(move_into, path, inside(inbox_at, "done/"))
            results[path.name] = "done"
            logger.info("%s enriched into %s", path.name, output)
        else:
            reason = str(state.message)
            await anyio.to_thread.run_sync(_file_failed, path, inbox_at, output, reason)
            results[path.name] = "failed"
            logger.error("%s failed: %s", path.name, reason)
    return results
