//! One reliable link to one peer: renet for acknowledgements, retransmission and ordering,
//! netkit's framing on top, and the bounds around both. No I/O and no clock: datagrams and
//! the time come in, datagrams and messages go out, so it is tested without sockets.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use renet::RenetClient;

use super::bundle;
use super::control::Control;
use super::framing::{MAX_UNRELIABLE_PACKET, Reassembly, StreamReader, fragments, newer, put_len};
use super::layout::{
    CHUNK, CONTROL_RELIABLE, CONTROL_UNRELIABLE, Lane, Layout, TransferMode, WINDOW,
};
use super::wire_check::{self, Kind};

/// Limits and timings shared by every link of an endpoint.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Custom channels besides channel 0.
    pub channel_count: usize,
    /// Largest packet accepted for sending and receiving, in bytes.
    pub max_message_size: usize,
    /// Reliable bytes per peer that may wait for sending or acknowledgement; more ends the
    /// link rather than grow or drop.
    pub send_buffer: usize,
    /// A link with reliable data in flight and no delivery progress for this long ends.
    pub ack_timeout: Duration,
    /// How long renet waits for an acknowledgement before sending a message again.
    pub resend_interval: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            channel_count: 4,
            max_message_size: 1 << 20,
            send_buffer: 4 << 20,
            ack_timeout: Duration::from_secs(10),
            resend_interval: Duration::from_millis(100),
        }
    }
}

/// Something the peer sent, ready for the endpoint.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Control(Control),
    Data {
        channel: usize,
        mode: TransferMode,
        data: Vec<u8>,
    },
}

/// How much more the endpoint's per-peer queue to the main thread may take now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Room {
    pub bytes: usize,
    pub packets: usize,
}

impl Room {
    fn has_space(&self) -> bool {
        self.bytes > 0 && self.packets > 0
    }

    fn take(&mut self, len: usize) {
        self.bytes = self.bytes.saturating_sub(len);
        self.packets = self.packets.saturating_sub(1);
    }
}

/// A few figures for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkStats {
    /// Smoothed round-trip time in seconds, from netkit's own pings (see `PING_INTERVAL`);
    /// renet's estimate until the first pong.
    pub rtt: f64,
    /// Fraction of recent packets not acknowledged (renet's estimate), 0 to 1.
    pub packet_loss: f64,
    /// Reliable bytes waiting to be sent or acknowledged.
    pub queued_reliable_bytes: usize,
}

/// Silence on the unreliable control channel after which delivery feedback is repeated
/// while datagrams keep arriving (a lost feedback would otherwise stall a full window).
const FEEDBACK_REPEAT: Duration = Duration::from_millis(100);
/// Acknowledgement-only datagrams go out at once when reliable messages arrived, and
/// otherwise at most this often (or inside a bundle with other packets): that stops two
/// idle renet peers from acknowledging each other's acknowledgements every flush, and
/// unreliable messages (delivery feedback, pings, unreliable game data) are never resent,
/// so their acknowledgements only feed renet's loss estimate, which ignores the last
/// 600 ms anyway.
const ACK_ONLY_INTERVAL: Duration = Duration::from_millis(250);
/// Each side pings this often and measures the round trip from the pong. renet's own
/// estimate times the acknowledgements of every packet, including acknowledgement-only
/// ones, which are answered only every `ACK_ONLY_INTERVAL` when nothing else flows, so on
/// a quiet link it reads up to that much too high. ENet pings every 500 ms as well.
const PING_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) struct Link {
    layout: Layout,
    config: LinkConfig,
    renet: RenetClient,
    now: Duration,
    /// Reliable stream bytes not yet handed to renet, per renet channel.
    pending: Vec<VecDeque<u8>>,
    pending_bytes: usize,
    /// renet messages handed to renet, per renet channel.
    sent: Vec<u64>,
    /// renet messages the peer reports handed on, per renet channel.
    peer_delivered: Vec<u64>,
    /// renet messages handed on by this side, per renet channel.
    delivered: Vec<u64>,
    readers: Vec<StreamReader>,
    reassembly: Vec<Reassembly>,
    unreliable_sequence: Vec<u32>,
    feedback_due: bool,
    last_feedback: Duration,
    last_received: Duration,
    last_ack_only: Duration,
    answer_now: bool,
    stalled_since: Option<Duration>,
    last_ping: Option<Duration>,
    /// When the datagram being read arrived (pongs are timed by it, not by the last flush).
    received_at: Duration,
    /// Smoothed round trip from pongs, seconds (RFC 6298 section 2's SRTT, alpha 1/8).
    srtt: Option<f64>,
    /// The newest ping from the peer not yet answered: one pong per flush answers it, so a
    /// peer that floods pings gets one small datagram's worth back, not one pong each.
    pong_due: Option<u32>,
    /// Clocks of this side's recent pings not yet answered, oldest first: only a pong
    /// carrying one of them is a sample (a forged, garbled or duplicated pong is not).
    pings_out: VecDeque<u32>,
}

/// Pings remembered for their pongs: 16 s of them, beyond any `ack_timeout` a link lives.
const PINGS_REMEMBERED: usize = 32;

impl Link {
    pub fn new(config: LinkConfig) -> Self {
        let layout = Layout::new(config.channel_count);
        let n = layout.renet_channels();
        let renet_config = layout.connection_config(
            config.resend_interval,
            (MAX_UNRELIABLE_PACKET * 2).max(config.max_message_size.min(4 << 20)),
        );
        let mut renet = RenetClient::new(renet_config);
        renet.set_connected();
        Self {
            layout,
            config,
            renet,
            now: Duration::ZERO,
            pending: (0..n).map(|_| VecDeque::new()).collect(),
            pending_bytes: 0,
            sent: vec![0; n],
            peer_delivered: vec![0; n],
            delivered: vec![0; n],
            readers: (0..n).map(|_| StreamReader::default()).collect(),
            reassembly: (0..n).map(|_| Reassembly::default()).collect(),
            unreliable_sequence: vec![0; n],
            feedback_due: false,
            last_feedback: Duration::ZERO,
            last_received: Duration::ZERO,
            last_ack_only: Duration::ZERO,
            answer_now: false,
            stalled_since: None,
            last_ping: None,
            received_at: Duration::ZERO,
            srtt: None,
            pong_due: None,
            pings_out: VecDeque::with_capacity(PINGS_REMEMBERED),
        }
    }

    /// Queues a reliable control message.
    pub fn send_control(&mut self, control: &Control) {
        self.pending[CONTROL_RELIABLE as usize].extend(control_frame(control));
    }

    /// Queues one Godot packet. Errors are sentences; a reliable packet that does not fit
    /// the send buffer is an error the endpoint turns into a disconnect (the peer is not
    /// keeping up), never a silent drop.
    pub fn queue(
        &mut self,
        channel: usize,
        mode: TransferMode,
        data: &[u8],
    ) -> Result<(), QueueError> {
        if channel >= self.layout.godot_channels {
            return Err(QueueError::BadChannel);
        }
        let lane = self.layout.lane_id(channel, mode) as usize;
        match mode {
            TransferMode::Reliable => {
                if data.len() > self.config.max_message_size {
                    return Err(QueueError::TooLarge);
                }
                if self.queued_reliable_bytes() + data.len() > self.config.send_buffer {
                    return Err(QueueError::BufferFull(self.config.send_buffer));
                }
                let before = self.pending[lane].len();
                put_len(&mut self.pending[lane], data.len());
                self.pending[lane].extend(data);
                self.pending_bytes += self.pending[lane].len() - before;
            }
            TransferMode::Unreliable | TransferMode::UnreliableOrdered => {
                if data.len() > MAX_UNRELIABLE_PACKET.min(self.config.max_message_size) {
                    return Err(QueueError::TooLarge);
                }
                let sequence = self.unreliable_sequence[lane];
                self.unreliable_sequence[lane] = sequence.wrapping_add(1);
                for fragment in fragments(sequence, data) {
                    // renet drops unreliable messages beyond the channel's memory limit.
                    self.renet.send_message(lane as u8, fragment);
                }
            }
        }
        Ok(())
    }

    /// Takes one datagram from the peer and hands on what it completed, as far as `room`
    /// allows (reliable data beyond it stays in renet, inside the window, until the next
    /// `pull`). An error ends the link; its text is the reason.
    pub fn receive(
        &mut self,
        now: Duration,
        datagram: &[u8],
        room: &mut Room,
        out: &mut Vec<Incoming>,
    ) -> Result<(), String> {
        let packets =
            bundle::unpack(datagram).map_err(|e| format!("protocol violation by the peer: {e}"))?;
        self.last_received = self.now;
        self.received_at = now;
        for packet in packets {
            let kind = wire_check::check(packet, self.layout, &self.delivered)
                .map_err(|e| format!("protocol violation by the peer: {e}"))?;
            if kind == Kind::Reliable {
                self.answer_now = true;
            }
            let renet = &mut self.renet;
            catch_unwind(AssertUnwindSafe(|| renet.process_packet(packet)))
                .map_err(|_| "protocol violation by the peer (rejected by renet)".to_string())?;
            self.check_renet()?;
            self.pull(room, out)?;
        }
        Ok(())
    }

    /// Hands on messages renet holds, as far as `room` allows.
    pub fn pull(&mut self, room: &mut Room, out: &mut Vec<Incoming>) -> Result<(), String> {
        for id in 0..self.layout.renet_channels() as u8 {
            let lane = self.layout.lane(id).expect("in range");
            let reliable = self.layout.is_reliable(id);
            loop {
                if reliable && id != CONTROL_RELIABLE && !room.has_space() {
                    break;
                }
                let Some(message) = self.renet.receive_message(id) else {
                    break;
                };
                if reliable {
                    self.delivered[id as usize] += 1;
                    self.feedback_due = true;
                }
                self.hand_on(id, lane, &message, room, out)?;
            }
        }
        Ok(())
    }

    fn hand_on(
        &mut self,
        id: u8,
        lane: Lane,
        message: &[u8],
        room: &mut Room,
        out: &mut Vec<Incoming>,
    ) -> Result<(), String> {
        let i = id as usize;
        match lane {
            Lane::ControlReliable => {
                for frame in self.readers[i].push(message, CHUNK)? {
                    out.push(Incoming::Control(Control::decode(&frame)?));
                }
            }
            Lane::ControlUnreliable => match Control::decode(message)? {
                Control::Delivered(counts) => self.apply_feedback(&counts),
                Control::Ping(t) => {
                    // Answered by the flush that follows this datagram, once for the
                    // newest ping (a message, not an acknowledgement-only packet, so it
                    // never waits).
                    self.pong_due = Some(t);
                }
                Control::Pong(t) => self.take_rtt_sample(t),
                _ => {}
            },
            Lane::Data {
                channel,
                mode: TransferMode::Reliable,
            } => {
                for data in self.readers[i].push(message, self.config.max_message_size)? {
                    room.take(data.len());
                    out.push(Incoming::Data {
                        channel,
                        mode: TransferMode::Reliable,
                        data,
                    });
                }
            }
            Lane::Data { channel, mode } => {
                let Some((sequence, data)) = self.reassembly[i].push(message)? else {
                    return Ok(());
                };
                if data.len() > self.config.max_message_size || !room.has_space() {
                    return Ok(()); // unreliable: dropping is allowed
                }
                if mode == TransferMode::UnreliableOrdered {
                    let last = &mut self.reassembly[i].last_delivered;
                    if last.is_some_and(|l| !newer(sequence, l)) {
                        return Ok(());
                    }
                    *last = Some(sequence);
                }
                room.take(data.len());
                out.push(Incoming::Data {
                    channel,
                    mode,
                    data,
                });
            }
        }
        Ok(())
    }

    fn apply_feedback(&mut self, counts: &[(u8, u64)]) {
        let mut progress = false;
        for &(id, count) in counts {
            let i = id as usize;
            if !self.layout.is_reliable(id) {
                continue;
            }
            // A count above what was sent is a lie; it cannot open the window further.
            let count = count.min(self.sent[i]);
            if count > self.peer_delivered[i] {
                self.peer_delivered[i] = count;
                progress = true;
            }
        }
        if progress {
            self.stalled_since = None;
        }
    }

    /// Advances time to `now` and returns the datagrams to send. An error ends the link.
    pub fn flush(&mut self, now: Duration) -> Result<Vec<Vec<u8>>, String> {
        let elapsed = now.saturating_sub(self.now);
        self.now = now;
        let renet = &mut self.renet;
        catch_unwind(AssertUnwindSafe(|| renet.update(elapsed)))
            .map_err(|_| "internal error in the reliability layer".to_string())?;
        self.move_pending_into_window();
        self.send_feedback();
        self.send_ping();
        if let Some(t) = self.pong_due.take() {
            self.renet
                .send_message(CONTROL_UNRELIABLE, Control::Pong(t).encode());
        }
        self.check_stall()?;
        let renet = &mut self.renet;
        let packets = catch_unwind(AssertUnwindSafe(|| renet.get_packets_to_send()))
            .map_err(|_| "internal error in the reliability layer".to_string())?;
        self.check_renet()?;
        let answer_now = std::mem::take(&mut self.answer_now);
        let packets = packets
            .into_iter()
            .filter(|p| {
                // Acknowledgements go out at once when reliable messages arrived;
                // otherwise rarely.
                if p.first() != Some(&4) || answer_now {
                    return true;
                }
                if now.saturating_sub(self.last_ack_only) >= ACK_ONLY_INTERVAL {
                    self.last_ack_only = now;
                    return true;
                }
                false
            })
            .collect();
        Ok(bundle::pack(packets))
    }

    /// Hands renet what the window allows. Two bounds: the peer's delivery feedback (at
    /// most `WINDOW` messages it has not handed on) and renet's own memory for the channel,
    /// which it frees only when the packet carrying a message is acknowledged. The
    /// feedback can run ahead of those acknowledgements (a megabyte each way at once got
    /// 96 messages delivered but 33 acknowledged), and renet ends a link whose sender
    /// exceeds its memory, so a message waits here until renet has room for it.
    fn move_pending_into_window(&mut self) {
        for id in 0..self.layout.renet_channels() {
            while !self.pending[id].is_empty() && self.sent[id] - self.peer_delivered[id] < WINDOW {
                let n = self.pending[id].len().min(CHUNK);
                if !self.renet.can_send_message(id as u8, n) {
                    break;
                }
                let chunk: Vec<u8> = self.pending[id].drain(..n).collect();
                if id != CONTROL_RELIABLE as usize {
                    self.pending_bytes -= n;
                }
                self.renet.send_message(id as u8, chunk);
                self.sent[id] += 1;
            }
        }
    }

    fn send_feedback(&mut self) {
        let repeat = self.last_received > self.last_feedback
            && self.now.saturating_sub(self.last_feedback) >= FEEDBACK_REPEAT;
        if !(self.feedback_due || repeat) || self.delivered.iter().all(|d| *d == 0) {
            return;
        }
        let counts = (0..self.layout.renet_channels() as u8)
            .filter(|id| self.delivered[*id as usize] > 0)
            .map(|id| (id, self.delivered[id as usize]))
            .collect();
        self.renet
            .send_message(CONTROL_UNRELIABLE, Control::Delivered(counts).encode());
        self.feedback_due = false;
        self.last_feedback = self.now;
    }

    fn send_ping(&mut self) {
        if self
            .last_ping
            .is_some_and(|at| self.now.saturating_sub(at) < PING_INTERVAL)
        {
            return;
        }
        self.last_ping = Some(self.now);
        let clock = clock_us(self.now);
        if self.pings_out.len() == PINGS_REMEMBERED {
            self.pings_out.pop_front();
        }
        self.pings_out.push_back(clock);
        self.renet
            .send_message(CONTROL_UNRELIABLE, Control::Ping(clock).encode());
    }

    fn take_rtt_sample(&mut self, sent_us: u32) {
        let Some(at) = self.pings_out.iter().position(|t| *t == sent_us) else {
            return;
        };
        // Older pings still unanswered will not be answered after a newer one was.
        self.pings_out.drain(..=at);
        let sample_us = clock_us(self.now.max(self.received_at)).wrapping_sub(sent_us);
        // A pong for a ping this side never sent (or from before a wrap) is ignored.
        if Duration::from_micros(u64::from(sample_us)) > self.config.ack_timeout {
            return;
        }
        let sample = f64::from(sample_us) / 1e6;
        self.srtt = Some(match self.srtt {
            None => sample,
            Some(srtt) => srtt + (sample - srtt) / 8.0,
        });
    }

    fn check_stall(&mut self) -> Result<(), String> {
        let in_flight = self
            .sent
            .iter()
            .zip(&self.peer_delivered)
            .any(|(s, d)| s > d);
        if !in_flight {
            self.stalled_since = None;
            return Ok(());
        }
        let since = *self.stalled_since.get_or_insert(self.now);
        if self.now.saturating_sub(since) > self.config.ack_timeout {
            return Err(format!(
                "the peer acknowledged no reliable data for {:.1} s (ack_timeout)",
                self.config.ack_timeout.as_secs_f64()
            ));
        }
        Ok(())
    }

    fn check_renet(&self) -> Result<(), String> {
        match self.renet.disconnect_reason() {
            None => Ok(()),
            Some(reason) => Err(format!("reliability layer: {reason}")),
        }
    }

    /// Reliable bytes not yet acknowledged or not yet sent.
    pub fn queued_reliable_bytes(&self) -> usize {
        let unacked: usize = (0..self.layout.renet_channels() as u8)
            .filter(|id| self.layout.is_reliable(*id) && *id != CONTROL_RELIABLE)
            .map(|id| (WINDOW as usize + 1) * CHUNK - self.renet.channel_available_memory(id))
            .sum();
        self.pending_bytes + unacked
    }

    /// True when nothing reliable waits to be sent or acknowledged.
    pub fn is_drained(&self) -> bool {
        self.pending.iter().all(VecDeque::is_empty)
            && self
                .sent
                .iter()
                .zip(&self.peer_delivered)
                .all(|(s, d)| s == d)
    }

    pub fn stats(&self) -> LinkStats {
        LinkStats {
            rtt: self.srtt.unwrap_or_else(|| self.renet.rtt()),
            packet_loss: self.renet.packet_loss(),
            queued_reliable_bytes: self.queued_reliable_bytes(),
        }
    }
}

/// The link clock in microseconds, wrapping every 71 minutes (pings carry 32 bits).
fn clock_us(now: Duration) -> u32 {
    now.as_micros() as u32
}

fn control_frame(control: &Control) -> Vec<u8> {
    let body = control.encode();
    let mut v = Vec::with_capacity(body.len() + 1);
    put_len(&mut v, body.len());
    v.extend(body);
    v
}

/// Why `queue` refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueError {
    BadChannel,
    TooLarge,
    BufferFull(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::multiplayer::layout::MAX_RENET_PACKET;

    fn room() -> Room {
        Room {
            bytes: usize::MAX,
            packets: usize::MAX,
        }
    }

    /// Moves every datagram from `a` to `b`, dropping those `lose` picks.
    fn carry(
        a: &mut Link,
        b: &mut Link,
        now: Duration,
        mut lose: impl FnMut(usize) -> bool,
    ) -> Vec<Incoming> {
        let mut out = Vec::new();
        for (i, p) in a.flush(now).unwrap().into_iter().enumerate() {
            assert!(p.len() <= MAX_RENET_PACKET, "packet of {} bytes", p.len());
            if !lose(i) {
                b.receive(now, &p, &mut room(), &mut out).unwrap();
            }
        }
        out
    }

    /// A quiet link (no game data, only what the links send by themselves) over a path
    /// with 20 ms each way: the reported round trip is the path's, not renet's estimate,
    /// which includes up to `ACK_ONLY_INTERVAL` of waiting for acknowledgement-only packets.
    #[test]
    fn round_trip_time_of_a_quiet_link_is_the_paths() {
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        let one_way = Duration::from_millis(20);
        let mut to_b: Vec<(Duration, Vec<u8>)> = Vec::new();
        let mut to_a: Vec<(Duration, Vec<u8>)> = Vec::new();
        let mut out = Vec::new();
        for step in 0..10_000u64 {
            let now = Duration::from_millis(step);
            for (link, queue) in [(&mut a, &mut to_a), (&mut b, &mut to_b)] {
                let (due, later): (Vec<_>, Vec<_>) = queue.drain(..).partition(|(t, _)| *t <= now);
                *queue = later;
                for (_, d) in due {
                    link.receive(now, &d, &mut room(), &mut out).unwrap();
                }
            }
            to_b.extend(
                a.flush(now)
                    .unwrap()
                    .into_iter()
                    .map(|d| (now + one_way, d)),
            );
            to_a.extend(
                b.flush(now)
                    .unwrap()
                    .into_iter()
                    .map(|d| (now + one_way, d)),
            );
        }
        let rtt = a.stats().rtt;
        assert!(
            (0.035..0.045).contains(&rtt),
            "rtt {rtt} s over a 40 ms path"
        );
        assert!(
            (0.035..0.045).contains(&b.stats().rtt),
            "the other side measures it too"
        );
        assert!(
            a.renet.rtt() > rtt + 0.05,
            "renet's own estimate ({} s) is inflated on a quiet link, which is why netkit pings",
            a.renet.rtt()
        );
    }

    #[test]
    fn reliable_in_order_through_loss_and_large_messages() {
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        let big: Vec<u8> = (0..65_536u32).map(|i| (i * 7) as u8).collect();
        for i in 0..500u32 {
            a.queue(1, TransferMode::Reliable, &i.to_le_bytes())
                .unwrap();
        }
        a.queue(0, TransferMode::Reliable, &big).unwrap();
        let mut got = Vec::new();
        let mut n = 0usize;
        for step in 0..2000u64 {
            let now = Duration::from_millis(step * 10);
            got.extend(carry(&mut a, &mut b, now, |_| {
                n += 1;
                n.is_multiple_of(3)
            }));
            carry(&mut b, &mut a, now, |_| {
                n += 1;
                n.is_multiple_of(4)
            });
            if a.is_drained() && got.len() == 501 {
                break;
            }
        }
        let ones: Vec<Vec<u8>> = got
            .iter()
            .filter_map(|m| match m {
                Incoming::Data {
                    channel: 1, data, ..
                } => Some(data.clone()),
                _ => None,
            })
            .collect();
        let expect: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_le_bytes().to_vec()).collect();
        assert_eq!(ones, expect);
        assert!(got.contains(&Incoming::Data {
            channel: 0,
            mode: TransferMode::Reliable,
            data: big
        }));
        assert!(a.is_drained());
    }

    /// A megabyte each way at once (a save going up while a snapshot comes down) through a
    /// path that loses one datagram in five, at the endpoint's rhythm (every datagram that
    /// arrived, then a flush every 10 ms). The real-socket case that ended the link is
    /// `tests/multiplayer/core.rs`, `a_megabyte_each_way_at_once_arrives_both_ways`.
    #[test]
    fn a_megabyte_each_way_at_once_arrives_both_ways() {
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        a.queue(2, TransferMode::Reliable, &big).unwrap();
        b.queue(2, TransferMode::Reliable, &big).unwrap();
        let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
        let mut to_b: Vec<(Duration, Vec<u8>)> = Vec::new();
        let mut to_a: Vec<(Duration, Vec<u8>)> = Vec::new();
        let one_way = Duration::from_millis(15);
        // The endpoint's rhythm: every datagram that arrived, then one flush per 10 ms.
        for step in 0..2_000u64 {
            let now = Duration::from_millis(step * 10);
            for (link, queue, got) in [
                (&mut a, &mut to_a, &mut at_a),
                (&mut b, &mut to_b, &mut at_b),
            ] {
                let (due, later): (Vec<_>, Vec<_>) = queue.drain(..).partition(|(t, _)| *t <= now);
                *queue = later;
                for (_, d) in due {
                    link.receive(now, &d, &mut room(), got).unwrap();
                }
            }
            // A path that loses one datagram in five each way (a full send queue does too).
            let mut n = 0u32;
            let mut keep = |_: &Vec<u8>| {
                n += 1;
                !n.is_multiple_of(5)
            };
            for d in a.flush(now).unwrap() {
                if keep(&d) {
                    to_b.push((now + one_way, d));
                }
            }
            for d in b.flush(now).unwrap() {
                if keep(&d) {
                    to_a.push((now + one_way, d));
                }
            }
            if !at_a.is_empty() && !at_b.is_empty() {
                break;
            }
        }
        let expect = Incoming::Data {
            channel: 2,
            mode: TransferMode::Reliable,
            data: big,
        };
        assert_eq!(at_a, [expect]);
        assert_eq!(at_b.len(), 1);
    }

    #[test]
    fn window_holds_back_and_silent_peer_times_out() {
        let config = LinkConfig {
            ack_timeout: Duration::from_secs(2),
            ..LinkConfig::default()
        };
        let mut a = Link::new(config);
        let data = vec![1u8; 200 * CHUNK];
        a.queue(0, TransferMode::Reliable, &data).unwrap();
        a.flush(Duration::ZERO).unwrap();
        assert_eq!(
            a.sent[a.layout.lane_id(0, TransferMode::Reliable) as usize],
            WINDOW
        );
        assert!(a.queued_reliable_bytes() >= data.len());
        let refused = (0..8)
            .map(|_| a.queue(1, TransferMode::Reliable, &vec![0; 1 << 20]))
            .find(Result::is_err);
        assert_eq!(refused, Some(Err(QueueError::BufferFull(4 << 20))));
        assert!(a.flush(Duration::from_secs(1)).is_ok());
        let err = a.flush(Duration::from_secs(3)).unwrap_err();
        assert!(err.contains("acknowledged no reliable data"), "{err}");
    }

    #[test]
    fn unreliable_ordered_never_goes_back() {
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        let mut packets = Vec::new();
        for i in 0..20u32 {
            a.queue(2, TransferMode::UnreliableOrdered, &i.to_le_bytes())
                .unwrap();
            packets.extend(a.flush(Duration::from_millis(u64::from(i))).unwrap());
        }
        packets.reverse();
        let mut out = Vec::new();
        for p in &packets {
            b.receive(Duration::ZERO, p, &mut room(), &mut out).unwrap();
        }
        let seen: Vec<u32> = out
            .iter()
            .filter_map(|m| match m {
                Incoming::Data { data, .. } => {
                    Some(u32::from_le_bytes(data[..].try_into().unwrap()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(seen, vec![19], "only the newest survives a full reversal");
    }

    #[test]
    fn room_holds_reliable_data_back_until_pulled() {
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        for i in 0..10u8 {
            a.queue(0, TransferMode::Reliable, &[i; 100]).unwrap();
        }
        let mut out = Vec::new();
        let mut tight = Room {
            bytes: 0,
            packets: 0,
        };
        for p in a.flush(Duration::ZERO).unwrap() {
            b.receive(Duration::ZERO, &p, &mut tight, &mut out).unwrap();
        }
        assert!(out.is_empty());
        b.pull(&mut room(), &mut out).unwrap();
        assert_eq!(out.len(), 10);
    }

    /// The unreliable control messages in `datagrams`, read by a plain renet
    /// endpoint with the same channels.
    fn controls_in(datagrams: &[Vec<u8>]) -> Vec<Control> {
        let reader = Link::new(LinkConfig::default());
        let mut renet = reader.renet;
        for d in datagrams {
            for p in bundle::unpack(d).unwrap() {
                renet.process_packet(p);
            }
        }
        std::iter::from_fn(|| renet.receive_message(CONTROL_UNRELIABLE))
            .map(|m| Control::decode(&m).unwrap())
            .collect()
    }

    /// A peer that sends hundreds of pings per datagram gets one pong per flush back, for
    /// the newest ping: answering is not a reflector for whatever the peer sends.
    #[test]
    fn a_ping_flood_is_answered_by_one_pong_per_flush() {
        let mut attacker = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        let mut out = Vec::new();
        let now = Duration::from_millis(1);
        attacker.flush(now).unwrap(); // its own ping goes nowhere; no other is due at `now`
        for round in 0..3u32 {
            for i in 0..300u32 {
                attacker
                    .renet
                    .send_message(CONTROL_UNRELIABLE, Control::Ping(round * 1000 + i).encode());
            }
            for d in attacker.flush(now).unwrap() {
                b.receive(now, &d, &mut room(), &mut out).unwrap();
            }
            let answer = b.flush(now).unwrap();
            let pongs: Vec<Control> = controls_in(&answer)
                .into_iter()
                .filter(|c| matches!(c, Control::Pong(_)))
                .collect();
            assert_eq!(
                pongs,
                [Control::Pong(round * 1000 + 299)],
                "one pong, for the newest ping"
            );
            let bytes: usize = answer.iter().map(Vec::len).sum();
            assert!(bytes < 200, "{bytes} bytes answer 300 pings");
        }
    }

    /// Pongs this side never asked for (forged, garbled, replayed) leave the round trip
    /// alone; only the answer to one of its own pings is a sample, and only once.
    #[test]
    fn forged_and_duplicated_pongs_are_not_round_trip_samples() {
        let mut a = Link::new(LinkConfig::default());
        let mut forger = Link::new(LinkConfig::default());
        let mut out = Vec::new();
        a.flush(Duration::ZERO).unwrap(); // a pings at clock 0
        let at = Duration::from_millis(300);
        for t in [1u32, 299_000, 299_999, u32::MAX] {
            forger
                .renet
                .send_message(CONTROL_UNRELIABLE, Control::Pong(t).encode());
        }
        for d in forger.flush(at).unwrap() {
            a.receive(at, &d, &mut room(), &mut out).unwrap();
        }
        assert_eq!(a.srtt, None, "no sample from pongs to pings never sent");
        forger
            .renet
            .send_message(CONTROL_UNRELIABLE, Control::Pong(0).encode());
        for d in forger.flush(at).unwrap() {
            a.receive(at, &d, &mut room(), &mut out).unwrap();
        }
        assert_eq!(a.srtt, Some(0.3), "the real answer counts");
        let later = Duration::from_millis(400);
        forger
            .renet
            .send_message(CONTROL_UNRELIABLE, Control::Pong(0).encode());
        for d in forger.flush(later).unwrap() {
            a.receive(later, &d, &mut room(), &mut out).unwrap();
        }
        assert_eq!(a.srtt, Some(0.3), "a duplicate of it does not count again");
    }

    #[test]
    fn hostile_datagrams_end_the_link_without_panicking() {
        let mut b = Link::new(LinkConfig::default());
        let mut out = Vec::new();
        // A slice whose index is beyond its count: renet itself would panic on it.
        let mut slice = vec![2u8, 0, 2, 0, 5, 1];
        slice.extend([0x44, 0xb0]);
        slice.extend(vec![0u8; 1200]);
        assert!(
            b.receive(Duration::ZERO, &slice, &mut room(), &mut out)
                .is_err()
        );
        let mut b = Link::new(LinkConfig::default());
        assert!(
            b.receive(
                Duration::ZERO,
                &[0, 0, 2, 0, 1, 0, 0],
                &mut room(),
                &mut out
            )
            .is_err()
        );
    }
}
