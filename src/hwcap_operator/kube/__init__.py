"""The thin skin that talks to Kubernetes: kopf handlers, indexes, events, metrics, the webhook server."""
