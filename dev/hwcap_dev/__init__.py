"""Development tooling for hwcap-operator: never imported by the product, never shipped in its wheel or image."""
