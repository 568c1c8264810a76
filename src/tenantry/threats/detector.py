"""The threat analysis's optional model: a tenant's ``anomaly_detector`` in its AI registry.

The analysis keeps no model of its own: its ``anomaly_score`` is a statistic of the window
(``manager.py``: each kind's count against the tenant's baseline, a robust z-score). A tenant
that wants a learned one trains an ``anomaly_detector`` (:class:`tenantry.ai.AIManager`) named
:data:`DETECTOR_MODEL` on its past windows (:meth:`ThreatAnalyzer.training_windows
<tenantry.threats.manager.ThreatAnalyzer.training_windows>` makes the rows) and promotes it;
from then on the analyzer scores each window with that champion: the window's *feature vector*
is the count of each event kind of the analyzer's rules in the window, by name
(:func:`window_features`), and the detector's score (higher is more unusual; an ``anomaly`` at
or above its decision threshold) is the report's ``anomaly_score`` (``anomaly_method:
"model"``, ``anomaly_model_version``). Without a champion, with ``ML_MODELS_ENABLED`` off, or
when the champion cannot score the vector (other features, a file refused by its SHA-256), the
statistic is the score (``anomaly_method: "statistical"``).

Hot path: the AI manager keeps the loaded champion and, for a second, which version the alias
names; a tenant without a usable champion is remembered for ``retry`` seconds, so an analysis
without one costs no read of the registry.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from tenantry.errors import Conflict, FeatureDisabled, InvalidInput, NotFound
from tenantry.logging import get_logger

if TYPE_CHECKING:
    from tenantry.ai.manager import AIManager

__all__ = ["DETECTOR_MODEL", "ModelScore", "WindowDetector", "window_features"]

#: The name of a tenant's threat-window detector in its AI registry.
DETECTOR_MODEL: Final = "threat_window"
_log = get_logger(__name__)

#: (score, anomaly, version) of a window by the tenant's detector.
ModelScore = tuple[float, bool, int]


def window_features(kinds: Sequence[str], counts: Mapping[str, int]) -> dict[str, float]:
    """The window's feature vector: the count of each of ``kinds`` (0 when absent)."""
    return {kind: float(counts.get(kind, 0)) for kind in kinds}


class WindowDetector:
    """Scores windows with each tenant's :data:`DETECTOR_MODEL` champion, when it has one."""

    def __init__(self, ai: AIManager, *, name: str = DETECTOR_MODEL, retry: float = 60.0):
        self.ai, self.name, self.retry = ai, name, retry
        self._without: dict[str, float] = {}  # tenant -> until when it is not asked again

    async def score(
        self, tenant_id: str, kinds: Sequence[str], counts: Mapping[str, int]
    ) -> ModelScore | None:
        """The champion's score of the window, or None: no usable champion (see the module)."""
        if not self.ai.enabled:
            return None
        now = time.monotonic()
        if self._without.get(tenant_id, 0.0) > now:
            return None
        try:
            answer = await self.ai.predict(
                self.name, window_features(kinds, counts), tenant_id=tenant_id
            )
        except (NotFound, Conflict, InvalidInput, FeatureDisabled) as exc:
            if not isinstance(exc, NotFound) and "no champion" not in str(exc):
                _log.warning("threat detector not used", tenant=tenant_id, reason=str(exc))
            if len(self._without) >= 4096:
                self._without = {t: u for t, u in self._without.items() if u > now}
            self._without[tenant_id] = now + self.retry
            return None
        [output] = answer.outputs
        score = max(0.0, min(1.0, float(output["score"])))
        return round(score, 3), bool(output["anomaly"]), answer.version

    def forget(self, tenant_id: str) -> None:
        """Ask the registry again at the next window (a champion was just promoted)."""
        self._without.pop(tenant_id, None)
