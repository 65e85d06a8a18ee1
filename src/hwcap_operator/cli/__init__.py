"""Command-line entry points: ``hwcapctl`` (inspect, check, simulate) and ``hwcap-operator`` (run)."""
