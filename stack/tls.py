"""The local stack's certificate authority: `python -m stack.tls ensure DIR` (run by
stack/wallet-stack up) writes, where missing or about to expire,

  ca.pem / ca-key.pem            a private CA (10 years), the only trust anchor of the stack
  broker.pem / broker-key.pem    the Kafka broker: server certificate for 127.0.0.1 and localhost,
                                 and its client identity (CN=broker) on the internal and
                                 controller listeners, which require client certificates
  admin.pem / admin-key.pem      the provisioning client (CN=admin) on the internal listener
  broker-keystore.pem            broker key + certificate chain in one file (Kafka's PEM keystore)

Keys are EC P-256, unencrypted, mode 0600 (the folder is the clone's git-ignored .stack/). On
AWS the brokers' certificates come from MSK and clients trust Amazon's CAs instead; nothing here
is used there. The subjects are the principals: the broker maps CN=<name> to User:<name>."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825
RENEW_BEFORE_DAYS = 30
HOSTS = ("127.0.0.1", "localhost")
# name -> (server certificate?, client certificate?)
LEAVES = {"broker": (True, True), "admin": (False, True), "postgres": (True, False)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write(path: Path, data: bytes, secret: bool) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    # PKCS#8: what Kafka's PEM keystore and librdkafka both read.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _valid(cert_path: Path, issuer: x509.Certificate | None) -> bool:
    if not cert_path.is_file():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.not_valid_after_utc - _now() < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    if issuer is not None:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, Exception):  # signed by an older CA: reissue
            return False
    return True


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wallet-lake local stack"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
    if _valid(cert_path, None) and key_path.is_file():
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), serialization.load_pem_private_key(key_path.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("wallet-lake local CA")
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5)).not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), secret=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), secret=False)
    return cert, key


def _leaf(folder: Path, name: str, server: bool, client: bool, ca: x509.Certificate, ca_key) -> bool:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}-key.pem"
    if _valid(cert_path, ca) and key_path.is_file():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5)).not_valid_after(_now() + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server:
        sans = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in HOSTS]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(key_path, _key_pem(key), secret=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), secret=False)
    return True


def ensure(folder: Path) -> list[str]:
    """Create what is missing or expiring; returns the names (re)issued."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca, ca_key = _ca(folder)
    issued = [n for n, (server, client) in LEAVES.items() if _leaf(folder, n, server, client, ca, ca_key)]
    keystore = folder / "broker-keystore.pem"
    if issued or not keystore.is_file():
        chain = (folder / "broker.pem").read_bytes() + (folder / "ca.pem").read_bytes()
        _write(keystore, (folder / "broker-key.pem").read_bytes() + chain, secret=True)
    return issued


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "ensure":
        raise SystemExit("usage: python -m stack.tls ensure DIR")
    done = ensure(Path(sys.argv[2]))
    print(f"[tls] {'issued ' + ', '.join(done) if done else 'certificates valid'}")
