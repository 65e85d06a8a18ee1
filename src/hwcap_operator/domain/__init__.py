"""MigrationDomain: the API models (the CRD's source), the pure policy that evaluates a domain, its status.

Nothing here imports kopf or a Kubernetes client: the reconciler, the webhook, the CLI and the benchmarks
all call the same functions.
"""
