"""Salesforce sync: opportunities in, governance results and outcomes out."""

# Importing any part of the sync installs the outbox hook (every flush that changes a deal's
# governance result, approval status or outcome writes its outbox row), so it is in place in
# every process that can change a deal: the app (through the router), the worker, and the
# CLI's sync commands, not only in one that happens to import `outbound`.
from governance.salesforce import outbound as _outbound  # noqa: F401
