"""A loopback TCP proxy whose open connections a test can cut, to make the browser's
EventSource lose its stream mid-reply (fault injection: the network drops, the gateway stays up).
Cookies are scoped by host, not port, so a page opened through the proxy keeps its session."""
from __future__ import annotations

import socket
import threading


class DroppableProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self._target = (host, target_port)
        self._listener = socket.create_server((host, 0))
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.drops = 0
        threading.Thread(target=self._accept, name="droppable-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def drop_all(self) -> int:
        """Closes every connection open now; new ones are accepted as before."""
        with self._lock:
            victims = list(self._connections)
            self._connections.clear()
        for sock in victims:
            _close(sock)
        self.drops += 1
        return len(victims)

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        self.drop_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with self._lock:
                    self._connections.discard(sock)
                _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
