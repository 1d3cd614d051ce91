//! Schedule files (`schedules/*.toml`): the raw TOML shape, its validation into a resolved [`Schedule`] with errors that name the file and key, and loading a whole folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::ScheduleError;
use super::catch_up::{CatchUp, CatchUpMode};
use super::fire_times::CronSpec;
use super::job::RunPolicy;

/// A problem in one schedule file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", file.display(), key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
pub struct ScheduleFileError {
    pub file: PathBuf,
    /// The offending key, when the problem is about one.
    pub key: Option<String>,
    pub message: String,
}

/// How a run's as_of date derives from its fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOfRule {
    /// The fire time's date in the schedule's timezone.
    #[default]
    FireDate,
    /// The day before that.
    PreviousDay,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    name: Option<String>,
    pipeline: PathBuf,
    cron: String,
    timezone: Option<String>,
    as_of: Option<AsOfRule>,
    catch_up: Option<CatchUpMode>,
    max_catch_up: Option<u32>,
    retries: Option<u32>,
    retry_backoff_secs: Option<u64>,
    max_run_secs: Option<u64>,
    #[serde(default)]
    set: BTreeMap<String, toml::Value>,
}

pub const DEFAULT_TIMEZONE: &str = "UTC";
pub const DEFAULT_MAX_CATCH_UP: u32 = 31;
pub const DEFAULT_RETRY_BACKOFF_SECS: u64 = 60;
pub const DEFAULT_MAX_RUN_SECS: u64 = 7200;
const MAX_RETRIES: u32 = 100;

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Unique among the loaded schedules; defaults to the file stem.
    pub name: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// The pipeline file, as written (relative paths are relative to the
    /// working directory of the winback process, like on the command line).
    pub pipeline: PathBuf,
    pub cron: CronSpec,
    pub as_of: AsOfRule,
    pub catch_up: CatchUp,
    /// Retries of a failed run (so at most `retries + 1` attempts).
    pub retries: u32,
    /// Wait before the first retry; doubles for each further one.
    pub retry_backoff: Duration,
    /// A run longer than this is cancelled and recorded as failed.
    pub max_run: Duration,
    /// `--set` overrides passed to the pipeline, sorted by key.
    pub set: Vec<(String, String)>,
}

impl crate::error::Blamed for ScheduleFileError {
    /// A schedule file is the user's to fix.
    fn blame(&self) -> crate::error::Blame {
        crate::error::Blame::User
    }
}

fn err(file: &Path, key: Option<&str>, message: impl Into<String>) -> ScheduleFileError {
    ScheduleFileError {
        file: file.to_path_buf(),
        key: key.map(str::to_string),
        message: message.into(),
    }
}

impl Schedule {
    /// Parses and validates the text of schedule file `file`.
    pub fn from_toml_str(text: &str, file: &Path) -> Result<Schedule, ScheduleFileError> {
        let raw: RawSchedule = toml::from_str(text).map_err(|e| err(file, None, e.to_string()))?;
        let check = |ok: bool, key: &str, msg: String| match ok {
            true => Ok(()),
            false => Err(err(file, Some(key), msg)),
        };
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
        let name = raw.name.or(stem).unwrap_or_default();
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        check(
            !name.is_empty() && name.chars().all(name_ok),
            "name",
            format!("{name:?} is not a valid schedule name (use letters, digits, '-', '_', '.')"),
        )?;
        let no_pipeline = raw.pipeline.as_os_str().is_empty();
        check(!no_pipeline, "pipeline", "must not be empty".into())?;
        let tz_name = raw.timezone.as_deref().unwrap_or(DEFAULT_TIMEZONE);
        let tz: Option<Tz> = tz_name.parse().ok();
        let tz_msg = format!("{tz_name:?} is not an IANA timezone name (like \"Europe/Berlin\")");
        check(tz.is_some(), "timezone", tz_msg)?;
        let cron = CronSpec::parse(&raw.cron, tz.unwrap_or(chrono_tz::UTC))
            .map_err(|m| err(file, Some("cron"), m))?;
        let fires = cron.next_after(Utc::now()).is_some();
        check(fires, "cron", format!("{:?} never fires again", raw.cron))?;
        let max_catch_up = raw.max_catch_up.unwrap_or(DEFAULT_MAX_CATCH_UP);
        check(
            max_catch_up > 0,
            "max_catch_up",
            "must be at least 1".into(),
        )?;
        let catch_up = match raw.catch_up.unwrap_or(CatchUpMode::Latest) {
            CatchUpMode::Skip => CatchUp::Skip,
            CatchUpMode::Latest => CatchUp::Latest,
            CatchUpMode::All => CatchUp::All { max: max_catch_up },
        };
        let retries = raw.retries.unwrap_or(0);
        let msg = format!("must be at most {MAX_RETRIES}");
        check(retries <= MAX_RETRIES, "retries", msg)?;
        let backoff = raw.retry_backoff_secs.unwrap_or(DEFAULT_RETRY_BACKOFF_SECS);
        let msg = "must be at most 86400 (a day)".to_string();
        check(backoff <= 86_400, "retry_backoff_secs", msg)?;
        let max_run = raw.max_run_secs.unwrap_or(DEFAULT_MAX_RUN_SECS);
        check(max_run > 0, "max_run_secs", "must be at least 1".into())?;
        let mut set = Vec::with_capacity(raw.set.len());
        for (key, value) in raw.set {
            let at = format!("set.\"{key}\"");
            check(
                !key.trim().is_empty(),
                &at,
                "override key must not be empty".into(),
            )?;
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    let msg = format!("expected a string, found a {}", other.type_str());
                    return Err(err(file, Some(&at), msg));
                }
            };
            set.push((key, value));
        }
        Ok(Schedule {
            name,
            file: file.to_path_buf(),
            pipeline: raw.pipeline,
            cron,
            as_of: raw.as_of.unwrap_or_default(),
            catch_up,
            retries,
            retry_backoff: Duration::from_secs(backoff),
            max_run: Duration::from_secs(max_run),
            set,
        })
    }

    /// Reads and validates one schedule file.
    pub fn load_file(path: &Path) -> Result<Schedule, ScheduleError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Schedule::from_toml_str(&text, path)?)
    }

    /// The as_of date of a run fired at `fire`.
    pub fn as_of_for(&self, fire: DateTime<Utc>) -> NaiveDate {
        let date = fire.with_timezone(&self.cron.timezone()).date_naive();
        match self.as_of {
            AsOfRule::FireDate => date,
            AsOfRule::PreviousDay => date.pred_opt().unwrap_or(date),
        }
    }

    /// The next `n` fire times after `now`.
    pub fn next_fire_times(&self, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.cron.next_fire_times(now, n)
    }

    /// A human-readable summary with the next `n` fire times, for `validate`
    /// and the serve start-up log.
    pub fn describe(&self, now: DateTime<Utc>, n: usize) -> String {
        let mut out = format!(
            "schedule {} ({}): pipeline {}, cron \"{}\" in {}, catch-up {}, retries {}",
            self.name,
            self.file.display(),
            self.pipeline.display(),
            self.cron.expr(),
            self.cron.timezone(),
            self.catch_up,
            self.retries,
        );
        let fires = self.next_fire_times(now, n);
        if fires.is_empty() {
            out.push_str("\n  no future fire times");
        }
        for fire in fires {
            let local = self.cron.local_display(fire);
            let utc = fire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            out.push_str(&format!(
                "\n  {local} ({utc}) as_of {}",
                self.as_of_for(fire)
            ));
        }
        out
    }

    pub(crate) fn run_policy(&self) -> RunPolicy {
        RunPolicy {
            retries: self.retries,
            retry_backoff: self.retry_backoff,
            max_run: Some(self.max_run),
        }
    }
}

/// Loads every `*.toml` file of `dir` (not recursive), sorted by file name.
/// Schedule names must be unique.
pub fn load_schedules(dir: &Path) -> Result<Vec<Schedule>, ScheduleError> {
    let io = |source| ScheduleError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut schedules: Vec<Schedule> = Vec::with_capacity(files.len());
    for file in files {
        let schedule = Schedule::load_file(&file)?;
        if let Some(first) = schedules.iter().find(|s| s.name == schedule.name) {
            return Err(err(
                &file,
                Some("name"),
                format!(
                    "schedule name {:?} is already used by {}",
                    schedule.name,
                    first.file.display()
                ),
            )
            .into());
        }
        schedules.push(schedule);
    }
    Ok(schedules)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name = "nightly"
pipeline = "pipelines/reactivation.toml"
cron = "30 2 * * *"
timezone = "Asia/Shanghai"
as_of = "previous_day"
catch_up = "all"
max_catch_up = 7
retries = 2
retry_backoff_secs = 60
max_run_secs = 7200
[set]
"variables.lapse_factor" = "2.0"
"variables.limit" = 500
"#;

    fn parse(text: &str) -> Result<Schedule, ScheduleFileError> {
        Schedule::from_toml_str(text, Path::new("schedules/x.toml"))
    }

    #[test]
    fn parses_every_key() {
        let s = parse(FULL).unwrap();
        assert_eq!(s.name, "nightly");
        assert_eq!(s.pipeline, Path::new("pipelines/reactivation.toml"));
        assert_eq!(s.cron.timezone(), chrono_tz::Asia::Shanghai);
        assert_eq!(s.catch_up, CatchUp::All { max: 7 });
        assert_eq!((s.retries, s.max_run), (2, Duration::from_secs(7200)));
        assert_eq!(
            s.set,
            vec![
                ("variables.lapse_factor".to_string(), "2.0".to_string()),
                ("variables.limit".to_string(), "500".to_string())
            ]
        );
        // 02:30 in Shanghai on May 2nd is 18:30 UTC on May 1st; previous_day -> May 1st.
        let fire = DateTime::parse_from_rfc3339("2025-05-01T18:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            s.as_of_for(fire),
            NaiveDate::from_ymd_opt(2025, 5, 1).unwrap()
        );
        assert_eq!(s.run_policy().retry_backoff, Duration::from_secs(60));
        assert!(s.describe(fire, 3).lines().count() == 4);
    }

    #[test]
    fn defaults() {
        let s = parse("pipeline = \"p.toml\"\ncron = \"0 0 3 * * *\"").unwrap();
        assert_eq!(s.name, "x");
        assert_eq!(s.cron.timezone(), chrono_tz::UTC);
        assert_eq!(
            (s.as_of, s.catch_up, s.retries),
            (AsOfRule::FireDate, CatchUp::Latest, 0)
        );
        let fire = DateTime::parse_from_rfc3339("2025-05-01T18:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            s.as_of_for(fire),
            NaiveDate::from_ymd_opt(2025, 5, 1).unwrap()
        );
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let cases = [
            ("pipeline = \"p\"\ncron = \"* * *\"", "key `cron`"),
            (
                "pipeline = \"p\"\ncron = \"0 1 * * *\"\ntimezone = \"Mars/Base\"",
                "key `timezone`",
            ),
            (
                "pipeline = \"p\"\ncron = \"0 1 * * *\"\nmax_run_secs = 0",
                "key `max_run_secs`",
            ),
            (
                "pipeline = \"p\"\ncron = \"0 1 * * *\"\nname = \"a b\"",
                "key `name`",
            ),
            (
                "pipeline = \"p\"\ncron = \"0 1 * * *\"\n[set]\nx = [1]",
                "key `set.\"x\"`",
            ),
            (
                "pipeline = \"p\"\ncron = \"0 1 * * *\"\ncatchup = \"all\"",
                "unknown field `catchup`",
            ),
            (
                "pipeline = \"p\"\ncron = \"0 1 * * *\"\ncatch_up = \"some\"",
                "catch_up",
            ),
            ("pipeline = \"p\"", "missing field `cron`"),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with("schedules/x.toml: "), "{e}");
            assert!(e.contains(expected), "{expected:?} not in {e}");
        }
    }

    #[test]
    fn loads_a_folder_and_rejects_duplicate_names() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("b.toml", "pipeline = \"p2\"\ncron = \"0 4 * * *\"");
        write("a.toml", "pipeline = \"p1\"\ncron = \"0 3 * * *\"");
        write("notes.txt", "ignored");
        let all = load_schedules(dir.path()).unwrap();
        assert_eq!(
            all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        write(
            "c.toml",
            "name = \"a\"\npipeline = \"p3\"\ncron = \"0 5 * * *\"",
        );
        let e = load_schedules(dir.path()).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("already used"), "{e}");
        assert!(load_schedules(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../schedules/nightly.toml");
        let s = Schedule::from_toml_str(text, Path::new("schedules/nightly.toml")).unwrap();
        assert_eq!(s.name, "nightly");
        assert_eq!(s.pipeline, Path::new("pipelines/reactivation.toml"));
    }
}
