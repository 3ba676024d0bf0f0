"""MemeDroid: the backend of a media social network.

Rooms, top down: `cli` (operators), `runtime` (supervisor, bootstrap), `api` (HTTP) and
`pipeline` (media processes) side by side, `services`, `repositories`; beneath them the shared
ground every room may use: settings, errors, logs, metrics, db, cache, storage, sniff, messages and
transport. `import-linter` (in `make lint`) keeps every import pointing down."""
