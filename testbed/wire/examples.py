"""The Node and Rust examples, and their broken variants, as commands the kit starts.

The Rust crates are built offline from Debian's packaged crates on first use (``cargo build
--offline --release``); run as root on a machine without the crates, the Debian packages
are installed first, as ``testbed/engines`` does for the servers. Anything missing is one
line saying what to install.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NODE_EXAMPLE = ROOT / "examples" / "node" / "backend.js"
NODE_BROKEN = ROOT / "testbed" / "wire" / "node" / "broken.js"
RUST_EXAMPLE = ROOT / "examples" / "rust"
RUST_BROKEN = ROOT / "testbed" / "wire" / "rust_broken"
#: The Debian packages holding every crate the Rust crates use (their sources land in /usr/share/cargo/registry).
RUST_CRATES = ("librust-serde-json-dev", "librust-base64-dev")


class MissingTool(RuntimeError):
    """A tool an example needs is not on this machine; the message says what to install."""


@dataclass(frozen=True)
class WireVariant:
    """A broken example: the command that serves it, and the clause its bug breaks (as the galleries' ``violates``)."""

    name: str
    language: str
    violates: str
    doc: str
    races: str | None = None
    also: tuple[str, ...] = field(default=())

    #: Its interleavings are another process's, not the kit's: a race replays by luck (tests/conftest.py, assert_reproduces).
    unsteered = True

    def command(self) -> str:
        return node_command(self.name) if self.language == "node" else rust_command(self.name)


GALLERY: list[WireVariant] = [
    WireVariant(name, language, violates, doc, races, also)
    for language in ("node", "rust")
    for name, violates, races, also, doc in (
        ("read-then-write-put", "BK-18", "CC-4", ("CC-1", "CC-4"), "put reads the version, then writes version + 1 in a second step"),
        ("glob-listing", "BK-12", None, ("SEC-1",), "list_by_prefix treats * and ? in the prefix as wildcards"),
        ("regex-listing", "BK-12", None, ("SEC-1",), "list_by_prefix treats the prefix as a regular expression"),
        # A listing that lags its writes skips tasks (TS-16) as well as letting creates pass the quota (TS-6): which
        # the quota test's check meets first is the server's timing.
        ("lagging-index", "TS-6", "CC-2", ("CC-1", "CC-2", "SEC-9", "TS-16"), "listings read a key index updated after the write returns"),
    )
]


def node_command(variant: str | None = None) -> str:
    node = shutil.which("node")
    if node is None:
        raise MissingTool("node is not installed: apt-get install nodejs (the Node example needs Node.js 18 or newer)")
    return f"{node} {NODE_BROKEN} {variant}" if variant else f"{node} {NODE_EXAMPLE}"


def rust_command(variant: str | None = None) -> str:
    if variant:
        return f"{build(RUST_BROKEN, 'conformance-rust-broken')} {variant}"
    return str(build(RUST_EXAMPLE, "conformance-rust-example"))


def cargo() -> str:
    installed = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cargo" / "bin" / "cargo"
    found = shutil.which("cargo") or (str(installed) if installed.exists() else None)
    if found is None:
        raise MissingTool("cargo is not installed: apt-get install cargo (or rustup), then the crates: apt-get install " + " ".join(RUST_CRATES))
    return found


def _cargo_env() -> dict[str, str]:
    """The environment with rustup's homes pinned to the user's: pytester moves HOME, and rustup's proxy then finds no toolchain."""
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    env = dict(os.environ)
    for variable, folder in (("RUSTUP_HOME", home / ".rustup"), ("CARGO_HOME", home / ".cargo")):
        if variable not in env and folder.exists():
            env[variable] = str(folder)
    return env


def build(crate: Path, binary: str) -> Path:
    """Build ``crate`` offline (a no-op when nothing changed) and return its release binary."""
    command = [cargo(), "build", "--offline", "--release", "--quiet"]
    done = subprocess.run(command, cwd=crate, capture_output=True, text=True, env=_cargo_env())
    if done.returncode != 0 and _install_crates():
        done = subprocess.run(command, cwd=crate, capture_output=True, text=True, env=_cargo_env())
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MissingTool(f"cargo build --offline in {crate.relative_to(ROOT)} failed ({last}); it needs: apt-get install {' '.join(RUST_CRATES)}")
    return crate / "target" / "release" / binary


def _install_crates() -> bool:
    """Install the Debian crate packages if this process may (root, apt-get); whether it did."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *RUST_CRATES],
                          env=env, capture_output=True).returncode == 0
