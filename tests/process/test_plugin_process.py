"""`announcer run` as a child process, with the test playing ExaBGP on its pipes."""

import re
import signal

import pytest

VIP = "192.0.2.10/32"
COMMAND = re.compile(
    r"^(enable-ack|show adj-rib out json|(announce|withdraw) (route|attributes) [ -~]+)$"
)


async def test_announces_once_healthy_and_withdraws_when_the_service_dies(
    exabgp, health_server, plugin_config
):
    fake = exabgp(plugin_config(health_server.url))
    await fake.start()
    await fake.wait_for_line(f"announce route {VIP} next-hop self")
    assert fake.lines()[0] == "enable-ack"
    await health_server.stop()
    await fake.wait_for_line(f"withdraw route {VIP}")
    assert all(COMMAND.match(line) for line in fake.lines()), fake.lines()


async def test_nothing_is_sent_before_the_first_verdict(exabgp, health_server, plugin_config):
    health_server.hang = True  # every probe times out: unknown, then down after `fall`
    fake = exabgp(plugin_config(health_server.url, rise=3, fall=3))
    await fake.start()
    await fake.wait_for_line(f"withdraw route {VIP}")
    assert not fake.lines("announce"), "announced a VIP whose check never passed"


async def test_unhealthy_at_start_withdraws_what_an_earlier_instance_left(
    exabgp, health_server, plugin_config
):
    health_server.status = 503
    fake = exabgp(plugin_config(health_server.url))
    await fake.start()
    await fake.wait_for_line(f"withdraw route {VIP}")
    assert not fake.lines("announce")


async def test_500_withdraws(exabgp, health_server, plugin_config):
    fake = exabgp(plugin_config(health_server.url))
    await fake.start()
    await fake.wait_for_line("announce")
    health_server.status = 500
    await fake.wait_for_line(f"withdraw route {VIP}")


async def test_a_probe_that_hangs_forever_leads_to_a_withdraw(exabgp, health_server, plugin_config):
    fake = exabgp(plugin_config(health_server.url))
    await fake.start()
    await fake.wait_for_line("announce")
    health_server.hang = True
    await fake.wait_for_line(f"withdraw route {VIP}", timeout=5)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_withdraws_every_vip_then_exits(exabgp, health_server, plugin_config, signum):
    vips = ["192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128"]
    config = plugin_config(health_server.url, vips=vips)
    config["vips"][2]["next_hop"] = "2001:db8:ffff::2"
    fake = exabgp(config)
    await fake.start()
    await fake.wait_for(
        lambda lines: (
            sum(len(re.findall(r"/(32|128)\b", x)) for x in lines if x.startswith("announce")) == 3
        )
    )
    fake.signal(signum)
    assert await fake.wait() == 0
    withdrawn = " ".join(fake.lines("withdraw"))
    for vip in vips:
        assert vip in withdrawn


async def test_exabgp_errors_are_retried(exabgp, health_server, plugin_config):
    failures = {"left": 2}

    def fail_twice(line: str) -> bool:
        if line.startswith("announce") and failures["left"]:
            failures["left"] -= 1
            return True
        return False

    fake = exabgp(plugin_config(health_server.url), fail_when=fail_twice)
    await fake.start()
    await fake.wait_for(lambda lines: len([x for x in lines if x.startswith("announce")]) == 3)
    assert failures["left"] == 0


async def test_neighbor_up_restates_the_routes(exabgp, health_server, plugin_config):
    fake = exabgp(plugin_config(health_server.url))
    await fake.start()
    await fake.wait_for_line("announce")
    await fake.neighbor("down")
    await fake.neighbor("up")
    await fake.wait_for(lambda lines: len([x for x in lines if x.startswith("announce")]) == 2)


async def test_malformed_lines_from_exabgp_are_ignored(exabgp, health_server, plugin_config):
    fake = exabgp(plugin_config(health_server.url))
    await fake.start()
    for garbage in ['{"type": "state", "neighbor": 1', "{}", "bogus words", "\x00\x01"]:
        await fake.send(garbage)
    await fake.wait_for_line("announce")
    await health_server.stop()
    await fake.wait_for_line("withdraw")
    assert "malformed line from ExaBGP" in fake.stderr()


async def test_stdin_closed_means_exabgp_is_gone(exabgp, health_server, plugin_config):
    fake = exabgp(plugin_config(health_server.url))
    await fake.start()
    await fake.wait_for_line("announce")
    await fake.close_stdin()
    assert await fake.wait() == 0
    assert not fake.lines("withdraw")


async def test_stdout_to_dev_null_and_stdin_from_it_run_and_end(tmp_path, plugin_config):
    """`announcer run < /dev/null > /dev/null` (an operator trying a configuration): the
    plugin starts, sees its input end, and exits cleanly; it does not abort."""
    import asyncio
    import sys

    import yaml

    path = tmp_path / "announcer.yaml"
    path.write_text(yaml.safe_dump(plugin_config("http://127.0.0.1:9/health")))
    with open("/dev/null", "rb") as devnull_in, open("/dev/null", "wb") as devnull_out:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "announcer",
            "run",
            "--config",
            str(path),
            stdin=devnull_in,
            stdout=devnull_out,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(child.communicate(), 20)
    assert child.returncode == 0, err.decode()[-2000:]
    assert b"stdin closed" in err


async def test_shutdown_message_ends_the_plugin(exabgp, health_server, plugin_config):
    fake = exabgp(plugin_config(health_server.url))
    await fake.start()
    await fake.wait_for_line("announce")
    await fake.send('{ "exabgp": "5.0.0", "type": "notification", "notification": "shutdown" }')
    assert await fake.wait() == 0


async def test_runs_with_acks_off(exabgp, health_server, plugin_config):
    config = plugin_config(health_server.url)
    config["exabgp"] = {"ack": "off"}
    fake = exabgp(config, ack=False)
    await fake.start()
    await fake.wait_for_line("announce")
    assert "enable-ack" not in fake.lines()
    fake.signal(signal.SIGTERM)
    assert await fake.wait() == 0
    assert fake.lines("withdraw")


async def test_auto_ack_falls_back_when_exabgp_never_answers(exabgp, health_server, plugin_config):
    config = plugin_config(health_server.url)
    config["exabgp"] = {"ack": "auto", "ack_timeout": "300ms"}
    fake = exabgp(config, ack=False)
    await fake.start()
    await fake.wait_for_line("announce")
    assert "running without acks" in fake.stderr()


async def test_invalid_config_exits_2_and_writes_nothing_to_stdout(exabgp, tmp_path):
    fake = exabgp({"checks": {}, "vips": [{"prefix": "192.0.2.0/33", "checks": ["x"]}]})
    await fake.start()
    assert await fake.wait() == 2
    assert fake.lines() == []
    assert "vips[0].prefix" in fake.stderr()
