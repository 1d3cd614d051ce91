//! Incremental nights: the stages maintained per customer (`incremental_key`) give, night
//! after night, exactly the tables a full recompute of the same night gives; and every
//! night that cannot build on the last one recomputes in full and says why.

use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use winback::manifest::{IncrementalRecord, Manifest};
use winback::pipeline::SendMode;

use crate::determinism::every_table_of;
use crate::support::*;

const HEADER: &str = "customer_id,order_ts,amount,order_id,quantity,channel\n";
const OPTIONAL: [&str; 5] = [
    "customers",
    "unsubscribes",
    "complaints",
    "feedback",
    "call_outcomes",
];

/// A history of purchases delivered as one CSV file per night.
struct Shop {
    dir: PathBuf,
    rng: StdRng,
    customers: usize,
    orders: usize,
    /// Every line delivered so far (for repeats and refunds).
    lines: Vec<String>,
}

impl Shop {
    fn new(dir: &Path, seed: u64) -> Shop {
        std::fs::create_dir_all(dir.join("purchases")).unwrap();
        for s in OPTIONAL {
            std::fs::create_dir_all(dir.join(s)).unwrap();
        }
        Shop {
            dir: dir.to_path_buf(),
            rng: StdRng::seed_from_u64(seed),
            customers: 0,
            orders: 0,
            lines: vec![],
        }
    }

    fn line(&mut self, customer: usize, day: NaiveDate, amount: f64, order: usize) -> String {
        let hour = self.rng.random_range(0..24);
        let channel = ["web", "store", "app"][self.rng.random_range(0..3)];
        let quantity = self.rng.random_range(1..4);
        format!("c{customer},{day} {hour:02}:15:00,{amount:.2},o{order},{quantity},{channel}")
    }

    fn purchase(&mut self, customer: usize, day: NaiveDate) -> Vec<String> {
        self.orders += 1;
        let order = self.orders;
        let amount = self.rng.random_range(5.0..200.0);
        let mut lines = vec![self.line(customer, day, amount, order)];
        if self.rng.random_bool(0.2) {
            // a second item of the same order
            let amount = self.rng.random_range(1.0..50.0);
            lines.push(self.line(customer, day, amount, order));
        }
        lines
    }

    /// The night's file for `as_of`: purchases of the day before, a few dated `as_of` itself
    /// (outside this night, inside the next), late rows of older days, new and returning
    /// customers, a refund of an old order, a repeated line, a row without a customer.
    fn deliver(&mut self, as_of: NaiveDate, first: bool) -> PathBuf {
        let mut lines = Vec::new();
        let yesterday = as_of - Duration::days(1);
        if first {
            for _ in 0..40 {
                self.customers += 1;
                let c = self.customers;
                for _ in 0..self.rng.random_range(1..6) {
                    let day = as_of - Duration::days(self.rng.random_range(1..300));
                    lines.extend(self.purchase(c, day));
                }
            }
        } else {
            for _ in 0..self.rng.random_range(0..4) {
                self.customers += 1;
                let c = self.customers;
                lines.extend(self.purchase(c, yesterday));
            }
            for _ in 0..self.rng.random_range(1..6) {
                let c = self.rng.random_range(1..=self.customers);
                let day = match self.rng.random_range(0..6) {
                    0 => as_of,                                                // tomorrow's
                    1 => as_of - Duration::days(self.rng.random_range(2..40)), // late
                    _ => yesterday,
                };
                lines.extend(self.purchase(c, day));
            }
            if self.rng.random_bool(0.5) {
                // A refund of an old order, in full or in part.
                let old = self.lines[self.rng.random_range(0..self.lines.len())].clone();
                let f: Vec<&str> = old.split(',').collect();
                let amount: f64 = f[2].parse().unwrap();
                let part = if self.rng.random_bool(0.5) { 1.0 } else { 0.5 };
                lines.push(format!(
                    "{},{yesterday} 10:00:00,{:.2},{},1,{}",
                    f[0],
                    -amount.abs() * part,
                    f[3],
                    f[5]
                ));
            }
            if self.rng.random_bool(0.4) {
                // A line delivered again in a later file.
                let old = self.lines[self.rng.random_range(0..self.lines.len())].clone();
                lines.push(old);
            }
            if self.rng.random_bool(0.3) {
                lines.push(format!(
                    ",{yesterday} 09:00:00,12.00,o-orphan-{as_of},1,web"
                ));
            }
        }
        self.lines.extend(lines.iter().cloned());
        let file = self.dir.join(format!("purchases/night-{as_of}.csv"));
        std::fs::write(&file, format!("{HEADER}{}\n", lines.join("\n"))).unwrap();
        file
    }
}

/// One run of the default pipeline over the shop's files: `state` keeps the maintained
/// tables between nights.
async fn night(
    shop: &Path,
    as_of: NaiveDate,
    state: &Path,
    out: &Path,
    full_refresh: bool,
    set: &[(&str, &str)],
) -> Manifest {
    let folders: Vec<(&str, PathBuf)> = std::iter::once("purchases")
        .chain(OPTIONAL)
        .map(|s| (s, shop.join(s)))
        .collect();
    let inputs: Vec<(&str, &Path)> = folders.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut set: Vec<(&str, &str)> = set.to_vec();
    set.push(("sources.purchases.format", "csv"));
    let mut opts = run_options(&as_of.to_string(), &inputs, out, &set);
    opts.state_dir = Some(state.to_path_buf());
    opts.full_refresh = full_refresh;
    opts.send = SendMode::NoSend;
    winback::pipeline::run(&opts)
        .await
        .unwrap_or_else(|e| panic!("the night of {as_of}: {e}"))
}

fn incremental(m: &Manifest) -> IncrementalRecord {
    m.incremental
        .clone()
        .expect("the default pipeline maintains stages")
}

/// The acceptance test of incremental nights: random sequences of nights (new customers,
/// returning ones, refunds of old orders, repeated lines, rows for tomorrow and late rows,
/// a file delivered twice, a skipped night, a changed variable), each run incrementally and
/// in full, give identical tables after every night.
#[tokio::test]
async fn random_nights_give_the_tables_of_a_full_recompute_every_night() {
    for seed in [11, 29] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("shop");
        let mut shop = Shop::new(&data, seed);
        let mut rng = StdRng::seed_from_u64(seed + 1);
        let mut as_of = date("2026-03-01");
        let mut lapse_factor: Option<&str> = None;
        let mut incremental_nights = 0;
        for n in 0..6 {
            let first = n == 0;
            let mut expect_full = first;
            if !first {
                match rng.random_range(0..8) {
                    0 => {
                        // A skipped night: its file arrives with the next one.
                        shop.deliver(as_of + Duration::days(1), false);
                        as_of += Duration::days(2);
                    }
                    1 if lapse_factor.is_none() => {
                        lapse_factor = Some("2.0");
                        expect_full = true;
                        as_of += Duration::days(1);
                    }
                    _ => as_of += Duration::days(1),
                }
            }
            let file = shop.deliver(as_of, first);
            if !first && rng.random_bool(0.3) {
                // The same file delivered twice: the copy is skipped.
                std::fs::copy(&file, file.with_extension("resent.csv")).unwrap();
            }
            let set: Vec<(&str, &str)> = lapse_factor
                .map(|v| vec![("variables.lapse_factor", v)])
                .unwrap_or_default();
            let (inc_out, full_out) = (tmp.path().join("inc"), tmp.path().join("full"));
            let m = night(
                &data,
                as_of,
                &tmp.path().join("inc-state"),
                &inc_out,
                false,
                &set,
            )
            .await;
            let f = night(
                &data,
                as_of,
                &tmp.path().join("full-state"),
                &full_out,
                true,
                &set,
            )
            .await;
            let record = incremental(&m);
            if expect_full {
                assert_eq!(record.mode, "full", "seed {seed}, night {n}: {record:?}");
            } else {
                assert_eq!(
                    record.mode, "incremental",
                    "seed {seed}, night {n}: {record:?}"
                );
                assert!(record.keys_touched.unwrap() > 0, "{record:?}");
                incremental_nights += 1;
            }
            assert!(record.remembered);
            assert_eq!(incremental(&f).reason.as_deref(), Some("--full-refresh"));
            let (a, b) = (
                every_table_of(&inc_out, &as_of.to_string()).await,
                every_table_of(&full_out, &as_of.to_string()).await,
            );
            assert!(a["customer_summary"].len() >= 40, "{:?}", a.keys());
            assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
            for (t, rows) in &a {
                assert!(
                    rows == &b[t],
                    "seed {seed}, night {n} ({as_of}), table {t}: incremental {} rows, full {} rows; \
                     only incremental: {:?}; only full: {:?}",
                    rows.len(),
                    b[t].len(),
                    rows.iter()
                        .filter(|r| !b[t].contains(r))
                        .take(3)
                        .collect::<Vec<_>>(),
                    b[t].iter()
                        .filter(|r| !rows.contains(r))
                        .take(3)
                        .collect::<Vec<_>>(),
                );
            }
        }
        assert!(incremental_nights >= 3, "seed {seed}: {incremental_nights}");
    }
}

/// Nights of one shop, kept in one state folder.
struct Nights<'a> {
    data: &'a Path,
    state: &'a Path,
    out: &'a Path,
}

impl Nights<'_> {
    async fn at(&self, as_of: &str, full_refresh: bool, set: &[(&str, &str)]) -> Manifest {
        night(
            self.data,
            date(as_of),
            self.state,
            self.out,
            full_refresh,
            set,
        )
        .await
    }
}

/// Each night that cannot build on the last recomputes in full, with the reason in the
/// manifest; the next night builds on it again.
#[tokio::test]
async fn a_night_that_cannot_build_on_the_last_recomputes_in_full_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shop");
    let mut shop = Shop::new(&data, 7);
    let state = tmp.path().join("state");
    let n = Nights {
        data: &data,
        state: &state,
        out: &tmp.path().join("out"),
    };
    let day = |d: &str| date(d);
    let reason = |m: &Manifest| incremental(m).reason.unwrap_or_default();

    let first = shop.deliver(day("2026-03-01"), true);
    let m = n.at("2026-03-01", false, &[]).await;
    assert_eq!(reason(&m), "the first night: no maintained tables yet");

    shop.deliver(day("2026-03-02"), false);
    let m = n.at("2026-03-02", false, &[]).await;
    assert_eq!(incremental(&m).mode, "incremental");
    assert_eq!(incremental(&m).new_files, 1);
    let stage = |m: &Manifest, name: &str| {
        m.stages
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("stage {name}"))
            .incremental_keys
    };
    assert_eq!(stage(&m, "customer_history"), incremental(&m).keys_touched);
    assert_eq!(
        stage(&m, "customer_summary"),
        None,
        "as_of columns: recomputed"
    );

    // An earlier as_of.
    let m = n.at("2026-02-20", false, &[]).await;
    assert_eq!(
        reason(&m),
        "as_of 2026-02-20 is before the last maintained night (2026-03-02)"
    );
    // (that night is remembered now; move on from it)
    let m = n.at("2026-03-02", false, &[]).await;
    assert_eq!(incremental(&m).mode, "incremental");

    // A variable.
    let m = n
        .at("2026-03-02", false, &[("variables.lapse_factor", "2.5")])
        .await;
    assert_eq!(reason(&m), "a variable changed");
    // (and back)
    let m = n.at("2026-03-02", false, &[]).await;
    assert_eq!(reason(&m), "a variable changed");

    // A file changed in place.
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, text.replacen("c1,", "c2,", 1)).unwrap();
    let m = n.at("2026-03-02", false, &[]).await;
    assert!(
        reason(&m).starts_with("file ")
            && reason(&m).contains("changed since the night of 2026-03-02"),
        "{}",
        reason(&m)
    );

    // A file removed.
    std::fs::remove_file(data.join("purchases/night-2026-03-02.csv")).unwrap();
    let m = n.at("2026-03-03", false, &[]).await;
    assert!(reason(&m).contains("is no longer read"), "{}", reason(&m));

    // A stage's SQL, and the source's settings.
    let m = n
        .at(
            "2026-03-03",
            false,
            &[(
                "sources.purchases.duplicate_key",
                "[\"order_id\", \"customer_id\", \"order_ts\", \"amount\"]",
            )],
        )
        .await;
    assert_eq!(reason(&m), "the settings of source 'purchases' changed");
    let m = n.at("2026-03-03", false, &[]).await;
    assert_eq!(reason(&m), "the settings of source 'purchases' changed");
    let sql = tmp.path().join("sql");
    copy_dir(&repo().join("sql"), &sql);
    let file = sql.join("intermediate/purchase_days.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("-- edited\n{text}")).unwrap();
    let sql_dir = sql.to_string_lossy().into_owned();
    let m = n.at("2026-03-03", false, &[("sql_dir", &sql_dir)]).await;
    assert_eq!(reason(&m), "the SQL of stage 'purchase_days' changed");

    // The tables kept are gone.
    let kept = state.join("incremental/reactivation");
    for e in std::fs::read_dir(&kept).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        }
    }
    let m = n.at("2026-03-03", false, &[("sql_dir", &sql_dir)]).await;
    assert_eq!(
        reason(&m),
        "the maintained tables of 2026-03-03 are missing"
    );

    // Another run keeping the tables (a run of another night at the same time).
    let held = std::fs::File::create(kept.join("lock")).unwrap();
    held.try_lock().unwrap();
    let m = n.at("2026-03-03", false, &[("sql_dir", &sql_dir)]).await;
    assert!(
        reason(&m).starts_with("another run of this pipeline"),
        "{}",
        reason(&m)
    );
    assert!(!incremental(&m).remembered);
    drop(held);

    // --full-refresh.
    let m = n.at("2026-03-03", true, &[("sql_dir", &sql_dir)]).await;
    assert_eq!(reason(&m), "--full-refresh");
    let m = n.at("2026-03-03", false, &[("sql_dir", &sql_dir)]).await;
    assert_eq!(incremental(&m).mode, "incremental");
    assert_eq!(incremental(&m).keys_touched, Some(0), "nothing new");
}

/// The summary says how the night ran, and why it recomputed in full.
#[test]
fn the_summary_says_why_a_night_recomputed_in_full() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shop");
    let mut shop = Shop::new(&data, 3);
    shop.deliver(date("2026-03-01"), true);
    let run = |as_of: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--pipeline".into(),
            default_pipeline(),
            "--no-send".into(),
            "--as-of".into(),
            as_of.into(),
            "--set".into(),
            "sources.purchases.format=csv".into(),
            "--output".into(),
            tmp.path().join("out").display().to_string(),
            "--state-dir".into(),
            tmp.path().join("state").display().to_string(),
        ];
        for s in std::iter::once("purchases").chain(OPTIONAL) {
            args.push("--input".into());
            args.push(format!("{s}={}", data.join(s).display()));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_winback"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run("2026-03-01", &[]);
    assert!(
        out.contains(
            "maintained stages recomputed in full: the first night: no maintained tables yet"
        ),
        "{out}"
    );
    shop.deliver(date("2026-03-02"), false);
    let out = run("2026-03-02", &[]);
    assert!(out.contains("incremental night: 1 new file(s), "), "{out}");
    assert!(out.contains("keys recomputed)"), "{out}");
    let out = run("2026-03-02", &["--full-refresh"]);
    assert!(
        out.contains("maintained stages recomputed in full: --full-refresh"),
        "{out}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// A maintained stage that reads `$as_of` is a configuration error, named before anything
/// is read.
#[test]
fn a_maintained_stage_that_reads_as_of_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_winback"))
        .args([
            "run",
            "--no-send",
            "--as-of",
            "2026-03-01",
            "--output",
            &tmp.path().join("out").display().to_string(),
            "--state-dir",
            &tmp.path().join("state").display().to_string(),
            "--pipeline",
            &default_pipeline(),
            "--set",
            "stages.customer_summary.incremental_key=\"customer_id\"",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("stage 'customer_summary' reads $as_of, but it is maintained per key"),
        "{err}"
    );
}
