//! A route queue the broker will not let this host declare: what differs
//! and how to fix it.
//!
//! Every host declares a route's shared queue, and RabbitMQ refuses a
//! declaration whose attributes differ from the existing queue's with a
//! channel error (406 PRECONDITION_FAILED, "inequivalent arg 'durable' for
//! queue ... received 'true' but current is 'false'"). That happens when
//! hosts disagree on `[rabbitmq] route_queues`, or during an upgrade from
//! plughost versions that declared transient route queues. The broker's
//! text names the argument; this module turns it into a message that says
//! which argument differs, the queue's value against this host's, and the
//! two ways out: delete the queue, or declare what the others declare.

use plughost_client::RouteQueueKind;

/// This host's declaration of a route queue was refused because the
/// queue exists with other attributes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "route queue `{queue}` exists with {argument} = {theirs}, but this host declares it with \
     {argument} = {ours} ([rabbitmq] route_queues = \"{kind}\"), so the broker refuses it (406 PRECONDITION_FAILED). \
     Fix: {fix}"
)]
pub(crate) struct RouteQueueMismatch {
    /// The queue's name.
    pub queue: String,
    /// The argument that differs (`durable`, `x-queue-type`, `x-expires`, ...).
    pub argument: String,
    /// The existing queue's value (`absent` when it has none).
    pub theirs: String,
    /// This host's value (`absent` when it sends none).
    pub ours: String,
    /// How this host declares route queues.
    pub kind: RouteQueueKind,
    /// What to do about it.
    pub fix: String,
}

impl RouteQueueMismatch {
    /// Reads the broker's 406 text; `None` when it is not an
    /// "inequivalent arg" refusal (another 406 keeps the broker's words).
    pub fn from_broker(queue: &str, kind: RouteQueueKind, reason: &str) -> Option<Self> {
        let rest = reason.split_once("inequivalent arg '")?.1;
        let (argument, rest) = rest.split_once('\'')?;
        let rest = rest.split_once(": received ")?.1;
        let (ours, theirs) = rest.split_once(" but current is ")?;
        let (theirs, ours) = (value(theirs), value(ours));
        let fix = fix(queue, argument, &theirs, kind);
        Some(Self {
            queue: queue.to_owned(),
            argument: argument.to_owned(),
            theirs,
            ours,
            kind,
            fix,
        })
    }
}

/// A value as RabbitMQ writes it (`'true'`, `the value 'quorum' of type
/// 'longstr'`, `none`), as the manifest's reader would write it.
fn value(text: &str) -> String {
    let text = text.trim();
    if text == "none" {
        return "absent".to_owned();
    }
    let quoted = text.strip_prefix("the value ").unwrap_or(text);
    match quoted.strip_prefix('\'').and_then(|q| q.split_once('\'')) {
        Some((inner, _)) => inner.to_owned(),
        None => quoted.to_owned(),
    }
}

/// The setting that would declare the queue as it is, when one does.
fn matching_kind(argument: &str, theirs: &str) -> Option<RouteQueueKind> {
    match (argument, theirs) {
        ("durable", "false") => Some(RouteQueueKind::Transient),
        ("x-queue-type", "quorum") => Some(RouteQueueKind::Quorum),
        ("x-queue-type", "absent" | "classic") => Some(RouteQueueKind::Classic),
        _ => None,
    }
}

fn fix(queue: &str, argument: &str, theirs: &str, kind: RouteQueueKind) -> String {
    let delete = format!(
        "delete the queue (`rabbitmqctl delete_queue {queue}`; calls waiting in it are lost) \
         once every host declares route_queues = \"{kind}\", and the next declaration makes it anew"
    );
    match matching_kind(argument, theirs) {
        Some(other) if other != kind => format!(
            "either {delete}, or set [rabbitmq] route_queues = \"{other}\" on this host to \
             declare it as the other hosts do"
        ),
        _ => format!(
            "{delete}; hosts of one deployment must agree on route_queues (durable=true with \
             x-queue-type=quorum is \"quorum\", durable=true without it \"classic\")"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "plughost.rpc_exchange.route.math.fibo";

    #[test]
    fn a_transient_queue_from_older_hosts_names_durable_and_both_fixes() {
        let reason = "PRECONDITION_FAILED - inequivalent arg 'durable' for queue \
             'plughost.rpc_exchange.route.math.fibo' in vhost '/': received 'true' but current is 'false'";
        let m = RouteQueueMismatch::from_broker(Q, RouteQueueKind::Classic, reason).unwrap();
        assert_eq!(
            (m.argument.as_str(), m.theirs.as_str(), m.ours.as_str()),
            ("durable", "false", "true")
        );
        let text = m.to_string();
        assert!(
            text.contains("exists with durable = false")
                && text.contains("declares it with durable = true")
                && text.contains(&format!("rabbitmqctl delete_queue {Q}"))
                && text.contains("route_queues = \"transient\""),
            "{text}"
        );
    }

    #[test]
    fn a_quorum_queue_met_by_a_classic_host_names_the_queue_type() {
        let reason = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in \
             vhost '/': received none but current is the value 'quorum' of type 'longstr'";
        let m = RouteQueueMismatch::from_broker(Q, RouteQueueKind::Classic, reason).unwrap();
        assert_eq!((m.theirs.as_str(), m.ours.as_str()), ("quorum", "absent"));
        assert!(m.fix.contains("route_queues = \"quorum\""), "{}", m.fix);

        let reason = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in \
             vhost '/': received the value 'quorum' of type 'longstr' but current is none";
        let m = RouteQueueMismatch::from_broker(Q, RouteQueueKind::Quorum, reason).unwrap();
        assert_eq!((m.theirs.as_str(), m.ours.as_str()), ("absent", "quorum"));
        assert!(m.fix.contains("route_queues = \"classic\""), "{}", m.fix);
    }

    #[test]
    fn an_argument_no_setting_matches_only_offers_the_delete() {
        let reason = "PRECONDITION_FAILED - inequivalent arg 'x-expires' for queue 'q' in vhost \
             '/': received the value '600000' of type 'long' but current is the value '1000' of type 'long'";
        let m = RouteQueueMismatch::from_broker(Q, RouteQueueKind::Classic, reason).unwrap();
        assert_eq!((m.theirs.as_str(), m.ours.as_str()), ("1000", "600000"));
        assert!(m.fix.contains("delete_queue") && !m.fix.contains("either"));
        assert!(RouteQueueMismatch::from_broker(
            Q,
            RouteQueueKind::Classic,
            "RESOURCE_LOCKED - cannot obtain exclusive access"
        )
        .is_none());
    }
}
