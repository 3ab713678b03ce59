#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target under fuzz/corpus/<target>/.

A handful of small valid and invalid inputs per target, so the fuzzer
starts from the shapes the parsers accept. Every value is made up here:
the well-formed client IDs, secrets and tokens are fixed patterns with a
correct checksum (recomputed below as latchkey_secrets computes it), not
material from any running service. Run it again after changing a target's
input format: `python3 fuzz/make_corpus.py` (it replaces the files).
"""

import base64
import os
import shutil
import urllib.parse
import uuid
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# The fuzz crate's fixtures (fuzz/src/lib.rs).
CREDENTIAL_ID = "0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0b"
TOKEN_TAIL = "FuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuz"
GATEWAY_MODES = {"basic": 0, "none": 1, "wrong": 2, "bearer": 3, "twice": 4}


def base62(value, digits):
    out = []
    for _ in range(digits):
        out.append(BASE62[value % 62])
        value //= 62
    return "".join(reversed(out))


def with_checksum(head):
    return head + base62(zlib.crc32(head.encode()), 6)


def credential_key(credential_id):
    return base62(uuid.UUID(credential_id).int, 22)


TOKEN = with_checksum("lkt_" + credential_key(CREDENTIAL_ID) + TOKEN_TAIL)
CLIENT_ID = with_checksum("lkc_" + "Fuzz" * 5 + "Id")
CLIENT_SECRET = with_checksum("lks_" + "FuzzSecret" * 4 + "Fuz")


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as file:
        file.write(data)


# --- protobuf, by hand (only what a CheckRequest needs) -------------------


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(tag, payload):
    """A length-delimited field (strings, bytes, messages, map entries)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(tag << 3 | 2) + varint(len(payload)) + payload


def map_entries(tag, pairs):
    return b"".join(field(tag, field(1, k) + field(2, v)) for k, v in pairs)


def check_request(address=None, headers=(), raw_headers=None, scope=None, pipe=None):
    """envoy.service.auth.v3.CheckRequest."""
    attributes = b""
    if address is not None:  # Peer.address -> Address.socket_address
        socket = field(2, address) + varint(3 << 3) + varint(43210)
        attributes += field(1, field(1, field(1, socket)))
    if pipe is not None:  # Address.pipe (no IP)
        attributes += field(1, field(1, field(2, field(1, pipe))))
    http = field(2, "GET") + field(4, "/orders") + field(5, "api.example.test")
    http += map_entries(3, headers)
    if raw_headers is not None:  # header_map of HeaderValue (key, value, raw_value)
        values = b"".join(field(1, field(1, k) + field(3, v)) for k, v in raw_headers)
        http += field(13, values)
    attributes += field(4, field(2, http))  # Request.http
    if scope is not None:
        attributes += map_entries(10, [("scope", scope)])
    return field(1, attributes)


def envoy(name, mode, request):
    write("envoy_check", name, bytes([GATEWAY_MODES[mode]]) + request)


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)

    # secret_formats: the three formats, each broken one way, hash keys,
    # identifiers.
    for name, value in {
        "client-id": CLIENT_ID,
        "client-secret": CLIENT_SECRET,
        "token": TOKEN,
        "bad-checksum": CLIENT_SECRET[:-1] + ("0" if CLIENT_SECRET[-1] != "0" else "1"),
        "truncated": CLIENT_ID[:-3],
        "wrong-prefix": "lkx_" + CLIENT_SECRET[4:],
        "symbol-in-body": CLIENT_ID[:8] + "!" + CLIENT_ID[9:],
        "multibyte": "lkc_" + "é" * 14,
        "hash-key": "5a" * 32,
        "hash-key-short": "5a" * 31,
        "project-id": "acme-prod-2",
        "owner": "alice@example.test",
        "api": "payments:write/v2",
        "uuid": CREDENTIAL_ID,
        "empty": "",
    }.items():
        write("secret_formats", name, value)

    # access_token: tokens, an overflowing key, scopes.
    overflow = with_checksum("lkt_" + "z" * 22 + TOKEN_TAIL)
    for name, value in {
        "token": TOKEN,
        "token-bad-checksum": TOKEN[:-1] + ("0" if TOKEN[-1] != "0" else "1"),
        "key-overflow": overflow,
        "bearer-prefix": "Bearer " + TOKEN,
        "client-secret": CLIENT_SECRET,
        "credential-id": CREDENTIAL_ID,
        "credential-id-braced": "{" + CREDENTIAL_ID + "}",
        "scopes": "orders.read  orders.write tokens:introspect",
        "scope-bad": "1orders has\tspace",
    }.items():
        write("access_token", name, value)

    # oauth_form: headers, an empty line, the body.
    form = "content-type: application/x-www-form-urlencoded"
    basic = "Basic " + base64.b64encode(
        f"{urllib.parse.quote_plus(CLIENT_ID)}:{urllib.parse.quote_plus(CLIENT_SECRET)}".encode()
    ).decode()
    for name, value in {
        "token-form": f"{form}\n\ngrant_type=client_credentials&client_id={CLIENT_ID}"
        f"&client_secret={CLIENT_SECRET}&scope=orders.read+orders.write",
        "token-basic": f"{form}\nauthorization: {basic}\n\ngrant_type=client_credentials",
        "introspect-bearer": f"{form}\nauthorization: Bearer {TOKEN}\n\ntoken={TOKEN}",
        "both-methods": f"{form}\nauthorization: {basic}\n\nclient_id={CLIENT_ID}",
        "two-headers": f"{form}\nauthorization: {basic}\nauthorization: Bearer x\n\ntoken=t",
        "repeated": f"{form}\n\ntoken=a&token=a",
        "percent": f"{form}; charset=UTF-8\n\nclient_id=%6Ckc_x&client_secret=%FF%00+a",
        "wrong-type": "content-type: application/json\n\n{\"token\":\"t\"}",
        "not-utf8": f"{form}\n\ntoken=\xff",
        "basic-undecodable": f"{form}\nauthorization: Basic !!\n\ntoken=t",
    }.items():
        write("oauth_form", name, value.encode("utf-8", "surrogateescape")
              if name != "not-utf8" else value.encode("latin-1"))

    # ip_allowlist: key=value lines.
    for name, value in {
        "allowlist": "allow=10.1.2.3/8\nallow= 192.168.0.7 \nallow=::ffff:172.16.0.1\n"
        "allow=::ffff:172.16.0.0/108\nallow=2001:db8::1/32\npeer=::ffff:10.0.0.1",
        "allowlist-bad": "allow=10.0.0.0/33\nallow=\nallow=fe80::1%eth0",
        "xff-chain": "trust=10.0.0.0/8\npeer=10.0.0.1\nxff=1.1.1.1, 198.51.100.7\nxff=10.0.0.2",
        "forwarded": "trust=::1/128\npeer=::1\nforwarded=for=\"[2001:db8::7]:4711\";proto=https, "
        "for=192.0.2.60\nxff=203.0.113.9",
        "untrusted-peer": "trust=10.0.0.0/8\npeer=203.0.113.5\nxff=198.51.100.1",
        "bad-entry": "trust=10.0.0.0/8\npeer=10.0.0.1\nxff=198.51.100.7, unknown, 10.0.0.3",
        "auth-proxy": "trust=127.0.0.1/32\npeer=127.0.0.1\nuser=alice@example.test",
        "auth-proxy-twice": "trust=127.0.0.1/32\npeer=127.0.0.1\nuser=alice\nuser=bob\nauthorization=1",
    }.items():
        write("ip_allowlist", name, value)

    # registry_update: key=value lines.
    page_token = base64.urlsafe_b64encode(
        f"1767225600000000\n{CREDENTIAL_ID}\nfuzz".encode()
    ).decode().rstrip("=")
    ordered_token = base64.urlsafe_b64encode(
        f"1767225600000000\n{CREDENTIAL_ID}\nfuzz\ndesc".encode()
    ).decode().rstrip("=")
    etag = '"' + base64.urlsafe_b64encode((7).to_bytes(8, "big")).decode().rstrip("=") + '"'
    for name, value in {
        "all-fields": "mask=name\nmask=description\nmask=allowed_apis\nmask=allowed_ips\n"
        "mask=expire_time\nname=ci deploy\ndescription=made up\napi=orders.read\n"
        "api=orders.read\nip=10.0.0.0/8\nexpire=1900000000\netag=" + etag,
        "camel-case": "mask=allowedApis\nmask=allowedIps\nmask=expireTime\napi=tokens:introspect\n"
        "scope=credentials:manage\nip=::ffff:10.0.0.1",
        "escalation": "mask=allowed_apis\napi=registry:admin\nscope=credentials:own",
        "bad-path": "mask=client_id\nname=x",
        "past-expiry": "mask=expire_time\nexpire=1000",
        "bad-etag": "mask=name\nname=ok\netag=\"!!\"",
        "page": "filter=fuzz\npage_size=10\npage_token=" + page_token,
        "page-ordered": "filter=fuzz\norder_by=create_time desc\npage_size=2000\npage_token="
        + ordered_token,
        "page-foreign": "filter=other\npage_size=-1\npage_token=" + page_token,
        "position": "micros=1767225600123456\nid=" + CREDENTIAL_ID + "\nfilter=p\norder_by=createTime asc",
    }.items():
        write("registry_update", name, value)

    # envoy_check: a mode byte, then a CheckRequest.
    bearer = [("authorization", "Bearer " + TOKEN)]
    envoy("allowed", "basic", check_request("10.0.0.1", bearer, scope="orders.read"))
    envoy("spoofed-identity", "basic", check_request(
        "10.1.2.3", bearer + [("x-latchkey-owner", "mallory"), ("X-Latchkey-Project", "x")]))
    envoy("raw-headers", "basic", check_request(
        "::ffff:10.0.0.1", raw_headers=[("authorization", ("Bearer " + TOKEN).encode()),
                                         ("x-latchkey-client-id", b"\xff")]))
    envoy("wrong-scope", "basic", check_request("10.0.0.1", bearer, scope="orders.write admin"))
    envoy("outside-allowlist", "basic", check_request("203.0.113.9", bearer))
    envoy("no-address", "basic", check_request(None, bearer, pipe="/run/envoy.sock"))
    envoy("joined-twice", "basic", check_request(
        "10.0.0.1", [("authorization", f"Bearer {TOKEN},Bearer {TOKEN}")]))
    envoy("no-token", "basic", check_request("10.0.0.1"))
    envoy("bad-token", "basic", check_request("10.0.0.1", [("authorization", "Bearer lkt_nope")]))
    envoy("oversized", "basic", check_request("10.0.0.1", [("authorization", "Bearer " + "a" * 5000)]))
    envoy("gateway-none", "none", check_request("10.0.0.1", bearer))
    envoy("gateway-wrong", "wrong", check_request("10.0.0.1", bearer))
    envoy("gateway-bearer", "bearer", check_request("10.0.0.1", bearer))
    envoy("gateway-twice", "twice", check_request("10.0.0.1", bearer))


if __name__ == "__main__":
    main()
