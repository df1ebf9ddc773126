"""The `announcer` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from healthchecks import ProbeResult, build_probe

from . import __version__
from .config import Config, ConfigError, load_config

# asyncio, the probes and the plugin are imported by the commands that use them: `announcer
# check` of a thousand VIPs is asked to answer in 0.2 s, and imports were half of that.

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_API = "http://127.0.0.1:9180"


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.issues)} error(s)", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def cmd_check(args: argparse.Namespace) -> int:
    from .secrets import SecretError, read_secret, read_token

    config = _load(args.config)
    # the files a running host needs, as this user can use them (ExecStartPre runs as exabgp,
    # in the unit's sandbox)
    problems = []
    for index, neighbor in enumerate(config.bgp.neighbors if config.bgp else []):
        if neighbor.password_file is not None:
            try:
                read_secret(neighbor.password_file, f"bgp.neighbors[{index}].password_file")
            except SecretError as exc:
                problems.append(str(exc))
    if config.api.token_file is not None:
        try:
            read_token(config.api.token_file)
        except SecretError as exc:
            problems.append(str(exc))
    if config.drain.state_file is not None:
        problem = _unwritable_folder(config.drain.state_file)
        if problem:
            problems.append(f"drain.state_file: {problem}")
    if problems:
        print(f"{args.config}: invalid configuration:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.config}: OK ({len(config.vips)} VIPs, {len(config.checks)} checks)")
    return EXIT_OK


def _unwritable_folder(path: str) -> str | None:
    """Why this user cannot create files beside `path` (by trying: permissions, read-only
    mounts and sandboxes all count), or None."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".announcer-check-"):
            pass
    except OSError as exc:
        return (
            f"cannot write in {folder} ({exc.strerror}): a drain would be kept in memory only "
            "(the shipped unit gives the plugin /var/lib/announcer)"
        )
    return None


def cmd_plan(args: argparse.Namespace) -> int:
    from .render.plan import render_plan

    print(render_plan(_load(args.config)), end="")
    return EXIT_OK


async def _probe_all(config: Config) -> dict[str, ProbeResult]:
    import asyncio

    from healthchecks import run_probe

    async def one(name: str) -> tuple[str, ProbeResult]:
        spec = config.checks[name]
        probe = build_probe(spec.probe)
        try:
            return name, await run_probe(probe, spec.timeout)
        finally:
            await probe.close()

    return dict(await asyncio.gather(*(one(name) for name in config.checks)))


def cmd_probe(args: argparse.Namespace) -> int:
    import asyncio

    config = _load(args.config)
    results = asyncio.run(_probe_all(config))
    if args.json:
        print(
            json.dumps(
                {
                    name: {
                        "ok": r.ok,
                        "reason": r.reason,
                        "detail": r.detail,
                        "duration_s": r.duration_s,
                        "capacity": r.capacity,
                    }
                    for name, r in results.items()
                },
                indent=2,
            )
        )
    else:
        width = max(len(name) for name in results)
        print(f"{'CHECK':<{width}}  RESULT  {'REASON':<20} {'TIME':>9}  DETAIL")
        for name, r in results.items():
            verdict = "ok" if r.ok else "FAIL"
            print(
                f"{name:<{width}}  {verdict:<6}  {r.reason:<20} "
                f"{r.duration_s * 1000:>7.1f}ms  {r.detail}"
            )
    return EXIT_OK if all(r.ok for r in results.values()) else EXIT_FAILED


def run_event_loop(main: Coroutine[Any, Any, int], choice: str) -> int:
    """uvloop when it is there (it halves the plugin's CPU with a thousand checks), else asyncio."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit("uvloop is not installed") from None
        else:
            return uvloop.run(main)
    import asyncio

    return asyncio.run(main)


def cmd_run(args: argparse.Namespace) -> int:
    from .app import run_plugin
    from .logs import configure_logging

    configure_logging(args.log_format, args.log_level)
    config = _load(args.config)
    _raise_open_file_limit()
    return run_event_loop(run_plugin(config, config_path=args.config), args.loop)


def _raise_open_file_limit() -> None:
    """Each HTTP check keeps a connection open: a thousand checks need more than the 1024
    files a service gets by default (systemd's soft limit; the hard limit is far higher)."""
    import contextlib
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        # if refused, probes beyond the limit fail with a clear reason; nothing else to do
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def cmd_exabgp_config(args: argparse.Namespace) -> int:
    from .render.exabgp_conf import default_plugin_command, render_exabgp_config

    config = _load(args.config)
    command = (
        args.plugin_command.split() if args.plugin_command else default_plugin_command(args.config)
    )
    try:
        print(render_exabgp_config(config, command), end="")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _write_rendered(args: argparse.Namespace, render: Callable[[Config], str]) -> int:
    """A daemon's configuration rendered from announcer.yaml, to `--output` or stdout."""
    config = _load(args.config)
    try:
        text = render(config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="")
    return EXIT_OK


def cmd_keepalived_config(args: argparse.Namespace) -> int:
    from .render.keepalived_conf import render_keepalived_config

    return _write_rendered(args, render_keepalived_config)


def cmd_bfd_config(args: argparse.Namespace) -> int:
    from .render.bfdd_conf import render_bfd_config

    return _write_rendered(args, lambda config: render_bfd_config(config, args.config))


def _client(args: argparse.Namespace) -> Any:
    from .api.client import ApiClient

    url, token_file = args.api, args.token_file
    if args.config:
        config = _load(args.config)
        url = url or f"http://{config.api.listen}"
        token_file = token_file or config.api.token_file
    token = None
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(f"error: cannot read token file {token_file}: {exc.strerror}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
    return ApiClient(url or DEFAULT_API, token)


def _call(fn: Any, *fn_args: Any) -> Any:
    from .api.client import ApiError

    try:
        return fn(*fn_args)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None


def cmd_status(args: argparse.Namespace) -> int:
    from .api.client import ApiError, ApiStarting

    try:
        status = _client(args).status()
    except ApiStarting as starting:
        if args.json:
            print(json.dumps(starting.progress, indent=2))
        else:
            pending = starting.progress.get("pending", {})
            print(
                "starting: no decisions yet "
                f"({pending.get('checks_without_verdict')} checks without a verdict, "
                f"{pending.get('vips_undecided')} VIPs undecided)"
            )
        return EXIT_FAILED
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    print(f"{'VIP':<24} {'DESIRED':<10} {'ACKED':<10} {'REASON':<20} DRAIN")
    for vip in status["vips"]:
        drain = vip["drain"]["reason"] if vip["drain"] else ""
        print(
            f"{vip['prefix']:<24} {vip['desired']:<10} {vip['acknowledged']:<10} "
            f"{vip['reason']:<20} {drain}"
        )
    print()
    print(f"{'CHECK':<20} {'STATE':<8} LAST RESULT")
    for name, check in status["checks"].items():
        last = check["last_result"]
        summary = f"{last['reason']} ({last['detail']}, {last['age_s']}s ago)" if last else "-"
        print(f"{name:<20} {check['state']:<8} {summary}")
    neighbors = ", ".join(f"{peer} {state}" for peer, state in status["neighbors"].items())
    print(f"\nneighbors: {neighbors or 'none reported yet'}")
    bfd = status.get("bfd")
    if bfd:
        peers = ", ".join(f"{peer} {state}" for peer, state in bfd["peers"].items())
        reachable = "" if bfd["bfdd_reachable"] else " (bfdd unreachable)"
        print(f"bfd: {peers}{reachable}")
    if status.get("withdrawing"):
        print("withdrawn, not in this configuration: " + ", ".join(status["withdrawing"]))
    stalls = status.get("stalls", {})
    if stalls.get("count"):
        print(f"plugin stalls: {stalls['count']} (last {stalls['last_s']}s)")
    for peer, views in (status.get("fleet") or {}).items():
        unknown = {family: why for family, why in views.items() if why != "known"}
        if unknown:
            reasons = "; ".join(f"{family}: {why}" for family, why in unknown.items())
            print(f"fleet view from {peer} unknown ({reasons}): decided as without a fleet")
    for peer, why in (status.get("withheld") or {}).items():
        print(f"withheld from {peer}: {why} (nothing is announced to it)")
    drain_state = status.get("drain_state")
    if drain_state and not drain_state.get("saved", True):
        print(f"drains NOT saved, in memory only: {drain_state.get('error')}")
    return EXIT_OK


def _ask_drain(client: Any, args: argparse.Namespace) -> Any:
    """POST the drain; with --wait-turn, ask again every second while the budget refuses it
    (409), until --timeout. Hosts asking at the same instant are told apart by the plugin."""
    from .api.client import ApiError

    reason = args.reason or "drained from the CLI"
    deadline = time.monotonic() + args.timeout
    waiting = False
    while True:
        try:
            return client.drain(args.vips, reason, not args.no_persist, args.force)
        except ApiError as exc:
            if exc.status != 409 or not isinstance(exc.answer, dict):
                print(f"error: {exc}", file=sys.stderr)
                raise SystemExit(EXIT_FAILED) from None
            refused = exc.answer.get("refused", {})
            if args.wait_turn and time.monotonic() + 1.0 < deadline:
                if not waiting:
                    print("waiting for a turn: " + _refusals(refused), file=sys.stderr)
                    waiting = True
                time.sleep(1.0)
                continue
            print("error: drain refused: " + _refusals(refused), file=sys.stderr)
            print("(--wait-turn waits for the budget; --force drains anyway)", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None


def _refusals(refused: dict[str, str]) -> str:
    return "; ".join(f"{vip}: {why}" for vip, why in refused.items())


def cmd_drain(args: argparse.Namespace) -> int:
    client = _client(args)
    result = _ask_drain(client, args)
    print("drained: " + ", ".join(result["drained"]))
    if result.get("warning"):
        print(f"warning: {result['warning']}", file=sys.stderr)
    if args.wait:
        pending = _call(client.wait_drained, result["drained"], args.timeout)
        if pending:
            print(
                f"error: still announced after {args.timeout:g}s: {', '.join(pending)}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        print("withdrawn: " + ", ".join(result["drained"]))
    return EXIT_OK


def cmd_fleet(args: argparse.Namespace) -> int:
    document = _call(_client(args).fleet)
    if args.json:
        print(json.dumps(document, indent=2))
        return EXIT_OK
    if not document.get("enabled"):
        print(f"fleet view off: {document.get('why')}")
        return EXIT_OK
    print(f"this host: {document['host']}  (tag {document['community']})")
    for peer, router in document["routers"].items():
        views = ", ".join(f"{family}: {view}" for family, view in router["view"].items())
        print(f"router {peer}: {views}")
    wanted = set(args.vips)
    for vip in document["vips"]:
        if wanted and vip["prefix"] not in wanted:
            continue
        serving = vip["others_serving"]
        print(
            f"\n{vip['prefix']}  this host: {vip['reason']}; others serving normally: "
            f"{'unknown' if serving is None else serving}"
            f"  (min_serving {vip['min_serving'] or '-'}, "
            f"drain_min_serving {vip['drain_min_serving'] or '-'})"
        )
        for peer, seen in vip["routers"].items():
            if seen["view"] != "known":
                print(f"  {peer:<18} unknown: {seen['view']}")
                continue
            hosts = ", ".join(
                f"{h['host']}{' (self)' if h['self'] else ''} {h['mark']}{_via(h)}"
                for h in seen["hosts"]
            )
            print(f"  {peer:<18} {hosts or 'nobody'}")
    return EXIT_OK


def cmd_undrain(args: argparse.Namespace) -> int:
    result = _call(_client(args).undrain, args.vips)
    print("undrained: " + ", ".join(result["undrained"]))
    return EXIT_OK


def cmd_slots(args: argparse.Namespace) -> int:
    document = _call(_client(args).slots)
    if args.json:
        print(json.dumps(document, indent=2))
        return EXIT_OK
    if not document.get("enabled"):
        print("stable next hops off (no stable_next_hops: section)")
        return EXIT_OK
    keepalived = {True: "running", False: "NOT RUNNING", None: "not watched"}
    print(
        f"this host may hold slots: {'yes' if document['may_hold'] else 'no'}; keepalived "
        f"{keepalived[document['keepalived_running']]}; "
        f"{'preempt' if document['preempt'] else 'nopreempt'}"
    )
    elsewhere = {True: "yes", False: "no", None: "unknown (no fleet view)"}
    for slot in document["slots"]:
        print(
            f"  {slot['address']:<16} vrid {slot['vrid']:<3} priority {slot['priority']:<3} "
            f"{'HELD here' if slot['held'] else 'not held here':<14} "
            f"backed by another host: {elsewhere[slot['backed_elsewhere']]}"
        )
    return EXIT_OK


def cmd_release_slot(args: argparse.Namespace) -> int:
    answer = _call(_client(args).release_slots, args.slots, args.force)
    print("handed over: " + ", ".join(answer["released"]))
    return EXIT_OK


def _via(path: dict[str, Any]) -> str:
    """A path's next hop where it is not the host itself (a slot, with stable next hops)."""
    next_hop = path.get("next_hop")
    return f" via {next_hop}" if next_hop and next_hop != path["host"] else ""


def cmd_reload(args: argparse.Namespace) -> int:
    _call(_client(args).reload)
    print("reloaded")
    return EXIT_OK


def cmd_lab(args: argparse.Namespace) -> int:
    from .lab.cli import run_lab_command

    return run_lab_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="announcer", description="BGP/ECMP anycast announcer (ExaBGP process plugin)"
    )
    parser.add_argument("--version", action="version", version=f"announcer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("-c", "--config", required=required, help="configuration file (YAML)")

    p = sub.add_parser("run", help="run as ExaBGP's process plugin (commands on stdout)")
    with_config(p)
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    p.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop (default: uvloop when installed)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="validate the configuration")
    with_config(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("plan", help="print the ExaBGP commands for each VIP state")
    with_config(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("probe", help="run every check once and print the results")
    with_config(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("exabgp-config", help="print an exabgp.conf for this plugin")
    with_config(p)
    p.add_argument("--plugin-command", help="command ExaBGP runs (default: this announcer)")
    p.set_defaults(func=cmd_exabgp_config)

    p = sub.add_parser("bfd-config", help="print FRR bfdd's configuration for the bfd: neighbors")
    with_config(p)
    p.add_argument("-o", "--output", help="write it to this file instead of stdout")
    p.set_defaults(func=cmd_bfd_config)

    p = sub.add_parser(
        "keepalived-config", help="print keepalived's configuration for stable_next_hops:"
    )
    with_config(p)
    p.add_argument("-o", "--output", help="write it to this file instead of stdout")
    p.set_defaults(func=cmd_keepalived_config)

    for name, func, text in (
        ("status", cmd_status, "show the running plugin's state"),
        ("fleet", cmd_fleet, "show who announces each VIP, as the routers report it"),
        ("drain", cmd_drain, "drain VIPs (all when none given)"),
        ("undrain", cmd_undrain, "undrain VIPs (all when none given)"),
        ("reload", cmd_reload, "reload the running plugin's configuration file"),
        ("slots", cmd_slots, "show the stable next hops' slots this host backs and holds"),
        (
            "release-slot",
            cmd_release_slot,
            "hand slots this host holds to their other backers (rebalance)",
        ),
    ):
        p = sub.add_parser(name, help=text)
        with_config(p, required=False)
        p.add_argument("--api", help=f"API base URL (default: from the config, or {DEFAULT_API})")
        p.add_argument("--token-file", help="bearer token file (default: from the config)")
        if name in ("status", "fleet", "slots"):
            p.add_argument("--json", action="store_true")
        if name == "release-slot":
            p.add_argument("slots", nargs="+", metavar="SLOT", help="a slot's address")
            p.add_argument(
                "--force",
                action="store_true",
                help="even when no other host is seen to back it (fleet: view)",
            )
        if name not in ("status", "reload", "slots", "release-slot"):
            p.add_argument("vips", nargs="*", metavar="VIP")
        if name == "drain":
            p.add_argument("--reason", default="")
            p.add_argument(
                "--wait", action="store_true", help="return once every drained VIP is withdrawn"
            )
            p.add_argument(
                "--timeout",
                type=float,
                default=120.0,
                help="how long --wait and --wait-turn wait (seconds)",
            )
            p.add_argument(
                "--wait-turn",
                action="store_true",
                help="while the drain budget refuses the drain, ask again until it allows it",
            )
            p.add_argument("--force", action="store_true", help="drain even past the drain budget")
            p.add_argument(
                "--no-persist",
                action="store_true",
                help="do not keep this drain across plugin restarts",
            )
        p.set_defaults(func=func)

    from .lab.cli import add_lab_parser

    add_lab_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
