"""`celeris bench`'s table marks every figure that misses its target, and a figure that is missing."""

from celeris.commands.bench import render_table, verdict


def test_verdicts_follow_the_direction_of_the_target():
    assert verdict(59.9, "<= 60") == "ok" and verdict(60.1, "<= 60") == "MISS"
    assert verdict(10_000, ">= 10,000") == "ok" and verdict(9_999, ">= 10,000") == "MISS"
    assert verdict(0, "<= 0") == "ok" and verdict(1, "<= 0") == "MISS"
    assert verdict(None, "<= 60") == "MISS" and verdict(5, "") == ""


def test_the_table_shows_target_baseline_and_a_mark_per_row():
    results = {"book": {"depth_events_per_s": 18_000, "baseline_depth_events_per_s": 4_000, "nautilus_ratio_x": 2.5},
               "risk": {"p50_us": 25.0, "baseline_p50_us": 8.0, "grpc_checks_per_s": 2_000,
                        "grpc_stream_checks_per_s": 6_000, "health_checks_per_s": 2_400}}
    lines = {line.split("  ")[0].strip(): line for line in render_table(results).splitlines()}
    assert lines["depth events/s -> synced book"].rstrip().endswith("ok")
    assert "4,000" in lines["depth events/s -> synced book"]
    assert lines["depth vs nautilus adapter (x)"].rstrip().endswith("MISS")
    assert lines["risk check p50 us"].rstrip().endswith("MISS")
    assert lines["risk checks/s over gRPC stream"].rstrip().endswith("ok")  # the target is the stream's
    assert "2,400" in lines["risk checks/s over gRPC stream"]  # against the health check of the same run
    assert not lines["risk checks/s over gRPC unary"].rstrip().endswith(("ok", "MISS"))
    assert "dashboard web p99 ms" not in lines  # not run (--only)
    results["dashboard"] = {"web_p99_staleness_ms": None, "baseline_p99_staleness_ms": 12.0}
    lines = {line.split("  ")[0].strip(): line for line in render_table(results).splitlines()}
    assert lines["dashboard web p99 ms"].rstrip().endswith("MISS")  # run, but the figure is missing


def test_a_failed_script_reports_its_exception_not_a_warning_printed_after_it():
    from celeris.commands.bench import _error_line

    stderr = ("Traceback (most recent call last):\n  File \"bench/risk.py\", line 1, in <module>\n    main()\n"
              "AssertionError: denied\nsys:1: RuntimeWarning: coroutine 'AioServer.shutdown' was never awaited\n")
    assert _error_line(stderr) == "AssertionError: denied"
    assert _error_line("plain failure\n") == "plain failure" and _error_line("") == "failed"
