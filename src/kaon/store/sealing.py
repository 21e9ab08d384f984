"""Sealing input secrets: stored encrypted (Fernet) as well as hashed, because HMAC request signatures
(IDSync's `x-mp-signature`) can only be checked with the secret itself. The key lives in
`DATA_DIR/secret.key` (0600, made on first use) or `KAON_SECRET_KEY`."""

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> "Sealer":
        env = os.environ.get("KAON_SECRET_KEY")
        if env:
            return cls(env.encode())
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
