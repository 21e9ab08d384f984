"""The install's OpenDSR signing identity: an RSA key pair with a self-signed certificate, and signed links.

Both live in one PEM file, `DATA_DIR/opendsr.pem` (0600), made once: written to a temp file and hard-linked into
place, so the serving process and the process stage (which both may create it first) end up with the same key;
a failed write (a full disk) leaves no file behind and raises the write's own error.
"""

import base64
import contextlib
import datetime
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

FILE_NAME = "opendsr.pem"
DOMAIN = "opendsr.kaon.local"


def _create(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kaon OpenDSR processor")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{FILE_NAME}.{secrets.token_hex(6)}.tmp")
    # A full disk (or any write error) must leave neither a half-written key nor its temp file behind; the
    # error raised is the write's own (e.g. ENOSPC), not a later one about a missing or unreadable key.
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: theirs is kept
            os.link(temp, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)  # the new name is durable too
        finally:
            os.close(directory)
    finally:
        temp.unlink(missing_ok=True)


class SigningKey:
    """Signs OpenDSR bodies (RSA-SHA256, PKCS#1 v1.5, base64) and results links (HMAC-SHA256)."""

    def __init__(self, pem: bytes) -> None:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self.certificate_pem = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.PEM)
        self._link_key = hashlib.sha256(b"kaon-opendsr-results\0" + pem).digest()

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> "SigningKey":
        path = data_dir / FILE_NAME
        if not path.exists():
            _create(path)
        return cls(path.read_bytes())

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self._key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()

    def link_token(self, request_id: str, expires_ms: int) -> str:
        mac = hmac.new(self._link_key, f"{request_id}:{expires_ms}".encode(), hashlib.sha256).hexdigest()
        return f"{expires_ms}.{mac}"

    def check_link(self, request_id: str, token: str, now_ms: int) -> str:
        """`ok`, `expired` or `invalid` (an expired link is reported only when its signature is right)."""
        expires, _, _mac = token.partition(".")
        if not expires.isdigit() or not hmac.compare_digest(self.link_token(request_id, int(expires)), token):
            return "invalid"
        return "expired" if now_ms >= int(expires) else "ok"


def verify(certificate_pem: bytes, body: bytes, signature: str) -> bool:
    """What a controller does with a callback: check the signature against the served certificate."""
    public = x509.load_pem_x509_certificate(certificate_pem).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    try:
        public.verify(base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def data_dir_of(database_path: Path) -> Path:
    """Where DSR files live: `KAON_DATA_DIR`, else the main store's directory (the default layout)."""
    configured = os.environ.get("KAON_DATA_DIR")
    return Path(configured).resolve() if configured else database_path.resolve().parent
