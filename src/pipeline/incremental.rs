//! Incremental nights, the run's side. The stages maintained per key
//! (`stage::incremental`) keep their tables in the state folder,
//! `<state>/incremental/<pipeline>/`, with what they were computed from: the sources'
//! files (path, size, version), the SQL of every stage involved, the sources' settings,
//! the variables and the night (`as_of`). A night that only adds to that (new files, a
//! later `as_of`) finds the keys the new rows touch, runs the maintained stages' own SQL
//! over those keys' rows only, and merges the result into the kept tables; the stages
//! after them run as always. Anything else recomputes in full and says why.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::datasource::listing::ListingTable;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use super::incremental_state::{
    Remembered, STATE_FILE, files_now, fingerprint, full_reason, read_remembered,
};
use super::{Prepared, RunOptions};
use crate::engine::{self, df_err, materialize, sql_frame};
use crate::error::PipelineError;
pub use crate::manifest::IncrementalRecord;
use crate::source::views::ident;
use crate::stage::executor::StageRun;
use crate::stage::incremental::{self as inc, Part};

/// A run that maintains tables: what it decided, and what it keeps afterwards.
pub struct Maintenance {
    part: Part,
    /// Where the tables are kept (`None`: nothing is remembered this run).
    dir: Option<PathBuf>,
    now: Option<Remembered>,
    /// The pipeline's incremental folder, locked from reading what the last night kept to
    /// keeping tonight's (runs of other nights may overlap; the OS lock goes with the process).
    _lock: Option<std::fs::File>,
    /// Where the restricted sources and stages go (Parquet, read back): a night that
    /// touches most customers stays within the memory cap. Removed with the maintenance.
    work: Option<tempfile::TempDir>,
    pub record: IncrementalRecord,
    /// The restricted runs of the stages before the merge, by stage.
    inner: BTreeMap<String, (f64, u64)>,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Internal(format!("incremental state: {what}: {e}"))
}

/// Decide how tonight computes the maintained stages. On an incremental night, the
/// stages before the merge run here, over the touched keys, and the graph is rewired to
/// merge; `needed` are the tables read after the stages (kept in the graph).
pub async fn begin(
    p: &mut Prepared,
    opts: &RunOptions,
    needed: &HashSet<String>,
) -> Result<Option<Maintenance>, PipelineError> {
    let part = match inc::part(&p.graph, &p.pipeline) {
        Ok(Some(part)) => part,
        Ok(None) => return Ok(None),
        Err(problems) => return Err(crate::error::ConfigError::Many(problems).into()),
    };
    let mut m = Maintenance {
        record: IncrementalRecord {
            mode: "full".into(),
            maintained: part.maintained.clone(),
            ..Default::default()
        },
        part,
        dir: None,
        now: None,
        _lock: None,
        work: None,
        inner: BTreeMap::new(),
    };
    let off = if opts.state_dir.is_none() {
        Some("no state folder: nothing is remembered between nights")
    } else if !opts.select.is_empty() {
        Some("--select runs part of the pipeline")
    } else if engine::work_area(&p.ctx).is_some() {
        Some("the Ballista engine recomputes in full")
    } else {
        None
    };
    if let Some(reason) = off {
        m.record.reason = Some(reason.into());
        return Ok(Some(m));
    }
    let dir = opts
        .state_dir
        .as_ref()
        .expect("checked above")
        .join("incremental")
        .join(&p.pipeline.name);
    std::fs::create_dir_all(&dir).map_err(|e| io_err("creating its folder", e))?;
    let lock = std::fs::File::create(dir.join("lock")).map_err(|e| io_err("locking", e))?;
    if lock.try_lock().is_err() {
        m.record.reason = Some(
            "another run of this pipeline is keeping its maintained tables: this one neither reads nor keeps them"
                .into(),
        );
        return Ok(Some(m));
    }
    m._lock = Some(lock);
    let now = Remembered {
        as_of: p.as_of,
        generation: format!(
            "gen-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%6f"),
            std::process::id()
        ),
        fingerprint: fingerprint(p, &m.part),
        files: files_now(p, &m.part),
        tables: m.part.maintained.clone(),
    };
    let last = read_remembered(&dir);
    let reason = match &last {
        _ if opts.full_refresh => Some("--full-refresh".to_string()),
        None => Some("the first night: no maintained tables yet".to_string()),
        Some(last)
            if !last
                .tables
                .iter()
                .all(|t| dir.join(&last.generation).join(t).is_dir()) =>
        {
            Some(format!(
                "the maintained tables of {} are missing",
                last.as_of
            ))
        }
        Some(last) => full_reason(last, &now),
    };
    m.dir = Some(dir.clone());
    match (reason, last) {
        (Some(reason), _) => {
            tracing::info!(%reason, "maintained stages recomputed in full");
            m.record.reason = Some(reason);
        }
        (None, Some(last)) => {
            m.record.mode = "incremental".into();
            maintain(p, &mut m, &dir, &last, &now).await?;
            p.graph = inc::rewire(&p.graph, &m.part, needed);
        }
        (None, None) => unreachable!("no reason only with a last night"),
    }
    m.now = Some(now);
    Ok(Some(m))
}

/// An incremental night before the graph runs: the touched keys, the maintained stages
/// (and what they read) over those keys' rows, the kept tables registered.
async fn maintain(
    p: &Prepared,
    m: &mut Maintenance,
    dir: &Path,
    last: &Remembered,
    now: &Remembered,
) -> Result<(), PipelineError> {
    let ctx = &p.ctx;
    let key = m.part.key.clone();
    // The keys: rows of new files, and rows the last night left out as after its as_of.
    let since = (last.as_of < now.as_of).then_some(last.as_of);
    let mut selects = Vec::new();
    for name in &m.part.sources {
        let source = p
            .pipeline
            .sources
            .iter()
            .find(|s| &s.name == name)
            .expect("a source of the pipeline");
        let seen = last.files.get(name);
        let new_files: Vec<String> = now
            .files
            .get(name)
            .into_iter()
            .flat_map(|f| f.keys())
            .filter(|f| !seen.is_some_and(|s| s.contains_key(*f)))
            .cloned()
            .collect();
        m.record.new_files += new_files.len();
        let sql = crate::source::added_keys_sql(
            ctx,
            &p.pipeline,
            source,
            &new_files,
            &key,
            since,
            &p.params,
        )
        .await?;
        selects.extend(sql);
    }
    let k = ident(&key);
    let keys_sql = if selects.is_empty() {
        format!("select cast(null as varchar) as {k} where false")
    } else {
        format!(
            "select distinct {k} from (\n{}\n)",
            selects.join("\nunion all\n")
        )
    };
    let err = df_err(inc::KEYS_TABLE);
    let df = sql_frame(ctx, &keys_sql, &p.params).await.map_err(&err)?;
    let keys = materialize(ctx, inc::KEYS_TABLE, df).await.map_err(&err)?;
    m.record.keys_touched = Some(keys);
    for name in &m.part.sources {
        for t in [format!("_inc_raw_{name}"), format!("_inc_checked_{name}")] {
            let _ = ctx.deregister_table(t.as_str());
        }
    }
    // The sources, restricted to those keys' rows while the maintained part runs.
    let work = tempfile::Builder::new()
        .prefix(&crate::spill::work_prefix())
        .tempdir()
        .map_err(|e| io_err("creating a work folder", e))?;
    let aside = Aside(work.path().to_path_buf());
    m.work = Some(work);
    let mut full = Vec::new();
    for name in &m.part.sources {
        let provider = ctx
            .table_provider(name.as_str())
            .await
            .map_err(df_err(name))?;
        let hidden = format!("_inc_full_{name}");
        ctx.register_table(hidden.as_str(), provider.clone())
            .map_err(df_err(name))?;
        let restricted = sql_frame(
            ctx,
            &format!(
                "select * from {} where {k} in (select {k} from {})",
                ident(&hidden),
                ident(inc::KEYS_TABLE)
            ),
            &p.params,
        )
        .await
        .map_err(df_err(name))?;
        // Set aside once: the stages read a source several times, and each read of the
        // view would check and scan the whole history again.
        ctx.deregister_table(name.as_str()).map_err(df_err(name))?;
        let kept = aside.put(ctx, name, restricted).await;
        full.push((name.clone(), hidden, provider));
        if let Err(e) = kept {
            restore(ctx, full)?;
            return Err(e);
        }
    }
    let ran = run_restricted(ctx, p, &m.part, &aside).await;
    // The full sources again, whatever happened.
    restore(ctx, full)?;
    m.inner = ran?;
    for t in &m.part.stages {
        let provider = ctx
            .table_provider(t.name.as_str())
            .await
            .map_err(df_err(&t.name))?;
        ctx.deregister_table(t.name.as_str())
            .map_err(df_err(&t.name))?;
        if m.part.maintained.contains(&t.name) {
            ctx.register_table(inc::fresh_table(&t.name).as_str(), provider)
                .map_err(df_err(&t.name))?;
            let kept = dir.join(&last.generation).join(&t.name);
            ctx.register_parquet(
                inc::kept_table(&t.name).as_str(),
                kept.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await
            .map_err(df_err(&t.name))?;
        }
    }
    Ok(())
}

/// A folder for the tables of the restricted run: each written there as Parquet and
/// registered as those files.
struct Aside(PathBuf);

impl Aside {
    async fn put(
        &self,
        ctx: &SessionContext,
        name: &str,
        df: datafusion::dataframe::DataFrame,
    ) -> Result<u64, PipelineError> {
        let at = crate::storage::locate(&self.0.join(name).to_string_lossy())?;
        crate::output::spill_and_read_back(ctx, name, df, &at).await
    }
}

/// The sources' full tables registered again under their names.
fn restore(
    ctx: &SessionContext,
    full: Vec<(
        String,
        String,
        std::sync::Arc<dyn datafusion::catalog::TableProvider>,
    )>,
) -> Result<(), PipelineError> {
    for (name, hidden, provider) in full {
        let _ = ctx.deregister_table(name.as_str());
        let _ = ctx.deregister_table(hidden.as_str());
        ctx.register_table(name.as_str(), provider)
            .map_err(df_err(&name))?;
    }
    Ok(())
}

/// The maintained part's stages over the restricted sources, each kept in memory under
/// its name. Returns each stage's seconds and rows.
async fn run_restricted(
    ctx: &SessionContext,
    p: &Prepared,
    part: &Part,
    aside: &Aside,
) -> Result<BTreeMap<String, (f64, u64)>, PipelineError> {
    let mut out = BTreeMap::new();
    for stage in &part.stages {
        let started = Instant::now();
        let e = |e| PipelineError::stage(&stage.name, &stage.file.display().to_string(), &e);
        let df = sql_frame(ctx, &stage.sql, &p.params).await.map_err(e)?;
        let rows = aside.put(ctx, &stage.name, df).await?;
        out.insert(stage.name.clone(), (started.elapsed().as_secs_f64(), rows));
    }
    Ok(out)
}

impl Maintenance {
    /// The tables the graph must not drop before [`Maintenance::finish`] keeps them.
    pub fn tables(&self) -> &[String] {
        &self.part.maintained
    }

    /// After the stages: keep the maintained tables for the next night, and complete the
    /// stage records (an incremental night's maintained stages with their touched keys,
    /// the stages only they read as run over those keys).
    pub async fn finish(
        mut self,
        ctx: &SessionContext,
        runs: &mut Vec<StageRun>,
    ) -> Result<IncrementalRecord, PipelineError> {
        let incremental = self.record.mode == "incremental";
        for (name, (seconds, rows)) in &self.inner {
            match runs.iter_mut().find(|r| &r.name == name) {
                Some(run) if self.part.maintained.contains(name) => {
                    run.seconds += seconds;
                    run.incremental_keys = self.record.keys_touched;
                }
                Some(_) => {}
                None => {
                    let stage = self.part.stages.iter().find(|s| &s.name == name);
                    runs.push(StageRun {
                        name: name.clone(),
                        file: stage
                            .map(|s| s.file.display().to_string())
                            .unwrap_or_default(),
                        rows: *rows,
                        seconds: *seconds,
                        diagnostics: None,
                        spill_peak_bytes: None,
                        incremental_keys: self.record.keys_touched,
                    });
                }
            }
        }
        let (Some(dir), Some(now)) = (self.dir.take(), self.now.take()) else {
            return Ok(self.record);
        };
        let generation = dir.join(&now.generation);
        for t in &self.part.maintained {
            keep_table(ctx, t, &generation.join(t)).await?;
        }
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(&now).map_err(|e| io_err("encoding", e))?;
        std::fs::write(&tmp, text).map_err(|e| io_err("writing", e))?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).map_err(|e| io_err("writing", e))?;
        // Earlier generations (and any a failed run left) are not needed any more.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("gen-") && name != now.generation {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        if incremental {
            for t in &self.part.maintained {
                for name in [inc::kept_table(t), inc::fresh_table(t)] {
                    let _ = ctx.deregister_table(name.as_str());
                }
            }
        }
        self.record.remembered = true;
        Ok(self.record)
    }
}

/// Keep table `t` as Parquet files in `dest`: the files it was read back from, linked
/// (or copied) when they are local, else written from the table.
async fn keep_table(ctx: &SessionContext, t: &str, dest: &Path) -> Result<(), PipelineError> {
    std::fs::create_dir_all(dest).map_err(|e| io_err("creating a folder", e))?;
    let provider = ctx.table_provider(t).await.map_err(df_err(t))?;
    let local: Option<Vec<PathBuf>> = provider.downcast_ref::<ListingTable>().and_then(|lt| {
        lt.table_paths()
            .iter()
            .map(|u| url::Url::parse(u.as_str()).ok()?.to_file_path().ok())
            .collect()
    });
    if let Some(dirs) = local {
        let mut n = 0;
        for d in dirs {
            let entries = std::fs::read_dir(&d).map_err(|e| io_err("reading a table", e))?;
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "parquet") {
                    let to = dest.join(format!("part-{n}.parquet"));
                    n += 1;
                    if std::fs::hard_link(&path, &to).is_err() {
                        std::fs::copy(&path, &to).map_err(|e| io_err("copying a table", e))?;
                    }
                }
            }
        }
        return Ok(());
    }
    let url = format!("{}/", dest.to_string_lossy());
    ctx.table(t)
        .await
        .map_err(df_err(t))?
        .write_parquet(
            &url,
            datafusion::dataframe::DataFrameWriteOptions::new(),
            None,
        )
        .await
        .map_err(df_err(t))?;
    Ok(())
}
