//! Batch APIs (SendGrid, Mailgun) refuse a whole request for one bad address. This splits:
//! the recipients the provider names are rejected and the rest re-sent; when it names none,
//! the batch is halved until the culprit is alone (about log2(1000) = 10 extra requests).

use futures::future::BoxFuture;

use super::{ChannelError, Outcome};
use crate::campaign::message::Message;

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
/// An `Err` (429, 401/403) is returned as such while nothing has been delivered, so the caller
/// pauses or stops and retries the whole batch; once something has been delivered, the
/// recipients not yet settled become retriable instead, so nothing delivered is sent again.
pub async fn send_split<'a, F>(
    batch: &'a [Message],
    groups: Vec<Vec<usize>>,
    mut send: F,
) -> Result<Vec<Outcome>, ChannelError>
where
    F: FnMut(Vec<&'a Message>) -> BoxFuture<'a, Result<SubResult, ChannelError>>,
{
    let mut out: Vec<Option<Outcome>> = vec![None; batch.len()];
    let mut stack: Vec<Vec<usize>> = groups.into_iter().rev().collect();
    while let Some(idx) = stack.pop() {
        if idx.is_empty() {
            continue;
        }
        let sub: Vec<&Message> = idx.iter().map(|&i| &batch[i]).collect();
        match send(sub).await {
            Err(e) => {
                let delivered = out
                    .iter()
                    .any(|o| matches!(o, Some(Outcome::Delivered { .. })));
                if !delivered {
                    return Err(e);
                }
                let retry_after = match &e {
                    ChannelError::RateLimited { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let reason = e.to_string();
                for i in idx.into_iter().chain(stack.drain(..).flatten()) {
                    out[i] = Some(Outcome::retriable(reason.clone(), retry_after));
                }
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
    Ok(out
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::retriable("not attempted", None)))
        .collect())
}

/// Splits `batch` so no address appears twice in one request (batch APIs key per-recipient
/// data by address), each group keeping the batch order.
pub fn unique_address_groups(batch: &[Message]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(std::collections::HashSet<&str>, Vec<usize>)> = Vec::new();
    for (i, m) in batch.iter().enumerate() {
        let key = m.to.as_str();
        match groups.iter_mut().find(|(seen, _)| !seen.contains(key)) {
            Some((seen, idx)) => {
                seen.insert(key);
                idx.push(i);
            }
            None => groups.push(([key].into_iter().collect(), vec![i])),
        }
    }
    groups.into_iter().map(|(_, idx)| idx).collect()
}
