"""Find joins between tenant tables that are not on ``tenant_id``, with PostgreSQL's own parser.

A statement is parsed with pglast (libpg_query: the parser of PostgreSQL itself). Every
occurrence of a tenant table gets a node ``tenant_id of that occurrence``; every equality in a
``JOIN ... ON``, ``USING (tenant_id)``, ``WHERE``, ``x IN (SELECT ...)`` and the positions of an
``INSERT ... SELECT`` joins two nodes (union-find), and so does the same parameter or expression
on both sides (``a.tenant_id = $1 AND b.tenant_id = $1``: both on one shard). A statement is
colocated when all its tenant-table occurrences end in one class; otherwise :func:`problems`
names the tables that are not tied together. Only top-level ``AND`` conjuncts count: an
equality under ``OR`` or ``NOT`` does not tie anything.

:func:`python_statements` finds the SQL written in the package's Python (string literals and
f-strings that read or write a tenant table, placeholders filled from the module's globals);
:func:`plpgsql_statements` the SQL inside PL/pgSQL function bodies.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pglast import parser

Node = tuple[str, ...]
_BIND = re.compile(r"(?<![:\w\\]):([A-Za-z_]\w*)")
#: pglast's parse modes of a PL/pgSQL expression: 0 a statement, 2 an expression, 3-5 "v := ...".
_ASSIGN = 3
_STATEMENT = re.compile(r"^\s*\(?\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@dataclass
class Source:
    where: str
    sql: str


@dataclass
class _Scope:
    parent: _Scope | None
    #: alias (or table name) -> the key of that source
    names: dict[str, str] = field(default_factory=dict)
    #: keys of the sources of this scope that carry a tenant_id
    with_tenant: list[str] = field(default_factory=list)


class _Analysis:
    def __init__(self, tenant_tables: set[str]) -> None:
        self.tenant_tables = tenant_tables
        self.parent: dict[Node, Node] = {}
        self.occurrences: list[tuple[str, str]] = []  # (key, table)
        self.ctes: dict[str, list[Node | None]] = {}
        self.counter = 0

    # union-find
    def find(self, node: Node) -> Node:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: Node | None, b: Node | None) -> None:
        if a is not None and b is not None:
            self.parent[self.find(a)] = self.find(b)

    def key(self, label: str) -> str:
        self.counter += 1
        return f"{label}#{self.counter}"

    # statements
    def statement(self, stmt: dict[str, Any], scope: _Scope | None = None) -> list[Node | None]:
        ((kind, body),) = stmt.items()
        if kind == "SelectStmt":
            return self.select(body, scope)
        if kind in {"InsertStmt", "UpdateStmt", "DeleteStmt"}:
            self.modify(kind, body, scope)
        return []

    def with_clause(self, body: dict[str, Any], scope: _Scope | None) -> None:
        for item in body.get("withClause", {}).get("ctes", []):
            cte = item["CommonTableExpr"]
            self.ctes[cte["ctename"]] = self.statement(cte["ctequery"], scope)

    def select(self, body: dict[str, Any], parent: _Scope | None) -> list[Node | None]:
        self.with_clause(body, parent)
        if body.get("op", "SETOP_NONE") != "SETOP_NONE":
            left = self.select(body["larg"], parent)
            right = self.select(body["rarg"], parent)
            for a, b in zip(left, right, strict=False):
                self.union(a, b)
            return left
        scope = _Scope(parent)
        if "valuesLists" in body:
            rows = body["valuesLists"]
            return [self.value(v, scope) for v in rows[0]["List"]["items"]] if rows else []
        for item in body.get("fromClause", []):
            self.from_item(item, scope)
        for clause in ("whereClause", "havingClause"):
            if clause in body:
                self.condition(body[clause], scope)
        out: list[Node | None] = []
        for target in body.get("targetList", []):
            val = target["ResTarget"].get("val", {})
            self.sublinks(val, scope)
            out.append(self.value(val, scope))
        return out

    def modify(self, kind: str, body: dict[str, Any], parent: _Scope | None) -> None:
        self.with_clause(body, parent)
        scope = _Scope(parent)
        target = self.range_var(body["relation"], scope)
        if kind == "InsertStmt":
            columns = [c["ResTarget"]["name"] for c in body.get("cols", [])]
            if "selectStmt" in body:
                out = self.statement(body["selectStmt"], parent)
                if target and "tenant_id" in columns and columns.index("tenant_id") < len(out):
                    self.union(("tid", target), out[columns.index("tenant_id")])
            return
        for item in body.get("fromClause", []) + body.get("usingClause", []):
            self.from_item(item, scope)
        if "whereClause" in body:
            self.condition(body["whereClause"], scope)
        for target_item in body.get("targetList", []):
            self.sublinks(target_item["ResTarget"].get("val", {}), scope)

    # FROM
    def range_var(self, rv: dict[str, Any], scope: _Scope) -> str | None:
        name = rv["relname"]
        alias = rv.get("alias", {}).get("aliasname", name)
        if rv.get("schemaname") is None and name in self.ctes:
            key = self.key(f"cte:{name}")
            scope.names[alias] = key
            out = self.ctes[name]
            if any(n is not None for n in out):
                scope.with_tenant.append(key)
                self.union(("tid", key), next(n for n in out if n is not None))
            return None
        key = self.key(name)
        scope.names[alias] = key
        if name in self.tenant_tables and rv.get("schemaname") in (None, "tenantry"):
            self.occurrences.append((key, name))
            scope.with_tenant.append(key)
            return key
        return None

    def from_item(self, item: dict[str, Any], scope: _Scope) -> list[str]:
        """Registers the item's sources; returns the keys of those that carry a tenant_id."""
        ((kind, body),) = item.items()
        before = len(scope.with_tenant)
        if kind == "RangeVar":
            self.range_var(body, scope)
        elif kind == "JoinExpr":
            left = self.from_item(body["larg"], scope)
            right = self.from_item(body["rarg"], scope)
            using = [u["String"]["sval"] for u in body.get("usingClause", [])]
            if "tenant_id" in using and left and right:
                self.union(("tid", left[0]), ("tid", right[0]))
            if "quals" in body:
                self.condition(body["quals"], scope)
        elif kind == "RangeSubselect":
            out = self.statement(body["subquery"], scope)
            key = self.key("subquery")
            scope.names[body.get("alias", {}).get("aliasname", key)] = key
            names = _output_names(body["subquery"])
            if "tenant_id" in names and names.index("tenant_id") < len(out):
                scope.with_tenant.append(key)
                self.union(("tid", key), out[names.index("tenant_id")])
        elif kind == "RangeFunction":
            key = self.key("function")
            scope.names[body.get("alias", {}).get("aliasname", key)] = key
        return scope.with_tenant[before:]

    # expressions
    def condition(self, expr: dict[str, Any], scope: _Scope) -> None:
        self.sublinks(expr, scope)
        for conjunct in _conjuncts(expr):
            if "A_Expr" in conjunct:
                a = conjunct["A_Expr"]
                if a.get("kind") == "AEXPR_OP" and _op(a) == "=":
                    left, right = a.get("lexpr", {}), a.get("rexpr", {})
                    if "RowExpr" in left and "RowExpr" in right:
                        pairs = zip(left["RowExpr"]["args"], right["RowExpr"]["args"], strict=False)
                        for x, y in pairs:
                            self.union(self.value(x, scope), self.value(y, scope))
                    else:
                        self.union(self.value(left, scope), self.value(right, scope))

    def sublinks(self, expr: Any, scope: _Scope) -> None:
        for link in _find(expr, "SubLink"):
            out = self.statement(link["subselect"], scope)
            if link.get("subLinkType") == "ANY_SUBLINK" and "testexpr" in link:
                test = link["testexpr"]
                tests = test["RowExpr"]["args"] if "RowExpr" in test else [test]
                for x, y in zip(tests, out, strict=False):
                    self.union(self.value(x, scope), y)

    def value(self, expr: dict[str, Any], scope: _Scope) -> Node | None:
        while "TypeCast" in expr:
            expr = expr["TypeCast"]["arg"]
        if "ColumnRef" in expr:
            fields = [f["String"]["sval"] for f in expr["ColumnRef"]["fields"] if "String" in f]
            if not fields:
                return None
            column = fields[-1]
            if column != "tenant_id":
                return ("column", *fields)
            if len(fields) == 1:
                return self.unqualified_tenant(scope)
            found = self.lookup(fields[-2], scope)
            return ("tid", found) if found else ("value", *fields)
        if "SubLink" in expr:
            return None
        return ("expr", json.dumps(_strip(expr), sort_keys=True))

    def lookup(self, alias: str, scope: _Scope | None) -> str | None:
        while scope is not None:
            if alias in scope.names:
                return scope.names[alias]
            scope = scope.parent
        return None

    def unqualified_tenant(self, scope: _Scope | None) -> Node:
        while scope is not None:
            if len(scope.with_tenant) == 1:
                return ("tid", scope.with_tenant[0])
            if scope.with_tenant or scope.names:
                break
            scope = scope.parent
        return ("value", "tenant_id")

    def problems(self) -> list[str]:
        groups: dict[Node, list[str]] = {}
        for key, table in self.occurrences:
            groups.setdefault(self.find(("tid", key)), []).append(table)
        if len(groups) < 2:
            return []
        return [" + ".join(sorted(g)) for g in sorted(groups.values())]


def _op(a: dict[str, Any]) -> str:
    return str(a["name"][-1]["String"]["sval"])


def _conjuncts(expr: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if expr.get("BoolExpr", {}).get("boolop") == "AND_EXPR":
        for arg in expr["BoolExpr"]["args"]:
            yield from _conjuncts(arg)
    else:
        yield expr


def _find(tree: Any, kind: str) -> Iterator[dict[str, Any]]:
    """Nodes of ``kind`` in ``tree``, not looking inside the ones found."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == kind:
                yield v
            else:
                yield from _find(v, kind)
    elif isinstance(tree, list):
        for v in tree:
            yield from _find(v, kind)


def _strip(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _strip(v) for k, v in tree.items() if k != "location"}
    if isinstance(tree, list):
        return [_strip(v) for v in tree]
    return tree


def _output_names(stmt: dict[str, Any]) -> list[str | None]:
    body = stmt.get("SelectStmt", {})
    while body.get("op", "SETOP_NONE") != "SETOP_NONE":
        body = body["larg"]["SelectStmt"]
    names: list[str | None] = []
    for target in body.get("targetList", []):
        res = target["ResTarget"]
        fields = res.get("val", {}).get("ColumnRef", {}).get("fields", [])
        last = fields[-1].get("String", {}).get("sval") if fields else None
        names.append(res.get("name", last))
    return names


def problems(sql: str, tenant_tables: set[str]) -> list[list[str]]:
    """For each statement of ``sql`` whose tenant tables are not all tied by tenant_id, the
    groups of tables that are (``[["a", "b + c"]]``: a is not tied to b and c)."""
    numbered: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return numbered.setdefault(match.group(1), f"${len(numbered) + 1}")

    tree = json.loads(parser.parse_sql_json(_BIND.sub(number, sql)))
    found = []
    for raw in tree.get("stmts", []):
        analysis = _Analysis(tenant_tables)
        analysis.statement(raw["stmt"])
        if groups := analysis.problems():
            found.append(groups)
    return found


def mentions_tenant_table(sql: str, tenant_tables: set[str]) -> bool:
    names = "|".join(sorted(tenant_tables))
    pattern = rf'\b(FROM|JOIN|INTO|UPDATE)\s+("?tenantry"?\.)?"?({names})\b'
    return re.search(pattern, sql, re.IGNORECASE) is not None


def python_statements(src: Path, tenant_tables: set[str]) -> Iterator[Source]:
    """The SQL statements in the package's Python that name a tenant table."""
    for path in sorted(src.rglob("*.py")):
        if path.name in {"__main__.py", "env.py"}:  # runs the CLI / alembic when imported
            continue
        module_name = ".".join(path.relative_to(src).with_suffix("").parts)
        module_name = module_name.removesuffix(".__init__")
        module = vars(importlib.import_module(module_name))
        tree = ast.parse(path.read_text())
        inside: set[int] = set()
        for node in ast.walk(tree):
            if id(node) in inside or not isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp):
                continue
            sql = _render(node, module)
            if sql is None:
                continue
            inside.update(id(n) for n in ast.walk(node))
            if _STATEMENT.match(sql) and mentions_tenant_table(sql, tenant_tables):
                yield Source(f"{path.relative_to(src.parent)}:{node.lineno}", sql)


def _render(node: ast.expr, module: dict[str, Any]) -> str | None:
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                parts.append(_placeholder(value.value, module))
            else:
                parts.append(_render(value, module) or "")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _render(node.left, module), _render(node.right, module)
        if left is None and right is None:
            return None
        return (left or _placeholder(node.left, module)) + (
            right or _placeholder(node.right, module)
        )
    return None


def _placeholder(expr: ast.expr, module: dict[str, Any]) -> str:
    """The value of an expression of module-level names (a table's full name, a helper's SQL),
    a local variable standing for the identifier ``placeholder``; else that identifier."""
    names = dict(module)
    for _ in range(5):
        try:
            value = eval(ast.unparse(expr), names)  # noqa: S307 - our own source
            break
        except NameError as exc:  # a local variable: unknown here
            names[exc.name] = "placeholder"
        except Exception:  # noqa: BLE001 - anything else: unknown here
            return "placeholder"
    else:
        return "placeholder"
    fullname = getattr(value, "fullname", None)
    return str(fullname if isinstance(fullname, str) else value)


def plpgsql_statements(name: str, definition: str) -> Iterator[Source]:
    """The statements and expressions inside a PL/pgSQL function's body."""
    tree = json.loads(parser.parse_plpgsql_json(definition))
    for dynamic in _find(tree, "PLpgSQL_stmt_dynexecute"):
        yield Source(f"function {name}: EXECUTE", json.dumps(dynamic["query"]))
    for expr in _find(tree, "PLpgSQL_expr"):
        query, mode = expr["query"], expr.get("parseMode", 0)
        if mode >= _ASSIGN and ":=" in query:  # PLPGSQL_ASSIGN1-3: "v := expression"
            query = query.split(":=", 1)[1]
        sql = query if mode == 0 else f"SELECT {query}"
        yield Source(f"function {name}", sql)
