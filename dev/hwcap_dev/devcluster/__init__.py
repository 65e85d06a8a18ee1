"""Local control plane (etcd + kube-apiserver + kube-scheduler) built from Go modules, for tests and the demo."""
