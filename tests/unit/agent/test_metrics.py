"""The Prometheus text goferd writes: parsed by Prometheus's own parser, bounded, atomic."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gofer.agent import metrics
from gofer.agent.metrics import Family, Metrics, process_families, render


def parsed(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_and_durations_parse_as_prometheus_reads_them() -> None:
    figures = Metrics()
    figures.finished("demo", "Dog.bark", "succeeded", 0.02)
    figures.finished("demo", "Dog.bark", "succeeded", 3.0)
    figures.finished("demo", 'Odd"name\\', "failed", 0.001)
    figures.finished("demo", "Dog.bark", "rejected", None)
    figures.received("demo")

    samples = parsed(render([*figures.families(), *process_families(figures.started)]))

    ok = (("method", "Dog.bark"), ("outcome", "succeeded"), ("plugin", "demo"))
    assert samples[("gofer_requests_total", ok)] == 2
    odd = (("method", 'Odd"name\\'), ("outcome", "failed"), ("plugin", "demo"))
    assert samples[("gofer_requests_total", odd)] == 1  # escaped, and read back as it was
    bucket = "gofer_request_duration_seconds_bucket"
    assert samples[(bucket, (("le", "0.025"), ("plugin", "demo")))] == 2
    assert samples[(bucket, (("le", "+Inf"), ("plugin", "demo")))] == 3
    assert samples[("gofer_request_duration_seconds_count", (("plugin", "demo"),))] == 3
    assert samples[("process_cpu_seconds_total", ())] > 0


def test_label_sets_are_bounded_against_callers_naming_random_methods() -> None:
    figures = Metrics()
    for n in range(metrics.MAX_SERIES + 500):
        figures.finished("demo", f"Dog.m{n}", "failed", None)

    samples = parsed(render(figures.families()))

    requests = {k: v for k, v in samples.items() if k[0] == "gofer_requests_total"}
    assert len(requests) == metrics.MAX_SERIES + 1
    assert (
        requests[
            (
                "gofer_requests_total",
                (("method", "other"), ("outcome", "failed"), ("plugin", "demo")),
            )
        ]
        == 500
    )


def test_the_textfile_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "gofer.prom"
    path.write_text("old\n")
    metrics.write_textfile(path, render([Family.gauge("gofer_x", "X.", [((), 1)])]))

    assert parsed(path.read_text()) == {("gofer_x", ()): 1}
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["gofer.prom"]
