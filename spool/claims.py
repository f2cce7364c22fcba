"""Claiming a job exactly once, and taking back the claims of dead daemons.

A claim is the file `claim` in the job folder, created with link(2) from a fully written
temp file: atomic, never half-written, and exclusive on local filesystems and on NFS alike
(flock is not: it does not exclude across NFS clients). Taking back a dead daemon's claim
is a rename of that file, which exactly one contender wins.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from spool.heartbeat import daemon_alive
from spool.layout import CLAIM, HOST, Layout, utcnow


@dataclass(frozen=True)
class Claim:
    daemon: str
    host: str
    pid: int
    claimed_at: str

    @classmethod
    def mine(cls, daemon_id: str) -> Claim:
        return cls(daemon_id, HOST, os.getpid(), utcnow())


def try_claim(job_dir: Path, claim: Claim) -> bool:
    tmp = job_dir / f".claim.{secrets.token_hex(6)}.tmp"
    try:
        tmp.write_text(json.dumps(asdict(claim)))
        os.link(tmp, job_dir / CLAIM)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        return False  # the job folder was removed meanwhile
    finally:
        tmp.unlink(missing_ok=True)


def read_claim(job_dir: Path) -> Claim | None:
    try:
        return Claim(**json.loads((job_dir / CLAIM).read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        return Claim("?", "?", 0, "")  # foreign content: treated as a dead owner's


def release(job_dir: Path) -> None:
    (job_dir / CLAIM).unlink(missing_ok=True)


def take_back_if_dead(layout: Layout, job_dir: Path, stale_seconds: float) -> Claim | None:
    """If the job's claim belongs to a dead daemon, remove it and return it (we won the race)."""
    claim = read_claim(job_dir)
    if claim is None or daemon_alive(layout, claim.daemon, stale_seconds):
        return None
    grave = job_dir / f".claim.dead.{secrets.token_hex(6)}"
    try:
        os.rename(job_dir / CLAIM, grave)
    except FileNotFoundError:
        return None  # another daemon took it back first
    if read_claim_file(grave) != claim:
        # Between our read and our rename another daemon took the dead claim back and the
        # job was claimed afresh: that live claim goes back where it was.
        try:
            os.link(grave, job_dir / CLAIM)
        finally:
            grave.unlink(missing_ok=True)
        return None
    grave.unlink(missing_ok=True)
    return claim


def read_claim_file(path: Path) -> Claim | None:
    try:
        return Claim(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
