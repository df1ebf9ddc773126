"""The benchmark report renders from raw results (the lab run itself is bench/, not a test)."""

import pytest

from bench.report import render


def rounds(seconds: float, n: int = 4):
    return [
        {
            "signal": "SIGTERM" if i % 2 == 0 else "SIGKILL",
            "failover_s": seconds + i / 100,
            "recovery_s": 0.5,
            "lost": 3,
            "t0": 0.0,
            "t1": 1.0,
        }
        for i in range(n)
    ]


RESULTS = {
    "machine": "2 x test CPU",
    "command": "./scripts/bench.sh --quick",
    "quick": True,
    "started": "2026-01-01 00:00 UTC",
    "failover": {
        "announcer": {
            "rounds": rounds(0.27),
            "drains": [{"fib_s": 0.4, "lost": 0}],
            "breakdown": {"detect": 0.006, "confirm": 0.2, "exabgp": 0.003, "router": 0.06},
        },
        "healthcheck-tuned": {
            "rounds": rounds(2.6),
            "drains": [{"fib_s": 0.1, "lost": 0}],
            "breakdown": None,
        },
        "healthcheck-default": {"rounds": rounds(6.5), "drains": [], "breakdown": None},
    },
    "scale": {
        "announcer": [
            {
                "vips": 1000,
                "all_in_fib_s": 3.0,
                "cpu": 0.133,
                "rss_mib": 69.0,
                "exabgp_cpu": 0.15,
                "updates_per_min": 0.0,
                "processes": 1,
            }
        ],
        "healthcheck-tuned": [{"vips": 1000, "error": "not run"}],
    },
    "jitter": {
        "seconds": 30.0,
        "updates": 0,
        "fib_samples_missing": 0,
        "max_delay_s": 0.25,
        "timeout_s": 0.5,
    },
}


def test_report_has_every_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    text = render(RESULTS, tmp_path)
    assert "| announcer (defaults" in text and "0.285 s" in text  # max of 0.27..0.30
    assert "| announcer | 1000 | 3.0 s | 13.3% | 69 MiB |" in text
    assert "| healthcheck-tuned | 1000 | not run |" in text
    assert "detect 6 ms" in text
    assert "| failover median <= 0.3 s | 0.285 s | yes |" in text
    assert "| 1000 VIPs: CPU <= 15% of one core | 13.3% | yes |" in text
    assert "| no false withdrawal in 30 s of jitter | 0 UPDATEs | yes |" in text
    assert (tmp_path / "failover.png").stat().st_size > 1000
    assert (tmp_path / "cpu-vs-vips.png").stat().st_size > 1000
