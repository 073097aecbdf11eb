"""Failover rules, pure: which providers a job may move to, and on which failures.

A job moves to its next provider only while no provider has accepted it: the submission was
refused for quota past a bounded wait, the provider could not be reached, or it denied access.
Never once a provider answered with a handle (that could pay twice), never on a safety filter
(another provider would be asked to make what one refused), never on a timeout (the provider may
have accepted the job without our hearing it)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from veorelay.core.errors import ErrorCode

# Refusals that say the provider did not take the job and another one may.
FAILOVER_CODES = frozenset({ErrorCode.QUOTA_EXCEEDED, ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.ACCESS_DENIED})
# veo-3.1-fast-generate-001 -> veo-3.1-fast; veo-3.1-generate-preview -> veo-3.1; veo-2.0-generate-001 -> veo-2.0
_FAMILY = re.compile(r"^(veo-?\d+(?:\.\d+)?(?:-(?:fast|lite))?)(?:-generate)?(?:-(?:\d{3}|preview|exp))*$")


def model_family(model: str | None) -> str | None:
    """The Veo generation and tier a model id names, as failover chains are keyed; None when
    the id follows no Google naming (a gateway's own alias)."""
    if not model:
        return None
    match = _FAMILY.match(model.lower().replace("veo3", "veo-3").replace("veo2", "veo-2"))
    return match[1] if match else None


def fallback_chain(chosen: str, asked: Sequence[str] | None, named_provider: bool, family: str | None,
                   chains: Mapping[str, Sequence[str]]) -> list[str]:
    """The providers a job may move to, in order, after `chosen`. The client's own list wins;
    a client that named its provider and no list gets none (it asked for that one); otherwise
    the deployment's chain for the model's family."""
    if asked is not None:
        order = list(asked)
    elif named_provider or family is None:
        order = []
    else:
        order = list(chains.get(family, ()))
    return [name for i, name in enumerate(order) if name != chosen and name not in order[:i]]


def may_fail_over(code: str) -> bool:
    return code in FAILOVER_CODES
