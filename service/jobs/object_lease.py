"""One job per OUT in object storage, across machines: a lease object (``OUT.enrich/lock``).

A bucket has no ``flock``: the lock is an object put only if there is none (a conditional put,
decided by the store: S3, GCS, Azure and moto all honour it), naming its holder (host, PID) and
renewed every ``RENEW_EVERY_S`` by a conditional put on its own ETag. Another job takes it over
only from a holder that is gone: on the same host, a PID no longer running (a killed job's rerun
resumes at once); anywhere, a lease not renewed for ``LEASE_S`` (hosts' clocks are taken to agree
within seconds, as NTP keeps them). A holder that finds its lease taken (it stalled past
``LEASE_S``) stops at its next record rather than race the other.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from service.errors import InputError
from service.storage import objects
from service.storage.locations import ObjectLocation

LEASE_S = 60.0
RENEW_EVERY_S = 15.0


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease, and when they last said so (seconds since the epoch)."""

    host: str
    pid: int
    token: str
    renewed_at: float

    def encoded(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decoded(cls, data: bytes) -> LeaseHolder | None:
        """The holder ``data`` names; None for anything else (a torn or foreign object)."""
        try:
            fields = json.loads(data)
            return cls(
                str(fields["host"]), int(fields["pid"]), str(fields["token"]), float(fields["renewed_at"])
            )
        except (ValueError, TypeError, KeyError):
            return None


def holder_is_gone(holder: LeaseHolder | None, now: float, host: str, running: Callable[[int], bool]) -> bool:
    """Whether a lease may be taken over: nobody readable holds it, its holder has not renewed it
    for ``LEASE_S`` (a holder renews every ``RENEW_EVERY_S``: it is gone, or stalled; on this
    host, its PID may be another process's by now), or its holder on this host is no longer
    running."""
    if holder is None or now - holder.renewed_at > LEASE_S:
        return True
    return holder.host == host and not running(holder.pid)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


class ObjectLease:
    """The lease on ``location``, taken by ``acquire`` and renewed in a thread until ``release``."""

    def __init__(
        self, location: ObjectLocation, output: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.location = location
        self.output = output
        self._clock = clock
        self._me = LeaseHolder(socket.gethostname(), os.getpid(), uuid.uuid4().hex, 0.0)
        self._e_tag: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False

    def acquire(self) -> None:
        """Take the lease (over from a holder that is gone); ``InputError`` naming the holder when
        another job holds it."""
        self._e_tag = objects.create(self.location, self._stamped())
        if self._e_tag is None:
            found = objects.read_versioned(self.location)
            if found is None:  # released between the two requests
                self._e_tag = objects.create(self.location, self._stamped())
            else:
                holder = LeaseHolder.decoded(found[0])
                if holder_is_gone(holder, self._clock(), self._me.host, _running):
                    self._e_tag = objects.replace_if_unchanged(self.location, self._stamped(), found[1])
        if self._e_tag is None:
            raise self._held_elsewhere()
        self._renewer = threading.Thread(target=self._keep_renewing, name="enrich-lease", daemon=True)
        self._renewer.start()

    def renew(self) -> None:
        """Say again that this job holds the lease; ``lost`` when another took it meanwhile."""
        if self._e_tag is None or self.lost:
            return
        self._e_tag = objects.replace_if_unchanged(self.location, self._stamped(), self._e_tag)
        self.lost = self._e_tag is None

    def check_held(self) -> None:
        """``InputError`` once the lease was taken over (this job stalled past ``LEASE_S``)."""
        if self.lost:
            raise InputError(
                f"another enrich job took over {self.output} (this one did not renew its lease "
                f"{self.location} for {LEASE_S:g} s): stopped rather than write it twice"
            )

    def release(self) -> None:
        """Stop renewing and delete the lease, if it is still this job's."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
            self._renewer = None
        if self._e_tag is not None and not self.lost:
            found = objects.read_versioned(self.location)
            if found is not None and found[1] == self._e_tag:
                objects.delete([self.location])
        self._e_tag = None

    def _stamped(self) -> bytes:
        return LeaseHolder(self._me.host, self._me.pid, self._me.token, self._clock()).encoded()

    def _keep_renewing(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S) and not self.lost:
            try:
                self.renew()
            except OSError:  # a blip: the next renewal tries again, well within the lease
                continue

    def _held_elsewhere(self) -> InputError:
        found = objects.read_versioned(self.location)
        holder = LeaseHolder.decoded(found[0]) if found is not None else None
        who = f"pid {holder.pid} on {holder.host}" if holder is not None else "unknown"
        return InputError(
            f"another enrich job ({who}) is writing {self.output} (its lease: {self.location}); wait "
            f"for it to finish, or stop it (a lease not renewed for {LEASE_S:g} s is taken over)"
        )
