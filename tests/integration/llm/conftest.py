"""Fixtures of the provider-chain tests: the wire-level fake providers (``fake_providers``)."""

from tests.wire.fake_providers import fake_provider_server_fixture, fake_providers_fixture

__all__ = ["fake_provider_server_fixture", "fake_providers_fixture"]
