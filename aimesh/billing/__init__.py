"""Billing for aimesh: what model calls cost tenants, and the budgets that cap it.

Modules: ``ledger`` (one row per model call attempt; the statistics), ``budgets``
(reserving a run's worst case against the budgets that apply, reconciling it after),
``amounts`` (USD limits, nano-USD integers, UTC calendar windows), ``admin`` (creating
budgets and reading their current windows) and ``run_bound`` (a run's worst case: model
calls and token caps, priced with :mod:`aimesh.llm.cost`). The ledger, budgets and admin query
the database; :mod:`aimesh.llm` knows none of these modules.
"""
