#!/usr/bin/env python3
"""Writes hush-template's golden cases for External Secrets' own functions.

Reads the test PKI in crates/template/tests/golden/eso/ (made by make_eso_fixtures.sh, plus
ed.key, ec384.key, ec521.key from `openssl genpkey`) and
replaces every case named "eso-fn/..." in crates/template/tests/golden/cases.json; then run
scripts/check-template-oracle.sh --update. Needs python3 with `cryptography` (JWKs from the keys).
"""
import base64
import json
import pathlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

root = pathlib.Path(__file__).resolve().parents[2]
fx = root / "crates/template/tests/golden/eso"
cases_path = root / "crates/template/tests/golden/cases.json"


def b64u(n, size=None):
    b = n.to_bytes(size or (n.bit_length() + 7) // 8, "big") if isinstance(n, int) else n
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwks():
    out = {}
    k = serialization.load_pem_private_key((fx / "leaf.key").read_bytes(), None)
    assert isinstance(k, rsa.RSAPrivateKey)
    pn, pv = k.public_key().public_numbers(), k.private_numbers()
    pub = {"kty": "RSA", "kid": "leaf", "n": b64u(pn.n), "e": b64u(pn.e)}
    out["rsa-pub"] = pub
    out["rsa-priv"] = {**pub, "d": b64u(pv.d), "p": b64u(pv.p), "q": b64u(pv.q),
                       "dp": b64u(pv.dmp1), "dq": b64u(pv.dmq1), "qi": b64u(pv.iqmp)}
    for name, crv, size in [("ec.key", "P-256", 32), ("ec384.key", "P-384", 48), ("ec521.key", "P-521", 66)]:
        k = serialization.load_pem_private_key((fx / name).read_bytes(), None)
        assert isinstance(k, ec.EllipticCurvePrivateKey)
        n = k.public_key().public_numbers()
        pub = {"kty": "EC", "crv": crv, "x": b64u(n.x, size), "y": b64u(n.y, size)}
        out[f"{crv}-pub"] = pub
        out[f"{crv}-priv"] = {**pub, "d": b64u(k.private_numbers().private_value, size)}
    k = serialization.load_pem_private_key((fx / "ed.key").read_bytes(), None)
    assert isinstance(k, ed25519.Ed25519PrivateKey)
    raw = serialization.Encoding.Raw
    x = k.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    d = k.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    out["ed-pub"] = {"kty": "OKP", "crv": "Ed25519", "x": b64u(x)}
    out["ed-priv"] = {**out["ed-pub"], "d": b64u(d)}
    out["oct"] = {"kty": "oct", "k": b64u(b"0123456789abcdef")}
    return out


def yaml_cases():
    """toYaml/fromYaml: quoting, block styles, folding, key order, YAML 1.1 resolution."""
    data = {"json":json.dumps({"a":1,"b":[True,None,"x"],"c":{"d":"e"},"f":1.5,"g":1e21,"h":0.000001,"e":{},"l":[],"m":"x\ny","n":"x\n","o":[{"p":1,"q":[1,[2,3]]}],"s":"","t":"true","u":"2001-12-14","v":" lead","w":"a: b","x":"tab\there","y":"\u00e9\U0001F600","z":"a\n\n","big":12345678901234567890,"neg":-0.0,"i100":100.0,"k10":1,"k9":2,"K":3,"_u":4,"1":5,"10":6,"2":7,"a10b":8,"a010":9,"sp":"a  b","trail":"x ","hash":"a #b","hash2":"a#b","colon":"a:b","dash":"- a","dash2":"-a","q":"'q'","dq":"\"","bs":"a\\b","yes":"yes","oct":"0755","hex":"0x1F","b60":"1:20","dot":"...","dashes":"---x","nul":"\u0000","ctl":"\u0007","nbsp":"a\u00a0b","bom":"\ufeff","lit_lead":" a\nb","lit_trailsp":"a \nb","brk":"\n","crlf":"a\r\nb","amp":"&a","star":"*a","pct":"%a","at":"@a","bt":"`a","q1":"?a","q2":"? a","ex":"!a","pipe":"|","gt":">a","brace":"{a","comma":"a,b","float_s":"1.5","exp":"1e3","inf":".inf","tilde":"~","date2":"2001-12-14 21:59:43.10","date3":"2001-12-14T21:59:43.10-05:00","notdate":"2001-13-14","long":"word "*30,"longq":"'word' "*30,"longdq":"tab\t "+"word "*30,"longkey":"x","lines":"l1\nl2\n\nl4\n","deep":{"a":{"b":{"c":[{"d":{"e":"f"}},[[]],[{}]]}}}})}
    data["yaml"] = "k: v\nl:\n- 1\n- two\n"
    tpls={
     "json": '{{ fromJson .json | toYaml }}',
     "str": '{{ "hello" | toYaml }}',
     "lit": '{{ "a\\nb" | toYaml }}',
     "lit2": '{{ "a\\n\\n" | toYaml }}',
     "lit3": '{{ "\\n" | toYaml }}',
     "lit4": '{{ "a\\n" | toYaml }}',
     "lst": '{{ list "a" (list "b" "c") (dict "k" "v" "k2" (list 1 2)) | toYaml }}',
     "dot": '{{ . | toYaml }}',
     "nil": '{{ toYaml nil }}',
     "int": '{{ toYaml 42 }}',
     "f": '{{ toYaml 1.0 }}',
     "f2": '{{ toYaml 0.1 }}',
     "bool": '{{ toYaml true }}',
     "empty": '{{ toYaml "" }}',
     "emptyl": '{{ toYaml list }}',
     "emptyd": '{{ toYaml dict }}',
     "long": '{{ repeat 30 "word " | toYaml }}',
     "long2": '{{ dict "key" (repeat 30 "word ") | toYaml }}',
     "long3": '{{ dict "key" (list (repeat 30 "w: ")) | toYaml }}',
     "long4": '{{ dict "key" (printf "\\t%s" (repeat 30 "word  ")) | toYaml }}',
     "longkey": '{{ dict (repeat 20 "word ") 1 | toYaml }}',
     "rt": '{{ fromJson .json | toYaml | fromYaml | toJson }}',
     "fy1": '{{ fromYaml "a: 1\\nb: [x, y]\\nc: {d: yes, e: ~, f: 0x1F, g: 017, h: 1_000, i: 1.5e3, j: .5, k: 2001-12-14, l: \\"2001\\", m: off, n: -1, o: 12345678901234567890}" | toJson }}',
     "fy2": '{{ fromYaml "a: &x\\n  b: 1\\nc: *x\\n1: one\\ntrue: t\\n1.5: f\\n" | toJson }}',
     "fy3": '{{ fromYaml "" | toJson }}',
     "fy4": '{{ fromYaml "- a" | toJson }}',
     "fy6": '{{ (fromYaml "k: v").k }}',
     "fy7": '{{ fromYaml "a: |\\n  x\\n  y\\nb: >\\n  x\\n  y\\nc: \'q\'\\n" | toJson }}',
     "fy8": '{{ fromYaml "a: 1\\n---\\nb: 2\\n" | toJson }}',
     "fy9": '{{ fromYaml "a: 2001-12-14 21:59:43.10\\nb: 2001-12-14t21:59:43.10-05:00\\nc: 2002-12-14T00:00:00Z\\n" | toJson }}',
     "fy10": '{{ fromYaml "a: 1\\na: 2\\n" | toJson }}',
     "fy11": '{{ fromYaml "null" | toJson }}',
     "fy12": '{{ fromYaml "a: .inf" | toJson }}',
     "fy13": '{{ fromYaml .yaml | toYaml }}',
     "fy15": '{{ fromYaml "just a string" | toJson }}',
     "fy16": '{{ fromYaml "42" | toJson }}',
     "fy17": '{{ fromYaml "a: [.nan]" | toJson }}',
     "fy18": '{{ fromYaml "a: -.inf" | toJson }}',
     "fy19": '{{ fromYaml "true" | toJson }}',
     "fy20": '{{ fromYaml "a: !!str 1\nb: \"x\"\n" | toJson }}',
     "fy21": '{{ fromYaml "k: v" | toYaml }}',
     "nan": '{{ toYaml (list (divf 0 0)) }}',
     "strmap": '{{ toYaml . }}',
     "fy14": '{{ fromYaml "a: 0b101\\nb: -0b11\\nc: +5\\nd: 0o17\\ne: 1e5\\nf: -.5\\ng: 1.\\nh: 09\\n" | toJson }}',
    }
    return [{"name": "eso-fn/yaml/" + k, "preset": "external-secrets", "template": v, "data": data}
            for k, v in tpls.items()]


def main():
    data = {}
    for p in sorted(fx.iterdir()):
        if p.suffix in (".pem", ".crt", ".key"):
            data[p.name] = p.read_text()
        elif p.suffix == ".b64":
            data[p.name] = p.read_text()
        elif p.suffix == ".pfx":
            data[p.name] = base64.b64encode(p.read_bytes()).decode()
    for name, j in jwks().items():
        data["jwk-" + name] = json.dumps(j)
    data["junk"] = "not a pem\n"
    data["with-junk"] = "leading text\n" + data["leaf.crt"] + "\ntrailing text\n"
    data["bundle"] = data["leaf.key"] + data["chain.pem"]
    data["headers"] = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\nZ: last\n\nAAEC\n-----END RSA PRIVATE KEY-----\n"
    data["crlf"] = data["leaf.crt"].replace("\n", "\r\n")

    t = {}
    for kind in ["CERTIFICATE", "certificate", "PRIVATE KEY", "RSA PRIVATE KEY", "NONE"]:
        for src in ["bundle", "with-junk", "junk", "headers", "crlf", "chain.pem"]:
            t[f"filterPEM/{kind}/{src}"] = f'{{{{ index . "{src}" | filterPEM "{kind}" }}}}'
    t["filterPEM/empty"] = '{{ filterPEM "CERTIFICATE" "" }}'
    for kind in ["leaf", "intermediate", "root", "other"]:
        for src in ["chain.pem", "chain-shuffled.pem", "disjunct.pem", "leaf.crt", "root.crt", "inter.crt", "junk", "bundle"]:
            t[f"filterCertChain/{kind}/{src}"] = f'{{{{ index . "{src}" | filterCertChain "{kind}" }}}}'
    for src in ["leaf.crt", "ec.crt", "root.crt", "with-junk", "junk"]:
        t[f"certSANs/{src}"] = f'{{{{ index . "{src}" | certSANs | toJson }}}}'
    for pfx, pw in [("leaf-nopass.pfx", ""), ("leaf-pass.pfx", "s3cret"), ("leaf-legacy.pfx", "s3cret"),
                    ("ec-nopass.pfx", ""), ("leaf-disjunct.pfx", ""), ("leaf-pass.pfx", "wrong")]:
        t[f"pkcs12keyPass/{pfx}/{pw}"] = f'{{{{ index . "{pfx}" | b64dec | pkcs12keyPass "{pw}" }}}}'
        t[f"pkcs12certPass/{pfx}/{pw}"] = f'{{{{ index . "{pfx}" | b64dec | pkcs12certPass "{pw}" }}}}'
    t["pkcs12key"] = '{{ index . "leaf-nopass.pfx" | b64dec | pkcs12key }}'
    t["pkcs12cert"] = '{{ index . "leaf-nopass.pfx" | b64dec | pkcs12cert }}'
    t["pkcs12key/notpfx"] = '{{ index . "leaf.crt" | pkcs12key }}'
    for name in jwks():
        t[f"jwkPublicKeyPem/{name}"] = f'{{{{ index . "jwk-{name}" | jwkPublicKeyPem }}}}'
        t[f"jwkPrivateKeyPem/{name}"] = f'{{{{ index . "jwk-{name}" | jwkPrivateKeyPem }}}}'
    t["jwkPublicKeyPem/invalid"] = '{{ jwkPublicKeyPem "{" }}'
    for h in ["SHA1", "SHA256", "SHA512"]:
        for key in ["leaf.key", "leaf.pkcs1.key", "ec.key", "inter.key"]:
            t[f"rsaDecrypt/{h}/{key}"] = (f'{{{{ rsaDecrypt "RSA-OAEP" "{h}" '
                                          f'(index . "oaep-{h.lower()}.b64" | b64dec) (index . "{key}") }}}}')
    t["rsaDecrypt/None"] = '{{ rsaDecrypt "None" "SHA1" "as is" "no key" }}'
    t["rsaDecrypt/default-hash"] = '{{ index . "leaf.key" | rsaDecrypt "RSA-OAEP" "None" (index . "oaep-sha256.b64" | b64dec) }}'
    t["rsaDecrypt/other-scheme"] = '{{ rsaDecrypt "RSA" "SHA1" "x" (index . "leaf.key") }}'
    t["rsaDecrypt/not-pem"] = '{{ rsaDecrypt "RSA-OAEP" "SHA1" "x" "not pem" }}'

    new = yaml_cases() + [{"name": "eso-fn/" + k, "preset": "external-secrets", "template": v, "data": data} for k, v in t.items()]
    cases = [c for c in json.loads(cases_path.read_text()) if not c["name"].startswith("eso-fn/")]
    cases_path.write_text(json.dumps(cases + new, indent=1, ensure_ascii=False))
    print(f"{len(new)} eso-fn cases")


if __name__ == "__main__":
    main()
