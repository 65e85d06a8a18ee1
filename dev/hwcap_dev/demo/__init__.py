"""``make demo``: the product end to end on one machine (see :mod:`hwcap_dev.demo.story`)."""
