"""The SQL the repositories call, held against what `sql/queries/*.sql` declares: a typo in a
query's name or its parameters, or a query nobody calls any more, fails here rather than in
production. (aiosql builds the query functions at run time, so no type checker sees them.)"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from memedroid.db import SQL_DIR

REPOSITORIES = Path(__file__).resolve().parent.parent / "memedroid" / "repositories"
DECLARATION = re.compile(r"^-- name: (\w+)(?:\(([^)]*)\))?[$^!*<#]*\s*$", re.M)


def declared() -> dict[str, set[str]]:
    """`file.query` -> its declared parameters, for every query in the `.sql` files."""
    found = {}
    for path in sorted((SQL_DIR / "queries").glob("*.sql")):
        for (
            name,
            params,
        ) in DECLARATION.findall(path.read_text()):
            found[f"{path.stem}.{name}"] = {param.strip() for param in params.split(",") if param.strip()}
    return found


@dataclass(frozen=True)
class Use:
    where: str
    query: str
    keywords: set[str] | None  # None: not called right there, or called with **kwargs as well


def uses() -> list[Use]:
    """Every `queries.<file>.<name>` in the repositories, with the keywords it is called with."""
    found = []
    for path in sorted(REPOSITORIES.glob("*.py")):
        tree = ast.parse(path.read_text())
        called = {id(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "queries"
            ):
                call = called.get(id(node))
                keywords = None
                if call is not None and all(k.arg is not None for k in call.keywords):
                    keywords = {k.arg for k in call.keywords if k.arg}
                found.append(Use(f"{path.name}:{node.lineno}", f"{node.value.attr}.{node.attr}", keywords))
    return found


def test_every_query_a_repository_calls_exists_with_the_parameters_it_declares() -> None:
    queries, calls = declared(), uses()
    assert calls, "no queries found in the repositories"
    for use in calls:
        assert use.query in queries, f"{use.where}: no query {use.query} in sql/queries/"
        if use.keywords is not None:
            assert use.keywords == queries[use.query], f"{use.where}: {use.query} takes {sorted(queries[use.query])}"


def test_every_declared_query_is_called() -> None:
    assert sorted(declared().keys() - {use.query for use in uses()}) == []


def test_no_query_is_called_outside_the_repositories() -> None:
    package = REPOSITORIES.parent
    outside = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if REPOSITORIES not in path.parents and re.search(r"\bqueries\.\w+\.\w+", path.read_text())
    ]
    assert outside == []


def test_every_listing_reads_its_posts_through_the_one_visibility_rule() -> None:
    """The rule (listed, NSFW opt-in, blocks) was written out again in each listing statement;
    now each reads visible_posts(), and no statement restates the rule."""
    from memedroid.repositories.queries import queries

    listings = [name for name in declared() if name.startswith("feed.list_")]
    listings += ["hashes.list_similar_posts", "comments.list_user_comments"]
    assert len(listings) >= 11
    for name in listings:
        module, query = name.split(".")
        assert "visible_posts(%(show_nsfw)s, %(viewer_id)s)" in getattr(getattr(queries, module), query).sql, name
    for path in (SQL_DIR / "queries").glob("*.sql"):
        assert "OR NOT d.nsfw" not in path.read_text(), path.name
