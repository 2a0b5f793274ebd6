import json
import subprocess
import sys
from pathlib import Path

CELERIS = [str(Path(sys.executable).with_name("celeris"))]


def run(*args, env=None):
    return subprocess.run(CELERIS + list(args), capture_output=True, text=True, env=env, timeout=60)


def test_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0 and "settings" in result.stdout and "control" in result.stdout


def test_settings_command_redacts_and_rejects_unknown_keys():
    result = run("settings", "--set", "venue_api_secret=topsecretvalue99", "--set", "mode=live")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["mode"] == "live" and "topsecretvalue99" not in result.stdout
    bad = run("settings", "--set", "nonsense=1")
    assert bad.returncode == 2 and "unknown setting" in bad.stderr


def test_control_against_nothing_fails_cleanly():
    result = run("control", "status", "--target", "127.0.0.1:1", "--timeout", "0.5")
    assert result.returncode == 1 and "UNAVAILABLE" in result.stderr


def test_settings_all_lists_every_key_and_secrets_are_never_partly_printed():
    import subprocess
    import sys
    from pathlib import Path

    celeris = str(Path(sys.executable).with_name("celeris"))
    listing = subprocess.run([celeris, "settings", "--all"], capture_output=True, text=True, timeout=60).stdout
    for key in ("state_dir", "risk_limits", "max_orders_per_second", "strategy_dir", "monitor_interval_s"):
        assert key in listing, key
    for component in ("marketdata", "execution", "strategy", "risk", "account", "dashboard"):
        assert f"celeris {component} run also takes" in listing
    shown = subprocess.run([celeris, "settings", "--set", "venue_api_secret=abcdefghijklmnop"], capture_output=True,
                           text=True, timeout=60).stdout
    assert '"venue_api_secret": "****"' in shown and "abcd" not in shown


def test_free_port_never_hands_out_a_port_twice():
    """Each component's port is chosen before it binds: two choices in one `celeris up` must differ, or one
    component answers the other's clients (500 picks from ~12,000 ports collide almost surely by chance)."""
    from celeris.assembly.wiring import free_port

    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
