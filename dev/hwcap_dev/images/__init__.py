"""OCI images assembled without a container engine: layers from files, pushed to a loopback registry."""
