"""Check that other tools read winback's outputs as hive-partitioned Parquet.

Usage: python3 scripts/check_readers.py OUTPUT_DIR AS_OF
Reads every table under OUTPUT_DIR with DuckDB (hive partitioning) and pandas/pyarrow,
and checks both see the same rows and the as_of partition column.
"""
import os
import sys

import duckdb
import pandas as pd

out, as_of = sys.argv[1], sys.argv[2]
tables = sorted(t for t in os.listdir(out) if not t.startswith(("_", ".")))
assert tables, f"no tables under {out}"
for table in tables:
    glob = f"{out}/{table}/*/*.parquet"
    n_duck, parts = duckdb.sql(
        f"select count(*), count(distinct as_of) from read_parquet('{glob}', hive_partitioning=true)"
    ).fetchall()[0]
    frame = pd.read_parquet(f"{out}/{table}")  # pyarrow discovers as_of=... as a column
    assert "as_of" in frame.columns, f"{table}: pandas sees no as_of partition column"
    assert len(frame) == n_duck, f"{table}: pandas {len(frame)} rows, duckdb {n_duck}"
    assert as_of in set(map(str, frame["as_of"])) if len(frame) else True, f"{table}: no as_of={as_of} rows"
    print(f"{table:<20} {n_duck:>9} rows  duckdb and pandas agree ({parts} partition(s))")
print(f"{len(tables)} tables readable by DuckDB and pandas")
