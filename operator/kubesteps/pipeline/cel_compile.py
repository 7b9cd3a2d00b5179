"""CEL in Pipelines, compiled and analysed: the ``when`` predicates, ``forEach.items`` lists
and ``${ }`` template expressions of a spec are parsed here, once each (``compile_expression``
is cached), and checked against the variables a place in the spec offers
(``check_expression``).

Variables at run time: ``self`` (the Pipeline object), ``steps`` (step name -> ``{phase,
outputs, attempts, message}``), ``params`` and, inside a forEach template, the item variable
(``item`` unless ``as`` renames it) and ``index``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import celpy
import lark
from celpy.celparser import CELParseError, CELParser
from celpy.evaluation import base_functions

from kubesteps.pipeline.suggest import did_you_mean

RUN_VARIABLES = ("self", "steps", "params")
# What finally steps see besides: the run the main steps ended (phase, failedStep...).
FINALLY_VARIABLE = "run"
FOREACH_INDEX = "index"
# Macros whose first argument names a variable bound inside the call.
_BINDING_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# Global functions celpy can evaluate (operators like _+_ are not callable by name).
KNOWN_FUNCTIONS = frozenset(
    name for name in base_functions if re.fullmatch(r"[A-Za-z_]\w*", name)
) | {"has"}
RESERVED_WORDS = frozenset(
    {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for"}
    | {"function", "if", "import", "let", "loop", "package", "namespace", "return", "var"}
    | {"void", "while"}
)


def _cache_directory() -> Path | None:
    """A directory of this user's own for the CEL grammar's cache, or None (no cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(base) / "kubesteps"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError:
        return None  # a read-only home (a container): build the parser every time
    # The cache is a pickle: only ever read one from a directory nobody else can write.
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None
    return directory


def _install_parser() -> None:
    """Build celpy's parser as celpy does, with lark's cache of its grammar analysis.

    celpy builds its LALR parser from the grammar on first use, ~0.3 s of CPU, paid by
    every ``kubesteps validate`` and operator start; from the cache it takes ~20 ms.
    """
    if CELParser.CEL_PARSER is not None:
        return
    directory = _cache_directory()
    if directory is None:
        return  # celpy builds it the usual way
    grammar = (Path(celpy.__file__).parent / "cel.lark").read_text()
    try:
        CELParser.CEL_PARSER = lark.Lark(
            grammar,
            parser="lalr",
            start="expr",
            debug=True,
            g_regex_flags=re.M,
            lexer_callbacks={"IDENT": CELParser.ambiguous_literals},
            propagate_positions=True,
            maybe_placeholders=False,
            priority="invert",
            tree_class=lark.Tree,
            # lark checks the grammar's and the options' digest in the file before use.
            cache=str(directory / f"cel-grammar-lark-{lark.__version__}.cache"),
        )
    except OSError:
        CELParser.CEL_PARSER = None  # the cache could not be written: celpy's own way


_install_parser()
_ENVIRONMENT = celpy.Environment()


class CelError(Exception):
    """A CEL problem in one expression at one place in the spec.

    ``hint`` (`` — did you mean 'self'?``) goes after the expression in messages.
    """

    def __init__(self, message: str, *, expression: str, path: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.path = path
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message} in CEL expression {self.expression!r}{self.hint}"


class CelSyntaxError(CelError):
    """The expression cannot be compiled, or names a variable or function that does not exist."""

    def __init__(
        self,
        message: str,
        *,
        expression: str,
        path: str = "",
        hint: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message, expression=expression, path=path, hint=hint)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class CompiledExpression:
    """A parsed expression, ready to evaluate many times."""

    source: str
    program: celpy.Runner
    free_variables: frozenset[str]
    functions: frozenset[str]
    step_references: frozenset[str]
    # The fields read as ``self.spec.<name>``: a spec has only the fields the model has.
    spec_references: frozenset[str] = frozenset()
    # The params read as ``params.<name>``.
    param_references: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> CompiledExpression:
    """Parse ``source`` once; raises CelSyntaxError with the position of the problem."""
    try:
        ast = _ENVIRONMENT.compile(source)
    except CELParseError as error:
        raise CelSyntaxError(
            _describe_parse_error(error),
            expression=source,
            line=error.line,
            column=error.column,
        ) from None
    free, functions, step_refs, spec_refs, param_refs = _analyse(ast)
    return CompiledExpression(
        source=source,
        program=_ENVIRONMENT.program(ast),
        free_variables=free,
        functions=functions,
        step_references=step_refs,
        spec_references=spec_refs,
        param_references=param_refs,
    )


def check_expression(source: str, *, variables: Collection[str], path: str) -> CompiledExpression:
    """Compile ``source`` and make sure it only uses ``variables`` and known functions."""
    try:
        compiled = compile_expression(source)
    except CelSyntaxError as error:
        error.path = path
        raise
    unknown = sorted(compiled.free_variables - set(variables))
    if unknown:
        available = ", ".join(sorted(variables))
        raise CelSyntaxError(
            f"unknown variable {unknown[0]!r}; available here: {available}",
            expression=source,
            path=path,
            hint=did_you_mean(unknown[0], variables),
        )
    unknown_functions = sorted(compiled.functions - KNOWN_FUNCTIONS)
    if unknown_functions:
        raise CelSyntaxError(
            f"unknown function {unknown_functions[0]!r}",
            expression=source,
            path=path,
            hint=did_you_mean(unknown_functions[0], KNOWN_FUNCTIONS),
        )
    return compiled


def _describe_parse_error(error: CELParseError) -> str:
    where = f"syntax error at line {error.line}, column {error.column}"
    cause = error.__context__
    if isinstance(cause, lark.exceptions.UnexpectedCharacters):
        return f"{where}: unexpected character {cause.char!r}"
    if isinstance(cause, lark.exceptions.UnexpectedToken):
        token = cause.token
        if token.type == "$END" or not token.value:
            return f"{where}: the expression ends too early"
        return f"{where}: unexpected {str(token.value)!r}"
    return where


def _analyse(
    ast: lark.Tree[Any],
) -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """Free variables, called global functions, and the ``steps.<name>``,
    ``self.spec.<field>`` and ``params.<name>`` references of an AST."""
    identifiers: set[str] = set()
    bound: set[str] = set()
    functions: set[str] = set()
    step_refs: set[str] = set()
    spec_refs: set[str] = set()
    param_refs: set[str] = set()
    for node in ast.iter_subtrees():
        data = node.data
        if data == "ident":
            identifiers.add(str(node.children[0]))
        elif data == "ident_arg":
            functions.add(str(node.children[0]))
        elif data == "member_dot_arg" and str(node.children[1]) in _BINDING_MACROS:
            bound_name = _bare_identifier(node.children[2])
            if bound_name is not None:
                bound.add(bound_name)
        elif data in ("member_dot", "member_index"):
            target = node.children[0]
            root = _bare_identifier_of_member(target) if isinstance(target, lark.Tree) else None
            if root in ("steps", "params"):
                name = _step_name(node)
                if name is not None:
                    (step_refs if root == "steps" else param_refs).add(name)
            elif isinstance(target, lark.Tree) and _is_self_spec(target):
                name = _step_name(node)
                if name is not None:
                    spec_refs.add(name)
    if "self" in bound:
        spec_refs.clear()  # a macro variable called self: not the Pipeline
    if "params" in bound:
        param_refs.clear()
    return (
        frozenset(identifiers - bound),
        frozenset(functions),
        frozenset(step_refs),
        frozenset(spec_refs),
        frozenset(param_refs),
    )


def _is_self_spec(member: lark.Tree[Any]) -> bool:
    """Whether ``member`` is ``self.spec``."""
    if member.data != "member" or len(member.children) != 1:
        return False
    dot = member.children[0]
    return (
        isinstance(dot, lark.Tree)
        and dot.data == "member_dot"
        and str(dot.children[1]) == "spec"
        and isinstance(dot.children[0], lark.Tree)
        and _bare_identifier_of_member(dot.children[0]) == "self"
    )


def _bare_identifier_of_member(member: lark.Tree[Any]) -> str | None:
    if member.data == "member" and len(member.children) == 1:
        primary = member.children[0]
        if isinstance(primary, lark.Tree) and primary.data == "primary":
            ident = primary.children[0]
            if isinstance(ident, lark.Tree) and ident.data == "ident":
                return str(ident.children[0])
    return None


def _bare_identifier(exprlist: object) -> str | None:
    """The identifier if the first expression of an argument list is just a name."""
    if not isinstance(exprlist, lark.Tree) or not exprlist.children:
        return None
    node = exprlist.children[0]
    # Descend the single-child chain expr -> conditionalor -> ... -> member -> primary -> ident.
    while isinstance(node, lark.Tree) and len(node.children) == 1 and node.data != "ident":
        node = node.children[0]
    if isinstance(node, lark.Tree) and node.data == "ident":
        return str(node.children[0])
    return None


def _step_name(node: lark.Tree[Any]) -> str | None:
    if node.data == "member_dot":
        return str(node.children[1])
    literal = _bare_literal(node.children[1])
    if (
        literal is not None
        and len(literal) >= 2
        and literal[0] in "'\""
        and literal[-1] == literal[0]
    ):
        return literal[1:-1]
    return None


def _bare_literal(node: object) -> str | None:
    while isinstance(node, lark.Tree) and len(node.children) == 1 and node.data != "literal":
        node = node.children[0]
    if isinstance(node, lark.Tree) and node.data == "literal":
        return str(node.children[0])
    return None
