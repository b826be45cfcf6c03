"""Bearer tokens for the team server: a JSON file that keeps names and hashes, never tokens.

``ghostline tokens add NAME`` prints a new token once; the file keeps its SHA-256, its name,
and when it was made and expires.  A presented token is hashed and compared with every
stored hash in constant time (``hmac.compare_digest``), so neither timing nor a stolen file
gives a token away.  The file is written atomically with mode 0600: a crash mid-write
leaves the old file, and no other user can read it.

The server re-reads the file when it changes (checked at most once a second), so a token
added or revoked with the CLI takes effect without a restart, on every replica that
reads the same file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_PREFIX = "gl_"  # lets secret scanners and people tell a ghostline token at a glance
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class TokenStoreError(ValueError):
    """The tokens file cannot be read or changed; the message says why."""


def default_tokens_file() -> Path:
    """``$XDG_CONFIG_HOME/ghostline/tokens.json`` (``~/.config/ghostline/tokens.json``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ghostline" / "tokens.json"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class TokenRecord:
    name: str
    sha256: str
    created: str  # ISO 8601, UTC
    expires: str | None = None  # ISO 8601, UTC; None: never

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires is None:
            return False
        return datetime.fromisoformat(self.expires.replace("Z", "+00:00")) <= (now or _now())


def _parse(text: str, path: Path) -> list[TokenRecord]:
    try:
        data = json.loads(text)
        records = [TokenRecord(name=str(t["name"]), sha256=str(t["sha256"]), created=str(t["created"]),
                               expires=None if t.get("expires") is None else str(t["expires"]))
                   for t in data["tokens"]]
        for r in records:  # a bad date would otherwise fail at the first request
            r.expired()
            if not re.fullmatch(r"[0-9a-f]{64}", r.sha256):
                raise ValueError(f"token {r.name!r} has no SHA-256")
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenStoreError(f"{path} is not a ghostline tokens file ({exc})") from None
    return records


class TokenStore:
    """The tokens file: add, list, revoke (the CLI) and verify (the server)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: list[TokenRecord] = []
        self._stamp: tuple | None = None  # (mtime, size, inode) of the file last read
        self._checked = 0.0
        self.reload()

    def _file_stamp(self) -> tuple | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload(self) -> None:
        """Read the file (no file: no tokens).  A broken file is an error, never "no tokens"."""
        stamp = self._file_stamp()
        try:
            text = self.path.read_text(encoding="utf-8") if stamp is not None else None
        except OSError as exc:
            raise TokenStoreError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        self._records = _parse(text, self.path) if text is not None else []
        self._stamp = stamp

    def refresh(self, every: float = 1.0) -> None:
        """Re-read the file if it changed since the last look (at most once per ``every`` s).

        A file that became unreadable keeps the tokens we had, with an error in the log:
        a half-edited file must not lock everyone out, nor let everyone in."""
        now = time.monotonic()
        if now - self._checked < every:
            return
        with self._lock:
            self._checked = now
            if self._file_stamp() == self._stamp:
                return
            try:
                self.reload()
                log.info("tokens file %s re-read: %d tokens", self.path, len(self._records))
            except TokenStoreError as exc:
                log.error("%s; keeping the %d tokens read before", exc, len(self._records))

    @property
    def records(self) -> list[TokenRecord]:
        return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def verify(self, token: str) -> TokenRecord | None:
        """The record a presented token belongs to, if it is known and not expired.

        Every stored hash is compared, each in constant time, so the time taken says
        nothing about which hash or how much of it matched."""
        presented = hash_token(token)
        found = None
        for record in self._records:
            if hmac.compare_digest(presented, record.sha256):
                found = record
        return found if found is not None and not found.expired() else None

    def add(self, name: str, expires_days: float | None = None) -> str:
        """Make a token called ``name``; returns the token, which is stored only as a hash."""
        if not _NAME.fullmatch(name):
            raise TokenStoreError(f"token names are 1-64 letters, digits, '.', '_', '@' or '-', not {name!r}")
        if any(r.name == name for r in self._records):
            raise TokenStoreError(f"a token named {name!r} exists; revoke it first (ghostline tokens revoke {name})")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = _now()
        expires = _stamp(created + timedelta(days=expires_days)) if expires_days is not None else None
        self._records.append(TokenRecord(name, hash_token(token), _stamp(created), expires))
        self._save()
        return token

    def revoke(self, name: str) -> None:
        if not any(r.name == name for r in self._records):
            raise TokenStoreError(f"no token named {name!r} in {self.path}")
        self._records = [r for r in self._records if r.name != name]
        self._save()

    def _save(self) -> None:
        """Write the file atomically (temporary file + rename), readable by its owner only."""
        body = json.dumps({"tokens": [asdict(r) for r in self._records]}, indent=2) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)  # created 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TokenStoreError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._stamp = self._file_stamp()
