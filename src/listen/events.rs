//! `/events/{provider}`: provider event webhooks. Each request is verified with the
//! provider's own signature before anything is read from it; a bad or stale signature
//! is refused (401 / 403) and records nothing; a verified batch is recorded in one
//! transaction, each event once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Listener;
use crate::feedback::{self, FeedbackError, FeedbackEvent};

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn verify(
    listener: &Listener,
    provider: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Result<Vec<FeedbackEvent>, FeedbackError>> {
    let now = listener.clock.now();
    let max_age = listener.max_event_age;
    Some(match provider {
        "sendgrid" => feedback::sendgrid::parse(
            listener.sendgrid_key.as_ref()?,
            header(headers, feedback::sendgrid::SIGNATURE_HEADER),
            header(headers, feedback::sendgrid::TIMESTAMP_HEADER),
            body,
            now,
            max_age,
        ),
        "mailgun" => feedback::mailgun::parse(listener.mailgun_key.as_deref()?, body, now, max_age),
        "twilio" => {
            // Twilio signs the URL it called: the public one, with any query string.
            let base = listener.public_url.as_deref()?;
            let url = match query {
                Some(q) => format!("{base}/events/twilio?{q}"),
                None => format!("{base}/events/twilio"),
            };
            feedback::twilio::parse(
                listener.twilio_token.as_deref()?,
                &url,
                &feedback::twilio::form_params(body),
                header(headers, feedback::twilio::SIGNATURE_HEADER),
                now,
            )
        }
        _ => return None,
    })
}

pub(super) async fn receive(
    State(listener): State<Arc<Listener>>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A provider without a configured key has no endpoint.
    let Some(verified) = verify(&listener, &provider, query.as_deref(), &headers, &body) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let events = match verified {
        Ok(events) => events,
        Err(e) => {
            let status = match e {
                FeedbackError::BadSignature => StatusCode::UNAUTHORIZED,
                FeedbackError::Stale => StatusCode::FORBIDDEN,
                FeedbackError::Malformed(_) => StatusCode::BAD_REQUEST,
            };
            tracing::warn!(provider, error = %e, "listen: provider events refused");
            return (status, format!("{e}\n")).into_response();
        }
    };
    let state = listener.state.clone();
    let policy = listener.soft_bounces;
    let n = events.len();
    let recorded =
        tokio::task::spawn_blocking(move || state.record_provider_events(&events, policy)).await;
    match recorded {
        Ok(Ok(r)) => {
            tracing::info!(
                provider,
                events = n,
                new = r.new,
                repeated = r.repeated,
                suppressed = r.suppressed,
                "listen: provider events recorded"
            );
            if provider == "twilio" {
                // Twilio's incoming-message webhook expects TwiML: an empty response
                // sends no reply (Twilio's own STOP handling answers the customer).
                return (
                    [(axum::http::header::CONTENT_TYPE, "text/xml")],
                    "<Response/>",
                )
                    .into_response();
            }
            (StatusCode::OK, "ok\n").into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(provider, error = %e, "listen: could not record provider events");
            // 5xx: the provider retries later.
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response()
        }
        Err(e) => {
            tracing::error!(provider, error = %e, "listen: recording provider events failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again\n").into_response()
        }
    }
}
