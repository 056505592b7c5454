"""A fake OpenRouter on loopback, with fault injection.

Used by the gateway's tests, benchmarks and the no-API-key demo mode::

    async with SandboxServer(plan=FaultPlan.realistic()) as sandbox:
        base_url = sandbox.base_url      # "http://127.0.0.1:PORT/api/v1"

    with SandboxThread() as sb:          # from synchronous code
        sb.server.set_plan(FaultPlan(models={"x/y": ModelFaults(fail_next=2)}))
"""

from turnout.sandbox.calls import SandboxCall
from turnout.sandbox.faults import FaultPlan, FreeTier, ModelFaults
from turnout.sandbox.server import SandboxServer
from turnout.sandbox.thread import SandboxThread

__all__ = [
    "FaultPlan",
    "FreeTier",
    "ModelFaults",
    "SandboxCall",
    "SandboxServer",
    "SandboxThread",
]
