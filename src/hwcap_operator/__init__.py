"""hwcap-operator: keep workloads migratable across nodes with different CPUs.

The package is layered: pure logic (``features``, ``mask``, ``execmodel``, ``domain``,
``admission``) that never imports kopf or a Kubernetes client, and a thin skin
(``kube``, ``agent``, ``devcluster``, ``cli``) that talks to the world.
"""

__version__ = "0.1.0"
