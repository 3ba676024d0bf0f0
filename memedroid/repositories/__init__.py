"""Repositories: the only code that runs SQL (the `.sql` files in `sql/queries/`) or reads and
writes Redis keys, returning frozen dataclasses. They import the shared ground only."""
