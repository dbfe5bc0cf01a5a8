"""Write each rule's page: `python -m flake8_pooling.rules docs/rules`."""

import sys
from pathlib import Path

from . import all_rules

target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/rules")
target.mkdir(parents=True, exist_ok=True)
for rule in all_rules():
    (target / f"{rule.code}.md").write_text(rule.documentation())
    print(target / f"{rule.code}.md")
