"""The node agent: reports its node's real HWCAPs, kernel release and HWCAP-inheritance support."""
