#!/usr/bin/env python3
"""Checks a patient's "who accessed my data" answer without trusting the server.

Every access the ledger returns must be in the tree whose root the checkpoint names (RFC 9162
inclusion proof), and the checkpoint must be signed by the log's key and cosigned by the
witnesses you trust (C2SP signed note, cosignature/v1). Needs `cryptography` (Debian:
python3-cryptography).

  check_my_accesses.py URL TOKEN_FILE LOG_KEY [WITNESS_KEY ...]

Exit 0: every access verified; 1: something did not.
"""
import base64, hashlib, json, sys, urllib.request
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

H = lambda b: hashlib.sha256(b).digest()

def key(vkey, kind):  # "<name>+<hex id>+<base64(kind || public key)>"
    name, key_id, typed = vkey.split("+", 2)
    typed = base64.b64decode(typed)
    assert typed[0] == kind
    return name, bytes.fromhex(key_id), Ed25519PublicKey.from_public_bytes(typed[1:])

def signed_by(text, lines, vkey, kind):  # kind 1: the log's signature, 4: a cosignature
    name, key_id, public = key(vkey, kind)
    for line in lines:
        who, blob = line[2:].split(" ")
        blob = base64.b64decode(blob)
        if who == name and blob[:4] == key_id:
            message, sig = text.encode(), blob[4:]
            if kind == 4:
                message = b"cosignature/v1\ntime %d\n" % int.from_bytes(blob[4:12], "big") + message
                sig = blob[12:]
            public.verify(sig, message)  # raises if forged
            return True
    return False

def root_from(index, size, leaf, proof):  # RFC 9162 2.1.3.2
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 or fn == sn:
            r = H(b"\x01" + p + r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = H(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None

url, token_file, log_key, witnesses = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
request = urllib.request.Request(url.rstrip("/") + "/ledger/accesses", headers={
    "Authorization": "Bearer " + open(token_file).read().strip()})
answer = json.load(urllib.request.urlopen(request, timeout=30))
text, signatures = answer["checkpoint"].split("\n\n", 1)
text += "\n"
origin, size, root = text.splitlines()[:3]
lines = signatures.splitlines()
ok = signed_by(text, lines, log_key, 1) and all(signed_by(text, lines, w, 4) for w in witnesses)
for e in answer["entries"]:
    leaf = H(b"\x00" + e["payload"].encode())
    proof = [base64.b64decode(p) for p in e["inclusion_proof"]]
    good = root_from(e["index"], int(size), leaf, proof) == base64.b64decode(root)
    ok = ok and good
    print("ok " if good else "BAD", e["index"], e["event"]["time"], e["event"]["actor"]["id"], e["event"]["action"])
print(f"{len(answer['entries'])} accesses in {origin} at size {size}:", "verified" if ok else "NOT verified")
sys.exit(0 if ok else 1)
