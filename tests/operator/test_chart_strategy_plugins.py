"""Strategy plugins on Kubernetes, rendered by the real `helm template` and built by the operator's builders:
inline plugin files become a ConfigMap, the chart's TradingSystem names it with strategyDir, and the
operator mounts it read-only at strategyDir in the strategy engine's container (both topologies), whose
CELERIS_STRATEGY_DIR points there. Every object passes the Kubernetes schemas and the CRD."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from celeris_operator import builders

from tests.operator.apiserver import ApiServer

ROOT = Path(__file__).resolve().parents[2]
HELM = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
K8S_VERSION = "1.32.0"
SOURCE = 'class Mine:\n    name = "mine"\n'
pytestmark = pytest.mark.skipif(HELM is None, reason="helm not installed (scripts/install --system)")


def render(tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"example": {"enabled": True}, **values}))
    out = subprocess.run([HELM, "template", "c", str(ROOT / "charts/celeris"), "--namespace", "trading", "-f", str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def trading_system(objects: list[dict[str, Any]], topology: str = "distributed") -> dict[str, Any]:
    ts = copy.deepcopy(next(o for o in objects if o["kind"] == "TradingSystem"))
    assert ApiServer()._validate(copy.deepcopy(ts), None) == ""  # the CRD's schema and rules accept it
    ts["metadata"].update(uid="u-1", generation=1)
    ts["spec"]["topology"] = topology
    return ts


def strategy_pod(ts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    objects = builders.build_all(ts, builders.desired_state(ts, "observation", False))
    for obj in objects:
        if obj["kind"] != "ConfigMap" and obj["kind"] != "PrometheusRule":
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    group = "hotpath" if ts["spec"]["topology"] == "colocated" else "strategy"
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == f"btc-perp-{group}")
    pod = deployment["spec"]["template"]["spec"]
    return pod, next(c for c in pod["containers"] if c["name"] == "strategy")


@pytest.mark.parametrize("topology", ["distributed", "colocated"])
def test_inline_plugin_files_are_mounted_where_strategy_dir_points(tmp_path, topology):
    objects = render(tmp_path, {"strategies": {"plugins": {"dir": "/opt/plugins", "files": {"mine.py": SOURCE}}}})
    configmap = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "c-strategy-plugins")
    assert configmap["metadata"]["namespace"] == "trading" and configmap["data"] == {"mine.py": SOURCE}
    kubernetes_validate.validate(configmap, K8S_VERSION, strict=True)
    ts = trading_system(objects, topology)
    assert (ts["spec"]["strategyDir"], ts["spec"]["strategyConfigMap"]) == ("/opt/plugins", "c-strategy-plugins")
    pod, container = strategy_pod(ts)
    assert {"name": builders.STRATEGIES_VOLUME, "configMap": {"name": "c-strategy-plugins"}} in pod["volumes"]
    assert {"name": builders.STRATEGIES_VOLUME, "mountPath": "/opt/plugins", "readOnly": True} in container["volumeMounts"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CELERIS_STRATEGY_DIR"] == "/opt/plugins"
    others = [c for c in pod["containers"] if c["name"] != "strategy"]
    assert all(m["name"] != builders.STRATEGIES_VOLUME for c in others for m in c["volumeMounts"])
    assert all("CELERIS_STRATEGY_DIR" not in {e["name"] for e in c["env"]} for c in others)


def test_a_configmap_of_ones_own_is_named_and_none_is_made(tmp_path):
    objects = render(tmp_path, {"strategies": {"plugins": {"configMap": "desk-strategies"}}})
    assert not [o for o in objects if o["kind"] == "ConfigMap" and "strategy-plugins" in o["metadata"]["name"]]
    ts = trading_system(objects)
    assert (ts["spec"]["strategyDir"], ts["spec"]["strategyConfigMap"]) == ("/etc/celeris/strategies", "desk-strategies")
    pod, container = strategy_pod(ts)
    assert {"name": builders.STRATEGIES_VOLUME, "configMap": {"name": "desk-strategies"}} in pod["volumes"]
    assert {"name": builders.STRATEGIES_VOLUME, "mountPath": "/etc/celeris/strategies", "readOnly": True} \
        in container["volumeMounts"]


def test_without_plugins_nothing_is_mounted(tmp_path):
    ts = trading_system(render(tmp_path, {}))
    assert "strategyDir" not in ts["spec"] and "strategyConfigMap" not in ts["spec"]
    pod, container = strategy_pod(ts)
    assert [v["name"] for v in pod["volumes"]] == ["desired"]
    assert "CELERIS_STRATEGY_DIR" not in {e["name"] for e in container["env"]}


def test_plugins_baked_into_the_image_need_only_strategy_dir(tmp_path):
    ts = trading_system(render(tmp_path, {}))
    ts["spec"]["strategyDir"] = "/opt/celeris/strategies"
    pod, container = strategy_pod(ts)
    assert [v["name"] for v in pod["volumes"]] == ["desired"]  # the files are in the image
    assert {e["name"]: e.get("value") for e in container["env"]}["CELERIS_STRATEGY_DIR"] == "/opt/celeris/strategies"


@pytest.mark.parametrize("plugins", [{"files": {"../evil.py": "x"}}, {"files": {"mine.txt": "x"}},
                                     {"dir": "relative/path"}, {"configMap": "Not_A_Name"}, {"confgMap": "x"},
                                     {"namespace": "Desk"}])
def test_the_values_schema_refuses_nonsense(tmp_path, plugins):
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"strategies": {"plugins": plugins}}))
    out = subprocess.run([HELM, "template", "c", str(ROOT / "charts/celeris"), "-f", str(path)],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "strategies" in out.stderr, out.stderr


def test_the_chart_can_put_the_configmap_where_the_trading_systems_are(tmp_path):
    objects = render(tmp_path, {"strategies": {"plugins": {"files": {"mine.py": SOURCE}, "namespace": "desk"}}})
    configmap = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "c-strategy-plugins")
    assert configmap["metadata"]["namespace"] == "desk"
