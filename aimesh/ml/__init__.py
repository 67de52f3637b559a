"""Pure ML for aimesh: training, evaluation, persistence and prediction (no LLM imports).

Modules: ``tabular`` (CSV reading and feature typing), ``portfolio`` (the client table),
``churn``, ``anomaly``, ``pricing``, ``metrics``, ``registry`` (model persistence) and
``service`` (the lazily loading facade used by tools).
"""
