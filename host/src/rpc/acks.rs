//! Which acknowledgements a consumer sends, and when: one `basic.ack` with
//! `multiple` for a run of answered requests instead of one per request.
//!
//! Every acknowledgement is a frame the host writes and the broker's channel
//! process handles, and on a two-core machine the broker is the bottleneck
//! the host shares (issue 15; the measured effect is in
//! `docs/benchmarks.md`). A request may only be acknowledged once its reply
//! is on its way (ack after reply, so a host that dies in between leaves
//! the request to be redelivered), so a `multiple` acknowledgement must
//! never cover a request still running, one handed back with a `nack`, or
//! one abandoned by a panicking handler:
//!
//! - the answered requests at the front of the window (every request
//!   before them is settled) go in one `multiple` acknowledgement of the
//!   last of them;
//! - an answered request behind one still running is acknowledged alone at
//!   once, so a slow call never holds back the others' acknowledgements
//!   (and with them the prefetch window);
//! - once a request is abandoned it stays unacknowledged until the channel
//!   closes (the broker then redelivers it), and from then on every request
//!   on that channel is acknowledged alone, because a `multiple` one would
//!   cover it.
//!
//! The broker refuses (and closes the channel over) a `multiple`
//! acknowledgement whose own tag it no longer holds, so the tag sent is
//! always one not acknowledged before.

use std::collections::VecDeque;

/// Where one request taken from the broker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Its handler has not finished.
    Running,
    /// Answered, not yet acknowledged.
    Answered,
    /// Nothing more to send for it: acknowledged alone, or handed back.
    Settled,
}

/// An acknowledgement to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ack {
    /// The delivery tag.
    pub(crate) tag: u64,
    /// Whether it also acknowledges every earlier request on the channel.
    pub(crate) multiple: bool,
}

/// The requests one consumer has taken and not yet acknowledged, in
/// delivery order (see the module comment).
#[derive(Debug)]
pub(crate) struct AckWindow {
    open: VecDeque<(u64, State)>,
    /// False once a request was abandoned: no `multiple` from then on.
    in_order: bool,
}

impl Default for AckWindow {
    fn default() -> Self {
        Self {
            open: VecDeque::new(),
            in_order: true,
        }
    }
}

impl AckWindow {
    /// A request was delivered (tags rise on a channel).
    pub(crate) fn taken(&mut self, tag: u64) {
        debug_assert!(self.open.back().is_none_or(|(last, _)| *last < tag));
        self.open.push_back((tag, State::Running));
    }

    /// Its reply is out: acknowledge it.
    pub(crate) fn answered(&mut self, tag: u64) {
        self.set(tag, State::Answered);
    }

    /// It was handed back (`nack`): nothing more to send for it.
    pub(crate) fn handed_back(&mut self, tag: u64) {
        self.set(tag, State::Settled);
    }

    /// Its handler panicked: it stays unacknowledged until the channel
    /// closes, and no later acknowledgement may cover it.
    pub(crate) fn abandoned(&mut self, tag: u64) {
        if let Some(at) = self.find(tag) {
            self.open.remove(at);
        }
        self.in_order = false;
    }

    /// Requests taken and not yet acknowledged or handed back.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.len()
    }

    /// The acknowledgements due now, in the order to send them.
    pub(crate) fn due(&mut self, mut send: impl FnMut(Ack)) {
        let mut run: Option<(u64, usize)> = None;
        while let Some(&(tag, state)) = self.open.front() {
            if state == State::Running {
                break;
            }
            self.open.pop_front();
            if state == State::Answered {
                if self.in_order {
                    let answered = run.map_or(0, |(_, n)| n);
                    run = Some((tag, answered + 1));
                } else {
                    send(Ack {
                        tag,
                        multiple: false,
                    });
                }
            }
        }
        if let Some((tag, answered)) = run {
            send(Ack {
                tag,
                multiple: answered > 1,
            });
        }
        for (tag, state) in self.open.iter_mut() {
            if *state == State::Answered {
                *state = State::Settled;
                send(Ack {
                    tag: *tag,
                    multiple: false,
                });
            }
        }
    }

    fn set(&mut self, tag: u64, state: State) {
        if let Some(at) = self.find(tag) {
            self.open[at].1 = state;
        }
    }

    fn find(&self, tag: u64) -> Option<usize> {
        self.open.binary_search_by_key(&tag, |(t, _)| *t).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(window: &mut AckWindow) -> Vec<(u64, bool)> {
        let mut acks = Vec::new();
        window.due(|ack| acks.push((ack.tag, ack.multiple)));
        acks
    }

    fn window(tags: std::ops::RangeInclusive<u64>) -> AckWindow {
        let mut window = AckWindow::default();
        tags.for_each(|tag| window.taken(tag));
        window
    }

    #[test]
    fn a_run_answered_in_order_is_one_multiple_ack_of_its_last() {
        let mut w = window(1..=5);
        for tag in 1..=4 {
            w.answered(tag);
        }
        assert_eq!(due(&mut w), vec![(4, true)]);
        assert_eq!(w.len(), 1);
        w.answered(5);
        assert_eq!(due(&mut w), vec![(5, false)]);
        assert_eq!(w.len(), 0);
        assert_eq!(due(&mut w), vec![]);
    }

    #[test]
    fn nothing_running_is_ever_covered_and_a_slow_head_holds_nothing_back() {
        let mut w = window(1..=4);
        w.answered(2);
        w.answered(3);
        // 1 still runs: 2 and 3 go alone, and at once.
        assert_eq!(due(&mut w), vec![(2, false), (3, false)]);
        assert_eq!(due(&mut w), vec![], "each is sent once");
        w.answered(1);
        // 1 alone: 2 and 3 are no longer the broker's to acknowledge, and
        // a multiple ack of 3 would name a tag it no longer holds.
        assert_eq!(due(&mut w), vec![(1, false)]);
        w.answered(4);
        assert_eq!(due(&mut w), vec![(4, false)]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn a_handed_back_request_is_passed_over_but_never_acknowledged() {
        let mut w = window(1..=4);
        w.answered(1);
        w.handed_back(2);
        w.answered(3);
        // Its nack went out before: the multiple ack no longer finds it.
        assert_eq!(due(&mut w), vec![(3, true)]);
        w.handed_back(4);
        assert_eq!(due(&mut w), vec![]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn after_an_abandoned_request_every_ack_goes_alone() {
        let mut w = window(1..=5);
        w.abandoned(2);
        w.answered(1);
        w.answered(3);
        w.answered(4);
        assert_eq!(due(&mut w), vec![(1, false), (3, false), (4, false)]);
        w.taken(6);
        w.answered(6);
        w.answered(5);
        assert_eq!(due(&mut w), vec![(5, false), (6, false)]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn unknown_tags_change_nothing() {
        let mut w = window(3..=4);
        w.answered(9);
        w.handed_back(1);
        assert_eq!(due(&mut w), vec![]);
        assert_eq!(w.len(), 2);
    }
}
