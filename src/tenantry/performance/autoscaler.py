"""The service scaling its own Deployment on its load forecast (``AUTO_SCALING_ENABLED``).

Every ``interval`` seconds (``TENANTRY_AUTOSCALING_INTERVAL``) a round:

1. reads the Deployment's scale (:class:`~tenantry.performance.kubernetes.DeploymentScale`):
   the current replicas are its ``spec.replicas``, as the HPA reads them;
2. asks the performance manager's :meth:`~tenantry.performance.manager.PerformanceManager.
   scaling_advice` for them: the HPA's rule (tolerance, stabilization, min/max) on the load
   forecast's peak over the next ``lead_seconds``;
3. when the advice differs from the current count and no change was made within the
   stabilization window (``TENANTRY_AUTOSCALING_STABILIZATION_SECONDS``), patches
   ``spec.replicas`` with the ``resourceVersion`` it read (409 if the Deployment changed
   meanwhile), then audits the change on the platform's log (``performance.scale``) and logs it.

It holds, and says why, when the Deployment is scaled to zero (someone stopped it on purpose,
as the HPA leaves it alone) or when there is no load history at all to forecast from (a fresh
service would otherwise be scaled to ``min_replicas`` on no evidence). An error of the API
(401, 403, 404, 409, 5xx, a timeout) or of the advice is counted by kind
(:attr:`AutoScaler.errors`), logged, and the next round waits twice as long (up to 16
intervals) until one succeeds; the loop itself never ends on an error.

One process leads: every process of the service runs the loop (each worker of ``tenantry serve
--workers N``, each pod), but a round changes nothing unless its process holds the PostgreSQL
advisory lock of the Deployment (``tenantry.autoscaler:<namespace>/<name>``, taken without
waiting and kept, on a connection of its own, for as long as the process runs); the others'
rounds hold, "another process leads". So one process decides, its stabilization window is the
Deployment's, and when it dies its connection closes, the lock is released, and the next round
of another process takes over.

It must not run beside a HorizontalPodAutoscaler of the same Deployment: both write
``spec.replicas``, and each would undo the other's changes. For an HPA, the autoscaler runs
with ``apply=False`` instead (``TENANTRY_SCALING_ADVICE_METRIC`` without
``AUTO_SCALING_ENABLED``): a round reads the scale and asks for the advice as above, then only
publishes it (action ``advised``) as the gauge ``tenantry_scaling_recommended_replicas``
(:mod:`tenantry.performance.exposition`), which the HPA reads through the Prometheus adapter;
it never patches, and needs only ``get`` on ``deployments/scale``. Either way a round with
advice sets the gauge, and one without (no load history, scaled to zero) removes it.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Final

from tenantry.db.locks import advisory_lock
from tenantry.errors import KubernetesApiError, TenantryError
from tenantry.logging import get_logger
from tenantry.performance.exposition import ScalingMetrics
from tenantry.performance.kubernetes import DeploymentScale
from tenantry.performance.manager import PerformanceManager
from tenantry.performance.scaling import ScalingSpec
from tenantry.performance.schemas import AutoScalerStatus

__all__ = ["AutoScaler", "ScaleRound"]

_log = get_logger("tenantry.performance.autoscaler")
#: The longest wait after failures, in intervals.
_MAX_BACKOFF: Final = 16


@dataclass(frozen=True, slots=True)
class ScaleRound:
    """What a round found and did: ``action`` is ``scaled``, ``unchanged`` or ``held``."""

    current: int  # spec.replicas as read
    running: int  # status.replicas as read: the pods running
    advised: int | None
    replicas: int  # after the round
    action: str  # scaled, unchanged, held; advised (apply=False)
    reason: str


class AutoScaler:
    """See the module docstring. ``clock``: monotonic seconds (the tests' to move)."""

    def __init__(
        self,
        performance: PerformanceManager,
        scale: DeploymentScale,
        spec: ScalingSpec,
        *,
        interval: float = 60.0,
        lead_seconds: float = 180.0,
        tenant_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        apply: bool = True,
        metrics: ScalingMetrics | None = None,
    ) -> None:
        self.performance, self.scale, self.spec = performance, scale, spec
        #: False: the advice is published (``metrics``), never applied (module docstring).
        self.apply, self.metrics = apply, metrics
        self.interval, self.lead_seconds = interval, lead_seconds
        #: At most one change per this many seconds (the spec's scale-down window).
        self.stabilization = float(spec.scale_down_window_s)
        self.tenant_id = tenant_id
        self._clock = clock
        self._last_change = -math.inf
        self._failures = 0
        self._task: asyncio.Task[None] | None = None
        #: Failed rounds by kind (``http_409``, ``timeout``, ``advice``, ...).
        self.errors: dict[str, int] = {}
        #: The last round's outcome (None before the first).
        self.last: ScaleRound | None = None
        #: Holds the leader's lock while this process leads (see the module docstring).
        self._leading: AsyncExitStack | None = None

    @classmethod
    def from_settings(
        cls,
        performance: PerformanceManager,
        *,
        apply: bool = True,
        metrics: ScalingMetrics | None = None,
    ) -> AutoScaler:
        """The settings' Deployment, spec, interval and lead (``TENANTRY_AUTOSCALING_*``)."""
        s = performance.settings
        spec = ScalingSpec(
            min_replicas=s.autoscaling_min_replicas,
            max_replicas=s.autoscaling_max_replicas,
            target_per_pod=s.autoscaling_target_per_pod,
            scale_down_window_s=s.autoscaling_stabilization_seconds,
        )
        return cls(
            performance,
            DeploymentScale.from_settings(s),
            spec,
            interval=s.autoscaling_interval,
            lead_seconds=s.autoscaling_lead_seconds,
            apply=apply,
            metrics=metrics,
        )

    def status(self) -> AutoScalerStatus:
        last = self.last
        return AutoScalerStatus(
            enabled=True,
            applies=self.apply,
            namespace=self.scale.namespace,
            deployment=self.scale.deployment,
            min_replicas=self.spec.min_replicas,
            max_replicas=self.spec.max_replicas,
            target_per_pod=self.spec.target_per_pod,
            stabilization_seconds=self.stabilization,
            next_round_seconds=self.next_wait(),
            last_action=last.action if last else None,
            last_reason=last.reason if last else None,
            replicas=last.replicas if last else None,
            advised=last.advised if last else None,
            errors=dict(self.errors),
        )

    # -- the loop ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._leading is not None:
            leading, self._leading = self._leading, None
            await leading.aclose()
        await self.scale.close()

    @property
    def leading(self) -> bool:
        """Whether this process holds the Deployment's lock (and decides)."""
        return self._leading is not None

    async def _lead(self) -> bool:
        """Take the Deployment's lock if no other process holds it; whether this one does."""
        if self._leading is not None:
            return True
        stack = AsyncExitStack()
        name = f"tenantry.autoscaler:{self.scale.namespace}/{self.scale.deployment}"
        held = await stack.enter_async_context(
            advisory_lock(await self.performance.database(), name)
        )
        if not held:
            await stack.aclose()
            return False
        self._leading = stack
        return True

    def next_wait(self) -> float:
        """Seconds to the next round: the interval, doubled per failure in a row (at most
        16 times)."""
        return self.interval * float(min(_MAX_BACKOFF, 2 ** min(self._failures, 8)))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.next_wait())
            await self.run_round()

    async def run_round(self) -> ScaleRound | None:
        """One round; None when it failed (counted and logged, see the module docstring)."""
        try:
            found = await self.step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loop outlives any one round's failure
            kind = _kind(exc)
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self._failures += 1
            _log.warning(
                "autoscaling round failed",
                kind=kind,
                error=exc.detail if isinstance(exc, TenantryError) else repr(exc),
                next_in=self.next_wait(),
            )
            return None
        return found

    # -- one round --------------------------------------------------------------------------------

    async def step(self) -> ScaleRound:
        """Read, advise, and change the replicas if the advice and the window allow."""
        scale = await self.scale.get()
        current = scale.spec_replicas
        if not await self._lead():
            reason = "another process leads the autoscaling"
            return self._done(current, scale.status_replicas, None, "held", reason)
        if current == 0:
            self._publish(None)
            return self._done(current, scale.status_replicas, None, "held", "scaled to zero")
        plan = await self.performance.scaling_advice(
            self.spec,
            current_replicas=current,
            lead_seconds=self.lead_seconds,
            deployment=self.scale.deployment,
            tenant_id=self.tenant_id,
        )
        advised, running = plan.advice.replicas, scale.status_replicas
        if plan.forecast.model == "none":
            self._publish(None)
            return self._done(current, running, advised, "held", "no load history")
        self._publish(advised)
        if advised == current or not self.apply:  # apply=False: published, never patched
            action = "unchanged" if self.apply else "advised"
            return self._done(current, running, advised, action, plan.advice.reason)
        since = self._clock() - self._last_change
        if since < self.stabilization:
            reason = f"a change {since:.0f} s ago, within the {self.stabilization:.0f} s window"
            return self._done(current, running, advised, "held", reason)
        await self.scale.set(advised, resource_version=scale.resource_version)
        self._last_change = self._clock()
        detail = {
            "namespace": self.scale.namespace,
            "from": str(current),
            "to": str(advised),
            "reason": plan.advice.reason,
            "peak_load": f"{plan.advice.peak_load:g}",
            "target_per_pod": f"{self.spec.target_per_pod:g}",
        }
        _log.info("autoscaled", deployment=self.scale.deployment, **detail)
        await self.performance.record_platform_change(
            "performance.scale",
            f"deployment:{self.scale.namespace}/{self.scale.deployment}",
            actor="autoscaler",
            detail=detail,
        )
        return self._done(current, running, advised, "scaled", plan.advice.reason, advised)

    def _publish(self, advised: int | None) -> None:
        if self.metrics is not None:
            if advised is None:
                self.metrics.withdrawn(self.scale.deployment)
            else:
                self.metrics.advised(self.scale.deployment, advised)

    def _done(  # noqa: PLR0917 - a round's parts, once
        self,
        current: int,
        running: int,
        advised: int | None,
        action: str,
        reason: str,
        replicas: int | None = None,
    ) -> ScaleRound:
        """The round's outcome, kept as the last one; a round that ends resets the back-off."""
        after = current if replicas is None else replicas
        self.last = ScaleRound(current, running, advised, after, action, reason)
        self._failures = 0
        return self.last


def _kind(exc: BaseException) -> str:
    if isinstance(exc, KubernetesApiError):
        if exc.status is None:
            return "timeout" if exc.timed_out else "unreachable"
        return f"http_{exc.status}"
    return "advice" if isinstance(exc, TenantryError) else type(exc).__name__
