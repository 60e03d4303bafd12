"""VMs belong to their creator on a shared manager: the Unix socket's
``uid:N`` identities (issue 11 section 3). As root, a client runs as uid
65534 (a subprocess with ``user=``) against a manager whose socket
``--socket-mode``/``--socket-group`` opened; uid 0, the manager's own, is
the admin.  The TCP side is test_identity.py.
"""

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile

import pytest

from conftest import REPO
from pylua_bioxen_vm import VMManager
from pylua_bioxen_vm.embedded import find_manager
from test_identity import _free_port, _start, _stop

NOBODY = 65534


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")

# Runs as another uid: the steps of argv[2] (a JSON list of [op, fields]) on
# the socket argv[1]; prints the replies as one JSON list, or
# ["connect", errno] when the socket refuses it.
CHILD = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps(["connect", e.errno])); sys.exit(0)
f, out = s.makefile("rb"), []
for i, (op, fields) in enumerate(json.loads(sys.argv[2]), 1):
    s.sendall((json.dumps(dict(fields, id=i, op=op)) + "\n").encode())
    while True:
        r = json.loads(f.readline())
        if r.get("id") == i:
            out.append(r); break
print(json.dumps(out))
"""


def _as_nobody(path, steps, group=NOBODY):
    r = subprocess.run([sys.executable, "-c", CHILD, path, json.dumps(steps)],
                       user=NOBODY, group=group, extra_groups=[], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def open_dir():
    """A directory other uids can pass through (pytest's tmp dirs are 0700)."""
    d = tempfile.mkdtemp(prefix="bx-ident-")
    os.chmod(d, 0o711)
    yield d
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


@needs_root
def test_unix_peers_are_their_uid(open_dir):
    path = os.path.join(open_dir, "m.sock")
    proc = _start(["--socket", path, "--socket-mode", "0666"])
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        with VMManager("unix:" + path) as root:
            assert root.identity == "uid:0" and root.is_admin is True
            mine = root.create_vm("roots")
            mine.set_globals({"g": 1})
            root.create_vm("roots-shared", shared=True)
            hello, secret, missing, listed, shut, usable, destroy = _as_nobody(path, [
                ["hello", {}], ["get_global", {"vm": "roots", "name": "g"}],
                ["get_global", {"vm": "nope", "name": "g"}], ["list", {}], ["shutdown", {}],
                ["exec", {"vm": "roots-shared", "code": "return 6 * 7"}],
                ["destroy", {"vm": "roots-shared"}]])
            assert hello["result"]["identity"] == "uid:%d" % NOBODY
            assert hello["result"]["admin"] is False
            assert secret["error"]["code"] == missing["error"]["code"] == "VM_NOT_FOUND"
            assert (secret["error"]["message"].replace("roots", "<>") ==
                    missing["error"]["message"].replace("nope", "<>"))
            assert [v["name"] for v in listed["result"]] == ["roots-shared"]
            assert shut["error"]["code"] == "FORBIDDEN"
            assert usable["result"]["values"] == [42]
            assert destroy["error"]["code"] == "FORBIDDEN"
            assert mine.get_global("g") == 1
            assert len(root.list_vms()) == 2
    finally:
        _stop(proc)


@needs_root
def test_unix_socket_is_owner_only_unless_opened(open_dir):
    path = os.path.join(open_dir, "m.sock")
    proc = _start(["--socket", path])
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
        assert _as_nobody(path, [["ping", {}]])[0] == "connect"
    finally:
        _stop(proc)


def _group_name(gid):
    try:
        import grp
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


@needs_root
@pytest.mark.parametrize("group", [str(NOBODY), _group_name(NOBODY)])
def test_unix_socket_group(open_dir, group):
    if group is None:
        pytest.skip("gid %d has no name here" % NOBODY)
    path = os.path.join(open_dir, "m.sock")
    proc = _start(["--socket", path, "--socket-group", group])
    try:
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == NOBODY
        assert _as_nobody(path, [["ping", {}]])[0]["result"] == "pong"
        # the same uid outside the group is refused by the socket's mode
        assert _as_nobody(path, [["ping", {}]], group=NOBODY - 1)[0] == "connect"
    finally:
        _stop(proc)


@needs_root
def test_serve_passes_the_identity_flags(open_dir, tmp_path):
    """bioxen serve hands --admin, --socket-mode and --token-file's names on;
    a client's --token-file may be the NAME:TOKEN line itself."""
    path = os.path.join(open_dir, "m.sock")
    tokens = tmp_path / "tokens"
    tokens.write_text("alice:tok-alice-1\nbob:tok-bob-2\n")
    mine = tmp_path / "alice.token"
    mine.write_text("alice:tok-alice-1\n")
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    bx = [sys.executable, "-m", "pylua_bioxen_vm"]
    serve = subprocess.Popen(bx + ["serve", "--socket", path, "--socket-mode", "0666",
                                   "--admin", "uid:%d" % NOBODY, "--admin", "token:bob",
                                   "--tcp", "127.0.0.1:%d" % port, "--token-file", str(tokens)],
                             env=env, stdout=subprocess.PIPE)
    try:
        assert b"listening on" in serve.stdout.readline()   # bounded by the deadline
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        hello = _as_nobody(path, [["hello", {}]])[0]["result"]
        assert hello["identity"] == "uid:%d" % NOBODY and hello["admin"] is True
        r = subprocess.run(bx + ["run", "-a", "127.0.0.1:%d" % port, "--token-file", str(mine),
                                 "-e", "return 'as alice'"], env=env, capture_output=True,
                           timeout=60)
        assert r.returncode == 0 and r.stdout == b'"as alice"\n', r.stderr
        with VMManager("tcp://127.0.0.1:%d" % port, token="tok-bob-2") as m:
            assert m.identity == "token:bob" and m.is_admin
    finally:
        serve.send_signal(15)
        assert serve.wait(timeout=60) == 0
        serve.stdout.close()


def test_a_manager_that_cannot_listen_leaves_no_socket(tmp_path):
    """An unknown --socket-group, or a TCP port in use: it exits 1 and the
    socket path is gone (nobody would answer there)."""
    tok = tmp_path / "tok"
    tok.write_text("t\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        for more, why in ((["--socket-group", "no-such-group-here"], b"no-such-group-here"),
                          (["--tcp", "127.0.0.1:%d" % busy.getsockname()[1],
                            "--token-file", str(tok)], b"listen on")):
            r = subprocess.run([find_manager(), "--socket", str(tmp_path / "m.sock")] + more,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            assert r.returncode == 1 and why in r.stderr, r
            assert not (tmp_path / "m.sock").exists(), more
