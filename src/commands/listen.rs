//! `winback listen`: the HTTP listener for one-click unsubscribes and provider event
//! webhooks ([`crate::listen`]), on its own or beside `winback serve` (a pipeline with
//! `[http] bind`).

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;

use crate::cli::ListenArgs;
use crate::config::{LoadOptions, Pipeline};
use crate::error::EXIT_OK;
use crate::listen::{ListenError, Listener};
use crate::pipeline::session;
use crate::schedule::Schedule;
use crate::state::State;

/// Where `winback listen` answers when neither `--bind` nor `[http] bind` says.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub async fn listen(args: ListenArgs) -> anyhow::Result<i32> {
    let load = LoadOptions {
        set: args.pipeline.overrides(),
        inputs: args.pipeline.inputs.clone(),
        output: None,
    };
    let pipeline = match session::load(&args.pipeline.pipeline, &load) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(e.exit_code());
        }
    };
    let bind = args
        .bind
        .clone()
        .or_else(|| pipeline.http.bind.clone())
        .unwrap_or_else(|| DEFAULT_BIND.to_string());
    let state = State::open(&args.state_dir)?;
    let listener = match Listener::new(&pipeline, state, &env) {
        Ok(l) => l,
        Err(e) => return Ok(refused(&e)),
    };
    let stop = super::signals::cancel_on_signals(
        "winback listen: stopping (requests in progress finish; a second signal stops at once)"
            .into(),
    );
    eprintln!(
        "winback listen: {} on http://{bind} (put a TLS proxy in front; Ctrl-C stops)",
        pipeline.name
    );
    match listener.serve(&bind, stop).await {
        Ok(()) => Ok(EXIT_OK),
        Err(e) => Ok(refused(&e)),
    }
}

/// Says why the listener cannot answer; the exit code (78: the configuration).
fn refused(e: &ListenError) -> i32 {
    use crate::error::Blamed;
    eprintln!("error: {e}");
    e.blame().exit_code()
}

/// The listeners `winback serve` starts: one per `[http] bind` among the schedules'
/// pipelines, each recording to `state`. Two pipelines cannot share an address.
pub fn listeners_for(
    schedules: &[Schedule],
    state: &State,
) -> Result<Vec<(String, Listener)>, String> {
    let mut by_bind: BTreeMap<String, (String, Pipeline)> = BTreeMap::new();
    for s in schedules {
        let load = LoadOptions {
            set: s.set.clone(),
            ..LoadOptions::default()
        };
        // A pipeline that does not load is the schedule's run to report, at its time.
        let Ok(pipeline) = session::load(&s.pipeline, &load) else {
            continue;
        };
        let Some(bind) = pipeline.http.bind.clone() else {
            continue;
        };
        match by_bind.get(&bind) {
            Some((other, p)) if p.file != pipeline.file || p.name != pipeline.name => {
                return Err(format!(
                    "schedules {other} and {} both ask for a listener on {bind} ([http] bind)",
                    s.name
                ));
            }
            Some(_) => {}
            None => {
                by_bind.insert(bind, (s.name.clone(), pipeline));
            }
        }
    }
    by_bind
        .into_iter()
        .map(|(bind, (schedule, pipeline))| {
            Listener::new(&pipeline, state.clone(), &env)
                .map(|l| (bind, l))
                .map_err(|e| format!("schedule {schedule}: the listener cannot start: {e}"))
        })
        .collect()
}

/// Start each listener on its own task until `stop` fires.
pub fn spawn(listeners: Vec<(String, Listener)>, stop: &CancellationToken) {
    for (bind, listener) in listeners {
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = listener.serve(&bind, stop).await {
                tracing::error!(error = %e, "the listener stopped");
            }
        });
    }
}
