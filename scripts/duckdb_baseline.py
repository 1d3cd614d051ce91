"""The comparison the benchmark is held to: DuckDB's bare per-customer RFM aggregate
(last purchase, distinct purchase days, spend; no checks, no netting, no gaps) over the
same Parquet files, with the same number of threads. Usage: duckdb_baseline.py DIR THREADS"""
import sys
import time

import duckdb

folder, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"set threads = {threads}")
query = f"""
    select customer_id,
           max(order_ts) as last_purchase,
           count(distinct cast(order_ts as date)) as purchase_days,
           sum(amount) as monetary
    from read_parquet('{folder}/*.parquet')
    where customer_id is not null
    group by customer_id
"""
best = None
for _ in range(3):
    started = time.perf_counter()
    rows = con.execute(f"select count(*) from ({query})").fetchone()[0]
    seconds = time.perf_counter() - started
    best = seconds if best is None else min(best, seconds)
print(f"duckdb {duckdb.__version__}, {threads} threads: bare RFM aggregate of {rows} customers "
      f"in {best:.2f} s (best of 3)")
