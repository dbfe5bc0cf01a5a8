"""POL104 option-wrong-type: engine options given as strings where SQLAlchemy needs a class, a
number or a boolean."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import EngineCall, EngineOption, ModuleFacts
from ...findings import SAFE, UNSAFE, Edit, Fix, parse_expression, replace_with
from ..base import Example, Rule
from ..pools import QUEUE_POOLS, REJECTED_BY_POOL, class_reference

# When a numeric pool option given as a string fails (fact 19; the later ones checked on
# SQLAlchemy 2.1.9: they pass create_engine and break at checkout)
NUMERIC_STRING_FAILURE = {
    "pool_size": "create_engine() fails at start with TypeError: unsupported operand type(s) "
                 "for -: 'int' and 'str'",
    "max_overflow": "the first checkout fails with TypeError: '>' not supported between "
                    "instances of 'str' and 'int'",
    "pool_recycle": "the first checkout fails with TypeError: '>' not supported between "
                    "instances of 'str' and 'int'",
    "pool_timeout": "the first checkout that has to wait for a connection (under load) fails "
                    "with TypeError: '<' not supported between instances of 'str' and 'int'",
}
# Not coerced by engine_from_config either: "false" stays a truthy string (fact 23)
BOOLEAN_OPTIONS = ("pool_pre_ping", "pool_use_lifo")
_FALSE_WORDS = {"false", "f", "no", "n", "off", "0"}


class OptionWrongType(Rule):
    """
    ## What it does
    Finds engine options given as strings where SQLAlchemy needs another type:

    - `poolclass` as a dotted string (`"sqlalchemy.pool.NullPool"`), anywhere: SQLAlchemy never
      imports strings and fails at start with `AttributeError: 'str' object has no attribute
      '__dict__'`;
    - numeric pool options as strings passed straight to `create_engine()`, literally or read
      from the environment (`os.environ.get("POOL_SIZE", "5")` is always a string): `pool_size="7"`
      fails at start; `max_overflow` and `pool_recycle` fail at the first checkout;
      `pool_timeout` fails only when a checkout has to wait, that is, under load
      (`engine_from_config()` converts these, so it is quiet there);
    - `pool_pre_ping` or `pool_use_lifo` as a string meaning false (`"false"`, `"0"`, `"no"`):
      no SQLAlchemy API converts them, and any non-empty string is truthy, so the option is
      on.

    ## Why is this bad?
    Configuration copied from environment files and INI settings arrives as strings. The popular
    advice `SQLALCHEMY_ENGINE_OPTIONS = {"poolclass": "sqlalchemy.pool.NullPool"}` crashes
    every Flask-SQLAlchemy version at start.

    ## Fix safety
    Safe for `poolclass` (the class, imported) and numeric strings (the number, or `int(...)`
    around an environment read): the code failed before and now runs as written. Booleans read
    from the environment get no fix: how the variable is meant is not in the code. Unsafe for
    boolean strings: `"false"` -> `False` turns an option off that was on until now.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/engines.html#sqlalchemy.create_engine
    - https://docs.sqlalchemy.org/en/20/core/engines.html#sqlalchemy.engine_from_config
    """

    code = "POL104"
    level = "error"
    name = "option-wrong-type"
    fix_availability = "safe or unsafe"
    string_poolclass = ("poolclass is the string {value!r}: SQLAlchemy fails at start with "
                        "AttributeError: 'str' object has no attribute '__dict__'; pass the "
                        "class{name}")
    numeric_string = "{option} is the string {value!r}: {failure}; {use}"
    numeric_from_environment = ("{option} is read from ${variable}, which is always a string: "
                                "{failure}; use {convert}(...)")
    false_string = ("{option} is the string {value!r}, which is truthy: SQLAlchemy does not "
                    "convert it and turns {option} on; use False")
    boolean_from_environment = (
        "{option} is read from ${variable}, which is always a string: any non-empty value, "
        "'false' and '0' included, turns {option} on; compare it, e.g. "
        "os.environ.get({variable!r}) == \"1\"")
    invalid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", poolclass="sqlalchemy.pool.NullPool")
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool)
        ''', raises="AttributeError"),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", pool_size="7")
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", pool_size=7)
        ''', raises="TypeError"),
        Example('''
            from sqlalchemy import engine_from_config

            engine = engine_from_config({
                "sqlalchemy.url": "sqlite:///app.db",
                "sqlalchemy.poolclass": "sqlalchemy.pool.StaticPool",
            })
        ''', fixed='''
            from sqlalchemy import engine_from_config
            from sqlalchemy.pool import StaticPool

            engine = engine_from_config({
                "sqlalchemy.url": "sqlite:///app.db",
                "sqlalchemy.poolclass": StaticPool,
            })
        ''', raises="AttributeError"),
        Example('''
            class Config:
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": "false"}
        ''', fixed='''
            class Config:
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False}
        '''),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool, pool_recycle=3600)
        '''),
        Example('''
            from sqlalchemy import engine_from_config

            # engine_from_config converts numeric strings
            engine = engine_from_config({"sqlalchemy.url": "sqlite:///app.db",
                                         "sqlalchemy.pool_size": "7"})
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        for engine in facts.engines:
            for option in engine.options.values():
                if option.from_environment:
                    yield from self._environment_string(option, engine)
                    continue
                value = option.value
                if not isinstance(value, str):
                    continue
                if option.name == "poolclass":
                    yield self._string_poolclass(option, value, facts)
                elif option.name in NUMERIC_STRING_FAILURE and engine.api.strings_unconverted:
                    yield self._numeric_string(option, value, engine)
                elif option.name in BOOLEAN_OPTIONS and value.strip().lower() in _FALSE_WORDS:
                    yield self.finding(
                        option.holder, self.false_string.format(option=option.name, value=value),
                        Fix(UNSAFE, (Edit(option.value_node, replace_with(cst.Name("False"))),)))

    def _string_poolclass(self, option: EngineOption, value: str, facts: ModuleFacts):
        name = value.rpartition(".")[2].rpartition(":")[2]
        fix = None
        if name in REJECTED_BY_POOL or name in QUEUE_POOLS:
            reference, imports = class_reference(facts, name)
            fix = Fix(SAFE, (Edit(option.value_node, replace_with(reference)),), imports)
        return self.finding(option.holder, self.string_poolclass.format(
            value=value, name=f" {name}" if fix else ""), fix)

    def _environment_string(self, option: EngineOption, engine: EngineCall) -> Iterator:
        variable = option.from_environment
        if option.name in NUMERIC_STRING_FAILURE and engine.api.strings_unconverted:
            convert = "float" if option.name == "pool_timeout" else "int"
            failure = NUMERIC_STRING_FAILURE[option.name].replace("create_engine()",
                                                                  engine.api.label)
            yield self.finding(
                option.holder, self.numeric_from_environment.format(
                    option=option.name, variable=variable, failure=failure, convert=convert),
                Fix(SAFE, (Edit(option.value_node, lambda node: cst.Call(
                    cst.Name(convert), [cst.Arg(node.with_changes(lpar=(), rpar=()))])),)))
        elif option.name in BOOLEAN_OPTIONS:  # no API converts these (fact 23)
            yield self.finding(option.holder, self.boolean_from_environment.format(
                option=option.name, variable=variable))

    def _numeric_string(self, option: EngineOption, value: str, engine: EngineCall):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        fix = None if number is None else \
            Fix(SAFE, (Edit(option.value_node, replace_with(parse_expression(repr(number)))),))
        failure = NUMERIC_STRING_FAILURE[option.name].replace("create_engine()", engine.api.label)
        use = f"use {number!r}" if number is not None else "use a number"
        return self.finding(option.holder, self.numeric_string.format(
            option=option.name, value=value, failure=failure, use=use), fix)
