"""Shadow mode picks parts at random at the configured share, not periodically (issue 26): on a periodic line (a
four-cavity mould) a periodic pick always saw the same cavity."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from station.shadow import Picker


@pytest.mark.parametrize("share, cavities", [(0.2, 5), (0.25, 4), (0.5, 2), (0.1, 10)])
def test_the_challenger_sees_every_position_of_a_periodic_line_at_the_configured_share(share, cavities):
    picker = Picker(share, random.Random(2026))
    n = 20_000
    seen = Counter(i % cavities for i in range(n) if picker.take())
    taken = sum(seen.values())
    sigma = math.sqrt(n * share * (1 - share))
    assert abs(taken - n * share) < 5 * sigma, (taken, n * share)  # the share, within binomial noise
    assert sorted(seen) == list(range(cavities))  # every cavity, where a periodic pick saw one
    per = n / cavities * share
    assert all(abs(k - per) < 6 * math.sqrt(per) for k in seen.values()), seen
    assert picker.n == n and picker.taken == taken


def test_two_runs_of_the_same_pictures_pick_different_parts():
    a, b = Picker(0.2), Picker(0.2)
    assert [a.take() for _ in range(500)] != [b.take() for _ in range(500)]


@pytest.mark.parametrize("share", [0, -0.1, 1.5])
def test_a_share_outside_0_to_1_is_refused(share):
    with pytest.raises(ValueError, match="share in \\(0, 1\\]"):
        Picker(share)


def test_a_share_of_one_takes_every_part():
    p = Picker(1.0)
    assert all(p.take() for _ in range(100))
