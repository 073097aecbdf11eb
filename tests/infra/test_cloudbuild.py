"""cloudbuild.yaml is a valid google.devtools.cloudbuild.v1.Build: parsed with the Cloud Build
API's own message types (google-cloud-build), so a misspelt or unknown key fails here and not
in the first real build."""

from __future__ import annotations

import copy
import json

import pytest
from infra_helpers import CLOUDBUILD, load_yaml


def parse_build(data):
    from google.cloud.devtools.cloudbuild_v1.types import Build

    return Build.from_json(json.dumps(data), ignore_unknown_fields=False)


def test_cloudbuild_yaml_is_a_build_message():
    build = parse_build(load_yaml(CLOUDBUILD))
    assert [s.id for s in build.steps][-1] == "terraform-apply"
    assert build.timeout.total_seconds() >= 1800, "Terraform creating functions needs well over 10 minutes"
    assert build.options.dynamic_substitutions is True
    assert build.options.logging.name == "CLOUD_LOGGING_ONLY", "a user-managed service account needs an explicit log destination"
    for step in build.steps:
        assert step.name, f"step {step.id} has no image"
        assert ":" in step.name and not step.name.endswith(":latest"), f"step {step.id}: pin the image version ({step.name})"


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d.update(stepz=d.pop("steps")), "stepz"),
        (lambda d: d["steps"][0].update(entryPoint="sh"), "entryPoint"),
        (lambda d: d["options"].update(dynamicSubstitution=True), "dynamicSubstitution"),
        (lambda d: d["options"].update(logging="CLOUD_LOGS"), "CLOUD_LOGS"),
    ],
    ids=["unknown-top-level-key", "unknown-step-key", "unknown-option", "bad-enum"],
)
def test_a_broken_copy_is_rejected(tmp_path, mutate, where):
    import yaml
    from google.protobuf.json_format import ParseError

    data = copy.deepcopy(load_yaml(CLOUDBUILD))
    mutate(data)
    broken = tmp_path / "cloudbuild.yaml"
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(ParseError, match=where):
        parse_build(load_yaml(broken))


def test_cloud_build_lints_and_runs_the_step_tests_before_it_deploys():
    build = parse_build(load_yaml(CLOUDBUILD))
    ids = [s.id for s in build.steps]
    by_id = {s.id: s for s in build.steps}
    assert list(by_id["lint"].args) == ["lint"] and by_id["lint"].entrypoint == "make"
    assert "tests/steps" in by_id["test"].args, "the step tests need no emulator: the build runs them"
    assert ids.index("lint") < ids.index("test") < ids.index("terraform-apply")
