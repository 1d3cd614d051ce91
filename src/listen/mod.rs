//! `winback listen`: the small HTTP listener that closes the loop. It sits behind the
//! user's TLS reverse proxy (README: nginx and Caddy) and records, in the state database,
//! what comes back from the people and providers winback sends to:
//! - `POST /u/{token}`: a one-click unsubscribe (RFC 8058), recorded at once, 200 with no
//!   redirect; `GET /u/{token}`: a page that confirms with a button (a GET never
//!   unsubscribes: mail scanners follow links). An unknown or forged token gets the same
//!   404 whoever it names.
//! - `POST /events/sendgrid`, `/events/mailgun`, `/events/twilio`: provider event
//!   webhooks, each verified by the provider's own signature ([`crate::feedback`]),
//!   recorded once however often they are repeated, and acted on
//!   ([`crate::state::provider_events`]).
//! - `GET /health`.
//!
//! Requests are size- and time-limited, and logged by route (`/u/{token}`, never the
//! token) without addresses. The next run's suppression reads everything recorded here.

mod events;
mod unsubscribe;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

use crate::clock::{Clock, SystemClock};
use crate::config::Pipeline;
use crate::state::State;
use crate::state::provider_events::SoftBouncePolicy;
use crate::unsubscribe_token::TokenKeys;

/// Everything the listener checks requests with, read once at start.
pub struct Listener {
    pub state: State,
    pub tokens: TokenKeys,
    pub sendgrid_key: Option<p256::ecdsa::VerifyingKey>,
    pub mailgun_key: Option<String>,
    pub twilio_token: Option<String>,
    /// Where the proxy serves the listener: Twilio signs the URL it called.
    pub public_url: Option<String>,
    pub soft_bounces: SoftBouncePolicy,
    pub max_event_age: Duration,
    pub max_body_bytes: usize,
    pub timeout: Duration,
    pub clock: Arc<dyn Clock>,
}

/// The listener cannot start: a key is missing or unreadable.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    State(#[from] crate::state::StateError),
}

impl crate::error::Blamed for ListenError {
    fn blame(&self) -> crate::error::Blame {
        match self {
            ListenError::Config(_) => crate::error::Blame::User,
            ListenError::Bind { .. } => crate::error::Blame::External,
            ListenError::State(e) => e.blame(),
        }
    }
}

fn secret(var: &Option<String>, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    var.as_deref()
        .and_then(env)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Listener {
    /// The listener of `pipeline`, with secrets read through `env`. A provider whose key
    /// variable is named but unset is an error (its events would all be refused); one not
    /// named has no endpoint (404).
    pub fn new(
        pipeline: &Pipeline,
        state: State,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Listener, ListenError> {
        let f = &pipeline.feedback;
        let reaching = pipeline
            .channels
            .values()
            .any(|c| !matches!(c.config, crate::channels::ChannelConfig::File(_)));
        let tokens = match TokenKeys::from_env(&pipeline.delivery.token_secret_envs, env) {
            Ok(keys) if keys.is_development() && reaching => {
                return Err(ListenError::Config(
                    "delivery.token_secret_env is not set: the listener cannot check the \
                     unsubscribe tokens of channels that reach people"
                        .into(),
                ));
            }
            Ok(keys) => keys,
            Err(e @ crate::unsubscribe_token::TokenKeyError::Unset { .. }) if !reaching => {
                tracing::warn!(error = %e, "accepting tokens signed with the public development secret (file channels only)");
                TokenKeys::development()
            }
            Err(e) => return Err(ListenError::Config(e.to_string())),
        };
        let named_but_unset = |key: &str, var: &Option<String>| match (var, secret(var, env)) {
            (Some(v), None) => Err(ListenError::Config(format!(
                "feedback.{key} names {v}, which is not set"
            ))),
            (_, s) => Ok(s),
        };
        let sendgrid_key = named_but_unset("sendgrid_public_key_env", &f.sendgrid_public_key_env)?
            .map(|k| crate::feedback::sendgrid::public_key(&k))
            .transpose()
            .map_err(|e| ListenError::Config(format!("feedback.sendgrid_public_key_env: {e}")))?;
        let twilio_token = named_but_unset("twilio_auth_token_env", &f.twilio_auth_token_env)?;
        if twilio_token.is_some() && pipeline.http.public_url.is_none() {
            return Err(ListenError::Config(
                "http.public_url is needed to check Twilio's signatures (Twilio signs the URL it calls)"
                    .into(),
            ));
        }
        Ok(Listener {
            state,
            tokens,
            sendgrid_key,
            mailgun_key: named_but_unset("mailgun_signing_key_env", &f.mailgun_signing_key_env)?,
            twilio_token,
            public_url: pipeline.http.public_url.clone(),
            soft_bounces: SoftBouncePolicy {
                limit: f.soft_bounce_limit,
                days: f.soft_bounce_days,
            },
            max_event_age: f.max_event_age,
            max_body_bytes: pipeline.http.max_body_bytes,
            timeout: pipeline.http.timeout,
            clock: Arc::new(SystemClock),
        })
    }

    /// The routes, limits and request log.
    pub fn router(self) -> Router {
        let body_limit = self.max_body_bytes;
        let timeout = self.timeout;
        let shared = Arc::new(self);
        Router::new()
            .route("/health", get(health))
            .route(
                "/u/{token}",
                get(unsubscribe::confirm_page).post(unsubscribe::one_click),
            )
            .route("/events/{provider}", post(events::receive))
            .with_state(shared)
            .layer(middleware::from_fn(log_request))
            .layer(DefaultBodyLimit::max(body_limit))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                timeout,
            ))
    }

    /// Serve on `bind` until `stop` fires.
    pub async fn serve(self, bind: &str, stop: CancellationToken) -> Result<(), ListenError> {
        let socket = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| ListenError::Bind {
                bind: bind.to_string(),
                source,
            })?;
        let local = socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(bind = %local, "winback listen: answering");
        axum::serve(socket, self.router())
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .map_err(|source| ListenError::Bind {
                bind: bind.to_string(),
                source,
            })
    }
}

async fn health() -> &'static str {
    "ok\n"
}

/// One line per request: method, route (the pattern, never the token), status, time.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_string(), |p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "listen: request"
    );
    response
}
