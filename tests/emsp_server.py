"""The real eMSP OCPI server the flow tests talk to: it lives in ocpi/sandbox_emsp.py, where
staff and partners also run it (`manage.py sandbox_emsp`)."""

from ocpi.sandbox_emsp import EMSPServer, Recorded

__all__ = ["EMSPServer", "Recorded"]
