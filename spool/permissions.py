"""Sharing one spool between users: a group, setgid folders and group-writable files.

A producer (an API container, a cron job) and the daemons usually run as different users.
The rule that makes that work needs no configuration in the producer:

- A spool is *shared* when its root folder has the setgid bit. Every folder created below a
  setgid folder inherits its group and the bit (the kernel does this), so all of the spool
  belongs to one group.
- Every wt process that works on a shared spool clears the group bits of its umask, so what it
  creates is group-writable: the daemon's job folders (a producer writes `cancel` there and
  `wt clean` removes them), and the producer's drops (the daemon moves them, and a second
  daemon user may too).
- `wt daemon --group G` makes a spool shared: it gives the spool's own folders to group G and
  sets their setgid bit and group write permission.
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

from whisper_cli.errors import WtError
from whisper_cli.output.writers import current_umask


class SharingError(WtError):
    kind = "spool_permissions"


def is_shared(root: Path) -> bool:
    try:
        return bool(root.stat().st_mode & stat.S_ISGID)
    except OSError:
        return False


def share_with_group() -> None:
    """Make what this process creates from now on group-writable (the umask's world bits stay)."""
    os.umask(current_umask() & 0o707)


_adopted: set[Path] = set()


def adopt(root: Path) -> bool:
    """Follow the spool's sharing rule: on a shared spool, create group-writable files.
    Once per shared spool and process: every Spool.check() asks."""
    if root in _adopted:
        return True
    if is_shared(root):
        share_with_group()
        _adopted.add(root)
        return True
    return False


def group_id(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise SharingError(
            f"--group {group}: no such group on this host",
            "give a group name from /etc/group or a numeric gid",
        ) from None


def make_shared(folders: list[Path], group: str) -> None:
    """Give the spool's own folders to `group`, with setgid and group write (rwxrwsr-x)."""
    gid = group_id(group)
    for folder in folders:
        st = folder.stat()
        wanted = stat.S_IMODE(st.st_mode) | stat.S_ISGID | 0o070
        try:
            if st.st_gid != gid:
                os.chown(folder, -1, gid)
            if stat.S_IMODE(st.st_mode) != wanted:
                os.chmod(folder, wanted)
        except PermissionError:
            raise SharingError(
                f"{folder}: cannot give it to group {group} (owned by uid {st.st_uid}; "
                "only the owner or root may)",
                f"run once as root: chgrp -R {group} {folders[0]} && "
                f"find {folders[0]} -type d -exec chmod g+rwxs {{}} +",
            ) from None
