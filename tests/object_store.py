"""Buckets on the tests' S3-compatible server (``service.testing.s3_server``) that the code under
test reaches through the standard AWS environment variables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from service.storage import objects
from service.storage.locations import ObjectLocation
from service.testing.s3_server import create_bucket


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket for one test."""

    endpoint: str
    name: str

    @classmethod
    def create(cls, endpoint: str) -> Bucket:
        name = f"enrich-{uuid.uuid4().hex[:12]}"
        create_bucket(endpoint, name)
        return cls(endpoint, name)

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def location(self, key: str) -> ObjectLocation:
        return ObjectLocation("s3", self.name, key)

    def listed(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under ``prefix``."""
        return [found.key for found in objects.listing(self.location(prefix))]
