//! The policy behind `AgonesSDK.track_players()`: which value to add to or remove from an
//! Agones List when a multiplayer peer joins or leaves, and when to refuse new
//! connections because the List is full. Plain data: peer events and the sidecar's
//! answers come in, calls to make and the refusal switch come out; no I/O, no clock.
//!
//! The List's size is projected from the last answer the sidecar gave (every Add/Remove
//! answer carries the whole List) plus the calls still on the way. The calls reach the
//! sidecar in order through one queue, so an answer reflects every call made before it
//! and none made after; that is what makes the projection exact when nobody else writes
//! the List, and self-correcting (at the next answer) when someone does.

use std::collections::{BTreeMap, VecDeque};

use super::counts_lists::{ListState, Refusal};

/// What the driver does next, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterAction {
    /// Read the List (`get_list`), for its capacity.
    GetList,
    /// `add_list_value(list, value)` for the peer.
    Add {
        /// The multiplayer peer id.
        peer: i64,
        /// What goes into the List.
        value: String,
    },
    /// `remove_list_value(list, value)`.
    Remove {
        /// What leaves the List.
        value: String,
    },
    /// Set the multiplayer peer's `refuse_new_connections` to this.
    Refuse(bool),
    /// Say this in the log (a warning).
    Warn(String),
}

/// A call the roster made, handed back with its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterCall {
    /// A `GetList`.
    Get,
    /// An `Add` for `peer`.
    Add {
        /// The multiplayer peer id.
        peer: i64,
        /// The value sent.
        value: String,
    },
    /// A `Remove`.
    Remove {
        /// The value sent.
        value: String,
    },
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterAnswer {
    /// The sidecar answered with the List.
    List(ListState),
    /// The sidecar refused, with its sentence.
    Refused(Refusal, String),
    /// No answer (connection, timeout, cancelled), with the sentence.
    Failed(String),
}

/// Where one connected peer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seat {
    /// Its Add is on the way.
    Adding,
    /// Its value is in the List.
    Listed,
    /// Connected while the List was full; added when there is room.
    Waiting,
}

/// One tracked List and the peers behind its values.
#[derive(Clone, Debug)]
pub struct PlayerRoster {
    list: String,
    /// The capacity as last read; `None` until the first answer.
    capacity: Option<i64>,
    /// Values in the List at the last answer.
    listed: i64,
    adds_in_flight: i64,
    removes_in_flight: i64,
    seats: BTreeMap<i64, (String, Seat)>,
    waiting: VecDeque<i64>,
    refusing: bool,
    /// The "List does not exist" warning was given (once is enough).
    missing_warned: bool,
}

impl PlayerRoster {
    /// Starts tracking `list`; the first action reads it.
    pub fn new(list: &str) -> (PlayerRoster, Vec<RosterAction>) {
        let roster = PlayerRoster {
            list: list.to_string(),
            capacity: None,
            listed: 0,
            adds_in_flight: 0,
            removes_in_flight: 0,
            seats: BTreeMap::new(),
            waiting: VecDeque::new(),
            refusing: false,
            missing_warned: false,
        };
        (roster, vec![RosterAction::GetList])
    }

    /// The List's name.
    pub fn list(&self) -> &str {
        &self.list
    }

    /// Whether new connections are being refused.
    pub fn refusing(&self) -> bool {
        self.refusing
    }

    /// The capacity as last read from the sidecar.
    pub fn capacity(&self) -> Option<i64> {
        self.capacity
    }

    /// Peers whose value is in the List, or on its way there.
    pub fn tracked(&self) -> usize {
        self.seats
            .values()
            .filter(|(_, s)| *s != Seat::Waiting)
            .count()
    }

    /// Peers connected while the List was full, not in it.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The List's size once every call on the way is answered.
    fn projected(&self) -> i64 {
        self.listed + self.adds_in_flight - self.removes_in_flight
    }

    fn has_room(&self) -> bool {
        self.capacity.is_none_or(|c| self.projected() < c)
    }

    /// A peer connected (after authentication, if any); `value` is what stands for it in
    /// the List.
    pub fn connected(&mut self, peer: i64, value: String) -> Vec<RosterAction> {
        let mut out = Vec::new();
        if self.seats.contains_key(&peer) {
            return out;
        }
        if value.is_empty() {
            out.push(RosterAction::Warn(format!(
                "track_players: peer {peer} maps to an empty value; it is not added to the List '{}'",
                self.list
            )));
            return out;
        }
        if let Some((other, _)) = self.seats.iter().find(|(_, (v, _))| *v == value) {
            out.push(RosterAction::Warn(format!(
                "track_players: peer {peer} maps to '{value}', which peer {other} already holds in the List '{}'; it is not added twice",
                self.list
            )));
            return out;
        }
        if self.has_room() && self.waiting.is_empty() {
            self.seats.insert(peer, (value.clone(), Seat::Adding));
            self.adds_in_flight += 1;
            out.push(RosterAction::Add { peer, value });
        } else {
            self.seats.insert(peer, (value, Seat::Waiting));
            self.waiting.push_back(peer);
        }
        self.settle(&mut out);
        out
    }

    /// A peer left, was kicked, or timed out.
    pub fn disconnected(&mut self, peer: i64) -> Vec<RosterAction> {
        let mut out = Vec::new();
        match self.seats.remove(&peer) {
            None => return out,
            Some((_, Seat::Waiting)) => self.waiting.retain(|p| *p != peer),
            Some((value, Seat::Adding | Seat::Listed)) => {
                // An Add still on the way reaches the sidecar first: calls keep their order.
                self.removes_in_flight += 1;
                out.push(RosterAction::Remove { value });
            }
        }
        self.settle(&mut out);
        out
    }

    /// An answer to one of the roster's calls.
    pub fn answered(&mut self, call: &RosterCall, answer: RosterAnswer) -> Vec<RosterAction> {
        let mut out = Vec::new();
        match call {
            RosterCall::Get => match answer {
                RosterAnswer::List(state) => self.note(&state),
                RosterAnswer::Refused(_, why) | RosterAnswer::Failed(why) => {
                    self.warn_missing_or(&mut out, why);
                }
            },
            RosterCall::Add { peer, value } => {
                self.adds_in_flight -= 1;
                let ours = self
                    .seats
                    .get(peer)
                    .is_some_and(|(v, s)| v == value && *s == Seat::Adding);
                match answer {
                    RosterAnswer::List(state) => {
                        self.note(&state);
                        if ours {
                            self.seat(*peer, Seat::Listed);
                        }
                    }
                    // A resent Add whose first copy got through.
                    RosterAnswer::Refused(Refusal::AlreadyExists, _) if ours => {
                        self.seat(*peer, Seat::Listed);
                    }
                    RosterAnswer::Refused(Refusal::OutOfRange, _) => {
                        // Full sooner than projected: someone else added values, or the
                        // capacity went down. Wait for room, and read the List again.
                        if ours {
                            self.seat(*peer, Seat::Waiting);
                            self.waiting.push_back(*peer);
                        }
                        let projected = self.projected();
                        self.capacity = Some(self.capacity.map_or(projected, |c| c.min(projected)));
                        out.push(RosterAction::GetList);
                    }
                    RosterAnswer::Refused(_, why) | RosterAnswer::Failed(why) => {
                        if ours {
                            self.seats.remove(peer);
                        }
                        self.warn_missing_or(
                            &mut out,
                            format!("track_players: peer {peer} is not in the List: {why}"),
                        );
                    }
                }
            }
            RosterCall::Remove { value } => {
                self.removes_in_flight -= 1;
                match answer {
                    RosterAnswer::List(state) => self.note(&state),
                    // Already gone (a resent Remove, or someone else removed it).
                    RosterAnswer::Refused(Refusal::NoSuchValue, _) => {}
                    RosterAnswer::Refused(_, why) | RosterAnswer::Failed(why) => {
                        self.warn_missing_or(
                            &mut out,
                            format!("track_players: '{value}' may still be in the List: {why}"),
                        );
                    }
                }
            }
        }
        self.settle(&mut out);
        out
    }

    /// The List as the sidecar just reported it to one of the game's own calls on it.
    pub fn observe(&mut self, state: &ListState) -> Vec<RosterAction> {
        let mut out = Vec::new();
        self.note(state);
        self.settle(&mut out);
        out
    }

    fn note(&mut self, state: &ListState) {
        if state.name == self.list {
            self.capacity = Some(state.capacity);
            self.listed = state.values.len() as i64;
        }
    }

    fn seat(&mut self, peer: i64, to: Seat) {
        if let Some((_, seat)) = self.seats.get_mut(&peer) {
            *seat = to;
        }
    }

    fn warn_missing_or(&mut self, out: &mut Vec<RosterAction>, why: String) {
        let missing = why.contains("does not exist");
        if missing && self.missing_warned {
            return;
        }
        self.missing_warned |= missing;
        out.push(RosterAction::Warn(why));
    }

    /// Adds waiting peers while there is room, then flips the refusal if it changed.
    fn settle(&mut self, out: &mut Vec<RosterAction>) {
        while self.has_room() {
            let Some(peer) = self.waiting.pop_front() else {
                break;
            };
            if let Some((value, seat)) = self.seats.get_mut(&peer) {
                *seat = Seat::Adding;
                self.adds_in_flight += 1;
                out.push(RosterAction::Add {
                    peer,
                    value: value.clone(),
                });
            }
        }
        let full = self
            .capacity
            .is_some_and(|c| self.projected() + self.waiting.len() as i64 >= c);
        if full != self.refusing {
            self.refusing = full;
            out.push(RosterAction::Refuse(full));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(capacity: i64, values: &[&str]) -> RosterAnswer {
        RosterAnswer::List(ListState {
            name: "players".into(),
            capacity,
            values: values.iter().map(|v| v.to_string()).collect(),
        })
    }

    /// A roster whose first read found the List empty with `capacity`.
    fn known(capacity: i64) -> PlayerRoster {
        let (mut r, _) = PlayerRoster::new("players");
        assert!(r.answered(&RosterCall::Get, list(capacity, &[])).is_empty());
        r
    }

    fn add(peer: i64) -> RosterAction {
        RosterAction::Add {
            peer,
            value: peer.to_string(),
        }
    }

    fn add_call(peer: i64) -> RosterCall {
        RosterCall::Add {
            peer,
            value: peer.to_string(),
        }
    }

    fn remove(peer: i64) -> RosterAction {
        RosterAction::Remove {
            value: peer.to_string(),
        }
    }

    #[test]
    fn joins_and_leaves_become_adds_and_removes() {
        let (mut r, first) = PlayerRoster::new("players");
        assert_eq!(first, vec![RosterAction::GetList]);
        assert!(r.answered(&RosterCall::Get, list(4, &[])).is_empty());
        assert_eq!(r.connected(2, "2".into()), vec![add(2)]);
        assert!(r.answered(&add_call(2), list(4, &["2"])).is_empty());
        // A second connected signal for the same peer changes nothing.
        assert!(r.connected(2, "2".into()).is_empty());
        assert_eq!(r.disconnected(2), vec![remove(2)]);
        assert!(r.disconnected(2).is_empty());
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn a_peer_leaving_before_its_add_is_answered_is_removed_after_it() {
        let mut r = known(1);
        assert_eq!(
            r.connected(3, "3".into()),
            vec![add(3), RosterAction::Refuse(true)]
        );
        // The Remove goes out behind the Add (one ordered queue), so it finds the value.
        assert_eq!(
            r.disconnected(3),
            vec![remove(3), RosterAction::Refuse(false)]
        );
        assert!(r.answered(&add_call(3), list(1, &["3"])).is_empty());
        assert!(
            r.answered(&RosterCall::Remove { value: "3".into() }, list(1, &[]))
                .is_empty()
        );
        assert_eq!((r.tracked(), r.waiting(), r.refusing()), (0, 0, false));
        assert_eq!(
            r.connected(4, "4".into()),
            vec![add(4), RosterAction::Refuse(true)]
        );
    }

    #[test]
    fn a_full_list_refuses_until_a_player_leaves() {
        let mut r = known(2);
        assert_eq!(r.connected(10, "10".into()), vec![add(10)]);
        // The second join fills it: refused at once, before the sidecar answers.
        assert_eq!(
            r.connected(11, "11".into()),
            vec![add(11), RosterAction::Refuse(true)]
        );
        assert!(r.refusing());
        r.answered(&add_call(10), list(2, &["10"]));
        r.answered(&add_call(11), list(2, &["10", "11"]));
        assert!(r.refusing());
        assert_eq!(
            r.disconnected(10),
            vec![remove(10), RosterAction::Refuse(false)]
        );
        assert!(
            r.answered(&RosterCall::Remove { value: "10".into() }, list(2, &["11"]))
                .is_empty()
        );
    }

    #[test]
    fn a_peer_that_slips_in_while_full_waits_for_room() {
        let mut r = known(1);
        assert_eq!(
            r.connected(5, "5".into()),
            vec![add(5), RosterAction::Refuse(true)]
        );
        // Connected before the refusal took effect: not added, but kept waiting.
        assert!(r.connected(6, "6".into()).is_empty());
        assert_eq!(r.waiting(), 1);
        r.answered(&add_call(5), list(1, &["5"]));
        // Peer 5 leaves: peer 6 takes its place, still full, still refusing.
        assert_eq!(r.disconnected(5), vec![remove(5), add(6)]);
        assert!(r.refusing());
        assert_eq!(r.waiting(), 0);
    }

    #[test]
    fn someone_else_filling_the_list_is_noticed_from_the_refusal() {
        let (mut r, _) = PlayerRoster::new("players");
        r.answered(&RosterCall::Get, list(3, &["a"]));
        assert_eq!(r.connected(7, "7".into()), vec![add(7)]);
        let actions = r.answered(
            &add_call(7),
            RosterAnswer::Refused(Refusal::OutOfRange, "full".into()),
        );
        assert_eq!(
            actions,
            vec![RosterAction::GetList, RosterAction::Refuse(true)]
        );
        assert_eq!(r.waiting(), 1);
        // The re-read shows room again (the other writer removed its values).
        let actions = r.answered(&RosterCall::Get, list(3, &[]));
        assert_eq!(actions, vec![add(7), RosterAction::Refuse(false)]);
    }

    #[test]
    fn the_capacity_going_down_refuses_and_up_lets_in() {
        let mut r = known(3);
        r.connected(1, "1".into());
        r.answered(&add_call(1), list(3, &["1"]));
        let state = |capacity: i64, values: &[&str]| ListState {
            name: "players".into(),
            capacity,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        // The game lowered the capacity with update_list().
        assert_eq!(
            r.observe(&state(1, &["1"])),
            vec![RosterAction::Refuse(true)]
        );
        assert!(r.disconnected(99).is_empty()); // not a tracked peer
        assert!(r.connected(2, "2".into()).is_empty());
        assert_eq!(r.waiting(), 1);
        // Another List's answer says nothing about this one.
        let mut other = state(100, &[]);
        other.name = "other".into();
        assert!(r.observe(&other).is_empty());
        assert_eq!(r.capacity(), Some(1));
        // Raised again: the waiting peer is added and connections are welcome.
        assert_eq!(
            r.observe(&state(3, &["1"])),
            vec![add(2), RosterAction::Refuse(false)]
        );
    }

    #[test]
    fn odd_values_and_failures_are_said() {
        let (mut r, _) = PlayerRoster::new("players");
        assert!(matches!(
            r.connected(1, String::new()).as_slice(),
            [RosterAction::Warn(w)] if w.contains("empty value")
        ));
        r.connected(2, "acct".into());
        assert!(matches!(
            r.connected(3, "acct".into()).as_slice(),
            [RosterAction::Warn(w)] if w.contains("already holds")
        ));
        // Peer 3 was never added, so its leaving removes nothing.
        assert!(r.disconnected(3).is_empty());
        let missing = RosterAnswer::Refused(
            Refusal::NoSuchSubject,
            "the List 'players' does not exist".into(),
        );
        let call = RosterCall::Add {
            peer: 2,
            value: "acct".into(),
        };
        assert!(matches!(
            r.answered(&call, missing.clone()).as_slice(),
            [RosterAction::Warn(_)]
        ));
        r.connected(4, "x".into());
        let call = RosterCall::Add {
            peer: 4,
            value: "x".into(),
        };
        // Said once, not once per player.
        assert!(r.answered(&call, missing).is_empty());
        assert_eq!(r.tracked(), 0);
        // A resent Add that had got through counts as added.
        r.connected(5, "5".into());
        r.answered(
            &add_call(5),
            RosterAnswer::Refused(Refusal::AlreadyExists, "dup".into()),
        );
        assert_eq!(r.tracked(), 1);
        assert_eq!(r.disconnected(5), vec![remove(5)]);
    }
}
