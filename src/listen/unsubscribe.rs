//! `/u/{token}`: the one-click unsubscribe of RFC 8058 (a POST, answered 200 with no
//! redirect) and, for people who click the link, a page that asks before it acts (a GET
//! never unsubscribes: mail scanners follow links).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::Listener;
use crate::message::Medium;
use crate::state::suppressions::{Suppression, UNSUBSCRIBED};
use crate::unsubscribe_token::TokenClaims;

/// Who recorded a one-click unsubscribe (`suppressions.source`).
pub const SOURCE: &str = "one_click";

/// The same answer for every token that does not verify, whoever it names: nothing
/// tells whether a customer exists.
fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn medium_words(medium: Medium) -> &'static str {
    match medium {
        Medium::Email => "e-mails",
        Medium::Sms => "text messages",
        Medium::Call => "phone calls",
    }
}

pub(super) async fn confirm_page(
    State(listener): State<Arc<Listener>>,
    Path(token): Path<String>,
) -> Response {
    let Some(claims) = listener.tokens.verify(&token) else {
        return not_found();
    };
    let what = medium_words(claims.medium);
    // The form posts back to this same URL with the RFC 8058 body.
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>Unsubscribe</title></head>\
         <body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">\
         <h1>Unsubscribe</h1><p>Stop receiving these {what}?</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form></body></html>"
    ))
    .into_response()
}

pub(super) async fn one_click(
    State(listener): State<Arc<Listener>>,
    Path(token): Path<String>,
) -> Response {
    let Some(claims) = listener.tokens.verify(&token) else {
        return not_found();
    };
    let what = medium_words(claims.medium);
    match record(&listener, claims).await {
        Ok(()) => (
            StatusCode::OK,
            Html(format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>Unsubscribed</title></head><body style=\"font-family:sans-serif;\
                 max-width:32em;margin:3em auto\"><h1>Unsubscribed</h1>\
                 <p>You will receive no more of these {what}.</p></body></html>"
            )),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "listen: could not record an unsubscribe");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "could not record the unsubscribe; please try again\n",
            )
                .into_response()
        }
    }
}

async fn record(listener: &Arc<Listener>, claims: TokenClaims) -> Result<(), String> {
    let suppression = Suppression {
        customer_id: Some(claims.customer_id),
        medium: Some(claims.medium),
        address: None,
        reason: UNSUBSCRIBED.to_string(),
        source: SOURCE.to_string(),
        campaign: Some(claims.campaign),
        at: listener.clock.now(),
    };
    let state = listener.state.clone();
    tokio::task::spawn_blocking(move || state.record_suppression(&suppression))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(())
}
