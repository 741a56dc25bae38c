"""Loaded by every Python process the tests start (PYTHONPATH): only loopback connections are allowed.

The network is the one thing the tests fake (a hub on 127.0.0.1); anything else failing loudly here means a
code path reached for the real internet.
"""

import ipaddress
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def allowed(family: int, address: object) -> bool:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return True  # Unix sockets, socketpairs
    host = address[0] if isinstance(address, tuple) else address
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return str(host) == "localhost"


def _check(sock: socket.socket, address: object) -> None:
    if not allowed(sock.family, address):
        raise ConnectionRefusedError(f"tests allow only loopback connections, not {address!r}")


def connect(self: socket.socket, address: object) -> None:
    _check(self, address)
    return _connect(self, address)


def connect_ex(self: socket.socket, address: object) -> int:
    _check(self, address)
    return _connect_ex(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
