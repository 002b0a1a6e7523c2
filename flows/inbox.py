"""The ``enrich-inbox`` flow: enrich every file dropped in an inbox folder, then file it away.

Each input becomes an ``enrich-file`` subflow run writing ``OUTBOX/<name>.<format>``; the input
moves to ``INBOX/done/`` when its job finished, to ``INBOX/failed/`` when it did not (the reason
is logged), so a file is picked up once and nothing is lost. Hidden files (``.name``) are left
alone: write a file under a hidden or foreign name and rename it into place, so a sweep never
reads it half-written. A sweep stopped midway (serve shut down) leaves its input in the inbox and
its checkpoint next to the output: the next sweep resumes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio.to_thread
from prefect import flow, get_run_logger

from flows.enrich_file import enrich_file
from service import FORMATS


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    shutil.move(str(path), str(target))
    return target


def _new_inputs(inbox: Path, outbox: Path) -> list[Path]:
    outbox.mkdir(parents=True, exist_ok=True)
    return sorted(
        p
        for p in inbox.iterdir()
        if p.is_file() and p.suffix.lower() in FORMATS and not p.name.startswith(".")
    )


@flow(name="enrich-inbox")
async def enrich_inbox(inbox: str, outbox: str, spec: str, output_format: str = "parquet") -> dict[str, str]:
    """Enrich each new file of INBOX with SPEC into OUTBOX; returns {file name: "done" | "failed"}."""
    logger = get_run_logger()
    inbox_path, outbox_path = Path(inbox), Path(outbox)
    results: dict[str, str] = {}
    for path in await anyio.to_thread.run_sync(_new_inputs, inbox_path, outbox_path):
        output = outbox_path / f"{path.stem}.{output_format}"
        state = await enrich_file(input=str(path), spec=spec, output=str(output), return_state=True)
        if state.is_completed():
            await anyio.to_thread.run_sync(_move, path, inbox_path / "done")
            results[path.name] = "done"
            logger.info("%s enriched into %s", path.name, output)
        else:
            await anyio.to_thread.run_sync(_move, path, inbox_path / "failed")
            results[path.name] = "failed"
            logger.error("%s failed: %s", path.name, state.message)
    return results
