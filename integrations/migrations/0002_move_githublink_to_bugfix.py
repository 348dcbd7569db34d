"""The GitHub workflow moved to the ``bugfix`` app: its two tables go with it, rows
included. The state forgets the models here (``bugfix`` 0001 takes them over without
touching the database); the database renames the tables, and the names of their keys,
indexes, constraints and identity sequences that carried the old table name (indexes and
the check constraint named in ``Meta`` carry no table name and stay)."""

from django.db import migrations

TABLES = ("githublink", "githubdelivery")


def _rename_sql(*, old_prefix: str, new_prefix: str) -> str:
    """PL/pgSQL renaming, on the tables ``bugfix_<model>``, every constraint, index and
    sequence whose name starts with ``<old_prefix>_<model>`` to ``<new_prefix>_<model>…``."""
    cut = len(old_prefix) + 1  # substr() position of what follows the prefix
    blocks = []
    for model in TABLES:
        table, old = f"bugfix_{model}", f"{old_prefix}_{model}"
        blocks.append(
            f"""
    -- constraints first: renaming one that owns an index (pkey, unique) renames both
    FOR r IN
        SELECT con.conname AS name FROM pg_constraint con
        WHERE con.conrelid = '{table}'::regclass AND left(con.conname, {len(old)}) = '{old}'
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I',
                       '{table}', r.name, '{new_prefix}' || substr(r.name, {cut}));
    END LOOP;
    FOR r IN
        SELECT i.relname AS name FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = '{table}'::regclass AND left(i.relname, {len(old)}) = '{old}'
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I',
                       r.name, '{new_prefix}' || substr(r.name, {cut}));
    END LOOP;
    seq := pg_get_serial_sequence('{table}', 'id');
    IF seq IS NOT NULL AND left(split_part(seq, '.', 2), {len(old)}) = '{old}' THEN
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I',
                       seq, '{new_prefix}' || substr(split_part(seq, '.', 2), {cut}));
    END IF;"""  # noqa: S608 (constants of this file, no input)
        )
    return "DO $$\nDECLARE r record; seq text;\nBEGIN" + "".join(blocks) + "\nEND $$;"


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_github"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name="githublink", table="bugfix_githublink"),
                migrations.AlterModelTable(name="githubdelivery", table="bugfix_githubdelivery"),
                migrations.RunSQL(
                    sql=_rename_sql(old_prefix="integrations", new_prefix="bugfix"),
                    reverse_sql=_rename_sql(old_prefix="bugfix", new_prefix="integrations"),
                ),
            ],
            state_operations=[
                migrations.DeleteModel(name="GithubLink"),
                migrations.DeleteModel(name="GithubDelivery"),
            ],
        ),
    ]
