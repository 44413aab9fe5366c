"""Rule-based alerting evaluated server-side on new data.

Owns alert rules (validation, persistence), the background evaluation engine
(hysteresis, cooldown) and webhook delivery. It computes metrics only through
``analytics`` and reads data only through ``storage``; it must never import
``streamlit`` or ``ingest``.
"""

from alerts.engine import AlertEngine, AlertEvent, WebhookSender, metric_series
from alerts.rules import COMPARISONS, METRICS, AlertRule, RuleError, RuleState, RuleStore, step

__all__ = [
    "COMPARISONS", "METRICS", "AlertEngine", "AlertEvent", "AlertRule", "RuleError", "RuleState", "RuleStore",
    "WebhookSender", "metric_series", "step",
]
