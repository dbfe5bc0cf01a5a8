"""What a rule may know beyond the module: settings now, the project's files later."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePath

from ..settings import Settings
from .project import Project, project_for


@dataclass(frozen=True)
class Context:
    settings: Settings = field(default_factory=Settings)
    path: str = ""

    @property
    def sqlalchemy_version(self) -> tuple[int, ...]:
        """Configured, else pinned by the project (lock files, requirements), else installed."""
        if self.settings.configured_version:
            return self.settings.configured_version
        pin = self.project.deployment.sqlalchemy_pin if self.path else None
        return pin[0] if pin else self.settings.sqlalchemy_version

    @cached_property  # a dataclass's frozen __setattr__ does not stand in its way
    def project(self) -> Project:
        """The project around this file, scanned once per process (only rules that need it)."""
        return project_for(self.path)

    @property
    def application_name(self) -> str:
        """A name for the connections this module opens: its package, else the file's stem."""
        path = PurePath(self.path or "app.py")
        parent = path.parent.name
        name = parent if parent and parent not in (".", "src") else path.stem
        return "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "app"
