//! The uplink's bookkeeping, without I/O: the in-flight window, PUBACK matching and the two
//! lanes (reconnect backoff is `hub_core::Backoff`).
//!
//! rumqttc does not tell which packet id a publish got. It does yield one
//! `Outgoing::Publish(pkid)` event per publish request, in the order the requests were queued,
//! so [`Window`] keeps the requests it queued in a FIFO and pairs each such event with the
//! oldest one. A PUBACK then names its request by packet id. A window lives for one connection
//! only: on any connection error it is thrown away (stale rumqttc events cannot reach a new
//! one), and the next connection starts over from the oldest undelivered outbox row.

use hub_contract::Lane;
use std::collections::{HashMap, VecDeque};

/// What a queued publish was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// An outbox row; delivered when acknowledged.
    Event { seq: i64, lane: Lane },
    /// A marker sent in place of an outbox row too large to send.
    Withheld { seq: i64, reason: String },
    /// Status or heartbeat; nothing to record when acknowledged.
    Control,
    /// A stored reply to a station command; delivered when acknowledged.
    Reply { reply_id: i64 },
}

impl Tag {
    /// Whether it takes a slot of the event window (replies and control messages do not).
    fn is_event(&self) -> bool {
        matches!(self, Tag::Event { .. } | Tag::Withheld { .. })
    }
}

/// The event stream and the window disagree: the connection must be dropped and restarted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("rumqttc reported a publish (packet id {pkid}) that the uplink never queued")]
    UnexpectedPublish { pkid: u16 },
    #[error("packet id {pkid} was reused while still awaiting its acknowledgement")]
    PacketIdReused { pkid: u16 },
}

/// In-flight window and lane cursors for one connection.
#[derive(Debug)]
pub struct Window {
    capacity: usize,
    queued: VecDeque<Tag>,
    awaiting_ack: HashMap<u16, Tag>,
    events_outstanding: usize,
    /// Rows with `seq <= live_from` are backlog; later ones are live.
    live_from: i64,
    backlog_cursor: i64,
    live_cursor: i64,
}

impl Window {
    /// A window for a new connection. `first_undelivered` is the oldest row waiting (if any),
    /// `last_seq` the newest row written so far.
    pub fn new(capacity: usize, first_undelivered: Option<i64>, last_seq: i64) -> Window {
        let backlog_cursor = first_undelivered.map_or(last_seq, |f| f - 1);
        Window {
            capacity: capacity.max(1),
            queued: VecDeque::new(),
            awaiting_ack: HashMap::new(),
            events_outstanding: 0,
            live_from: last_seq,
            backlog_cursor,
            live_cursor: last_seq,
        }
    }

    /// Events that may still be published before the window is full.
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.events_outstanding)
    }

    /// Publishes not yet acknowledged (events and control messages).
    pub fn in_flight(&self) -> usize {
        self.queued.len() + self.awaiting_ack.len()
    }

    /// Whether catch-up rows may remain.
    pub fn backlog_active(&self) -> bool {
        self.backlog_cursor < self.live_from
    }

    /// The range of backlog rows to read next: `(after, up_to)`.
    pub fn backlog_range(&self) -> (i64, i64) {
        (self.backlog_cursor, self.live_from)
    }

    /// Where live rows start: read rows with `seq > live_cursor`.
    pub fn live_cursor(&self) -> i64 {
        self.live_cursor
    }

    /// How to split `free` slots between lanes, given how many live rows wait. Live rows go
    /// first, but while a backlog remains a quarter of the window is kept for it, so neither
    /// lane starves the other.
    pub fn budget(&self, live_waiting: usize) -> (usize, usize) {
        let free = self.free();
        if !self.backlog_active() {
            return (live_waiting.min(free), 0);
        }
        let reserve = (self.capacity / 4).max(1).min(free);
        let live = live_waiting.min(free - reserve).min(free);
        // A trickle of live rows must never wait behind a full backlog window.
        let live = if live == 0 && live_waiting > 0 && free > 0 {
            1
        } else {
            live
        };
        (live, free - live)
    }

    /// The backlog lane read rows up to `last_read`; `exhausted` when it found fewer than
    /// asked (nothing more to catch up).
    pub fn backlog_read(&mut self, last_read: Option<i64>, exhausted: bool) {
        if let Some(seq) = last_read {
            self.backlog_cursor = self.backlog_cursor.max(seq);
        }
        if exhausted {
            self.backlog_cursor = self.live_from;
        }
    }

    /// The live lane read rows up to `seq`.
    pub fn live_read(&mut self, seq: i64) {
        self.live_cursor = self.live_cursor.max(seq);
    }

    /// Rows from `from_seq` on must be read again (central asked for a resend).
    pub fn rewind(&mut self, from_seq: i64) {
        let to = from_seq - 1;
        self.backlog_cursor = self.backlog_cursor.min(to);
        if to < self.live_cursor {
            self.live_cursor = to.max(self.live_from);
        }
    }

    /// A publish request was handed to rumqttc.
    pub fn queued(&mut self, tag: Tag) {
        if tag.is_event() {
            self.events_outstanding += 1;
        }
        self.queued.push_back(tag);
    }

    /// rumqttc sent the oldest queued request with packet id `pkid` (0 for QoS 0).
    pub fn sent(&mut self, pkid: u16) -> Result<(), WindowError> {
        let tag = self
            .queued
            .pop_front()
            .ok_or(WindowError::UnexpectedPublish { pkid })?;
        if pkid == 0 {
            self.settle(&tag);
            return Ok(());
        }
        if self.awaiting_ack.insert(pkid, tag).is_some() {
            return Err(WindowError::PacketIdReused { pkid });
        }
        Ok(())
    }

    /// The broker acknowledged packet id `pkid`; returns what it was for. An acknowledgement
    /// for an unknown id (none of this connection's) returns `None` and changes nothing.
    pub fn acked(&mut self, pkid: u16) -> Option<Tag> {
        let tag = self.awaiting_ack.remove(&pkid)?;
        self.settle(&tag);
        Some(tag)
    }

    fn settle(&mut self, tag: &Tag) {
        if tag.is_event() {
            self.events_outstanding = self.events_outstanding.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64) -> Tag {
        Tag::Event {
            seq,
            lane: Lane::Backlog,
        }
    }

    #[test]
    fn acks_are_matched_by_packet_id_in_queue_order() {
        let mut w = Window::new(3, Some(1), 10);
        w.queued(ev(1));
        w.queued(Tag::Control);
        w.queued(ev(2));
        assert_eq!(w.free(), 1);
        w.sent(1).unwrap();
        w.sent(0).unwrap(); // QoS 0 heartbeat: settled at once
        w.sent(2).unwrap();
        assert_eq!(w.acked(2), Some(ev(2)));
        assert_eq!(w.acked(2), None, "a second ack for the same id is ignored");
        assert_eq!(w.acked(1), Some(ev(1)));
        assert_eq!(w.free(), 3);
        assert_eq!(w.in_flight(), 0);
    }

    #[test]
    fn replies_share_the_connection_but_not_the_event_window() {
        let mut w = Window::new(2, None, 0);
        w.queued(ev(1));
        w.queued(Tag::Reply { reply_id: 7 });
        w.queued(ev(2));
        assert_eq!(w.free(), 0, "two events fill a window of two");
        w.sent(1).unwrap();
        w.sent(2).unwrap();
        w.sent(3).unwrap();
        assert_eq!(w.acked(2), Some(Tag::Reply { reply_id: 7 }));
        assert_eq!(w.free(), 0, "a reply's ack frees no event slot");
        assert_eq!(w.acked(3), Some(ev(2)));
        assert_eq!(w.free(), 1);
    }

    #[test]
    fn events_the_window_never_queued_are_errors() {
        let mut w = Window::new(3, None, 0);
        assert_eq!(w.sent(4), Err(WindowError::UnexpectedPublish { pkid: 4 }));
        w.queued(ev(1));
        w.queued(ev(2));
        w.sent(1).unwrap();
        assert_eq!(w.sent(1), Err(WindowError::PacketIdReused { pkid: 1 }));
    }

    #[test]
    fn live_rows_get_slots_while_a_backlog_drains() {
        let w = Window::new(100, Some(1), 50_000);
        assert!(w.backlog_active());
        assert_eq!(w.backlog_range(), (0, 50_000));
        assert_eq!(w.budget(0), (0, 100));
        assert_eq!(w.budget(5), (5, 95));
        assert_eq!(w.budget(500), (75, 25));
        let mut full = Window::new(4, Some(1), 10);
        for s in 1..=4 {
            full.queued(ev(s));
        }
        assert_eq!(full.budget(3), (0, 0));
    }

    #[test]
    fn the_backlog_ends_where_live_rows_begin_and_rewinds_on_request() {
        let mut w = Window::new(10, Some(5), 20);
        w.backlog_read(Some(14), false);
        assert_eq!(w.backlog_range(), (14, 20));
        w.backlog_read(Some(20), true);
        assert!(!w.backlog_active());
        assert_eq!(w.budget(3), (3, 0));
        w.live_read(25);
        w.rewind(8);
        assert_eq!(w.backlog_range(), (7, 20));
        assert_eq!(w.live_cursor(), 20);
        w.rewind(23);
        assert_eq!(w.live_cursor(), 20);
    }
}
