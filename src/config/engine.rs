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

/// The scheme of a location (`None`: a plain local path).
fn scheme(location: &str) -> Option<&str> {
    location.split_once("://").map(|(scheme, _)| scheme)
}

/// Problems of an engine with the locations its executors read and write (the sources, the
/// work tables, the outputs). Ballista's executors reach S3 (settings from the run, see
/// `engine::ballista`) and, in this process (`ballista-standalone`), local paths; a
/// remote cluster's executors reach only shared storage, so S3.
pub fn problems(
    engine: &Engine,
    work_location: Option<&str>,
    output: &str,
    sources: &[(&str, &str)],
) -> Vec<String> {
    let mut out = Vec::new();
    if !engine.is_ballista() {
        return out;
    }
    if !cfg!(feature = "ballista") {
        out.push(format!("engine = \"{engine}\": {NOT_BUILT}"));
    }
    let remote = engine.is_remote();
    let reachable = |location: &str| match scheme(location) {
        Some("s3") => true,
        Some("file") | None => !remote,
        Some(_) => false,
    };
    let wanted = if remote {
        "shared storage all of them reach: s3://... (e.g. \"s3://bucket/winback-work\")"
    } else {
        "a local path or s3://..."
    };
    let runs = if remote {
        "runs the SQL stages on other machines"
    } else {
        "runs the SQL stages in Ballista's executor"
    };
    match work_location {
        None if remote => out.push(format!(
            "engine = \"{engine}\" {runs}: set work_location to {wanted}"
        )),
        Some(w) if !reachable(w) => out.push(format!(
            "engine = \"{engine}\" {runs}: work_location '{w}' is not {wanted}"
        )),
        _ => {}
    }
    if !reachable(output) {
        out.push(format!(
            "engine = \"{engine}\" {runs}, which write the outputs: output '{output}' is not {wanted}"
        ));
    }
    for (name, url) in sources {
        if !reachable(url) {
            out.push(format!(
                "engine = \"{engine}\" {runs}, which read the sources: source '{name}' at '{url}' is not {wanted}"
            ));
        }
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
    fn a_remote_engine_needs_s3_for_work_output_and_sources() {
        let remote = Engine::parse("ballista://h:1").unwrap();
        let p = problems(
            &remote,
            Some("/tmp/work"),
            "out",
            &[("purchases", "gs://b/p")],
        );
        let has = |p: &[String], text: &str| p.iter().any(|m| m.contains(text));
        assert!(
            has(&p, "work_location '/tmp/work' is not shared storage"),
            "{p:?}"
        );
        assert!(has(&p, "output 'out' is not shared storage"), "{p:?}");
        assert!(has(&p, "source 'purchases' at 'gs://b/p'"), "{p:?}");
        assert!(has(
            &problems(&remote, None, "s3://b/o", &[]),
            "set work_location"
        ));
        let ok = problems(&remote, Some("s3://b/w"), "s3://b/o", &[("p", "s3://b/p")]);
        assert_eq!(ok.is_empty(), cfg!(feature = "ballista"), "{ok:?}");
        // Standalone runs in this process: local folders are fine, memory:// is not.
        let standalone = Engine::BallistaStandalone;
        let local = problems(
            &standalone,
            None,
            "out",
            &[("p", "file:///d"), ("q", "s3://b/q")],
        );
        assert_eq!(local.is_empty(), cfg!(feature = "ballista"), "{local:?}");
        let memory = problems(&standalone, None, "memory://x", &[]);
        assert!(
            has(&memory, "output 'memory://x' is not a local path or s3://"),
            "{memory:?}"
        );
        assert!(problems(&Engine::Local, Some("/tmp"), "memory://x", &[]).is_empty());
    }
}
