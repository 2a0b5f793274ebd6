"""Every Grafana panel and every alert queries metrics the running system really exports.

A panel or rule that names a series nothing exports shows "No data" (or never fires) without any error,
so this starts `celeris up` in both topologies, scrapes the one /metrics each prints in its banner once
trading has happened, and checks every metric name in every PromQL expression the chart ships (the
dashboard's panels and template queries, the PrometheusRule's alerts and recording rules, and any
rule or dashboard in the chart's templates or k8s/) against the series names of that scrape.

Names are checked as Prometheus stores them (`orders_submitted_total`, `..._bucket`), not as
prometheus_client names a family: a counter family `x` is the series `x_total`, so a query for `x`
is empty even though the family exists.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "celeris"
CELERIS = str(Path(sys.executable).with_name("celeris"))
HELM = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")

# -- PromQL: which identifiers are metric names -------------------------------------------------------

KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "start", "end", "inf", "nan", "le", "quantile",
})
"""Identifiers that are never a metric name where they stand outside braces and call parentheses."""

AGGREGATIONS = ("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile", "limitk", "limit_ratio")
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]+)"')
BRACES = re.compile(r"\{[^{}]*\}")
RANGES = re.compile(r"\[[^\[\]]*\]")
GRAFANA_VARS = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]")
NUMBERS = re.compile(r"(?<![\w:.])(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])\d*)*)")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions (followed by `(`),
    keywords, label names (inside {...} or by/without/on/ignoring/group_*(...)) or numbers/durations."""
    text = GRAFANA_VARS.sub(" ", expr)
    names = set(NAME_MATCHER.findall(text))  # {__name__="x"}
    text = BRACES.sub(" ", STRINGS.sub('""', text))
    text = RANGES.sub(" ", text)
    text = LABEL_LISTS.sub(" ", text)
    text = NUMBERS.sub(" ", text)
    for match in IDENT.finditer(text):
        word = match.group(0)
        if text[match.end():].lstrip().startswith("("):
            continue  # a function or an aggregation (`sum by (x) (...)` lost its label list above)
        if word.lower() in KEYWORDS or (word in AGGREGATIONS and re.match(r"\s*(?:by|without)\b",
                                                                          text[match.end():])):
            continue
        names.add(word)
    return names


def grafana_query_names(query: str) -> set[str]:
    """A dashboard variable's query: label_values(metric, label) names `metric`, not `label`."""
    m = re.match(r"\s*label_values\s*\((.*)\)\s*$", query, re.S)
    if m:
        args = m.group(1)
        depth, cut = 0, len(args)
        for i, ch in enumerate(args):
            depth += ch in "({["
            depth -= ch in ")}]"
            if ch == "," and depth == 0:
                cut = i
                break
        return promql_metric_names(args[:cut]) if cut < len(args) else set()
    m = re.match(r"\s*(?:metrics|label_names)\s*\((.*)\)\s*$", query, re.S)
    if m:
        return set()  # a regex over names, or every label: nothing to check
    m = re.match(r"\s*query_result\s*\((.*)\)\s*$", query, re.S)
    return promql_metric_names(m.group(1) if m else query)


# -- what the chart and the manifests query ---------------------------------------------------------------

def dashboard_expressions(dashboard: dict, where: str) -> list[tuple[str, set[str]]]:
    out = []

    def panels(items):
        for panel in items or []:
            yield panel
            yield from panels(panel.get("panels"))

    for panel in panels(dashboard.get("panels")):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                out.append((f"{where} panel {panel.get('title')!r}: {target['expr']}",
                            promql_metric_names(target["expr"])))
    for var in (dashboard.get("templating") or {}).get("list") or []:
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and isinstance(query, str) and query:
            out.append((f"{where} variable {var.get('name')!r}: {query}", grafana_query_names(query)))
    for annotation in (dashboard.get("annotations") or {}).get("list") or []:
        if annotation.get("expr"):
            out.append((f"{where} annotation {annotation.get('name')!r}: {annotation['expr']}",
                        promql_metric_names(annotation["expr"])))
    return out


def rule_expressions(spec: dict, where: str) -> tuple[list[tuple[str, set[str]]], set[str]]:
    """(alert/record expressions, the series the recording rules create)."""
    out, recorded = [], set()
    for group in spec.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            out.append((f"{where} rule {name!r}: {rule['expr']}", promql_metric_names(str(rule["expr"]))))
            if rule.get("record"):
                recorded.add(rule["record"])
    return out, recorded


def manifest_expressions(objects, where: str):
    exprs, recorded = [], set()
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        if obj.get("kind") == "PrometheusRule":
            e, r = rule_expressions(obj.get("spec") or {}, f"{where} {obj['metadata']['name']}")
            exprs += e
            recorded |= r
        elif obj.get("kind") == "ConfigMap":
            for key, value in (obj.get("data") or {}).items():
                if key.endswith(".json") and '"panels"' in value:
                    exprs += dashboard_expressions(json.loads(value), f"{where} {obj['metadata']['name']}/{key}")
                elif key.endswith((".yaml", ".yml", ".rules")) and "groups:" in value:
                    e, r = rule_expressions(yaml.safe_load(value) or {}, f"{where} {obj['metadata']['name']}/{key}")
                    exprs += e
                    recorded |= r
    return exprs, recorded


def everything_queried() -> tuple[list[tuple[str, set[str]]], set[str]]:
    exprs = dashboard_expressions(json.loads((CHART / "files" / "grafana-dashboard.json").read_text()),
                                  "grafana-dashboard.json")
    e, recorded = rule_expressions(yaml.safe_load((CHART / "files" / "alerts.yaml").read_text()), "alerts.yaml")
    exprs += e
    for path in sorted((ROOT / "k8s").rglob("*.y*ml")):
        e, r = manifest_expressions(list(yaml.safe_load_all(path.read_text())), str(path.relative_to(ROOT)))
        exprs += e
        recorded |= r
    if HELM is not None:  # the chart as installed: anything its templates carry besides the two files
        rendered = subprocess.run([HELM, "template", "t", str(CHART), "--set",
                                   "monitoring.grafanaDashboard=true,monitoring.prometheusRule=true"],
                                  capture_output=True, text=True, timeout=60, check=True).stdout
        e, r = manifest_expressions(list(yaml.safe_load_all(rendered)), "helm template")
        exprs += e
        recorded |= r
    return exprs, recorded


# -- what the running system exports ------------------------------------------------------------------

SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count"),
                   "info": ("_info",), "gaugehistogram": ("_bucket", "_gsum", "_gcount")}
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added",
                       "scrape_samples_post_metric_relabeling"})
"""Series Prometheus itself adds to every scrape target."""


def exported_series(text: str) -> set[str]:
    """Every series name the exposition has or declares: a labelled family with no child yet (no
    rejection so far, say) is declared by its TYPE line, and its series will exist."""
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {s.name for s in family.samples}
        names |= {family.name + suffix for suffix in SERIES_SUFFIXES.get(family.type, ("",))}
    return names


def check(exported: set[str], queried: list[tuple[str, set[str]]], recorded: set[str]) -> list[str]:
    known = exported | recorded | SYNTHETIC
    problems = []
    for where, names in queried:
        for name in sorted(names - known):
            near = sorted({n for n in known if n.startswith(name) or name.startswith(n) or
                           n.endswith("_" + name) or name.endswith("_" + n)}
                          | set(difflib.get_close_matches(name, known, n=3, cutoff=0.75)))[:5]
            problems.append(f"{where}\n    {name} is not exported{f' (exported: {near})' if near else ''}")
    return problems


# -- quick checks of the parser ------------------------------------------------------------------------

@pytest.mark.parametrize("expr, names", [
    ("equity_usdt", {"equity_usdt"}),
    ("rate(messages_received_total[1m])", {"messages_received_total"}),
    ("sum by (symbol) (rate(fills_total{symbol=~\"BTC.*\", component!=\"x\"}[5m]))", {"fills_total"}),
    ("sum(rate(a_total[5m])) without (le) / on (job) group_left (instance) b", {"a_total", "b"}),
    ("histogram_quantile(0.99, sum by (le) (rate(processing_latency_microseconds_bucket[2m]))) > 500",
     {"processing_latency_microseconds_bucket"}),
    ("(daily_pnl_usdt < 0) and (-daily_pnl_usdt / clamp_min(equity_usdt, 1) * 100 > 5)",
     {"daily_pnl_usdt", "equity_usdt"}),
    ("x / clamp_min(y, 1e-9) > bool 0.1 unless z offset 5m", {"x", "y", "z"}),
    ("{__name__=\"margin_ratio\"} > 0.8", {"margin_ratio"}),
    ("increase(c_total[$__rate_interval]) or vector(0)", {"c_total"}),
    ("sum without (component) (q) ", {"q"}),
    ("max_over_time(g[10m:1m]) @ end()", {"g"}),
])
def test_promql_metric_names(expr, names):
    assert promql_metric_names(expr) == names


def test_grafana_variable_queries():
    assert grafana_query_names("label_values(order_book_state{component=\"m\"}, symbol)") == {"order_book_state"}
    assert grafana_query_names("label_values(symbol)") == set()
    assert grafana_query_names("query_result(topk(3, fills_total))") == {"fills_total"}


def test_a_query_of_a_counter_family_without_its_total_suffix_is_caught():
    text = "# HELP c_total x\n# TYPE c_total counter\nc_total 1\n# HELP h x\n# TYPE h histogram\n"
    exported = exported_series(text)
    assert {"c_total", "h_bucket", "h_count", "h_sum"} <= exported
    assert check(exported, [("rule", {"c"})], set())  # the family is c, the series c_total
    assert not check(exported, [("rule", {"c_total", "h_bucket"})], set())


def test_every_chart_expression_names_at_least_one_metric():
    queried, _ = everything_queried()
    assert len(queried) >= 10, queried
    assert all(names for _, names in queried), [w for w, names in queried if not names]


# -- the running system ----------------------------------------------------------------------------------

class Running:
    """`celeris up` as a subprocess: its banner read for the metrics URL, its output drained."""

    def __init__(self, topology: str, state_dir: Path) -> None:
        self.topology = topology
        self.proc = subprocess.Popen(
            [CELERIS, "up", "--topology", topology, "--duration", "120", "--dashboard-port", "0",
             "--state-dir", str(state_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
            start_new_session=True)
        self.lines: list[str] = []
        self.url = ""
        self.banner = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.search(r"^\s*metrics\s+(http://127\.0\.0\.1:\d+/metrics)\s+\(every component's\)", line)
            if m:
                self.url = m.group(1)
            if "Ctrl-C stops cleanly" in line:
                self.banner.set()
        self.banner.set()

    def output(self) -> str:
        return "".join(self.lines)[-3000:]

    def scrape_after_trading(self, timeout_s: float = 60) -> str:
        assert self.banner.wait(timeout_s), f"{self.topology}: no banner\n{self.output()}"
        assert self.url, f"{self.topology}: no metrics URL in the banner\n{self.output()}"
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                text = ""
            submitted = sum(s.value for f in text_string_to_metric_families(text) if f.name == "orders_submitted"
                            for s in f.samples if s.name == "orders_submitted_total")
            if submitted > 0:
                return text
            try:  # the next scrape in 0.25 s, or at once if the system has exited
                self.proc.wait(0.25)
            except subprocess.TimeoutExpired:
                pass
        raise AssertionError(f"{self.topology}: no order submitted within {timeout_s} s\n{text[-1500:]}\n"
                             f"{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.mark.slow
def test_every_panel_and_alert_queries_what_both_topologies_export(tmp_path):
    queried, recorded = everything_queried()

    def run(topology: str) -> str:
        system = Running(topology, tmp_path / topology)
        try:
            return system.scrape_after_trading()
        finally:
            system.stop()

    with ThreadPoolExecutor(2) as pool:
        texts = dict(zip(("inproc", "services"), pool.map(run, ("inproc", "services"))))

    # The services topology's merged exposition: one HELP/TYPE per family, every sample's component named.
    merged = texts["services"]
    declared = [line.split()[2] for line in merged.splitlines() if line.startswith("# TYPE ")]
    assert len(declared) == len(set(declared)), sorted(d for d in declared if declared.count(d) > 1)
    samples = [s for f in text_string_to_metric_families(merged) for s in f.samples]
    assert samples and all("component" in s.labels for s in samples)
    components = {s.labels["component"] for s in samples}
    assert {"marketdata", "execution", "risk", "account", "strategy"} <= components, components

    for topology, text in texts.items():
        problems = check(exported_series(text), queried, recorded)
        assert not problems, f"{topology} topology:\n" + "\n".join(problems)
