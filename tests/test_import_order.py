"""Where a fix puts the imports it adds: as libcst's AddImportsVisitor does, without importing
`libcst.codemod` (fix.py's reason), and isort's layout when the block was sorted."""

from __future__ import annotations

import subprocess
import sys

import libcst as cst
import pytest
from hypothesis import given, settings, strategies as st
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from flake8_pooling.import_order import add_imports

MODULES = [
    "",
    "x = 1\n",
    '"""Doc."""\n',
    '"""Doc."""\nx = 1\n',
    '"""Doc."""\n\nimport os\n\nx = 1\n',
    "__strict__ = True\nimport os\n",
    "from __future__ import annotations\n\nimport os\n\nengine = 1\n",
    "import os\nfrom sqlalchemy import create_engine\n# engines\nengine = 1\n",
    "from sqlalchemy import create_engine\nfrom sqlalchemy.pool import QueuePool\n\nx = 1\n",
    "from sqlalchemy.pool import *\n",
    "from sqlalchemy.pool import NullPool as Null\n",
    "from sqlalchemy.pool import (\n    QueuePool,\n)\n",
    "import os, sys\nimport sqlalchemy.pool\n",
    "import sqlalchemy.pool as pool\n",
    "from . import models\nfrom .pool import NullPool\n",
    "import os; x = 1\nfrom sqlalchemy.pool import QueuePool\n",
    "x = 1\nfrom sqlalchemy.pool import QueuePool\n",
    "if True:\n    import os\n",
    "import os\r\nx = 1\r\n",
]

WANTED = [
    [("sqlalchemy.pool", "NullPool")],
    [("sqlalchemy.pool", "NullPool"), ("sqlalchemy.pool", "StaticPool")],
    [("sqlalchemy.pool", "NullPool"), ("sqlalchemy", "event")],
    [("psycogreen.gevent", None)],
    [("os", None), ("sqlalchemy.pool", None)],
    [("__future__", "annotations"), ("sqlalchemy.pool", "NullPool")],
    [("os", None)],
    [("sqlalchemy", "create_engine")],
]


def libcst_placement(source: str, wanted) -> str:
    context = CodemodContext()
    for module, name in wanted:
        AddImportsVisitor.add_needed_import(context, module, name)
    return AddImportsVisitor(context).transform_module(cst.parse_module(source)).code


@pytest.mark.parametrize("source", MODULES)
@pytest.mark.parametrize("wanted", WANTED)
def test_imports_land_where_libcst_puts_them(source, wanted):
    assert add_imports(cst.parse_module(source), wanted).code == libcst_placement(source, wanted)


LINES = st.sampled_from([
    "import os\n", "import sqlalchemy.pool\n", "from sqlalchemy.pool import QueuePool\n",
    "from sqlalchemy.pool import NullPool, QueuePool\n", "from sqlalchemy import event\n",
    "from __future__ import annotations\n", '"""Doc."""\n', "\n", "# note\n", "x = 1\n",
    "def f():\n    import os\n", "from sqlalchemy.pool import *\n",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=8), st.lists(st.sampled_from(
    [("sqlalchemy.pool", "NullPool"), ("sqlalchemy.pool", "StaticPool"), ("sqlalchemy", "event"),
     ("os", None), ("psycogreen.gevent", None)]), min_size=1, max_size=3, unique=True))
def test_generated_modules_agree_with_libcst(lines, wanted):
    source = "".join(lines)
    assert add_imports(cst.parse_module(source), wanted).code == libcst_placement(source, wanted)


def test_a_fix_that_adds_an_import_loads_no_codemod_package(tmp_path):
    """JSON and SARIF describe each fix's edits; the fixer they use must not pay for
    `libcst.codemod`, which costs more than the edits of a 500-finding file."""
    path = tmp_path / "db.py"
    path.write_text('from sqlalchemy import create_engine\n\n'
                    'engine = create_engine("postgresql://app@pgbouncer:6432/app")\n')
    probe = ("import sys, json; from flake8_pooling.fix import fix_source; "
             f"result = fix_source(open({str(path)!r}).read(), {str(path)!r}); "
             "print(json.dumps([result.changed, 'libcst.codemod' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert out.strip() == "[true, false]"
