"""Loaded by every Python process started with this folder first on PYTHONPATH (tests/test_offline.py).

Records each name lookup or connect to a host other than this machine in ``$NETSPY_LOG``, with the
stack that made it. Records only: what the product does is not changed.
"""

import os
import sys
import traceback

_LOG = os.environ.get("NETSPY_LOG")


def _local(host: object) -> bool:
    h = str(host or "")
    return h in ("", "localhost", "::1") or h.startswith("127.") or h.endswith(".localhost")


def _hook(event: str, args: tuple) -> None:
    if not _LOG or event not in ("socket.getaddrinfo", "socket.connect"):
        return
    if event == "socket.getaddrinfo":
        host = args[0]
    else:
        addr = args[1]
        if not (isinstance(addr, tuple) and addr):
            return  # a unix socket
        host = addr[0]
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if _local(host):
        return
    with open(_LOG, "a") as f:
        f.write(f"{event} {host} (pid {os.getpid()}: {' '.join(sys.argv)[:200]})\n")
        f.write("".join(traceback.format_stack(limit=12)[:-1]) + "\n")


sys.addaudithook(_hook)
