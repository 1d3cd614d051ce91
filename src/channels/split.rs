//! Batch APIs (SendGrid, Mailgun) refuse a whole request for one bad address. This splits:
//! the recipients the provider names are rejected and the rest re-sent; when it names none,
//! the batch is halved until the culprit is alone (about log2(1000) = 10 extra requests).

use futures::future::BoxFuture;

use super::outcome::{ChannelError, Outcome, Sent};
use crate::message::Message;

/// The answer to one (sub-)request.
pub enum SubResult {
    /// One outcome per recipient of the sub-request, in order.
    Settled(Vec<Outcome>),
    /// A permanent refusal of the whole request; `named` are the positions (within the
    /// sub-request) of recipients the provider blamed, with its reason for each.
    Refused {
        named: Vec<(usize, String)>,
        reason: String,
        /// Whether the refusal is about some recipient (so halving can find it) rather than
        /// the request as a whole (sender, content: then every recipient is rejected).
        split: bool,
    },
}

/// Sends `batch` in the sub-requests `groups` (indices into `batch`), splitting refused ones.
///
/// An `Err` from a sub-request (429, 401/403, the sender's configuration refused) halts the
/// batch: the recipients not yet settled are `Retriable` (no request of theirs went out)
/// and the error comes back beside the outcomes the earlier sub-requests earned, so a
/// delivered or possibly-delivered recipient keeps its outcome whatever the caller does
/// about the error.
pub async fn send_split<'a, F>(batch: &'a [Message], groups: Vec<Vec<usize>>, mut send: F) -> Sent
where
    F: FnMut(Vec<&'a Message>) -> BoxFuture<'a, Result<SubResult, ChannelError>>,
{
    let mut out: Vec<Option<Outcome>> = vec![None; batch.len()];
    let mut stack: Vec<Vec<usize>> = groups.into_iter().rev().collect();
    let mut halt = None;
    while let Some(idx) = stack.pop() {
        if idx.is_empty() {
            continue;
        }
        let sub: Vec<&Message> = idx.iter().map(|&i| &batch[i]).collect();
        match send(sub).await {
            Err(e) => {
                halt = Some(e);
                break;
            }
            Ok(SubResult::Settled(v)) => {
                for (&i, o) in idx.iter().zip(v) {
                    out[i] = Some(o);
                }
            }
            Ok(SubResult::Refused {
                named,
                reason,
                split,
            }) => {
                let named: Vec<(usize, String)> =
                    named.into_iter().filter(|(j, _)| *j < idx.len()).collect();
                if !named.is_empty() {
                    let mut rest = idx.clone();
                    for (j, why) in named {
                        out[idx[j]] = Some(Outcome::rejected(why));
                        rest.retain(|&i| i != idx[j]);
                    }
                    stack.push(rest);
                } else if split && idx.len() > 1 {
                    let (a, b) = idx.split_at(idx.len() / 2);
                    stack.push(b.to_vec());
                    stack.push(a.to_vec());
                } else {
                    for i in idx {
                        out[i] = Some(Outcome::rejected(reason.clone()));
                    }
                }
            }
        }
    }
    let (reason, wait) = match &halt {
        Some(e) => (e.to_string(), e.retry_after()),
        None => ("not attempted".to_string(), None),
    };
    Sent {
        outcomes: out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::retriable(reason.clone(), wait)))
            .collect(),
        halt,
    }
}

/// Splits the recipients `idx` of `batch` so no address appears twice in one request (batch
/// APIs key per-recipient data by address, and SendGrid refuses a request that repeats
/// one), each group keeping the batch order. Returns indices into `batch`.
pub fn unique_address_groups(batch: &[Message], idx: &[usize]) -> Vec<Vec<usize>> {
    // Case-insensitively: SendGrid compares addresses so.
    let mut groups: Vec<(std::collections::HashSet<String>, Vec<usize>)> = Vec::new();
    for &i in idx {
        let key = batch[i].to.to_ascii_lowercase();
        match groups.iter_mut().find(|(seen, _)| !seen.contains(&key)) {
            Some((seen, members)) => {
                seen.insert(key);
                members.push(i);
            }
            None => groups.push(([key].into_iter().collect(), vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Every recipient of `batch`, in order.
pub fn all(batch: &[Message]) -> Vec<usize> {
    (0..batch.len()).collect()
}
