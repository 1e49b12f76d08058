"""The screen's HTTP(S) server: uvicorn on a thread of its own, beside the agent's capture and recognition."""

from __future__ import annotations

import logging
import socket
import threading

from edge_agent.config import ScreenConfig, is_loopback
from edge_agent.errors import EdgeAgentError
from edge_agent.screen.app import ScreenContext, screen_app

log = logging.getLogger(__name__)


def listening_socket(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise EdgeAgentError(f"screen.listen {listen}: cannot listen there: {exc.strerror or exc}") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


class ScreenServer:
    """Serves the officer's screen until stopped. The socket is bound at construction, so a port in use is one
    clear message at start-up, and `url` is known at once (port 0 picks a free one)."""

    def __init__(self, ctx: ScreenContext, out=print):
        import uvicorn

        screen: ScreenConfig = ctx.config.screen
        ctx.secure = screen.tls_cert is not None
        self.socket = listening_socket(screen.listen)
        host, port = self.socket.getsockname()[:2]
        scheme = "https" if ctx.secure else "http"
        self.url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
        if not ctx.secure and not is_loopback(host):
            out(f"WARNING: the screen is served over plain HTTP on {self.url} (screen.insecure): logins and plates "
                "cross the car's network unencrypted")
        config = uvicorn.Config(screen_app(ctx), log_level="warning", access_log=False, lifespan="on",
                                ssl_certfile=str(screen.tls_cert) if screen.tls_cert else None,
                                ssl_keyfile=str(screen.tls_key) if screen.tls_key else None,
                                timeout_graceful_shutdown=1, server_header=False)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> "ScreenServer":
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True,
                                       name="screen")
        self.thread.start()
        waited = 0.0
        while not self.server.started and self.thread.is_alive() and waited < timeout_s:
            threading.Event().wait(0.02)
            waited += 0.02
        if not self.server.started:
            raise EdgeAgentError(f"the screen did not start on {self.url}")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.socket.close()
