"""Certificates for the test API server and test webhooks, made with the openssl CLI.

ECDSA P-256 keys; a CA, and leaf certificates carrying the SANs given (Go refuses
certificates without SANs). Files are only generated when missing, so restarts
keep the CA that an existing kubeconfig trusts.
"""
import os
import subprocess
import tempfile


def _run(args):
    subprocess.run(["openssl"] + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ensure_ca(directory, name="ca", cn="meshmetric-test-ca"):
    os.makedirs(directory, exist_ok=True)
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    if not (os.path.exists(key) and os.path.exists(crt)):
        _run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
        _run(["req", "-x509", "-new", "-key", key, "-sha256", "-days", "3650", "-subj", "/CN=" + cn,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", crt])
        os.chmod(key, 0o600)
    return key, crt


def ensure_leaf(directory, name, ca_key, ca_crt, sans, cn=None):
    """sans: list like ["IP:127.0.0.1", "DNS:localhost"]. Returns (key, crt)."""
    os.makedirs(directory, exist_ok=True)
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    if os.path.exists(key) and os.path.exists(crt):
        return key, crt
    _run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
    os.chmod(key, 0o600)
    with tempfile.TemporaryDirectory() as tmp:
        csr = os.path.join(tmp, "leaf.csr")
        ext = os.path.join(tmp, "ext.cnf")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s\n" % ",".join(sans))
        _run(["req", "-new", "-key", key, "-subj", "/CN=" + (cn or name), "-out", csr])
        _run(["x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
              "-days", "825", "-sha256", "-extfile", ext, "-out", crt])
    return key, crt


if __name__ == "__main__":
    # CLI: pki.py DIR CANAME LEAFNAME SAN[,SAN...]  -> creates DIR/CANAME.{key,crt} and DIR/LEAFNAME.{key,crt}
    import sys
    d, ca, leaf, sans = sys.argv[1:5]
    k, c = ensure_ca(d, ca, cn=ca)
    ensure_leaf(d, leaf, k, c, sans.split(","))
