"""``${prefect:NAME}`` in a spec: the value of the Prefect ``Secret`` block NAME.

Read once, when the job loads its spec, from the Prefect API this process is configured with
(``PREFECT_API_URL``). Prefect is imported only when a spec names a block: a spec of
``${NAME}`` alone loads without it, server or not. The value becomes one of the spec's secrets
(redacted wherever it could appear); a block that is missing, not a Secret, or unreadable is a
``SpecError`` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from service import Spec, SpecError, UnsetAsPlaceholders, load_spec


def prefect_secret(name: str) -> str:
    """The text of the Prefect ``Secret`` block ``name``."""
    from prefect.blocks.system import Secret
    from prefect.exceptions import PrefectException

    try:
        # _sync: a sync read even when a flow's event loop runs in this thread (async_dispatch).
        block: Any = Secret.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError:
        raise SpecError(f"no Prefect Secret block named {name!r}") from None
    except (PrefectException, OSError) as exc:
        raise SpecError(f"cannot read Prefect Secret block {name!r}: {type(exc).__name__}") from None
    value = block.get()
    if not isinstance(value, str):
        raise SpecError(f"Prefect Secret block {name!r} holds {type(value).__name__}, not text")
    return value


def load_spec_with_blocks(
    path: str | os.PathLike[str], environ: Mapping[str, str], *, placeholders: bool = False
) -> Spec:
    """The spec at ``path``, its ``${NAME}`` from ``environ`` and its ``${prefect:NAME}`` from
    Prefect's Secret blocks; with ``placeholders``, a block is not read but stands for a value
    (a spec checked where its secrets are not: ``enrich validate``, ``enrich submit``)."""
    resolver = _placeholder if placeholders else prefect_secret
    return load_spec(path, environ=environ, resolve_secret=resolver)


def _placeholder(name: str) -> str:
    return UnsetAsPlaceholders.PLACEHOLDER
