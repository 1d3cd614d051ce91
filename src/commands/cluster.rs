//! `winback cluster scheduler|executor`: Ballista's scheduler and executor with winback's
//! SQL functions (`key_hash`, `gap_stats`, `money_sum`) and S3 from each query's `s3.*`
//! settings, which the stock Ballista binaries cannot run. Stages of
//! `engine = "ballista://HOST:PORT"` runs execute there; the models, campaigns and
//! deliveries stay with the run.

use crate::cli::ClusterCommand;

/// Runs on the query runtime (large stacks for Ballista's recursive plan decoding).
#[cfg(feature = "ballista")]
pub async fn cluster(command: ClusterCommand) -> anyhow::Result<i32> {
    let task = crate::engine::query_runtime().spawn(async move {
        match command {
            ClusterCommand::Scheduler(args) => serve::scheduler(args).await,
            ClusterCommand::Executor(args) => serve::executor(args).await,
        }
    });
    task.await?
}

#[cfg(not(feature = "ballista"))]
pub async fn cluster(_: ClusterCommand) -> anyhow::Result<i32> {
    Err(crate::error::ConfigError::Many(vec![format!(
        "winback cluster: {}",
        crate::config::engine::NOT_BUILT
    )])
    .into())
}

#[cfg(feature = "ballista")]
mod serve {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use anyhow::Context;
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    use ballista_scheduler::scheduler_process::start_server;

    use crate::cli::{ExecutorArgs, SchedulerArgs};
    use crate::engine::ballista::{
        cluster_config, executor_runtime, function_registry, scheduler_state,
    };
    use crate::error::EXIT_OK;

    /// Runs until stopped.
    pub async fn scheduler(args: SchedulerArgs) -> anyhow::Result<i32> {
        let addr: SocketAddr = format!("{}:{}", args.bind_host, args.bind_port)
            .parse()
            .with_context(|| format!("--bind-host {} is no IP address", args.bind_host))?;
        let config = SchedulerConfig {
            bind_host: args.bind_host.clone(),
            bind_port: args.bind_port,
            external_host: args.external_host.clone(),
            override_config_producer: Some(Arc::new(cluster_config)),
            override_session_builder: Some(Arc::new(scheduler_state)),
            ..Default::default()
        };
        let cluster = BallistaCluster::new_from_config(&config).await?;
        tracing::info!(%addr, "winback's Ballista scheduler");
        start_server(cluster, addr, Arc::new(config)).await?;
        Ok(EXIT_OK)
    }

    /// Runs until stopped (SIGTERM, Ctrl-C) or the scheduler asks it to stop.
    pub async fn executor(args: ExecutorArgs) -> anyhow::Result<i32> {
        let (host, port) = args
            .scheduler
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .with_context(|| format!("--scheduler {} is not HOST:PORT", args.scheduler))?;
        let vcores = args
            .concurrent_tasks
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let config = ExecutorProcessConfig {
            bind_host: args.bind_host.clone(),
            external_host: args.external_host.clone(),
            port: args.bind_port,
            grpc_port: args.bind_grpc_port,
            scheduler_host: host,
            scheduler_port: port,
            scheduler_connect_timeout_seconds: args.scheduler_connect_timeout_seconds,
            vcores,
            work_dir: args.work_dir.clone(),
            override_function_registry: Some(Arc::new(function_registry())),
            override_config_producer: Some(Arc::new(cluster_config)),
            override_runtime_producer: Some(Arc::new(executor_runtime)),
            ..Default::default()
        };
        tracing::info!(scheduler = %args.scheduler, port = args.bind_port, vcores, "winback's Ballista executor");
        start_executor_process(Arc::new(config)).await?;
        Ok(EXIT_OK)
    }
}
