//! `engine` in the pipeline file (or `--engine`): where the SQL stages run. `local` (the
//! default) is DataFusion in this process; `ballista-standalone` is Apache DataFusion
//! Ballista with a scheduler and an executor inside this process; `ballista://HOST:PORT`
//! is a running Ballista cluster (`winback cluster scheduler|executor`).

use std::fmt;

/// Where SQL stages run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    #[default]
    Local,
    BallistaStandalone,
    BallistaRemote {
        host: String,
        port: u16,
    },
}

/// Ballista's scheduler port when `ballista://HOST` gives none.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

impl Engine {
    pub fn parse(text: &str) -> Result<Engine, String> {
        let bad = || {
            format!(
                "unknown engine '{text}' (expected local, ballista-standalone or ballista://HOST:PORT)"
            )
        };
        match text {
            "local" => Ok(Engine::Local),
            "ballista-standalone" => Ok(Engine::BallistaStandalone),
            _ => {
                let rest = text.strip_prefix("ballista://").ok_or_else(bad)?;
                let rest = rest.trim_end_matches('/');
                let (host, port) = match rest.rsplit_once(':') {
                    Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
                    None => (rest, DEFAULT_SCHEDULER_PORT),
                };
                if host.is_empty() || host.contains('/') {
                    return Err(bad());
                }
                Ok(Engine::BallistaRemote {
                    host: host.to_string(),
                    port,
                })
            }
        }
    }

    pub fn is_ballista(&self) -> bool {
        !matches!(self, Engine::Local)
    }

    /// Stages run in other processes, perhaps on other machines.
    pub fn is_remote(&self) -> bool {
        matches!(self, Engine::BallistaRemote { .. })
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Local => write!(f, "local"),
            Engine::BallistaStandalone => write!(f, "ballista-standalone"),
            Engine::BallistaRemote { host, port } => write!(f, "ballista://{host}:{port}"),
        }
    }
}

/// The message for a Ballista engine in a build without the `ballista` feature.
pub const NOT_BUILT: &str =
    "this winback was built without the ballista feature; build with --features ballista";

/// A location every machine of a cluster can reach: object storage, not a local folder
/// (nor this process's `memory://`).
fn shared(location: &str) -> bool {
    match location.split_once("://") {
        Some((scheme, _)) => !matches!(scheme, "file" | "memory"),
        None => false,
    }
}

/// Problems of an engine with the locations it writes: a remote cluster's executors write
/// the work tables and the outputs, so both must be shared storage.
pub fn problems(engine: &Engine, work_location: Option<&str>, output: &str) -> Vec<String> {
    let mut out = Vec::new();
    if engine.is_ballista() && !cfg!(feature = "ballista") {
        out.push(format!("engine = \"{engine}\": {NOT_BUILT}"));
    }
    if !engine.is_remote() {
        return out;
    }
    match work_location {
        None => out.push(format!(
            "engine = \"{engine}\" runs the SQL stages on other machines: set work_location to shared storage they all reach (e.g. \"s3://bucket/winback-work\")"
        )),
        Some(w) if !shared(w) => out.push(format!(
            "engine = \"{engine}\" runs the SQL stages on other machines: work_location '{w}' is a local folder; use shared storage they all reach (e.g. \"s3://bucket/winback-work\")"
        )),
        Some(_) => {}
    }
    if !shared(output) {
        out.push(format!(
            "engine = \"{engine}\" runs the SQL stages on other machines, which write the outputs: output '{output}' is a local folder; use shared storage (e.g. \"s3://bucket/marts\")"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_and_print_back() {
        for text in [
            "local",
            "ballista-standalone",
            "ballista://sched.internal:50051",
        ] {
            assert_eq!(Engine::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Engine::parse("ballista://h").unwrap(),
            Engine::BallistaRemote {
                host: "h".into(),
                port: DEFAULT_SCHEDULER_PORT
            }
        );
        for bad in [
            "spark",
            "ballista://",
            "ballista://h:port",
            "ballista://h:1/x",
        ] {
            assert!(Engine::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_remote_engine_needs_shared_work_and_output_locations() {
        let remote = Engine::parse("ballista://h:1").unwrap();
        let p = problems(&remote, Some("/tmp/work"), "out");
        assert!(
            p.iter()
                .any(|m| m.contains("work_location '/tmp/work' is a local folder")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.contains("output 'out'")), "{p:?}");
        assert!(
            problems(&remote, None, "s3://b/o")
                .iter()
                .any(|m| m.contains("set work_location")),
        );
        let ok = problems(&remote, Some("s3://b/w"), "s3://b/o");
        assert_eq!(ok.is_empty(), cfg!(feature = "ballista"), "{ok:?}");
        // Standalone runs in this process: local folders are fine.
        let standalone = problems(&Engine::BallistaStandalone, None, "out");
        assert_eq!(standalone.is_empty(), cfg!(feature = "ballista"));
        assert!(problems(&Engine::Local, Some("/tmp"), "out").is_empty());
    }
}
