"""One clear error for a config: every problem listed, then raised once."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config was invalid; the message lists every problem and what to change."""

    def __init__(self, config_name: str, problems: list[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {config_name} ({len(self.problems)} problem(s)):\n{listing}")


def raise_if_problems(config_name: str, problems: list[str]) -> None:
    """Raise ConfigError when `problems` is not empty."""
    if problems:
        raise ConfigError(config_name, problems)
