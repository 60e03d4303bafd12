"""A scripted stand-in for bioxen-manager, for client-only unit tests.

Listens on a Unix socket, answers ``hello`` itself and hands every other
request to ``handler(fake, msg)``, which returns a reply dict, or None to
answer later with ``fake.send(...)``.  Used by test_connection.py.
"""

import json
import os
import socket
import tempfile
import threading


class FakeManager:
    def __init__(self, handler):
        self.handler = handler
        self.dir = tempfile.mkdtemp(prefix="bioxen-fake-")
        self.path = os.path.join(self.dir, "m.sock")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.conn = None
        self.received = []
        self.connected = threading.Event()
        self.got = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            self.conn, _ = self.srv.accept()
        except OSError:
            return
        self.connected.set()
        f = self.conn.makefile("rb")
        for line in f:
            msg = json.loads(line)
            with self.got:
                self.received.append(msg)
                self.got.notify_all()
            if msg.get("op") == "hello":
                self.send({"id": msg["id"], "result": {"server": "fake", "version": 1,
                                                       "frame_max": 1 << 20}})
                continue
            reply = self.handler(self, msg)
            if reply is not None:
                self.send(reply)

    def send(self, obj):
        self.conn.sendall(json.dumps(obj).encode() + b"\n")

    def wait_for(self, pred, timeout=5.0):
        with self.got:
            assert self.got.wait_for(lambda: any(pred(m) for m in self.received), timeout)
            return next(m for m in self.received if pred(m))

    def drop(self):
        self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()

    def close(self):
        self.srv.close()
        if self.conn:
            try:
                self.conn.close()
            except OSError:
                pass
        os.unlink(self.path)
        os.rmdir(self.dir)
