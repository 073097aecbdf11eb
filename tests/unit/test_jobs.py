import pytest

from veorelay.core.job import JobStatus, allowed

S = JobStatus


@pytest.mark.parametrize("current,target", [
    (S.ACCEPTED, S.RUNNING), (S.RUNNING, S.DOWNLOADING), (S.DOWNLOADING, S.SUCCEEDED),
    (S.ACCEPTED, S.FAILED), (S.RUNNING, S.FAILED), (S.DOWNLOADING, S.FAILED),
    (S.ACCEPTED, S.CANCELLED), (S.RUNNING, S.CANCELLED), (S.DOWNLOADING, S.CANCELLED),
])
def test_forward_and_ending_moves_are_allowed(current, target):
    assert allowed(current, target)


@pytest.mark.parametrize("current,target", [
    (S.ACCEPTED, S.DOWNLOADING), (S.ACCEPTED, S.SUCCEEDED), (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.ACCEPTED), (S.DOWNLOADING, S.RUNNING), (S.RUNNING, S.RUNNING),
])
def test_skipping_or_going_back_is_refused(current, target):
    assert not allowed(current, target)


@pytest.mark.parametrize("terminal", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
@pytest.mark.parametrize("target", list(S))
def test_nothing_leaves_a_terminal_state(terminal, target):
    assert terminal.terminal
    assert not allowed(terminal, target)
