"""The use cases: issuing, verifying, the trust list, revocation and statistics.

Each is a class with one public coroutine per operation, depending only on the ports in
:mod:`regfed.service.ports`; ``regfed.app`` wires the real adapters into them.
"""
