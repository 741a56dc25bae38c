import socket
import subprocess
import sys

from sitecustomize import allowed


def test_only_loopback_is_allowed() -> None:
    assert allowed(socket.AF_INET, ("127.0.0.1", 80)) and allowed(socket.AF_INET6, ("::1", 80, 0, 0))
    assert not allowed(socket.AF_INET, ("192.0.2.1", 443))  # checked without connecting
    assert allowed(socket.AF_UNIX, "/tmp/x")


def test_child_processes_have_the_guard() -> None:
    code = "import socket; print(socket.socket.connect.__module__)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "sitecustomize"
    )
