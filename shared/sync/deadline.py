"""One deadline per invocation: the lease wait, every pass and Gmail's retries all fit in it.

Why: a Pub/Sub push invocation that outlives the function's timeout is killed
mid-write and redelivered; one that outlives the subscription's ack deadline
is delivered twice while it still runs. Each part of an invocation used to
have its own budget (lease wait, pass limit, Gmail retry budget, more passes
while `dirty`) and together they could pass both. Now the invocation starts
one clock (SYNC_DEADLINE_SECONDS, below the function timeout, which is below
the ack deadline: deploy.sh) and every part asks it how long it may still run;
work left when it runs out continues in a new invocation from the cursor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Deadline:
    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def at(self) -> float:
        """The monotonic time it passes."""
        return self.started + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def budget(self, wanted: float) -> float:
        """`wanted` seconds, or what is left of the deadline if that is less."""
        return min(wanted, self.remaining())
