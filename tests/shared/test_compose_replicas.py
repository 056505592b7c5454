"""The compose file's `replicas` profile: Redis, a gateway that scales, a load balancer in front."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_config_validates() -> None:
    if shutil.which("docker-compose"):
        command = ["docker-compose"]
    else:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True) if shutil.which("docker") \
            else None
        command = ["docker", "compose"] if probe is not None and probe.returncode == 0 else []
    if command:
        done = subprocess.run([*command, "--profile", "replicas", "config", "-q"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"redis", "gateway", "lb"} <= set(services)
    gateway = services["gateway"]
    assert "ports" not in gateway, "a scaled service cannot publish one host port"
    assert gateway["environment"]["TURNOUT_SHARED_STATE__REDIS_URL"].startswith("redis://redis:")
    assert "redis" in gateway["depends_on"]
    lb = services["lb"]
    assert all(str(p).startswith("127.0.0.1:") for p in lb["ports"])
    mount = next(v for v in lb["volumes"] if "nginx" in v)
    conf = (ROOT / mount.split(":")[0]).read_text(encoding="utf-8")
    assert "server gateway:8080" in conf
