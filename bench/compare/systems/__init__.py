"""The systems the comparison runs, by name: each a module of this package whose
``main()`` takes ``WORKLOAD [--n N] [--workers W] [--seconds S] [--cap C]`` and prints one
``RESULT`` line (see ``common.py``)."""

#: name -> (module, argv after the module's name, the label in tables)
SYSTEMS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "tock-sqlite": ("systems.tock", ("--store", "sqlite"), "Tock, SQLite (defaults)"),
    "tock-sqlite-tp": (
        "systems.tock",
        ("--store", "sqlite", "--throughput"),
        "Tock, SQLite (throughput settings)",
    ),
    "tock-postgres": ("systems.tock", ("--store", "postgres"), "Tock, PostgreSQL (defaults)"),
    "tock-postgres-tp": (
        "systems.tock",
        ("--store", "postgres", "--throughput"),
        "Tock, PostgreSQL (throughput settings)",
    ),
    "celery-redis": ("systems.celery", ("--broker", "redis"), "Celery, Redis broker"),
    "celery-rabbitmq": ("systems.celery", ("--broker", "rabbitmq"), "Celery, RabbitMQ broker"),
    "rq": ("systems.rq", (), "RQ, Redis"),
    "dramatiq": ("systems.dramatiq", (), "Dramatiq, Redis broker"),
    "huey-redis": ("systems.huey", ("--storage", "redis"), "Huey, Redis"),
    "huey-sqlite": ("systems.huey", ("--storage", "sqlite"), "Huey, SQLite"),
    "procrastinate": ("systems.procrastinate", (), "Procrastinate, PostgreSQL"),
    "pgqueuer": ("systems.pgqueuer", (), "PgQueuer, PostgreSQL"),
}

TOCK = [name for name in SYSTEMS if name.startswith("tock-")]
