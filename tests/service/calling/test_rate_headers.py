"""Reading the quota an API announces in its headers: every form in use, the tightest policy,
and anything malformed ignored (never a reason to go faster)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.calling.rate_headers import Quota, quota_of

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "quota"),
    [
        ({"RateLimit": '"default";r=50;t=30'}, Quota(50, 30.0)),
        ({"RateLimit": '"default";r=50;t=30', "RateLimit-Policy": '"default";q=100;w=60'}, Quota(50, 30.0)),
        # two policies: the one with fewer requests per second left wins (1/s against 5/s)
        ({"RateLimit": '"burst";r=50;t=10, "day";r=3600;t=3600'}, Quota(3600, 3600.0)),
        ({"RateLimit": '"burst";r=5;t=10, "day";r=3600;t=3600'}, Quota(5, 10.0)),
        ({"RateLimit": "limit=100, remaining=50, reset=30"}, Quota(50, 30.0)),
        ({"RateLimit-Limit": "100", "RateLimit-Remaining": "7", "RateLimit-Reset": "20"}, Quota(7, 20.0)),
        ({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "20"}, Quota(7, 20.0)),
        ({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(int(NOW) + 45)}, Quota(7, 45.0)),
        ({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(int(NOW * 1000) + 1500)}, Quota(7, 1.5)),
        ({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(int(NOW) - 5)}, Quota(7, 0.0)),  # past
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2.5"}, Quota(0, 2.5)),
        # both a draft form and the X- form: the tighter
        (
            {"RateLimit": '"a";r=100;t=10', "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "10"},
            Quota(5, 10.0),
        ),
    ],
)
def test_each_form_in_use_is_read(headers: dict[str, str], quota: Quota) -> None:
    assert quota_of(headers, NOW) == quota


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"RateLimit-Policy": '"default";q=100;w=60'},  # a policy alone says nothing of what is left
        {"X-RateLimit-Limit": "100"},
        {"X-RateLimit-Remaining": "7"},  # no reset: no pace to compute
        {"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "10"},
        {"X-RateLimit-Remaining": "many", "X-RateLimit-Reset": "10"},
        {"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "soon"},
        {"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1e9"},
        {"RateLimit": '"default";r=;t=30'},
        {"RateLimit": '"default";q=100'},
        {"RateLimit": "remaining=x, reset=3"},
        {"RateLimit": ",,,"},
    ],
)
def test_what_says_nothing_usable_is_ignored(headers: dict[str, str]) -> None:
    assert quota_of(headers, NOW) is None


def test_the_pace_spends_what_remains_by_the_reset() -> None:
    assert Quota(30, 60.0).per_second == 0.5
    assert Quota(0, 60.0).per_second == 0.0
    assert Quota(30, 0.0).per_second == float("inf")


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "RateLimit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ]
        ),
        st.text(max_size=40),
    )
)
def test_any_header_value_gives_a_quota_or_none(headers: dict[str, str]) -> None:
    """Whatever a server sends: no exception, and any quota is non-negative."""
    quota = quota_of(headers, NOW)
    assert quota is None or (quota.remaining >= 0 and quota.reset_s >= 0)
