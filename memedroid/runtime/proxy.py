"""nginx in front of the app (`memedroid proxy`, `make run-proxy`): `deploy/nginx.conf` with
its {{fields}} filled in from the settings, and nginx run in the foreground on it."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from memedroid.errors import ConfigError
from memedroid.settings import ROOT, Settings
from memedroid.storage import open_storage

TEMPLATE = ROOT / "deploy" / "nginx.conf"
MODULES = Path("/usr/lib/nginx/modules")
BROTLI = MODULES / "ngx_http_brotli_filter_module.so"  # Debian's libnginx-mod-http-brotli-filter
FIELD = re.compile(r"\{\{(\w+)\}\}")
COMPRESSED = "application/json application/problem+json text/css text/javascript image/svg+xml"


@dataclass(frozen=True)
class Proxy:
    """One nginx: where it listens, the app it fronts, and its own folder (configuration, pid,
    temporary files, cache)."""

    listen: str
    upstream: str
    folder: Path
    media: Path | None
    max_request_bytes: int
    max_upload_bytes: int
    access_log: str = "/dev/stdout"  # a path, or "off"

    @classmethod
    def from_settings(cls, settings: Settings, listen: str, folder: Path | None = None) -> Proxy:
        host, _, port = settings.http_bind.rpartition(":")
        upstream = settings.http_bind if settings.http_bind.startswith("unix:") else f"{_reachable(host)}:{port}"
        return cls(
            listen=listen,
            upstream=upstream,
            folder=folder or settings.var_dir / "proxy",
            media=open_storage(settings).media_folder(),
            max_request_bytes=settings.max_request_bytes,
            max_upload_bytes=settings.max_upload_bytes,
        )

    def render(self) -> str:
        brotli = BROTLI.exists()
        fields = {
            "user": f"user {worker_user()};" if os.geteuid() == 0 else "",  # else its workers run as whoever runs it
            "folder": str(self.folder),
            "modules": f"load_module {BROTLI};" if brotli else "",
            "brotli": f"brotli on;\n    brotli_types {COMPRESSED};" if brotli else "",
            "access_log": "off" if self.access_log == "off" else f"{self.access_log} memedroid",
            "upstream": self.upstream,
            "listen": self.listen,
            "max_request_bytes": str(self.max_request_bytes),
            # The file, and the form fields around it (bounded like any request body).
            "max_upload_body": str(self.max_upload_bytes + self.max_request_bytes),
            "media": str(self.media or self.folder / "no-media"),
        }
        return FIELD.sub(lambda found: fields[found[1]], TEMPLATE.read_text())

    def write(self) -> Path:
        """The configuration, written into the folder; its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "nginx.conf"
        path.write_text(self.render())
        return path

    def command(self) -> list[str]:
        """nginx in the foreground on the written configuration."""
        nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
        if nginx is None:
            raise ConfigError("nginx is not installed: run `make run-proxy`, which installs it (or apt-get install nginx)")
        config = self.write()
        return [nginx, "-p", str(self.folder), "-c", str(config), "-e", "stderr", "-g", "daemon off;"]


def worker_user() -> str:
    """The unprivileged user (and group) nginx's workers run as when it is started as root:
    Debian's `www-data`, else `nobody`. They read the media files (and every folder above them
    must let them through)."""
    for user, group in (("www-data", "www-data"), ("nobody", "nogroup")):
        try:
            pwd.getpwnam(user)
            grp.getgrnam(group)
        except KeyError:
            continue
        return f"{user} {group}"
    raise ConfigError("no unprivileged user to run nginx's workers as (www-data or nobody)")


def _reachable(host: str) -> str:
    """Where to reach a server bound to `host` from this machine."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
