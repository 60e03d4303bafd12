"""Throwaway credentials for a real nats-server, made here with Debian's
``openssl`` and the standard library (no ``nsc``, ``nk`` or NATS Python
package is needed, none is packaged in Debian 12):

- ``make_pki(dir)``: a CA, a server certificate for 127.0.0.1/localhost,
  a client certificate, and a second, unrelated CA (for "wrong CA").
- ``nkey_user(dir, name)``: an ed25519 user nkey, written as
  ``nk -gen user -pubout`` writes it (seed line, then public key line).
- ``operator_setup(dir)``: an operator, a system account and an account
  (JetStream on), their JWTs signed with openssl, a user ``.creds`` file
  in the format ``nsc`` writes, and the server configuration text.

NATS keys: ed25519; the text form is base32 of (prefix byte(s), the 32-byte
key, CRC-16/XMODEM little-endian), without padding. JWTs: header
``{"typ":"JWT","alg":"ed25519-nkey"}``, base64url parts, signed by the
issuer's nkey.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

PREFIX_SEED = 18 << 3
PREFIX_OPERATOR = 14 << 3
PREFIX_ACCOUNT = 0
PREFIX_USER = 20 << 3


def have_openssl() -> bool:
    """True when the openssl command line tool can be run."""
    return os.access(OPENSSL, os.X_OK)


def _run(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run([OPENSSL, *args], input=data, check=True, timeout=60,
                          capture_output=True).stdout


# -- TLS ---------------------------------------------------------------------

def _ca(d: str, name: str, cn: str) -> tuple[str, str]:
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem,
         "-days", "2", "-subj", "/CN=" + cn)
    return key, pem


def _signed(d: str, name: str, cn: str, ca: tuple[str, str], ext: str) -> tuple[str, str]:
    key, csr = os.path.join(d, name + ".key"), os.path.join(d, name + ".csr")
    pem, extf = os.path.join(d, name + ".pem"), os.path.join(d, name + ".ext")
    _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    with open(extf, "w") as f:
        f.write(ext)
    _run("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
         "-out", pem, "-days", "2", "-extfile", extf)
    return pem, key


def make_pki(d: str) -> dict:
    """Files for TLS in directory d: ca, server_cert/key, client_cert/key,
    and other_ca (an unrelated CA)."""
    os.makedirs(d, exist_ok=True)
    ca = _ca(d, "ca", "bioxen test CA")
    other = _ca(d, "other-ca", "some other CA")
    scert, skey = _signed(d, "server", "localhost", ca,
                          "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    ccert, ckey = _signed(d, "client", "bioxen-manager", ca, "extendedKeyUsage=clientAuth\n")
    return {"ca": ca[1], "other_ca": other[1], "server_cert": scert, "server_key": skey,
            "client_cert": ccert, "client_key": ckey}


def tls_conf(pki: dict, verify: bool) -> str:
    """A nats-server ``tls {}`` block (verify: client certificates required)."""
    return ('tls {\n  cert_file: "%s"\n  key_file: "%s"\n  ca_file: "%s"\n  verify: %s\n'
            '  timeout: 2\n}\n' % (pki["server_cert"], pki["server_key"], pki["ca"],
                                   "true" if verify else "false"))


# -- nkeys -------------------------------------------------------------------

def _crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _encode(raw: bytes) -> str:
    c = _crc16(raw)
    return base64.b32encode(raw + bytes([c & 0xFF, c >> 8])).decode().rstrip("=")


class NKey:
    """An ed25519 key pair in NATS's text forms; ``pem`` signs with openssl."""

    def __init__(self, d: str, name: str, prefix: int) -> None:
        self.pem = os.path.join(d, name + ".nkey.pem")
        _run("genpkey", "-algorithm", "ed25519", "-out", self.pem)
        os.chmod(self.pem, 0o600)
        priv = _run("pkey", "-in", self.pem, "-outform", "DER")[-32:]
        pub = _run("pkey", "-in", self.pem, "-pubout", "-outform", "DER")[-32:]
        self.seed = _encode(bytes([PREFIX_SEED | (prefix >> 5), (prefix & 31) << 3]) + priv)
        self.public = _encode(bytes([prefix]) + pub)

    def sign(self, data: bytes) -> bytes:
        # a file, not stdin: ed25519 signs the whole message in one go, and
        # openssl 3.0's pkeyutl -rawin does not read that from a pipe
        tbs = self.pem + ".tbs"
        with open(tbs, "wb") as f:
            f.write(data)
        try:
            return _run("pkeyutl", "-sign", "-rawin", "-inkey", self.pem, "-in", tbs)
        finally:
            os.unlink(tbs)


def nkey_user(d: str, name: str) -> tuple[str, str]:
    """(file, public key) of a new user nkey; the file as ``nk -gen user
    -pubout`` writes it."""
    os.makedirs(d, exist_ok=True)
    k = NKey(d, name, PREFIX_USER)
    path = os.path.join(d, name + ".nk")
    with open(path, "w") as f:
        f.write(k.seed + "\n" + k.public + "\n")
    os.chmod(path, 0o600)
    return path, k.public


# -- JWTs (operator mode) ----------------------------------------------------

def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _jwt(issuer: NKey, claims: dict) -> str:
    claims = dict(claims, iat=int(time.time()), iss=issuer.public, jti="")
    digest = hashlib.sha256(json.dumps(claims, separators=(",", ":")).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    body = (_b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode()) + "." +
            _b64(json.dumps(claims, separators=(",", ":")).encode()))
    return body + "." + _b64(issuer.sign(body.encode()))


_LIMITS = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
           "wildcards": True, "conn": -1, "leaf": -1}
_JS = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


def user_creds(d: str, name: str, account: NKey) -> str:
    """A ``.creds`` file (user JWT issued by account, and the user's seed)."""
    user = NKey(d, name, PREFIX_USER)
    jwt = _jwt(account, {"sub": user.public, "name": name,
                         "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                                  "type": "user", "version": 2}})
    path = os.path.join(d, name + ".creds")
    with open(path, "w") as f:
        f.write("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                "************************* IMPORTANT *************************\n"
                "NKEY Seed printed below can be used to sign and prove identity.\n\n"
                "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n"
                % (jwt, user.seed))
    os.chmod(path, 0o600)
    return path


def operator_setup(d: str) -> dict:
    """An operator with a system account and one account ("bioxen", with
    JetStream): conf (server configuration text: operator, MEMORY
    resolver, preloaded accounts), creds (a user of the account), and
    stranger (a user of an account the operator never signed)."""
    os.makedirs(d, exist_ok=True)
    op = NKey(d, "operator", PREFIX_OPERATOR)
    sys_acc, acc = NKey(d, "sys", PREFIX_ACCOUNT), NKey(d, "bioxen", PREFIX_ACCOUNT)
    stranger_acc = NKey(d, "stranger-acc", PREFIX_ACCOUNT)
    op_jwt = os.path.join(d, "operator.jwt")
    with open(op_jwt, "w") as f:
        f.write(_jwt(op, {"sub": op.public, "name": "bioxen-test",
                          "nats": {"type": "operator", "version": 2}}))

    def account(k: NKey, name: str, limits: dict) -> str:
        return _jwt(op, {"sub": k.public, "name": name,
                         "nats": {"limits": limits, "default_permissions": {"pub": {}, "sub": {}},
                                  "type": "account", "version": 2}})
    conf = ('operator: "%s"\nresolver: MEMORY\nsystem_account: %s\n'
            'resolver_preload: {\n  %s: "%s"\n  %s: "%s"\n}\n'
            % (op_jwt, sys_acc.public, sys_acc.public, account(sys_acc, "SYS", _LIMITS),
               acc.public, account(acc, "bioxen", dict(_LIMITS, **_JS))))
    return {"conf": conf, "creds": user_creds(d, "manager", acc),
            "stranger": user_creds(d, "stranger", stranger_acc)}
