"""What starts and watches MemeDroid's processes: the supervisor, and the bootstrap (embedded
PostgreSQL and Redis, migrations). Above everything but the CLI; may import any layer."""
