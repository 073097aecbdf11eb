"""Errors a fake raises on its next calls of an operation: a crash or an outage played at one
precise point (`store.faults`, `tasks.faults`, `bucket.faults`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Fault:
    op: str
    name: str | None  # None: any object / job / task
    exc: BaseException
    left: int  # calls it still fails


class Faults:
    """`faults.add("patch", gexc.ServiceUnavailable("down"))`: the next patch raises it.
    `name` limits a fault to one object / job / task; `times` to that many calls."""

    def __init__(self) -> None:
        self._due: list[_Fault] = []
        self.raised: list[tuple[str, str | None]] = []  # (op, name) of every fault raised, in order

    def add(self, op: str, exc: BaseException, name: str | None = None, times: int = 1) -> None:
        self._due.append(_Fault(op, name, exc, times))

    def check(self, op: str, name: str | None = None) -> None:
        for fault in self._due:
            if fault.op == op and fault.name in (None, name) and fault.left > 0:
                fault.left -= 1
                self.raised.append((op, name))
                raise fault.exc
