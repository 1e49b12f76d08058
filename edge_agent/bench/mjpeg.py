"""An IP camera's MJPEG stream over HTTP on a fixed local port, which a test or a soak run can unplug
(every open stream ends and the port refuses) and plug back."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time

import cv2
import numpy as np


class MjpegCamera:
    def __init__(self, port: int, frames: list[np.ndarray], fps: float = 10.0):
        self.port, self.fps = port, fps
        self.jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames]
        self.on = threading.Event()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while camera.on.is_set():
                        jpeg = camera.jpegs[i % len(camera.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        i += 1
                        time.sleep(1 / camera.fps)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.on.set()
        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="mjpeg-camera").start()

    def stop(self) -> None:
        self.on.clear()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
