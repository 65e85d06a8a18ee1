"""``make demo``: the product end to end on one machine (entry point :mod:`hwcap_dev.demo.cli`, the scenario
:mod:`hwcap_dev.demo.story`)."""
