from veorelay.config import PollSettings
from veorelay.polling import next_poll_delay


def test_schedule_waits_then_grows_to_its_cap():
    poll = PollSettings(initial_delay_s=20, min_delay_s=5, max_delay_s=30)
    delays = [next_poll_delay(poll, n) for n in range(12)]
    assert delays[0] == 20 and delays[1] == 5
    assert all(b >= a for a, b in zip(delays[1:], delays[2:]))
    assert max(delays) == 30
