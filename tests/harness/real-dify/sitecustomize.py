# Loaded at start-up by every Python process the real-Dify harness (tests/harness/real-dify.ts) starts: it
# puts this folder on PYTHONPATH. When REAL_DIFY_NETWORK_GUARD=1 it installs an audit hook (PEP 578) that
# refuses, before any packet leaves, every Python-level network operation aimed anywhere but loopback:
# connect/sendto to a non-loopback address and name lookups of anything but loopback names. Each refusal is
# written to stderr and appended to REAL_DIFY_GUARD_LOG, so a test can see what Dify tried to reach.
#
# Audit hooks see the C socket layer, so this also covers gevent's sockets, httpx, requests and redis-py.
# It does not see C libraries doing their own networking (libpq: we give it 127.0.0.1 only).
import os
import sys

if os.environ.get("REAL_DIFY_NETWORK_GUARD") == "1":
    import errno
    import ipaddress
    import socket as _socket_module

    _LOG = os.environ.get("REAL_DIFY_GUARD_LOG", "")
    _LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}

    def _is_loopback_host(host):
        if host is None:
            return True
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        host = str(host).strip("[]").split("%")[0]
        if host == "" or host.lower() in _LOOPBACK_NAMES:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if address.is_loopback or address.is_unspecified:
            return True
        mapped = getattr(address, "ipv4_mapped", None)
        return bool(mapped and mapped.is_loopback)

    def _refuse(what):
        line = f"real-dify network guard: refused {what} (pid {os.getpid()})"
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except Exception:
            pass
        if _LOG:
            try:
                with open(_LOG, "a", encoding="utf-8") as log:
                    log.write(line + "\n")
            except Exception:
                pass

    def _guard(event, args):
        if not event.startswith("socket."):
            return
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock, address = args[0], args[1]
            if address is None or getattr(sock, "family", None) not in (_socket_module.AF_INET, _socket_module.AF_INET6):
                return
            host = address[0] if isinstance(address, tuple) and address else address
            if not _is_loopback_host(host):
                _refuse(f"{event[7:]} to {address!r}")
                raise PermissionError(errno.EACCES, f"network access to {address!r} refused by the real-Dify harness")
        elif event == "socket.getaddrinfo":
            host = args[0]
            if not _is_loopback_host(host):
                _refuse(f"name lookup of {host!r}")
                raise _socket_module.gaierror(_socket_module.EAI_NONAME, f"lookup of {host!r} refused by the real-Dify harness")
        elif event in ("socket.gethostbyname", "socket.gethostbyname_ex"):
            host = args[0]
            if not _is_loopback_host(host):
                _refuse(f"name lookup of {host!r}")
                raise _socket_module.gaierror(_socket_module.EAI_NONAME, f"lookup of {host!r} refused by the real-Dify harness")

    sys.addaudithook(_guard)
