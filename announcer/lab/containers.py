"""deploy/lab/compose.yaml brought up with podman alone: the images built from a base given as
an argument (a registry's debian:bookworm-slim, or a local one made with debootstrap), the
networks and the containers with their fixed addresses.

    python -m announcer.lab.containers up [--base IMAGE]  # `make deb` first: the LB image uses it
    python -m announcer.lab.containers down

Debian 12's podman-compose (1.0.3) cannot give a container a fixed address on a network (it
reads `networks: {lan: {ipv4_address: ...}}` as a list of names), and the lab needs them all:
this reads the same file and runs what it describes. Docker's compose runs the file as it is.
The podman options that a machine like the CI's needs (runc with cgroupfs; explicit ulimits,
which podman otherwise sets beyond what the kernel allows) are given on every command.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .workspace import deploy_dir

__all__ = ["commands_down", "commands_up", "main"]

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
_VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")
LABEL = "org.announcer.lab=1"  # on every image built here: `down --images` removes them all


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    """`${NAME:-default}` as compose reads it, in every string of the file."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: env.get(m.group(1)) or m.group(2), value)
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    return value


def load(path: Path, base: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if base:
        env["LAB_BASE"] = base
    return _substitute(yaml.safe_load(path.read_text()), env)  # type: ignore[no-any-return]


def _order(services: Mapping[str, Any]) -> list[str]:
    """Services after the ones they depend on."""
    done: list[str] = []
    while len(done) < len(services):
        for name, service in services.items():
            if name not in done and all(d in done for d in service.get("depends_on", [])):
                done.append(name)
    return done


def commands_up(compose: Mapping[str, Any], folder: Path) -> list[list[str]]:
    """Every podman command that brings the file's topology up, in order."""
    project = compose["name"]
    out: list[list[str]] = []
    built: set[str] = set()
    for service in compose["services"].values():
        build, image = service.get("build"), service.get("image")
        if build is None or image in built:
            continue
        built.add(image)
        context = (folder / build["context"]).resolve()
        args = [f"--build-arg={k}={v}" for k, v in build.get("args", {}).items()]
        dockerfile = str(context / build["dockerfile"])
        build_argv = [*PODMAN, "build", "--network", "host", "--label", LABEL, *ULIMITS, *args]
        build_argv += ["-t", image]
        out.append([*build_argv, "-f", dockerfile, str(context)])
    for name, network in compose["networks"].items():
        command = [*PODMAN, "network", "create"]
        for subnet in network["ipam"]["config"]:
            if ":" in subnet["subnet"]:
                command.append("--ipv6")
            command += ["--subnet", subnet["subnet"], "--gateway", subnet["gateway"]]
        out.append([*command, f"{project}_{name}"])
    for name in _order(compose["services"]):
        service = compose["services"][name]
        command = [*PODMAN, "run", "-d", "--name", f"{project}_{name}", *ULIMITS]
        for network, addresses in service["networks"].items():
            ips = ",".join(f"ip={addresses[k]}" for k in ("ipv4_address", "ipv6_address"))
            command += ["--network", f"{project}_{network}:{ips}"]
        for capability in service.get("cap_add", []):
            command += ["--cap-add", capability]
        for key, value in service.get("sysctls", {}).items():
            command += ["--sysctl", f"{key}={value}"]
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            mount = f"{(folder / source).resolve()}:{target}"
            command += ["-v", mount + (f":{mode[0]}" if mode else "")]
        out.append([*command, service["image"], *service.get("command", [])])
    return out


def commands_down(compose: Mapping[str, Any], images: bool = False) -> list[list[str]]:
    """Remove the containers and networks; with `images`, every image built here too."""
    project = compose["name"]
    names = [f"{project}_{name}" for name in compose["services"]]
    out = [
        [*PODMAN, "rm", "-f", "-t", "2", *names],
        [*PODMAN, "network", "rm", "-f", *(f"{project}_{n}" for n in compose["networks"])],
    ]
    if images:
        built = sorted({s["image"] for s in compose["services"].values() if "build" in s})
        out += [
            [*PODMAN, "rmi", "-f", *built],
            [*PODMAN, "image", "prune", "-f", "--filter", f"label={LABEL}"],
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--base", help="the image every lab image is built from (LAB_BASE)")
    parser.add_argument("-f", "--file", type=Path, default=None, help="the compose file")
    parser.add_argument("--images", action="store_true", help="down: remove the lab's images too")
    args = parser.parse_args(argv)
    path = args.file or deploy_dir() / "compose.yaml"
    compose = load(path, args.base)
    if args.action == "up":
        for command in commands_up(compose, path.parent):
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    else:
        for command in commands_down(compose, args.images):
            subprocess.run(command, check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
