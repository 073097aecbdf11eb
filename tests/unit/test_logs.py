import json

from veorelay.gcp import logs


def test_log_lines_are_json_with_severity_job_and_trace(capsys):
    logs.configure("INFO")
    with logs.context(job_id="j1", trace_header="0af7651916cd43dd8448eb211c80319c/1;o=1", project="p"):
        logs.info("provider checked", poll=2)
        assert logs.current_trace_header() == "0af7651916cd43dd8448eb211c80319c/1;o=1"
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["severity"] == "INFO" and line["message"] == "provider checked" and line["poll"] == 2
    assert line["job_id"] == "j1"
    assert line["logging.googleapis.com/trace"] == "projects/p/traces/0af7651916cd43dd8448eb211c80319c"
    assert logs.current_trace_header() is None


def test_w3c_traceparent_is_understood():
    assert logs.trace_from_header("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "p") == "projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736"
