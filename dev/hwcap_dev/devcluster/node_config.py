"""The configuration files of one real node, rendered from its layout (pure: strings in, strings out).

Each setting here was learnt from a failure on our machines (issue 16):

* containerd: ``restrict_oom_score_adj`` (a process here may not lower its oom_score_adj; the sandbox asks
  for -998), runc (crun refuses hybrid cgroups), cgroupfs (no systemd), network namespaces kept under the
  node's own state directory so teardown finds them, NRI off (its socket path is machine-wide), the
  loopback registry reached over plain http by a ``hosts.toml``;
* CNI: a ``bridge`` with ``isGateway: false`` and ``ipMasq: false`` and host-local IPAM on a private range.
  The bridge gets no address, so the host has no route to the pods and nothing is masqueraded: pods have
  an interface (the CRI needs one) that leads nowhere;
* kubelet: ``failCgroupV1: false`` and ``cgroupDriver: cgroupfs`` (cgroup v1 hierarchies), its own
  ``cgroupRoot`` so several kubelets on one machine never share a pod cgroup, every listener on 127.0.0.1
  with its own ports, webhook authentication/authorization against the apiserver (as real clusters run),
  pod logs, plugins and seccomp profiles under its own root directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class NodeLayout:
    """Where one node keeps everything, and the names and ports that must not clash with other nodes."""

    name: str
    base: Path  # short on purpose: unix socket paths under it must stay below 108 bytes
    bridge: str  # at most 15 characters (IFNAMSIZ)
    subnet: str
    cgroup_root: str
    kubelet_port: int
    healthz_port: int

    @property
    def containerd_root(self) -> Path:
        """containerd's persistent root (content store, snapshots)."""
        return self.base / "containerd"

    @property
    def containerd_state(self) -> Path:
        """containerd's state directory (tasks, network namespaces)."""
        return self.base / "containerd-state"

    @property
    def containerd_socket(self) -> Path:
        """The CRI/containerd gRPC socket."""
        return self.base / "containerd.sock"

    @property
    def crio_root(self) -> Path:
        """CRI-O's containers/storage graph root (images, container layers) on a CRI-O node."""
        return self.base / "crio"

    @property
    def crio_runroot(self) -> Path:
        """CRI-O's run root (storage run state, runc root, exit files)."""
        return self.base / "crio-run"

    @property
    def crio_socket(self) -> Path:
        """CRI-O's CRI socket."""
        return self.base / "crio.sock"

    @property
    def crio_namespaces_dir(self) -> Path:
        """Where pinns pins a CRI-O pod's namespaces (network namespaces under ``netns/``)."""
        return self.base / "crio-ns"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's ``--root-dir`` (pods, volumes, plugins, seccomp profiles)."""
        return self.base / "kubelet"

    @property
    def seccomp_dir(self) -> Path:
        """Where ``Localhost`` seccomp profiles of this node live (``localhostProfile`` is relative to it)."""
        return self.kubelet_root / "seccomp"

    @property
    def cni_conf_dir(self) -> Path:
        """The CNI configuration directory containerd reads."""
        return self.base / "cni" / "net.d"

    @property
    def registry_hosts_dir(self) -> Path:
        """containerd's ``config_path`` for registry hosts (``<host:port>/hosts.toml``)."""
        return self.base / "certs.d"

    @property
    def pod_logs_dir(self) -> Path:
        """Container logs (``kubectl logs`` reads them through the kubelet)."""
        return self.base / "pod-logs"

    @property
    def pki_dir(self) -> Path:
        """The node's client and serving certificates."""
        return self.base / "pki"


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def containerd_config(layout: NodeLayout, *, shim_dir: Path, runc: Path, cni_bin_dir: Path,
                      sandbox_image: str) -> str:
    """containerd 2.x ``config.toml`` for one node (schema version 3: containerd 2.4 migrates it at start and
    says so in its log; its version 4 moved the ``[grpc]`` address elsewhere, so 3 is what we write)."""
    s = _toml_str
    return f"""version = 3
root = {s(str(layout.containerd_root))}
state = {s(str(layout.containerd_state))}
imports = []

[grpc]
  address = {s(str(layout.containerd_socket))}

[ttrpc]
  address = {s(str(layout.containerd_socket) + ".ttrpc")}

[debug]
  level = "info"

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = {s(sandbox_image)}
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = {s(str(layout.registry_hosts_dir))}

  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    enable_criu = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        runtime_path = {s(str(shim_dir / "containerd-shim-runc-v2"))}
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = {s(str(runc))}
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [{s(str(cni_bin_dir))}]
      conf_dir = {s(str(layout.cni_conf_dir))}

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

  [plugins.'io.containerd.nri.v1.nri']
    disable = true

  [plugins.'io.containerd.internal.v1.opt']
    path = {s(str(layout.base / "opt"))}
"""


def registry_hosts_toml(registry_host: str) -> str:
    """``hosts.toml`` telling containerd to pull from ``registry_host`` over plain http."""
    url = f"http://{registry_host}"
    return f'server = "{url}"\n\n[host."{url}"]\n  capabilities = ["pull", "resolve"]\n'


def cni_conflist(layout: NodeLayout) -> str:
    """A bridge that routes nowhere (no gateway address, no masquerading) with host-local IPAM."""
    doc = {
        "cniVersion": "1.0.0",
        "name": f"hwcap-{layout.name}",
        "plugins": [{
            "type": "bridge",
            "bridge": layout.bridge,
            "isGateway": False,
            "ipMasq": False,
            "hairpinMode": False,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": layout.subnet}]],
                "dataDir": str(layout.base / "cni" / "ipam"),
            },
        }],
    }
    return json.dumps(doc, indent=2) + "\n"


def kubelet_config(layout: NodeLayout, *, client_ca: Path, serving_cert: Path, serving_key: Path,
                   runtime_socket: Path | None = None) -> str:
    """The KubeletConfiguration of one node (its runtime: containerd's socket unless ``runtime_socket``)."""
    doc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": layout.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": layout.healthz_port,
        "tlsCertFile": str(serving_cert),
        "tlsPrivateKeyFile": str(serving_key),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{runtime_socket or layout.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "podLogsDir": str(layout.pod_logs_dir),
        "volumePluginDir": str(layout.base / "volume-plugins"),
        "maxPods": 16,
        "registerNode": True,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "2%", "imagefs.available": "2%"},
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "resolvConf": "",
        "logging": {"format": "text"},
    }
    return yaml.safe_dump(doc, sort_keys=True)
