"""``frame.enrich(spec, **options)``: the polars namespace, registered when ``enrich`` is imported.

It needs polars alone to register; the engine loads on its first call (``enrich.api``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

import polars as pl

if TYPE_CHECKING:
    from enrich.api import SessionOptions, SpecSource


@pl.api.register_dataframe_namespace("enrich")
class EnrichNamespace:
    """``frame.enrich(spec, **options)``: the frame enriched (``enrich.enrich(...).frame``)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame

    def __call__(self, spec: SpecSource, **options: Unpack[SessionOptions]) -> pl.DataFrame:
        """The frame with the spec's columns and ``_enrich_*``."""
        from enrich.api import enrich

        return enrich(self._frame, spec, **options).frame
