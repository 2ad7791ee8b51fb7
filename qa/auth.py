"""Who may do what in the app: users with hashed passwords, roles, and when sign-in is required. Pure
except for reading and writing the users file (JSON, written atomically, never holding a password).

Roles, each with everything the one before may do:
  reader — ask questions, read summaries and the comparison;
  editor — upload and remove reports, generate summaries (which spends the LLM key);
  admin  — run evals, see settings.
Served on anything but localhost the app requires sign-in (`QA_AUTH=auto`, the default); `required`
asks for it everywhere; `off` never (a single-user machine only). An office without an identity
provider uses the users file (`qa users add NAME --role editor`); one with OpenID Connect uses
Streamlit's `st.login` and maps e-mail addresses to roles in the same file (README: Team setup).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qa.errors import ConfigError, InputError

ROLES = ("reader", "editor", "admin")
ROLE_NAMES = {"reader": "读者", "editor": "编辑", "admin": "管理员"}
# action → the least role that may do it
ACTIONS = {
    "ask": "reader",
    "read": "reader",
    "upload": "editor",
    "remove": "editor",
    "summarize": "editor",
    "eval": "admin",
    "settings": "admin",
}
AUTH_MODES = ("auto", "required", "off")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_NAME = re.compile(r"^[\w.@+-]{1,64}$")
# scrypt, as the Python docs suggest for passwords: n=2**14, r=8, p=1 (about 16 MB, ~50 ms)
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def allowed(role: str | None, action: str) -> bool:
    """May someone with this role do this? No role (not signed in) may do nothing."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(ACTIONS[action])


def sign_in_required(mode: str, host: str) -> bool:
    """Sign-in is required unless the app is only served to this machine (mode auto), or switched off."""
    if mode == "off":
        return False
    if mode == "required":
        return True
    if host.startswith("["):  # [::1]:8501
        name = host[: host.find("]") + 1]
    else:  # host:port, but not a bare IPv6 address
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.lower() not in LOCAL_HOSTS


@dataclass(frozen=True)
class User:
    name: str  # the sign-in name, or the e-mail address given by the identity provider
    role: str
    display: str = ""
    workspaces: tuple[str, ...] | None = None  # None: every workspace; "" is the default one

    def may_use(self, workspace: str) -> bool:
        return self.role == "admin" or self.workspaces is None or workspace in self.workspaces

    @property
    def label(self) -> str:
        return f"{self.display or self.name}（{ROLE_NAMES[self.role]}）"


class Users:
    """The users file: {"users": {name: {"hash": "scrypt$…", "role": "editor", "display": "张三"}}}. A user
    known only by e-mail (OIDC) has no hash."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, dict] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self._users = dict(data.get("users", {}))
            except (OSError, ValueError, AttributeError) as ex:
                raise ConfigError(f"{path}: not a readable users file ({ex}); fix or remove it") from ex

    def __len__(self) -> int:
        return len(self._users)

    def names(self) -> list[str]:
        return sorted(self._users)

    def get(self, name: str) -> User | None:
        entry = self._users.get(name)
        if entry is None or entry.get("role") not in ROLES:
            return None
        spaces = entry.get("workspaces")
        return User(name, entry["role"], entry.get("display", ""), tuple(spaces) if spaces is not None else None)

    def sign_in(self, name: str, password: str) -> User | None:
        """The user, when the password is theirs; None otherwise (same time whether or not the name
        exists, so a wrong name cannot be told from a wrong password)."""
        entry = self._users.get(name.strip())
        stored = entry.get("hash", "") if entry else hash_password(secrets.token_hex(8))
        if not check_password(password, stored) or entry is None:
            return None
        return self.get(name.strip())

    def add(self, name: str, role: str, password: str | None, display: str = "",
            workspaces: tuple[str, ...] | None = None) -> User:  # fmt: skip
        if not _NAME.match(name):
            raise InputError(f"user name {name!r}: use letters, digits, . _ @ + - (at most 64)")
        if role not in ROLES:
            raise InputError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        if password is not None and len(password) < 8:
            raise InputError("the password must have at least 8 characters")
        entry: dict = {"role": role, "display": display}
        if password is not None:
            entry["hash"] = hash_password(password)
        if workspaces is not None:
            entry["workspaces"] = list(workspaces)
        self._users[name] = entry
        self._save()
        return User(name, role, display, workspaces)

    def remove(self, name: str) -> bool:
        if self._users.pop(name, None) is None:
            return False
        self._save()
        return True

    def _save(self) -> None:
        """Atomically, readable by the owner only (the file holds password hashes)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"users": self._users}, out, ensure_ascii=False, indent=2)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def users_file(data_dir: Path, configured: str | None = None) -> Path:
    return Path(configured) if configured else data_dir / "users.json"
