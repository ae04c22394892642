"""The PostgreSQL store: many machines coordinating through one PostgreSQL primary.

Needs the ``postgres`` extra: ``pip install 'tock[postgres]'`` (psycopg 3 and psycopg_pool).
"""
