"""Test-only environment defaults, loaded as a pytest plugin (-p) before Django settings load."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("OCPI_TOKEN_ENCRYPTION_KEY", "test-only-token-key")
