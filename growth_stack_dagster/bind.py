"""Safe defaults at the edge: a server never listens beyond this machine while it still trusts
the built-in development credentials.

Every server command (`collector`, `sandbox`, `router`, `console`, ...) calls `refuse_public_bind`
before it binds. Pure functions, no heavy imports: the collector must start fast.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; False for anything else, including 0.0.0.0 and ''."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


def development_settings_in_use(settings: dict[str, tuple[str, str]]) -> list[str]:
    """The names of the settings whose value is still the built-in development default.

    `settings` maps an environment variable's name to (current value, development default).
    """
    return [name for name, (value, default) in settings.items() if value == default]


def refuse_public_bind(host: str, dev_settings_in_use: list[str], allow_flag: str) -> None:
    """Raise `click.UsageError` when `host` is not loopback and development defaults are in use.

    `dev_settings_in_use` names the environment variables still at their development value
    (see `development_settings_in_use`); `allow_flag` is the command's opt-out flag, e.g.
    `--allow-development-keys`, which the caller checks before calling this.
    """
    if is_loopback(host) or not dev_settings_in_use:
        return
    import click

    names = ", ".join(dev_settings_in_use)
    raise click.UsageError(
        f"Refusing to listen on {host}: the built-in development credentials are in use ({names}), "
        f"and anyone who can reach this address could use them. Set {names} to your own secret values, "
        f"bind to 127.0.0.1, or pass {allow_flag} if this is a throwaway machine."
    )
