"""The demo: the sample playbooks (`*.yaml`) and a generated sample history (`generator`)."""
