//! The path every HTTP provider shares, written once: group the batch into requests, build
//! each request, execute it, classify the answer ([`classify`]), and turn it into one
//! outcome per recipient, splitting a batch the provider refused for one recipient. A
//! provider ([`Api`]) only says how its requests look and what its answers mean.

use futures::future::BoxFuture;

use super::channel::{Channel, RequestPreview};
use super::classify::{self, Policy, Verdict};
use super::http::{self, Endpoint, PreparedRequest, Response};
use super::lookup::{Settlement, Unsettled};
use super::outcome::{ChannelError, Outcome, Sent};
use super::settings::ChannelSettings;
use super::split::{SubResult, send_split};
use crate::message::Message;

/// What a provider's refusal (a 4xx other than 401, 403 and 429) means.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// One outcome per recipient of the request (a one-recipient API says what it was).
    Settled(Vec<Outcome>),
    /// The refusal concerns recipients: `named` (positions in the request) are rejected
    /// and the others sent again; with none named and `split`, the request is halved until
    /// the culprit is alone; otherwise every recipient is rejected with `reason`.
    Recipients {
        named: Vec<(usize, String)>,
        reason: String,
        split: bool,
    },
    /// The provider refused the sender's own configuration (`setting`): the channel stops,
    /// no recipient is rejected.
    Sender { setting: String, reason: String },
}

/// One HTTP provider.
pub trait Api: Send + Sync + 'static {
    fn settings(&self) -> &ChannelSettings;
    fn endpoint(&self) -> &Endpoint;
    /// What the API guarantees about repeated requests.
    fn policy(&self) -> Policy {
        Policy::NO_IDEMPOTENCY
    }
    /// The recipients of `batch`, grouped one request each.
    fn requests(&self, batch: &[Message]) -> Vec<Vec<usize>>;
    fn prepare(&self, sub: &[&Message]) -> PreparedRequest;
    /// The outcomes of an accepted (2xx) request.
    fn accepted(&self, resp: &Response, sub: &[&Message]) -> Vec<Outcome>;
    fn refused(&self, resp: &Response, sub: &[&Message]) -> Refusal;
    /// Asks the provider what it accepted of `sends`; one settlement each, in order.
    fn lookup<'a>(
        &'a self,
        sends: &'a [Unsettled],
    ) -> BoxFuture<'a, Result<Vec<Settlement>, ChannelError>> {
        Box::pin(async move {
            Ok(vec![
                Settlement::open(
                    "this channel cannot look its messages up"
                );
                sends.len()
            ])
        })
    }
}

/// A [`Channel`] made of an [`Api`].
pub struct HttpChannel<A: Api> {
    pub api: A,
}

impl<A: Api> HttpChannel<A> {
    pub fn new(api: A) -> HttpChannel<A> {
        HttpChannel { api }
    }

    /// One request for `sub`, classified.
    async fn attempt(&self, sub: Vec<&Message>) -> Result<SubResult, ChannelError> {
        let api = &self.api;
        let policy = api.policy();
        let all = |o: Outcome| Ok(SubResult::Settled(vec![o; sub.len()]));
        let resp = match http::execute(&api.endpoint().client, &api.prepare(&sub)).await {
            Ok(r) => r,
            Err(t) => {
                return match classify::transport(&t, policy) {
                    Verdict::NotProcessed(reason) => all(Outcome::retriable(reason, None)),
                    Verdict::MaybeProcessed(reason) => all(Outcome::unknown(reason)),
                    other => unreachable!("a transport failure is never {other:?}"),
                };
            }
        };
        let name = &api.settings().name;
        match classify::status(resp.status, &resp.headers, policy) {
            Verdict::Accepted => Ok(SubResult::Settled(api.accepted(&resp, &sub))),
            Verdict::RateLimited => Err(ChannelError::RateLimited {
                channel: name.clone(),
                retry_after: super::retry::retry_after(&resp.headers, chrono::Utc::now()),
            }),
            Verdict::Credentials => Err(ChannelError::Auth {
                channel: name.clone(),
                env_var: api.endpoint().credentials_env.clone(),
                status: resp.status,
            }),
            Verdict::NotProcessed(reason) => {
                let wait = super::retry::retry_after(&resp.headers, chrono::Utc::now());
                all(Outcome::retriable(
                    format!("{reason}: {}", http::excerpt(&resp.body, &sub)),
                    wait,
                ))
            }
            Verdict::MaybeProcessed(reason) => all(Outcome::unknown(reason)),
            Verdict::Refused => match api.refused(&resp, &sub) {
                Refusal::Settled(v) => Ok(SubResult::Settled(v)),
                Refusal::Recipients {
                    named,
                    reason,
                    split,
                } => Ok(SubResult::Refused {
                    named,
                    reason,
                    split,
                }),
                Refusal::Sender { setting, reason } => Err(ChannelError::Sender {
                    channel: name.clone(),
                    setting,
                    reason,
                }),
            },
        }
    }
}

impl<A: Api> Channel for HttpChannel<A> {
    fn settings(&self) -> &ChannelSettings {
        self.api.settings()
    }

    fn send<'a>(&'a self, batch: &'a [Message]) -> BoxFuture<'a, Sent> {
        Box::pin(send_split(batch, self.api.requests(batch), move |sub| {
            Box::pin(self.attempt(sub))
        }))
    }

    fn preview(&self, batch: &[Message]) -> Vec<RequestPreview> {
        self.api
            .requests(batch)
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(|g| {
                let sub: Vec<&Message> = g.iter().map(|&i| &batch[i]).collect();
                self.api
                    .prepare(&sub)
                    .preview(&self.api.settings().name, &sub)
            })
            .collect()
    }

    fn lookup<'a>(
        &'a self,
        sends: &'a [Unsettled],
    ) -> BoxFuture<'a, Result<Vec<Settlement>, ChannelError>> {
        self.api.lookup(sends)
    }
}

/// The recipients of a batch one request each (one-recipient APIs: Twilio).
pub fn one_each(batch: &[Message]) -> Vec<Vec<usize>> {
    (0..batch.len()).map(|i| vec![i]).collect()
}
