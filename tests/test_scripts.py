"""The setup scripts: `scripts/setup` installs what running needs, `scripts/setup --dev` (what
`scripts/test` and CI run) also what testing needs, and a locked or failing apt never stops setup.

The scripts run for real, from a copy of `scripts/`; only the outside tools they call (python's
venv and pip, apt-get, id) are stand-ins on PATH that record what they were asked to do."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
LOCKED = "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)"
OFFLINE = "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving"

# apt-get as the test asks: $STUB_APT is "ok", "locked:N" (the first N calls find the lock held) or
# "offline"; `install` puts an executable at $STUB_CHROMIUM, as Debian's package would.
APT_GET = f"""#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG/apt.log"
n=$(wc -l < "$STUB_LOG/apt.log")
case "$STUB_APT" in
    locked:*) if [ "$n" -le "${{STUB_APT#locked:}}" ]; then echo "{LOCKED}" >&2; exit 100; fi ;;
    offline) echo "{OFFLINE}" >&2; exit 100 ;;
esac
if [[ " $* " == *" install "* ]]; then printf '#!/bin/sh\\n' > "$STUB_CHROMIUM"; chmod +x "$STUB_CHROMIUM"; fi
"""
# python3 -m venv .venv makes a .venv/bin/python whose pip only records its arguments.
PYTHON = """#!/usr/bin/env bash
[ "$*" = "-m venv .venv" ] || exit 3
mkdir -p .venv/bin
printf '#!/usr/bin/env bash\\necho "$*" >> "$STUB_LOG/pip.log"\\n' > .venv/bin/python
chmod +x .venv/bin/python
"""


@pytest.fixture
def sandbox(tmp_path):
    """A clone's scripts/ with stand-in tools; returns run(*args, **env) -> (process, logs)."""
    repo, stubs, logs = tmp_path / "repo", tmp_path / "stubs", tmp_path / "logs"
    shutil.copytree(SCRIPTS, repo / "scripts")
    stubs.mkdir()
    logs.mkdir()
    for name, text in {"apt-get": APT_GET, "python3": PYTHON, "id": "#!/bin/sh\necho 0\n"}.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    chromium = tmp_path / "chromium"

    def run(*args, **env):
        outside = {k: v for k, v in os.environ.items() if k != "DIGITREC_APT_WAIT"}  # the default wait is tested
        env = {**outside, "PATH": f"{stubs}:{os.environ['PATH']}", "PYTHON": str(stubs / "python3"),
               "STUB_LOG": str(logs), "STUB_CHROMIUM": str(chromium), "DIGITREC_CHROMIUM": str(chromium),
               "STUB_APT": "ok", **env}
        proc = subprocess.run(["bash", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60,
                              check=False)
        read = {name: (logs / f"{name}.log").read_text().splitlines() if (logs / f"{name}.log").exists() else []
                for name in ("apt", "pip")}
        return proc, read, chromium

    return run


def test_setup_for_running_installs_no_test_tools_and_no_chromium(sandbox):
    proc, logs, chromium = sandbox("scripts/setup")
    assert proc.returncode == 0, proc.stderr
    assert logs["pip"] == ["-m pip install --quiet --upgrade pip", "-m pip install --quiet torch==2.13.0 -e ."]
    assert logs["apt"] == [] and not chromium.exists() and proc.stderr == ""


def test_setup_for_testing_installs_dev_extras_and_debians_chromium(sandbox):
    proc, logs, chromium = sandbox("scripts/setup", "--dev")
    assert proc.returncode == 0, proc.stderr
    assert logs["pip"][-1] == "-m pip install --quiet torch==2.13.0 -e .[dev]"
    assert [line.split()[-1] for line in logs["apt"]] == ["update", "chromium"]
    assert "install -y --no-install-recommends chromium" in logs["apt"][1]
    assert chromium.exists() and proc.stderr == ""
    # Run again with Chromium there: nothing more to ask of apt.
    assert sandbox("scripts/setup", "--dev")[1]["apt"] == logs["apt"]


def test_a_bad_argument_is_one_line(sandbox):
    proc, logs, _ = sandbox("scripts/setup", "--devv")
    assert proc.returncode == 2 and proc.stderr == "usage: scripts/setup [--dev]\n" and logs["pip"] == []


def test_a_locked_apt_is_waited_for(sandbox):
    proc, logs, chromium = sandbox("scripts/setup", "--dev", STUB_APT="locked:2")
    assert proc.returncode == 0 and proc.stderr == ""
    assert [line.split()[-1] for line in logs["apt"]] == ["update", "update", "update", "chromium"]
    assert "DPkg::Lock::Timeout=" in logs["apt"][-1]  # install waits on dpkg's lock itself
    assert chromium.exists()


def test_apt_locked_too_long_setup_goes_on_without_chromium_and_says_so(sandbox):
    start = time.monotonic()
    proc, logs, chromium = sandbox("scripts/setup", "--dev", STUB_APT="locked:1000", DIGITREC_APT_WAIT="3")
    assert time.monotonic() - start < 20  # bounded: 3 s of waiting, not forever
    assert proc.returncode == 0 and len(logs["apt"]) >= 2 and not chromium.exists()
    assert proc.stderr.count("\n") == 1
    assert f"going on without Chromium at {chromium} (apt-get update: {LOCKED})" in proc.stderr
    assert "tests/test_page.py fails until `apt-get install chromium`" in proc.stderr


def test_apt_failing_otherwise_is_not_retried(sandbox):
    proc, logs, chromium = sandbox("scripts/setup", "--dev", STUB_APT="offline")
    assert proc.returncode == 0 and logs["apt"] == ["-qq -o DPkg::Lock::Timeout=120 update"]
    assert proc.stderr.count("\n") == 1 and f"(apt-get update: {OFFLINE})" in proc.stderr and not chromium.exists()
