"""The services topology's one /metrics: several registries' texts merged into one valid exposition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from celeris.runtime.metrics import new_registry
from celeris.runtime.metrics_merge import merge_expositions


def _text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_identical_families_of_several_processes_merge_under_one_help_and_type():
    a, b = new_registry(), new_registry()  # both carry celeris_task_restarts_total
    Counter("orders_submitted_total", "Order requests", registry=a).inc(3)
    Gauge("order_book_state", "1 live", ["symbol"], registry=b).labels("BTCUSDT").set(1)
    Histogram("processing_latency_microseconds", "Latency", buckets=(10, 100), registry=b).observe(42)
    shared_a = Gauge("process_open_fds", "Open fds", registry=a)
    shared_a.set(7)
    Gauge("process_open_fds", "Open fds", registry=b).set(9)

    text = merge_expositions({"execution": _text(a), "marketdata": _text(b), "down": ""})

    for kind in ("HELP", "TYPE"):
        lines = [line.split()[2] for line in text.splitlines() if line.startswith(f"# {kind} ")]
        assert len(lines) == len(set(lines)), f"a family declared twice: {sorted(lines)}"
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["orders_submitted"].type == "counter"
    assert [(s.name, s.labels, s.value) for s in families["orders_submitted"].samples
            if s.name.endswith("_total")] == [("orders_submitted_total", {"component": "execution"}, 3.0)]
    fds = {s.labels["component"]: s.value for s in families["process_open_fds"].samples}
    assert fds == {"execution": 7.0, "marketdata": 9.0}
    restarts = families["celeris_task_restarts"]
    assert restarts.type == "counter"
    assert families["order_book_state"].samples[0].labels == {"symbol": "BTCUSDT", "component": "marketdata"}
    latency = families["processing_latency_microseconds"]
    assert latency.type == "histogram"
    assert {s.name for s in latency.samples} >= {"processing_latency_microseconds_bucket",
                                                 "processing_latency_microseconds_sum",
                                                 "processing_latency_microseconds_count"}
    assert all(s.labels["component"] == "marketdata" for s in latency.samples)


def test_a_component_label_is_kept_as_exported_component_and_garbage_is_skipped():
    r = CollectorRegistry()
    Gauge("x", "x", ["component"], registry=r).labels("inner").set(1)
    text = merge_expositions({"outer": _text(r), "broken": "this is { not prometheus"})
    (family,) = [f for f in text_string_to_metric_families(text)]
    assert family.samples[0].labels == {"component": "outer", "exported_component": "inner"}


def test_a_family_with_conflicting_types_keeps_the_first():
    text = merge_expositions({"a": "# TYPE y gauge\ny 1\n", "b": "# TYPE y_total counter\ny_total 2\n"})
    (family,) = list(text_string_to_metric_families(text))
    assert family.type == "gauge" and [s.value for s in family.samples] == [1.0]
