"""Merge several processes' /metrics into one Prometheus text exposition.

`celeris up --topology services` runs every component as its own process, each with its own registry;
one scrape of the whole system needs their texts merged. Several processes export the same families
(process_*, python_*, celeris_task_restarts_total), so every sample is labelled `component="<name>"`
and each family gets one HELP/TYPE with the samples of all components under it. Pure: text in, text out.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

COMPONENT_LABEL = "component"


class _Families:
    """A collector over already-built families, so generate_latest renders (and escapes) them."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def merge_expositions(texts: Mapping[str, str]) -> str:
    """{component: its /metrics text} -> one exposition, every sample labelled component="<name>".

    A label `component` a sample already has is kept as `exported_component` (as Prometheus does with
    honor_labels off). A family that two components declare with different types keeps the first
    component's type; the other's samples are dropped rather than emitting an invalid exposition.
    A text that does not parse is skipped (as a component that is down would be).
    """
    merged: dict[str, Metric] = {}
    for component in sorted(texts):
        try:
            families = list(text_string_to_metric_families(texts[component]))
        except Exception:  # one garbled component does not hide the others
            continue
        for family in families:
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            elif target.type != family.type:
                continue
            for sample in family.samples:
                labels = dict(sample.labels)
                if COMPONENT_LABEL in labels:
                    labels["exported_" + COMPONENT_LABEL] = labels.pop(COMPONENT_LABEL)
                labels[COMPONENT_LABEL] = component
                target.samples.append(Sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar))
    return generate_latest(_Families(merged[name] for name in sorted(merged))).decode("utf-8")  # type: ignore[arg-type]
