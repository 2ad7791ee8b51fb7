"""Who may do what in the app: users with hashed passwords, roles, and when sign-in is required. Pure
except for reading and writing the users file (JSON, written atomically, never holding a password).

Roles, each with everything the one before may do:
  reader — ask questions, read summaries and the comparison;
  editor — upload and remove reports, generate summaries (which spends the LLM key);
  admin  — run evals, see settings.
With `QA_AUTH=auto` (the default) the app asks for no sign-in only when nothing but this machine can reach
it: the server listens on a loopback address, the connection comes from one, and no proxy header says it
was passed on (`local_connection`: facts the client cannot forge; the Host header is never read).
`required` asks for it everywhere; `off` never (a single-user machine only). An office without an identity
provider uses the users file (`qa users add NAME --role editor`); one with OpenID Connect uses
Streamlit's `st.login` and maps e-mail addresses to roles in the same file (README: Team setup).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qa.core.errors import ConfigError, InputError
from qa.core.files import atomic_write

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
# Headers a proxy adds to say whom it passes a request on for: a request carrying any of them came through
# something, so it is never taken for this machine's own browser.
PROXY_HEADERS = (
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
    "x-client-ip",
    "true-client-ip",
)
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


def is_loopback(address: str | None) -> bool:
    """An address only this machine can use: 127.0.0.0/8, ::1 (also IPv4-mapped), the name localhost."""
    if not address:
        return False
    name = address.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@dataclass(frozen=True)
class Connection:
    """What the server knows of one browser connection, from its own socket, never from what was sent:
    the address it listens on, the peer's address, and whether a proxy header came along."""

    listen_address: str | None
    peer: str | None
    proxied: bool

    @classmethod
    def of(cls, listen_address: str | None, peer: str | None, headers: Mapping[str, str]) -> Connection:
        names = {name.lower() for name in headers}
        return cls(listen_address, peer, any(h in names for h in PROXY_HEADERS))

    @property
    def local(self) -> bool:
        """Only this machine can have made it: a loopback listener, a loopback peer, no proxy in between.
        A server open to the network is never local, loopback peers included: a proxy or tunnel on this
        machine connects from loopback too."""
        return is_loopback(self.listen_address) and is_loopback(self.peer) and not self.proxied


def sign_in_required(mode: str, connection: Connection | None) -> bool:
    """Sign-in is required unless switched off, or (mode auto) the connection is this machine's own.
    connection None: no network connection at all (the app run in-process, as by AppTest)."""
    if mode == "off":
        return False
    if mode == "required":
        return True
    return connection is not None and not connection.local


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
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a users file: set QA_USERS_FILE to a file's path "
                              "(it is created by `qa users add`)")  # fmt: skip
        if path.exists():
            self._users = _read_users(path)

    def __len__(self) -> int:
        return len(self._users)

    def names(self) -> list[str]:
        return sorted(self._users)

    def get(self, name: str) -> User | None:
        entry = self._users.get(name)
        if entry is None or entry.get("role") not in ROLES:
            return None
        spaces = entry.get("workspaces")
        return User(
            name, entry["role"], entry.get("display", ""), tuple(spaces) if spaces is not None else None
        )

    def stamp(self, name: str) -> str | None:
        """A fingerprint of what a session was granted on: the user's role, password hash and workspaces.
        A session whose stamp no longer matches ends (the password or role was changed, or the user removed)."""
        entry = self._users.get(name)
        if entry is None or entry.get("role") not in ROLES:
            return None
        granted = json.dumps(
            [entry.get("role"), entry.get("hash", ""), entry.get("workspaces")], sort_keys=True
        )
        return hashlib.sha256(granted.encode()).hexdigest()[:32]

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
        atomic_write(self.path, json.dumps({"users": self._users}, ensure_ascii=False, indent=2), mode=0o600)


def _read_users(path: Path) -> dict[str, dict]:
    """The users file's entries; ConfigError naming the file and the first thing wrong in it."""
    fix = "fix it, or move it away and add the users again with `qa users add`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as ex:
        reason = ex.strerror if isinstance(ex, OSError) and ex.strerror else ex
        raise ConfigError(f"{path}: not a readable users file ({reason}); {fix}") from ex
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise ConfigError(f'{path}: not a users file (no "users" object at the top); {fix}')
    for name, entry in users.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: the entry for user {name!r} is not an object; {fix}")
        for field in ("role", "hash", "display"):
            if field in entry and not isinstance(entry[field], str):
                raise ConfigError(f"{path}: user {name!r} has a {field} that is not text; {fix}")
        spaces = entry.get("workspaces")
        if spaces is not None and not (isinstance(spaces, list) and all(isinstance(w, str) for w in spaces)):
            raise ConfigError(f"{path}: user {name!r} has workspaces that are not a list of names; {fix}")
    return dict(users)


def users_file(data_dir: Path, configured: str | None = None) -> Path:
    return Path(configured) if configured else data_dir / "users.json"
