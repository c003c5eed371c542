import click
import pytest

from growth_stack_dagster.bind import development_settings_in_use, is_loopback, refuse_public_bind


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.5.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("10.0.0.5", False), ("example.com", False),
])
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_refuses_a_public_address_while_development_settings_are_in_use() -> None:
    in_use = development_settings_in_use({"GROWTH_STACK_WRITE_KEYS": ("web=web-dev-key", "web=web-dev-key"),
                                          "STRIPE_WEBHOOK_SECRET": ("whsec_real", "whsec_sandbox")})
    assert in_use == ["GROWTH_STACK_WRITE_KEYS"]
    with pytest.raises(click.UsageError, match="GROWTH_STACK_WRITE_KEYS.*--allow-development-keys"):
        refuse_public_bind("0.0.0.0", in_use, "--allow-development-keys")
    refuse_public_bind("127.0.0.1", in_use, "--allow-development-keys")
    refuse_public_bind("0.0.0.0", [], "--allow-development-keys")
