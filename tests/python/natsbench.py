"""Round trips through a real nats-server over its text protocol, to set a
forwarded call's cost against (test_cluster_forward's measure).

    nats_echo_p50(port, n[, host])     one connection publishing to itself:
                               client -> server -> client
    nats_request_p50(port, n[, host])  a request another process answers:
                               client -> server -> responder -> server ->
                               client, the 2 hops of a forwarded call
"""

import socket
import statistics
import subprocess
import sys
import time

CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'

RESPONDER = r"""
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
f.readline()
s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB echo.req 1\r\nPING\r\n')
while True:
    line = f.readline()
    if not line:
        break
    if line.startswith(b"PING"):
        s.sendall(b"PONG\r\n")
    elif line.startswith(b"PONG"):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    elif line.startswith(b"MSG"):
        reply = line.split()[3]
        f.readline()
        s.sendall(b"PUB " + reply + b" 2\r\nok\r\n")
"""


def p50(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _connect(port, subject, host):
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    f.readline()    # INFO
    s.sendall(CONNECT + b"SUB %s 1\r\nPING\r\n" % subject)
    while not f.readline().startswith(b"PONG"):
        pass
    return s, f


def _one(s, f, pub):
    s.sendall(pub)
    while True:
        line = f.readline()
        if line.startswith(b"MSG"):
            f.readline()
            return
        if line.startswith(b"PING"):
            s.sendall(b"PONG\r\n")


def nats_echo_p50(port, n, host="127.0.0.1"):
    s, f = _connect(port, b"echo", host)
    try:
        return p50(lambda: _one(s, f, b"PUB echo 2\r\nhi\r\n"), n)
    finally:
        s.close()


def nats_request_p50(port, n, host="127.0.0.1"):
    resp = subprocess.Popen([sys.executable, "-c", RESPONDER, str(port), host],
                            stdout=subprocess.PIPE)
    try:
        assert resp.stdout.readline() == b"ready\n"
        s, f = _connect(port, b"echo.rep", host)
        try:
            return p50(lambda: _one(s, f, b"PUB echo.req echo.rep 2\r\nhi\r\n"), n)
        finally:
            s.close()
    finally:
        resp.kill()
        resp.wait(10)
        resp.stdout.close()
