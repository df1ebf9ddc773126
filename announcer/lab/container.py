"""Entry point of an LB container in deploy/lab/compose.yaml: the same host setup as the
namespace lab (plugin config, nginx or HAProxy, ExaBGP), inside one container."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .lab import Lab
from .routers import frr_argv
from .topology import LAB_BGP_SECRET, VIP_V4, VIP_V6
from .workspace import BIN, render_template, render_with_announcer, write_secrets

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    name = (argv or sys.argv[1:])[0]
    hosts = int(os.environ.get("LAB_HOSTS", "3"))
    lab = Lab(Path("/run/lab"), hosts=hosts)
    host = lab.host(name)
    d = Path("/run/lab") / name
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    for vip in (VIP_V4, VIP_V6):
        subprocess.run(["ip", "addr", "replace", vip, "dev", "lo"], check=True)
    listen = {"listen_v4": "0.0.0.0:80", "listen_v6": "[::]:80"}
    if host.kind == "nginx":
        (d / "nginx.conf").write_text(render_template("nginx-lb.conf", dir=d, name=name, **listen))
        subprocess.Popen(["nginx", "-c", str(d / "nginx.conf")])
    else:
        (d / "backends.conf").write_text(render_template("nginx-backends.conf", dir=d, name=name))
        (d / "haproxy.cfg").write_text(render_template("haproxy.cfg", dir=d, **listen))
        subprocess.Popen(["nginx", "-c", str(d / "backends.conf")])
        subprocess.Popen(["haproxy", "-db", "-f", str(d / "haproxy.cfg")])
    write_secrets(d, name, LAB_BGP_SECRET)
    (d / "announcer.yaml").write_text(yaml.safe_dump(lab.announcers.config(host), sort_keys=False))
    bfdd = lab.announcers.bfdd_dir(name)
    bfdd.mkdir(exist_ok=True)
    (bfdd / "bfdd.conf").write_text(render_with_announcer("bfd-config", d / "announcer.yaml"))
    # as in the namespace lab: FRR's own user runs bfdd, in a folder that belongs to it
    shutil.chown(bfdd, "frr", "frr")
    shutil.chown(bfdd / "bfdd.conf", "frr", "frr")
    subprocess.Popen(frr_argv("bfdd", bfdd))
    (d / "exabgp.conf").write_text(render_with_announcer("exabgp-config", d / "announcer.yaml"))
    env = {
        **os.environ,
        "exabgp.api.cli": "false",
        "exabgp.daemon.user": "root",
        "exabgp.log.destination": "stdout",
    }
    os.execve(str(BIN / "exabgp"), [str(BIN / "exabgp"), "server", str(d / "exabgp.conf")], env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
