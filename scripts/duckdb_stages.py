"""The default pipeline's SQL stages on DuckDB, for a benchmark of equal work.

Computes on DuckDB what winback computes in pipelines/reactivation.toml and sql/, on the
same Parquet files: the source step (typed rows, row checks, rows at or after as_of left
out, duplicates set aside, the quarantine table), then purchases_clean (sql/staging/),
purchase_days, rfm_segment_cells, customer_rhythm (sql/intermediate/), rfm_segment_rules
(sql/seeds/), customer_summary, rfm, value_grade, customer_groups, lapse_alerts,
segment_alerts and lapse_reasons (sql/marts/). Not the model stages (ltv, sltv: Rust code)
nor what reads them (winback_treatment, winback_candidates, the audiences, results), nor
what reads the send ledger (`sends`, winback's SQLite state, which DuckDB does not have):
campaign_results, reactivated_customers (sql/results/) and churn_kpis (sql/marts/, which
also reads ltv). --compare only compares the tables computed here.

Usage: duckdb_stages.py INPUT_DIR AS_OF THREADS OUT_DIR [--compare WINBACK_OUTPUT_DIR]
                        [--pipeline FILE]

INPUT_DIR holds purchases/, customers/, complaints/ (and maybe unsubscribes/) folders of
Parquet, as `winback demo --no-run --dir DIR` writes them. Each table is written to
OUT_DIR/<table>.parquet. Prints, one per line:

    stage <name> <seconds>        compute + write of one table (sources: the duplicate scan)
    rows <name> <n>
    total <seconds>
    peak_rss_mib <n>              of this process, before any --compare
    compare <table> OK|DIFF|MISSING ...   with --compare, per table both sides have

--compare reads winback's tables (<dir>/<table>/as_of=<AS_OF>/*.parquet) and matches them
with these by each table's unique key (from the pipeline file; quarantine as a multiset):
every value exactly, floats bit for bit (by their shortest round-trip text, in which -0.0
and 0.0 differ, as do any two distinct doubles).

The rules are winback's (sql/, src/source/views.rs): a row without an order_id is never a
duplicate and is its own order; a day with a $0 order is a purchase day (a day of nothing
but refunds is not). Money is summed as decimal(38, 6) and cast back to double wherever
winback sums it with money_sum() (exact, whatever order the rows arrive in; a DuckDB macro
of the same name here); value_grade's running revenue is a float sum added row by row in
rank order, as DataFusion adds it. So the tables come out bit-identical.

The gap statistics winback computes with its own aggregate gap_stats() (src/functions/
gap_stats.rs: gaps in days between consecutive distinct purchase days, percentiles by
linear interpolation at p * (n - 1), like percentile_cont) are lag() and quantile_cont here.
"""

import argparse
import datetime
import glob
import hashlib
import os
import resource
import shutil
import sys
import time
import tomllib
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent

# --- SQL helpers -----------------------------------------------------------------------------

# DataFusion's (Arrow's) text of a timestamp and of a float, where the text ends up in
# data (quarantine records, refund evidence):
# 2026-09-04T10:11:00[.123]; NaN, inf, -inf; 1e-7, 0.00001, 1e16 (DuckDB: 1e-07, 1e-05,
# 1e+16: Arrow writes an exponent unpadded, without +, and from -6 down, not -5).
MACROS = r"""
create or replace macro df_ts(t) as
    strftime(t, '%Y-%m-%dT%H:%M:%S') || case
        when (epoch_us(t) % 1000000 + 1000000) % 1000000 = 0 then ''
        when (epoch_us(t) % 1000000 + 1000000) % 1000 = 0
            then '.' || lpad(cast(((epoch_us(t) % 1000000 + 1000000) % 1000000) // 1000 as varchar), 3, '0')
        else '.' || lpad(cast((epoch_us(t) % 1000000 + 1000000) % 1000000 as varchar), 6, '0')
    end;
create or replace macro df_float(x) as
    case
        when not isfinite(x) then replace(cast(x as varchar), 'nan', 'NaN')
        when abs(x) >= 1e-5 and abs(x) < 1e-4 then
            case when x < 0 then '-' else '' end || '0.0000'
                || replace(regexp_extract(cast(abs(x) as varchar), '^([0-9.]+)e', 1), '.', '')
        else regexp_replace(cast(x as varchar), 'e[+]?(-?)0*([0-9])', 'e\1\2')
    end;
"""

# Non-finite numbers are found with isfinite(), not isnan(): DuckDB 2.0.1 folds isnan(x) to
# false when a Parquet file's column statistics (which leave NaN out, as the format says)
# give x a finite min and max, so NaN amounts would pass as valid.

# Timestamps winback keeps are nanoseconds: values outside that range are bad rows.
NS_MIN = "TIMESTAMP '1677-09-21 00:12:43.145225'"
NS_MAX = "TIMESTAMP '2262-04-11 23:47:16.854775'"


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def lit(value):
    """A pipeline variable as a SQL literal of the type winback binds it with."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"cast({value} as bigint)"
    if isinstance(value, float):
        return f"cast({value!r} as double)"
    if isinstance(value, datetime.date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def is_text(t):
    return t.startswith("VARCHAR") or t == "STRING"


def is_integer(t):
    return t in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}


def is_numeric(t):
    return is_integer(t) or t in {"FLOAT", "DOUBLE", "REAL"} or t.startswith("DECIMAL")


def is_float(t):
    return t in {"FLOAT", "DOUBLE", "REAL"}


def is_timestamp(t):
    return t.startswith("TIMESTAMP") or t == "DATE"


def value_text(expr, t):
    """cast(expr as varchar) as DataFusion prints it."""
    if t.startswith("TIMESTAMP") and "TIME ZONE" not in t:
        return f"df_ts({expr})"
    if is_float(t):
        return f"df_float({expr})"
    return f"cast({expr} as varchar)"


def record_pair(label, expr, t, personal):
    value = value_text(expr, t)
    if personal:
        shown = f"case when {value} is null then 'NULL' else '***' || right({value}, 2) end"
    else:
        shown = f"coalesce({value}, 'NULL')"
    return "'" + label.replace("'", "''") + "=' || " + shown


# --- Sources (src/source/views.rs) -----------------------------------------------------------

SQL_TYPE = {"id": "varchar", "text": "varchar", "timestamp": "timestamp", "number": "double",
            "integer": "bigint", "boolean": "boolean"}


class Column:
    def __init__(self, name, decl, rename):
        self.name = name
        self.required = not decl.endswith("?")
        self.kind = decl.rstrip("?")
        self.file_name = rename.get(name, name)


# A time of day followed by a UTC offset, at the end of a text timestamp (views.rs).
OFFSET_SUFFIX = r"(?i)\d:\d\d(:\d\d(\.\d+)?)?\s*(z|[+-]\d\d(:?\d\d)?)$"


def column_sql(col, raw_types, tz):
    """(typed expression, [(condition, reason)], typed DuckDB type) of one column."""
    ty = SQL_TYPE[col.kind]
    if col.file_name not in raw_types:
        return f"cast(null as {ty})", [], ty.upper()
    raw = ident(col.file_name)
    rt = raw_types[col.file_name]
    missing, bad = f"missing_{col.name}", f"bad_{col.name}"
    zoned = "TIME ZONE" in rt

    def finite(v):
        return f"(not isfinite({v}))"

    kind = col.kind
    native = {
        "id": is_integer(rt) or is_text(rt),
        "text": is_text(rt) or is_integer(rt) or rt == "BOOLEAN",
        "timestamp": is_timestamp(rt),
        "number": is_numeric(rt),
        "integer": is_integer(rt),
        "boolean": rt == "BOOLEAN",
    }[kind]
    if kind == "id":
        typed = f"nullif(trim(cast({raw} as varchar)), '')"
        problems = [(f"{typed} is null", missing)]
    elif kind == "text":
        typed, problems = f"cast({raw} as varchar)", []
    elif kind == "timestamp" and not native and is_text(rt):
        trimmed = f"nullif(trim({raw}), '')"
        # text with an offset is that instant seen in the pipeline's timezone; text
        # without one is local wall-clock time as written
        typed = (f"case when regexp_matches({trimmed}, '{OFFSET_SUFFIX}') "
                 f"then timezone('{tz}', try_cast({trimmed} as timestamptz)) "
                 f"else try_cast({trimmed} as timestamp) end")
        in_range = f"({typed} between {NS_MIN} and {NS_MAX})"
        typed = f"case when {in_range} then {typed} end"
        problems = [(f"{trimmed} is null", missing), (f"{typed} is null", bad)]
    elif not native:
        if not is_text(rt):
            raise SystemExit(f"column {col.file_name}: type {rt} cannot be a {kind}")
        trimmed = f"nullif(trim({raw}), '')"
        typed = f"try_cast({trimmed} as {ty})"
        problems = [(f"{trimmed} is null", missing), (f"{typed} is null", bad)]
        if kind == "number":
            problems.append((finite(typed), bad))
    elif kind == "timestamp":
        if zoned:
            typed = f"timezone('{tz}', {raw})"
        else:
            typed = f"cast({raw} as timestamp)"
        typed = f"case when {typed} between {NS_MIN} and {NS_MAX} then {typed} end"
        problems = [(f"{raw} is null", missing), (f"{typed} is null", bad)]
    else:
        typed = f"cast({raw} as {ty})"
        problems = [(f"{raw} is null", missing)]
        if kind == "number":
            problems.append((finite(typed), bad))
    if not col.required:
        problems = [(f"({raw} is not null and {c})", r) for c, r in problems
                    if not r.startswith("missing_")]
    return typed, problems, ty.upper()


def sql_str(text):
    return "'" + text.replace("'", "''") + "'"


def unify(a, b):
    """One type for a column that files hold as a and b (src/source/files.rs: unify)."""
    naive = lambda t: (t.startswith("TIMESTAMP") and "TIME ZONE" not in t) or t == "DATE"
    if a == b:
        return a
    if is_text(a) and is_text(b):
        return "VARCHAR"
    if is_integer(a) and is_integer(b):
        return "DECIMAL(20,0)" if "UBIGINT" in (a, b) else "BIGINT"
    if is_numeric(a) and is_numeric(b):
        return "DOUBLE"
    if naive(a) and naive(b):
        return "TIMESTAMP"
    if "TIME ZONE" in a and "TIME ZONE" in b:
        return "TIMESTAMP WITH TIME ZONE"
    if is_text(a) and (is_numeric(b) or naive(b)) or is_text(b) and (is_numeric(a) or naive(a)):
        return "VARCHAR"
    raise SystemExit(f"files of one source hold {a} and {b}: they cannot be one column")


def raw_select(con, src):
    """The source's files as one relation. Files that agree on their columns' types are
    read in one scan; otherwise each file is read with its columns converted to the one
    type winback gives them (numbers and times that become text print as winback prints
    them)."""
    wanted = {c.file_name for c in src.columns}
    schemas = []
    for f in src.files:
        cols = con.execute(f"describe select * from read_parquet({sql_str(f)})").fetchall()
        schemas.append([(r[0], r[1]) for r in cols if r[0] in wanted])
    if all(s == schemas[0] for s in schemas):
        files = "[" + ", ".join(sql_str(f) for f in src.files) + "]"
        return f"select * from read_parquet({files}, hive_partitioning = false)"
    types, order = {}, []
    for schema in schemas:
        for name, t in schema:
            if name not in types:
                order.append(name)
                types[name] = t
            else:
                types[name] = unify(types[name], t)
    parts = []
    for f, schema in zip(src.files, schemas):
        have = dict(schema)
        exprs = []
        for name in order:
            target, col = types[name], ident(name)
            if name not in have:
                expr = f"cast(null as {target})"
            elif have[name] == target:
                expr = col
            elif target == "VARCHAR":
                expr = value_text(col, have[name])
            else:
                expr = f"cast({col} as {target})"
            exprs.append(f"{expr} as {col}")
        parts.append(f"select {', '.join(exprs)} from read_parquet({sql_str(f)}, "
                     "hive_partitioning = false)")
    return "\nunion all\n".join(parts)


class Source:
    def __init__(self, name, spec, folder):
        self.name = name
        rename = spec.get("rename", {})
        # winback keeps a source's columns in a sorted map: checks run in name order
        self.columns = [Column(n, d, rename) for n, d in sorted(spec["columns"].items())]
        self.time_column = spec.get("time_column")
        self.duplicate_key = spec.get("duplicate_key", [])
        self.personal = set(spec.get("personal", []))
        self.optional = spec.get("optional", False)
        self.folder = folder
        self.files = sorted(
            f for f in glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True)
            if not any(p.startswith(("_", ".")) for p in os.path.relpath(f, folder).split(os.sep))
        )

    def skip_identical_files(self):
        """Leave out a file with the same bytes as an earlier one (by path); only files of
        equal size are hashed. Returns [(skipped, same_as)]."""
        by_size, skipped = {}, []
        for f in self.files:
            by_size.setdefault(os.path.getsize(f), []).append(f)
        drop = set()
        for group in by_size.values():
            if len(group) < 2:
                continue
            seen = {}
            for f in group:
                with open(f, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").digest()
                if digest in seen:
                    drop.add(f)
                    skipped.append((f, seen[digest]))
                else:
                    seen[digest] = f
        self.files = [f for f in self.files if f not in drop]
        return skipped

    def without_identity(self):
        """Rows missing an optional id of the duplicate key are never duplicates."""
        missing = [f"{ident(c.name)} is null" for c in self.columns
                   if c.kind == "id" and not c.required and c.name in self.duplicate_key]
        return "(" + " or ".join(missing) + ")" if missing else None

    def dedupe(self):
        if not self.duplicate_key:
            return "none"
        if all(c.name in self.duplicate_key for c in self.columns):
            return "exact"
        return "keep_first"


def register_source(con, src, tz):
    """Views <name> (typed valid rows) and _rejects_<name>; tables for the repeated rows."""
    n = src.name
    raw = f"_raw_{n}"
    never_dup = src.without_identity()
    for f, same in src.skip_identical_files():
        print(f"# skipped {f}: the same bytes as {same}", file=sys.stderr)
    if src.files:
        con.execute(f"create or replace view {ident(raw)} as {raw_select(con, src)}")
        described = con.execute(f"describe {ident(raw)}").fetchall()
        raw_order = [r[0] for r in described]
        raw_types = {r[0]: r[1] for r in described}
    else:
        if not src.optional:
            raise SystemExit(f"source {n}: no .parquet files under {src.folder}")
        cols = ", ".join(f"cast(null as varchar) as {ident(c.file_name)}" for c in src.columns)
        con.execute(f"create or replace view {ident(raw)} as select {cols} where false")
        raw_order = [c.file_name for c in src.columns]
        raw_types = {c.file_name: "VARCHAR" for c in src.columns}
    selects, reasons, types, time_expr = [], [], {}, None
    for col in src.columns:
        typed, problems, ty = column_sql(col, raw_types, tz)
        types[col.name] = ty
        if col.name == src.time_column:
            time_expr = typed
        selects.append(f"{typed} as {ident(col.name)}")
        reasons += [f"when {c} then '{r}'" for c, r in problems]
    reason = "case " + " ".join(reasons) + " end" if reasons else "cast(null as varchar)"
    present = [c for c in src.columns if c.file_name in raw_order]
    present.sort(key=lambda c: raw_order.index(c.file_name))
    record = " || ', ' || ".join(
        record_pair(c.file_name, ident(c.file_name), raw_types[c.file_name], c.name in src.personal)
        for c in present) or "''"
    # a view over a view: typed columns first, so the checks reuse them
    inner = ",\n  ".join(selects)
    con.execute(f"""create or replace view {ident('_typed_' + n)} as
select {inner}, {reason} as _reason, {record} as _record
from {ident(raw)}""")
    # the time filter on the typed value (it is the same expression)
    checked = f"_checked_{n}"
    time_filter = (f"where not coalesce({ident(src.time_column)} >= {AS_OF_TS}, false)"
                   if time_expr else "")
    con.execute(f"create or replace view {ident(checked)} as "
                f"select * from {ident('_typed_' + n)} {time_filter}")
    names = [ident(c.name) for c in src.columns]
    cols = ", ".join(names)
    mode = src.dedupe()
    if mode == "none":
        con.execute(f"create or replace view {ident(n)} as select {cols} from {ident(checked)} "
                    "where _reason is null")
        rejects_dup = None
    else:
        key_hash = "hash(" + ", ".join(ident(k) for k in src.duplicate_key) + ")"
        # rows that can be duplicates
        can = "_reason is null" + (f" and not {never_dup}" if never_dup else "")
        shared, repeated = f"_shared_{n}", f"_repeated_{n}"
        con.execute(f"create or replace table {ident(shared)} as select {key_hash} as _h "
                    f"from {ident(checked)} where {can} group by _h having count(*) > 1")
        if mode == "exact":
            con.execute(f"create or replace table {ident(repeated)} as "
                        f"select {cols}, count(*) as _copies from {ident(checked)} "
                        f"where {can} and {key_hash} in (select _h from {ident(shared)}) "
                        f"group by all")
            resolved = f"select {cols} from {ident(repeated)}"
            # in the file's column order (columns it lacks last), as a rejected row's record
            in_file = sorted(src.columns, key=lambda c: raw_order.index(c.file_name)
                             if c.file_name in raw_order else len(raw_order))
            rec = " || ', ' || ".join(
                record_pair(c.file_name, ident(c.name), types[c.name], c.name in src.personal)
                for c in in_file)
            rejects_dup = (f"select '{n}' as source, 'duplicate_{src.duplicate_key[0]}' as reason, "
                           f"{rec} as record from (select *, unnest(range(1, _copies)) as _copy "
                           f"from {ident(repeated)} where _copies > 1)")
        else:
            order = ", ".join(f"{c} nulls last" for c in names)
            key = ", ".join(ident(k) for k in src.duplicate_key)
            con.execute(f"create or replace table {ident(repeated)} as "
                        f"select *, row_number() over (partition by {key} order by {order}) as _rn "
                        f"from {ident(checked)} "
                        f"where {can} and {key_hash} in (select _h from {ident(shared)})")
            resolved = f"select {cols} from {ident(repeated)} where _rn = 1"
            rejects_dup = (f"select '{n}' as source, 'duplicate_{src.duplicate_key[0]}' as reason, "
                           f"_record as record from {ident(repeated)} where _rn > 1")
        unique = f"{key_hash} not in (select _h from {ident(shared)})"
        if never_dup:
            unique = f"({never_dup} or {unique})"
        con.execute(f"create or replace view {ident(n)} as "
                    f"select {cols} from {ident(checked)} where _reason is null and {unique}\n"
                    f"union all\n{resolved}")
    rejects = (f"select '{n}' as source, _reason as reason, _record as record "
               f"from {ident(checked)} where _reason is not null")
    if rejects_dup:
        rejects += "\nunion all\n" + rejects_dup
    con.execute(f"create or replace view {ident('_rejects_' + n)} as {rejects}")


AS_OF_TS = None  # set in main: TIMESTAMP '<as_of> 00:00:00'


# --- Stages (sql/) -------------------------------------------------------------------------------

# winback's money_sum(x) (src/functions/money_sum.rs): sum(x) exactly, as decimal(38, 6), cast
# back to double, so the total does not depend on the order rows arrive in (a float sum differs
# in its last bits). A DuckDB macro takes no FILTER clause: money_sum_where(x, keep) is
# winback's `money_sum(x) filter (where keep)`.
MONEY_MACROS = r"""
create or replace macro money_sum(x) as cast(sum(cast(x as decimal(38, 6))) as double);
create or replace macro money_sum_where(x, keep) as
    cast(sum(cast(x as decimal(38, 6))) filter (where keep) as double);
"""


def stages():
    return [
        # --- sql/staging/
        # Lines sharing an order id are one order; a row without an order id is its own order
        # (two identical rows are two purchases) and passes through with order_id empty.
        ("purchases_clean", """
with orders_with_id as (
    select
        order_id,
        customer_id,
        coalesce(min(order_ts) filter (where amount >= 0), min(order_ts)) as order_ts,
        coalesce(money_sum_where(amount, amount > 0), 0) as gross_amount,
        coalesce(-money_sum_where(amount, amount < 0), 0) as refund_amount,
        max(order_ts) filter (where amount < 0) as refund_ts,
        money_sum_where(quantity, amount >= 0) as quantity,
        max(channel) as channel,
        count(*) as line_rows
    from purchases
    where order_id is not null
    group by order_id, customer_id
),
orders_without_id as (
    select
        order_id,
        customer_id,
        order_ts,
        greatest(amount, 0) as gross_amount,
        greatest(-amount, 0) as refund_amount,
        case when amount < 0 then order_ts end as refund_ts,
        case when amount >= 0 then quantity end as quantity,
        channel,
        cast(1 as bigint) as line_rows
    from purchases
    where order_id is null
),
orders as (
    select * from orders_with_id
    union all
    select * from orders_without_id
)
select
    order_id, customer_id, order_ts, cast(order_ts as date) as order_date,
    gross_amount, refund_amount, gross_amount - refund_amount as net_amount,
    refund_ts, quantity, channel, line_rows
from orders
"""),
        # --- sql/intermediate/ (multi_line_orders and multi_order_days, winback's shortcuts to
        # the same tables, are not needed here; winback_candidates is read only by audiences)
        # a purchase day: an order that is not only a refund ($0 orders count)
        ("purchase_days", """
with days as (
    select
        customer_id,
        order_date,
        count(*) as day_orders,
        money_sum(net_amount) as day_net,
        count(*) filter (where gross_amount > 0 or refund_amount = 0) as day_purchases
    from purchases_clean
    group by customer_id, order_date
)
select customer_id, order_date, day_orders, day_net
from days
where day_purchases > 0
"""),
        # --- sql/marts/ (customer_rhythm, sql/intermediate/, where its readers need it)
        # gap_stats(order_date): gaps between consecutive distinct days (purchase_days has
        # one row per customer and day), quantile_cont = linear interpolation at p * (n - 1)
        ("customer_summary", """
with days as (
    select
        customer_id, order_date, day_orders, day_net,
        cast(order_date - lag(order_date) over (partition by customer_id order by order_date) as double) as gap
    from purchase_days
),
per_customer as (
    select
        customer_id,
        min(order_date) as first_purchase_date,
        max(order_date) as last_purchase_date,
        cast(sum(day_orders) as bigint) as orders,
        count(*) as purchase_days,
        (money_sum(day_net) - arg_min(day_net, order_date)) / nullif(count(*) - 1, 0)
            as repeat_monetary_avg,
        quantile_cont(gap, [0.5, 0.25, 0.75]) as gaps
    from days
    group by customer_id
),
net_all as (
    select customer_id, money_sum(net_amount) as monetary_total
    from purchases_clean
    group by customer_id
)
select
    c.customer_id,
    c.first_purchase_date,
    c.last_purchase_date,
    c.orders,
    c.purchase_days,
    c.purchase_days - 1 as frequency,
    cast($as_of - c.last_purchase_date as bigint) as recency_days,
    cast($as_of - c.first_purchase_date as bigint) as tenure_days,
    cast(c.last_purchase_date - c.first_purchase_date as bigint) as t_x_days,
    n.monetary_total,
    n.monetary_total / c.purchase_days as monetary_avg,
    c.repeat_monetary_avg,
    c.gaps[1] as typical_gap_days,
    c.gaps[3] - c.gaps[2] as gap_spread_days
from per_customer c
join net_all n on n.customer_id = c.customer_id
"""),
        # --- sql/seeds/ and sql/intermediate/
        ("rfm_segment_rules", """
select * from (
    values
        (1,  'Champions',          4, 5, 4, 5, 4, 5),
        (2,  'Can''t Lose Them',   1, 2, 4, 5, 4, 5),
        (3,  'Loyal',              3, 5, 4, 5, 1, 5),
        (4,  'At Risk',            1, 2, 3, 5, 1, 5),
        (5,  'Potential Loyalist', 4, 5, 2, 3, 1, 5),
        (6,  'New',                5, 5, 1, 1, 1, 5),
        (7,  'Promising',          4, 4, 1, 1, 1, 5),
        (8,  'Need Attention',     3, 3, 2, 3, 1, 5),
        (9,  'About to Sleep',     3, 3, 1, 1, 1, 5),
        (10, 'Hibernating',        2, 2, 1, 2, 1, 5),
        (11, 'Lost',               1, 1, 1, 2, 1, 5)
) as rules (priority, segment, r_min, r_max, f_min, f_max, m_min, m_max)
"""),
        ("rfm_segment_cells", """
with scores as (select unnest(range(1, 6)) as score),
cells as (
    select r.score as r_score, f.score as f_score, m.score as m_score
    from scores r cross join scores f cross join scores m
),
matched as (
    select c.r_score, c.f_score, c.m_score, rules.segment,
        row_number() over (partition by c.r_score, c.f_score, c.m_score order by rules.priority) as pick
    from cells c
    join rfm_segment_rules rules
        on c.r_score between rules.r_min and rules.r_max
        and c.f_score between rules.f_min and rules.f_max
        and c.m_score between rules.m_min and rules.m_max
)
select cast(r_score as int) as r_score, cast(f_score as int) as f_score,
       cast(m_score as int) as m_score, segment
from matched
where pick = 1
"""),
        # --- sql/marts/
        ("rfm", """
with population as (select count(*) as customers from customer_summary),
ranked as (
    select
        customer_id, recency_days, purchase_days, monetary_total,
        rank() over (order by recency_days desc) as r_rank,
        rank() over (order by purchase_days asc) as f_rank,
        rank() over (order by monetary_total asc) as m_rank
    from customer_summary
),
scored as (
    select
        r.customer_id, r.recency_days, r.purchase_days, r.monetary_total,
        cast(least(5, 1 + floor(5 * coalesce(cast(r.r_rank - 1 as double) / nullif(p.customers - 1, 0), 0))) as int) as r_score,
        cast(least(5, 1 + floor(5 * coalesce(cast(r.f_rank - 1 as double) / nullif(p.customers - 1, 0), 0))) as int) as f_score,
        cast(least(5, 1 + floor(5 * coalesce(cast(r.m_rank - 1 as double) / nullif(p.customers - 1, 0), 0))) as int) as m_score
    from ranked r
    cross join population p
)
select
    s.customer_id, s.recency_days, s.purchase_days, s.monetary_total,
    s.r_score, s.f_score, s.m_score,
    cast(s.r_score as varchar) || cast(s.f_score as varchar) || cast(s.m_score as varchar) as rfm_cell,
    c.segment
from scored s
left join rfm_segment_cells c
    on c.r_score = s.r_score and c.f_score = s.f_score and c.m_score = s.m_score
"""),
        ("value_grade", """
with complaint_counts as (
    select customer_id, count(*) as complaints from complaints group by customer_id
),
refund_counts as (
    select customer_id, count(*) as refunded_orders, money_sum(refund_amount) as refunds
    from purchases_clean
    where refund_amount > 0
    group by customer_id
),
total as (select money_sum(monetary_total) as revenue from customer_summary),
-- The running revenue: a float sum added row by row in rank order, as DataFusion's window
-- adds it. DuckDB sums a window with an ORDER BY by a segment tree, in another order (the
-- last bits differ); a window without one over sorted rows streams, adding one row at a time.
running as (
    select customer_id, sum(monetary_total) over (
        rows between unbounded preceding and current row
    ) as running_revenue
    from (select customer_id, monetary_total from customer_summary
          order by monetary_total desc, customer_id)
),
ranked as (
    select
        s.customer_id,
        s.monetary_total,
        s.orders,
        coalesce(c.complaints, 0) as complaints,
        coalesce(r.refunds, 0) as refunds,
        coalesce(r.refunded_orders, 0) as refunded_orders,
        s.monetary_total / nullif(t.revenue, 0) as revenue_share,
        u.running_revenue / nullif(t.revenue, 0) as cumulative_share
    from customer_summary s
    join running u on u.customer_id = s.customer_id
    cross join total t
    left join complaint_counts c on c.customer_id = s.customer_id
    left join refund_counts r on r.customer_id = s.customer_id
),
costed as (
    select *,
        orders * $cost_per_order
            + complaints * $cost_per_complaint
            + refunded_orders * $cost_per_refund as cost_to_serve
    from ranked
)
select
    customer_id, monetary_total, revenue_share, cumulative_share,
    case
        when cumulative_share <= $grade_a_share then 'A'
        when cumulative_share <= $grade_b_share then 'B'
        when cumulative_share <= $grade_c_share then 'C'
        else 'D'
    end as grade,
    orders, complaints, refunds, cost_to_serve,
    monetary_total - cost_to_serve as net_value,
    monetary_total - cost_to_serve <= 0 as unprofitable
from costed
"""),
        ("customer_rhythm", """
with segment_gaps as (
    select g.segment, median(s.typical_gap_days) as segment_gap
    from customer_summary s
    join rfm g on g.customer_id = s.customer_id
    where s.typical_gap_days is not null
    group by g.segment
),
overall_gap as (
    select median(typical_gap_days) as all_gap
    from customer_summary
    where typical_gap_days is not null
),
rhythm as (
    select
        s.customer_id,
        g.segment,
        s.last_purchase_date,
        s.recency_days,
        coalesce(s.typical_gap_days, sg.segment_gap, o.all_gap) as typical_gap_days,
        case when s.typical_gap_days is not null then 'own' else 'population' end as gap_source
    from customer_summary s
    join rfm g on g.customer_id = s.customer_id
    left join segment_gaps sg on sg.segment = g.segment
    cross join overall_gap o
)
select
    customer_id, segment, last_purchase_date, recency_days, typical_gap_days, gap_source,
    $lapse_factor * typical_gap_days as threshold_days,
    cast(ceil($lapse_factor * typical_gap_days) as bigint) as alert_after_days
from rhythm
where typical_gap_days > 0
"""),
        ("customer_groups", """
with cells as (select * from rfm_segment_cells where r_score = 5),
first_orders as (
    select o.customer_id, first(o.channel order by o.order_ts, o.order_id, o.channel) as first_channel
    from purchases_clean o
    join customer_summary s
        on s.customer_id = o.customer_id and o.order_date = s.first_purchase_date
    group by o.customer_id
)
select r.customer_id, 'rfm_segment' as dimension, coalesce(c.segment, 'unknown') as segment
from customer_rhythm r
join rfm s on s.customer_id = r.customer_id
left join cells c on c.f_score = s.f_score and c.m_score = s.m_score
union all
select r.customer_id, 'value_grade', coalesce(g.grade, 'unknown')
from customer_rhythm r left join value_grade g on g.customer_id = r.customer_id
union all
select r.customer_id, 'country', coalesce(c.country, 'unknown')
from customer_rhythm r left join customers c on c.customer_id = r.customer_id
union all
select r.customer_id, 'first_channel', coalesce(f.first_channel, 'unknown')
from customer_rhythm r left join first_orders f on f.customer_id = r.customer_id
"""),
        ("lapse_alerts", """
with lapsed as (
    select *, cast(recency_days as double) / typical_gap_days as overshoot_ratio
    from customer_rhythm
    where recency_days >= alert_after_days
)
select
    customer_id, segment, last_purchase_date, typical_gap_days, gap_source, threshold_days,
    recency_days, overshoot_ratio,
    case
        when overshoot_ratio < $discontent_factor * $lapse_factor then 'value_damaged'
        when overshoot_ratio < $ended_factor * $lapse_factor then 'discontent'
        else 'ended'
    end as stage,
    last_purchase_date + cast(alert_after_days as int) as alert_date,
    recency_days - alert_after_days < $run_interval_days as is_first_alert
from lapsed
"""),
        ("segment_alerts", """
with recent_days as (
    select d.customer_id, d.order_date as day, cast(r.alert_after_days as int) as alert_after
    from purchase_days d
    join customer_rhythm r on r.customer_id = d.customer_id
    where d.order_date > $as_of - cast(63 + r.alert_after_days as int)
),
past_lapses as (
    select customer_id, previous_day + alert_after as alert_day
    from (
        select customer_id, day, alert_after,
               lag(day) over (partition by customer_id order by day) as previous_day
        from recent_days
    )
    where day - previous_day >= alert_after
),
open_lapses as (
    select customer_id, last_purchase_date + cast(alert_after_days as int) as alert_day
    from customer_rhythm
    where recency_days >= alert_after_days
),
events as (
    select customer_id, cast(($as_of - alert_day) // 7 as int) as weeks_ago
    from (select * from past_lapses union all select * from open_lapses)
    where alert_day <= $as_of and alert_day > $as_of - 63
),
sizes as (
    select dimension, segment, count(*) as customers
    from customer_groups
    group by dimension, segment
),
weekly as (
    select g.dimension, g.segment, e.weeks_ago, count(distinct e.customer_id) as lapses
    from events e
    join customer_groups g on g.customer_id = e.customer_id
    group by g.dimension, g.segment, e.weeks_ago
),
stats as (
    select
        s.dimension,
        s.segment,
        s.customers,
        cast(coalesce(sum(w.lapses) filter (where w.weeks_ago = 0), 0) as bigint) as new_lapses_7d,
        cast(coalesce(sum(w.lapses) filter (where w.weeks_ago between 1 and 8), 0) as double) / 8 as baseline_mean,
        cast(coalesce(sum(w.lapses * w.lapses) filter (where w.weeks_ago between 1 and 8), 0) as double) as sum_sq
    from sizes s
    left join weekly w on w.dimension = s.dimension and w.segment = s.segment
    group by s.dimension, s.segment, s.customers
),
scored as (
    select *, sqrt(greatest((sum_sq - 8 * baseline_mean * baseline_mean) / 7, 0)) as baseline_std
    from stats
)
select
    dimension, segment, customers, new_lapses_7d, baseline_mean, baseline_std,
    (new_lapses_7d - baseline_mean)
        / case when baseline_std > 0 then baseline_std else sqrt(greatest(baseline_mean, 1.0)) end
        as z_score,
    new_lapses_7d >= $segment_alert_min_lapses
        and (new_lapses_7d - baseline_mean)
            / case when baseline_std > 0 then baseline_std else sqrt(greatest(baseline_mean, 1.0)) end
            >= $segment_alert_z as alert
from scored
"""),
        ("lapse_reasons", """
with signals as (
    select customer_id, cast(ts as date) as signal_date, kind as signal, kind as detail
    from complaints
    union all
    select customer_id, cast(refund_ts as date), 'refund',
        'refund of ' || df_float(refund_amount) || coalesce(' on order ' || order_id, '')
    from purchases_clean
    where refund_amount > 0 and refund_ts is not null
),
evidence as (
    select
        l.customer_id, s.signal, s.signal_date, s.detail,
        row_number() over (partition by l.customer_id order by s.signal_date desc, s.signal, s.detail) as newest,
        count(*) over (partition by l.customer_id) as signals
    from lapse_alerts l
    join signals s
        on s.customer_id = l.customer_id
        and s.signal_date <= l.alert_date
        and s.signal_date >= l.last_purchase_date - cast($complaint_window_days as int)
)
select
    l.customer_id,
    l.alert_date,
    l.stage,
    case when e.customer_id is not null then 'company' else 'customer' end as reason_owner,
    coalesce(e.signal, 'no_company_signal') as reason,
    e.signal_date as evidence_date,
    e.detail as evidence,
    coalesce(e.signals, 0) as evidence_count
from lapse_alerts l
left join evidence e on e.customer_id = l.customer_id and e.newest = 1
"""),
    ]


def bind(sql, params):
    # longest names first: $as_of before $as_of_ts would cut it
    for name in sorted(params, key=len, reverse=True):
        sql = sql.replace("$" + name, params[name])
    if "$" in sql.replace("'$", ""):
        left = sql[sql.index("$"):][:40]
        raise SystemExit(f"unbound parameter near: {left}")
    return sql


# --- Compare ------------------------------------------------------------------------------------

def compare(con, out_dir, winback_dir, as_of, tables, keys, show=5):
    print(f"# compare with {winback_dir} (as_of={as_of}); every value exactly, floats bit for bit")
    results = {}
    for table in tables:
        mine = os.path.join(out_dir, f"{table}.parquet")
        theirs = os.path.join(winback_dir, table, f"as_of={as_of}")
        if not glob.glob(os.path.join(theirs, "*.parquet")):
            print(f"compare {table} MISSING (winback did not write it)")
            results[table] = "missing"
            continue
        con.execute(f"create or replace temp view _a as select * from read_parquet('{mine}')")
        con.execute(f"create or replace temp view _b as select * from "
                    f"read_parquet('{theirs}/*.parquet', hive_partitioning = false)")
        ta = {r[0]: r[1] for r in con.execute("describe _a").fetchall()}
        tb = {r[0]: r[1] for r in con.execute("describe _b").fetchall()}
        cols = [c for c in ta if c in tb]
        notes = []
        if set(ta) != set(tb):
            notes.append(f"columns only here: {sorted(set(ta) - set(tb))}, "
                         f"only in winback: {sorted(set(tb) - set(ta))}")
        # a float as its shortest round-trip text: equal text, equal bits (= and EXCEPT
        # would take -0.0 for 0.0)
        def exact(c, side=""):
            float_col = is_float(ta[c]) or is_float(tb[c])
            return f"cast({side}{ident(c)} as varchar)" if float_col else f"{side}{ident(c)}"

        na = con.execute("select count(*) from _a").fetchone()[0]
        nb = con.execute("select count(*) from _b").fetchone()[0]
        key = keys.get(table)
        if not key:
            # no key: the rows as a multiset
            sel = ", ".join(exact(c) for c in cols)
            only_a = con.execute(f"select {sel} from _a except all select {sel} from _b "
                                 f"order by all").fetchall()
            only_b = con.execute(f"select {sel} from _b except all select {sel} from _a "
                                 f"order by all").fetchall()
            ok = not only_a and not only_b and not notes
            print(f"compare {table} {'OK' if ok else 'DIFF'} rows={na} winback_rows={nb} "
                  f"only_here={len(only_a)} only_winback={len(only_b)}")
            for n in notes:
                print(f"  {n}")
            for r in only_a[:show]:
                print(f"  only here:    {r}")
            for r in only_b[:show]:
                print(f"  only winback: {r}")
            results[table] = "ok" if ok else "diff"
            continue
        # Rows with an empty key column (an order without an id) equal no other by key, as
        # in SQL's UNIQUE: those are compared as a multiset, the rest by key.
        sel = ", ".join(exact(c) for c in cols)
        keyed = " and ".join(f"{ident(k)} is not null" for k in key)
        null_a = con.execute(f"select {sel} from _a where not ({keyed}) except all "
                             f"select {sel} from _b where not ({keyed}) order by all").fetchall()
        null_b = con.execute(f"select {sel} from _b where not ({keyed}) except all "
                             f"select {sel} from _a where not ({keyed}) order by all").fetchall()
        con.execute(f"create or replace temp view _ak as select * from _a where {keyed}")
        con.execute(f"create or replace temp view _bk as select * from _b where {keyed}")
        on = " and ".join(f"a.{ident(k)} = b.{ident(k)}" for k in key)
        diffs = []
        for c in cols:
            if c in key:
                continue
            diffs.append((c, f"{exact(c, 'a.')} is distinct from {exact(c, 'b.')}"))
        missing_a = f"({' and '.join(f'a.{ident(k)} is null' for k in key)})"
        missing_b = f"({' and '.join(f'b.{ident(k)} is null' for k in key)})"
        counts = ", ".join(
            [f"count(*) filter (where {missing_a})", f"count(*) filter (where {missing_b})"]
            + [f"count(*) filter (where not {missing_a} and not {missing_b} and ({d}))"
               for _, d in diffs])
        join = f"from _ak a full outer join _bk b on {on}"
        row = con.execute(f"select {counts} {join}").fetchone()
        only_b, only_a, per_col = row[0], row[1], row[2:]
        bad_cols = [(c, n) for (c, _), n in zip(diffs, per_col) if n]
        only_a, only_b = only_a + len(null_a), only_b + len(null_b)
        ok = not only_a and not only_b and not bad_cols and not notes and na == nb
        print(f"compare {table} {'OK' if ok else 'DIFF'} rows={na} winback_rows={nb} "
              f"only_here={only_a} only_winback={only_b}"
              + "".join(f" {c}:{n}" for c, n in bad_cols))
        for n in notes:
            print(f"  {n}")
        for r in null_a[:show]:
            print(f"  only here (empty key):    {r}")
        for r in null_b[:show]:
            print(f"  only winback (empty key): {r}")
        keysel = ", ".join(f"coalesce(a.{ident(k)}, b.{ident(k)})" for k in key)
        if only_a > len(null_a):
            for r in con.execute(f"select a.* {join} where {missing_b} order by {keysel} "
                                 f"limit {show}").fetchall():
                print(f"  only here:    {r}")
        if only_b > len(null_b):
            for r in con.execute(f"select b.* {join} where {missing_a} order by {keysel} "
                                 f"limit {show}").fetchall():
                print(f"  only winback: {r}")
        if bad_cols:
            any_diff = " or ".join(f"({d})" for _, d in diffs)
            sel = ", ".join([keysel] + [f"a.{ident(c)}, b.{ident(c)}" for c, _ in bad_cols])
            rows = con.execute(f"select {sel} {join} where not {missing_a} and not {missing_b} "
                               f"and ({any_diff}) order by {keysel} limit {show}").fetchall()
            for r in rows:
                k, rest = r[:len(key)], r[len(key):]
                shown = ", ".join(f"{c}: here={rest[2 * i]!r} winback={rest[2 * i + 1]!r}"
                                  for i, (c, _) in enumerate(bad_cols))
                print(f"  key={k}: {shown}")
        results[table] = "ok" if ok else "diff"
    return results


# --- Main ------------------------------------------------------------------------------------------

def main():
    global AS_OF_TS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input_dir")
    ap.add_argument("as_of", type=datetime.date.fromisoformat)
    ap.add_argument("threads", type=int)
    ap.add_argument("out_dir")
    ap.add_argument("--compare", metavar="WINBACK_OUTPUT_DIR")
    ap.add_argument("--pipeline", default=str(ROOT / "pipelines" / "reactivation.toml"))
    args = ap.parse_args()

    with open(args.pipeline, "rb") as f:
        pipeline = tomllib.load(f)
    tz = pipeline.get("timezone", "UTC")
    AS_OF_TS = f"TIMESTAMP '{args.as_of.isoformat()} 00:00:00'"
    params = {k: lit(v) for k, v in pipeline.get("variables", {}).items()}
    params["as_of"] = lit(args.as_of)
    params["as_of_ts"] = AS_OF_TS
    keys = {name: s.get("unique", []) for name, s in pipeline.get("stages", {}).items()}

    os.makedirs(args.out_dir, exist_ok=True)
    tmp = os.path.join(args.out_dir, ".duckdb_tmp")
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"set threads = {args.threads}")
    con.execute(f"set temp_directory = '{tmp}'")
    con.execute(f"set TimeZone = '{tz}'")
    # DataFusion's (and Postgres') null order: last ascending, first descending
    con.execute("set default_null_order = 'nulls_last_on_asc_first_on_desc'")
    # rows are matched by key, never by position: no need to keep insertion order
    con.execute("set preserve_insertion_order = false")
    con.execute(MACROS)
    con.execute(MONEY_MACROS)

    timings, rows = [], {}

    def write(table):
        path = os.path.join(args.out_dir, f"{table}.parquet")
        con.execute(f"copy {ident(table)} to '{path}' (format parquet)")
        rows[table] = con.execute(f"select count(*) from {ident(table)}").fetchone()[0]

    # Sources: typed views over the files; the duplicate scan (shared and repeated rows) is
    # the only work done here, as in winback.
    t = time.perf_counter()
    for name, spec in pipeline.get("sources", {}).items():
        src = Source(name, spec, os.path.join(args.input_dir, name))
        register_source(con, src, tz)
    timings.append(("sources", time.perf_counter() - t))

    t = time.perf_counter()
    rejects = " union all ".join(f"select * from {ident('_rejects_' + n)}"
                                 for n in pipeline.get("sources", {}))
    con.execute(f"create or replace table quarantine as {rejects}")
    write("quarantine")
    timings.append(("quarantine", time.perf_counter() - t))

    for name, sql in stages():
        t = time.perf_counter()
        con.execute(f"create or replace table {ident(name)} as {bind(sql, params)}")
        write(name)
        timings.append((name, time.perf_counter() - t))

    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# duckdb {duckdb.__version__}, {args.threads} threads, "
          f"as_of={args.as_of}, input={args.input_dir}")
    for name, s in timings:
        print(f"stage {name} {s:.3f}")
    for name, n in rows.items():
        print(f"rows {name} {n}")
    print(f"total {total:.3f}")
    print(f"peak_rss_mib {peak:.0f}")
    sys.stdout.flush()
    shutil.rmtree(tmp, ignore_errors=True)

    if args.compare:
        results = compare(con, args.out_dir, args.compare, args.as_of.isoformat(),
                          ["quarantine"] + [n for n, _ in stages()], keys)
        bad = [t for t, r in results.items() if r == "diff"]
        print(f"compare_summary ok={sum(r == 'ok' for r in results.values())} "
              f"diff={len(bad)} missing={sum(r == 'missing' for r in results.values())}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
