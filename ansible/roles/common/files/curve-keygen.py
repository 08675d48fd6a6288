#!/usr/bin/env python3
"""Makes a CurveZMQ key pair file, as `zmqchat curve keygen FILE` does, on a host where
zmqchat is not installed yet: {"publicKey", "secretKey"}, Z85-encoded (ZMQ RFC 32), mode 0600.

CurveZMQ keys are X25519 keys (RFC 7748); this computes the public key with the RFC's
Montgomery ladder from a secret drawn from os.urandom. Standard library only.

Usage: curve-keygen.py FILE [PUBFILE]   (refuses to overwrite FILE; prints the public key and,
with PUBFILE, writes it there too, mode 0644)
"""
import json
import os
import sys

P = 2**255 - 19
A24 = 121665
Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def x25519(k: bytes, u: bytes) -> bytes:
    """RFC 7748 section 5: scalar multiplication on Curve25519 (u-coordinate only)."""
    scalar = bytearray(k)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    n = int.from_bytes(scalar, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (n >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def z85(data: bytes) -> str:
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i : i + 4], "big")
        chunk = []
        for _ in range(5):
            chunk.append(Z85[value % 85])
            value //= 85
        out.extend(reversed(chunk))
    return "".join(out)


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print("usage: curve-keygen.py FILE [PUBFILE]", file=sys.stderr)
        return 2
    path = sys.argv[1]
    secret = os.urandom(32)
    public = x25519(secret, (9).to_bytes(32, "little"))
    keys = {"publicKey": z85(public), "secretKey": z85(secret)}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"{path} exists; not overwriting a key", file=sys.stderr)
        return 1
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(keys, indent=2) + "\n")
    if len(sys.argv) == 3:
        with open(sys.argv[2], "w") as f:
            f.write(keys["publicKey"] + "\n")
        os.chmod(sys.argv[2], 0o644)
    print(keys["publicKey"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
