//! One reliable link to one peer: renet for acknowledgements, retransmission and ordering,
//! netkit's framing on top, and the bounds around both. No I/O and no clock: datagrams and
//! the time come in, datagrams and messages go out, so it is tested without sockets.
//!
//! Where renet does not fit, and what this file adds:
//! - A bound on what renet buffers out of order: renet stores reliable messages by id with
//!   no window. The sender keeps at most `WINDOW` (64) renet messages per channel beyond
//!   what the receiver reported handing on (delivery feedback on the unreliable control
//!   channel, repeated in the next datagram that goes out 100 ms or more after the last
//!   while datagrams arrive); the receiver refuses ids beyond that window and empty
//!   messages (`wire_check.rs`). renet's per-channel `max_memory_usage_bytes` is set just
//!   above the window (65 × 1,150 bytes), and renet frees a message only when the packet
//!   carrying it is acknowledged, which can lag the delivery feedback (a megabyte each way
//!   at once had 96 messages delivered and 33 acknowledged, and renet ended the link:
//!   "memory usage was exhausted"). So the sender hands renet a message only when renet has
//!   room for it (`can_send_message`); a correct peer is never disconnected by renet's
//!   limit.
//! - A peer that stops acknowledging: renet resends forever. A link with reliable data in
//!   flight and no delivery progress for `ack_timeout` (10 s) ends with the reason "the
//!   peer acknowledged no reliable data for 10.0 s (ack_timeout)"; reliable data waiting
//!   beyond `send_buffer` (4 MiB) ends it with a reason too. Nothing reliable is dropped
//!   silently.
//! - Acknowledgement ping-pong: renet answers every packet, acknowledgements included.
//!   Acknowledgements ride along in any datagram that goes out anyway; alone they go
//!   `ACK_DELAY` (20 ms) after a reliable message arrived (a game answering an RPC within
//!   its frame sends the answer and the acknowledgement in one datagram) and at most every
//!   second otherwise, so idle peers stay quiet and unreliable traffic draws no
//!   acknowledgement datagram of its own. Delivery feedback waits up to `FEEDBACK_DELAY`
//!   (50 ms) for a datagram going out anyway, and goes at once after 16 messages, so a bulk
//!   transfer's window never waits for it.
//! - Round-trip time: renet's estimate times the acknowledgement of every packet, and on a
//!   quiet link those wait for the next datagram, so it reads far too high (a unit test
//!   shows it). Each side sends a `Ping` (its clock in µs) on the unreliable control lane
//!   every second and the other answers with a `Pong` that rides in its next datagram, at
//!   the latest with its own next ping, and says how long it was held (protocol 4): an
//!   idle link sends one datagram each way per second, half of ENet's traffic (see
//!   `PING_INTERVAL`). `rtt_ms` is the RFC 6298 SRTT (α = 1/8) of those samples, each
//!   without its hold; a hold beyond two intervals or beyond the whole wait is no sample.
//!   One pong answers the newest ping received since the last one
//!   (answering each ping made the link a reflector: 300 pings in one datagram got 300
//!   pongs back); a pong counts only when it carries one of the last 32 pings this side
//!   sent (16 s), once, so forged, garbled or duplicated pongs are not samples.
//! - Several packets per datagram (`bundle.rs`), and any panic inside renet caught
//!   (`catch_unwind`), ending that one link.
//!
//! Deadlines: each link says (`Link::next_due`) when it next needs a flush (now when
//! something waits to go out, every 10 ms while reliable data is in flight for renet's
//! resends and the `ack_timeout` check, else its acknowledgement, feedback or ping timer);
//! the endpoint keeps one timer for all of them.

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
use super::link_error::LinkError;
use super::pacing::Pacer;
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
    /// Which side keeps the ping clock (see `PING_INTERVAL`).
    pub ping_role: PingRole,
    /// How often the client pings ([`PING_INTERVAL`] by default; a quarter of
    /// `resume_after` when resumption is on, so a live peer is never silent that long).
    pub ping_interval: Duration,
}

/// Which side of a link keeps the ping clock; one side of a link is each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PingRole {
    /// Pings every `PING_INTERVAL` by its own timer; its pongs wait for a datagram going
    /// out anyway, at the latest its next ping. A client.
    #[default]
    Initiator,
    /// Answers each ping at once and pings with the answer; by its own timer only after
    /// 1.5 intervals with no ping to answer. A server: an idle peer wakes it once per
    /// interval, for the datagram that arrives, and never for a timer.
    Responder,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            channel_count: 4,
            max_message_size: 1 << 20,
            send_buffer: 4 << 20,
            ack_timeout: Duration::from_secs(10),
            resend_interval: Duration::from_millis(100),
            ping_role: PingRole::Initiator,
            ping_interval: PING_INTERVAL,
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
    pub fn has_space(&self) -> bool {
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
    /// Reliable messages renet sent again (renet does not count them; the link reads its
    /// own outgoing packets).
    pub resent: u64,
    /// Smoothed round-trip time in seconds, from netkit's own pings (see `PING_INTERVAL`);
    /// renet's estimate until the first pong.
    pub rtt: f64,
    /// Fraction of recent packets not acknowledged (renet's estimate), 0 to 1.
    pub packet_loss: f64,
    /// Reliable bytes waiting to be sent or acknowledged.
    pub queued_reliable_bytes: usize,
}

/// Silence on the unreliable control channel after which delivery feedback rides along
/// again in the next datagram while datagrams keep arriving (a lost feedback would
/// otherwise stall a full window until the next delivery).
const FEEDBACK_REPEAT: Duration = Duration::from_millis(100);
/// Delivery feedback waits this long for a datagram going out anyway (a reply, the next
/// game packet) before it goes out alone: an RPC answered within a frame then carries the
/// feedback for the call, instead of a datagram of its own with 37 bytes of DTLS record
/// around it. Cumulative counts mean a later feedback replaces an earlier one.
const FEEDBACK_DELAY: Duration = Duration::from_millis(50);
/// Feedback goes out at once when this many reliable messages were handed on since the
/// last one, so a bulk transfer never waits for `FEEDBACK_DELAY` before its window opens.
const FEEDBACK_BATCH: u64 = WINDOW / 4;
/// Acknowledgements of reliable messages wait this long for a datagram going out anyway
/// (a game at 60 frames/s answers within 16.7 ms), then go out alone. Well below renet's
/// resend interval (100 ms), so the wait causes no retransmission on a short path.
const ACK_DELAY: Duration = Duration::from_millis(20);
/// Acknowledgements of unreliable packets only (game state, pings, feedback) are never
/// needed for delivery: unreliable messages are not resent. They ride along in the next
/// datagram; alone they go out at most this often, which keeps renet's loss estimate fed
/// on a one-way stream and stops two idle renet peers from acknowledging each other's
/// acknowledgements. An idle link sends its pings and pongs sooner (see `PING_INTERVAL`).
const ACK_ONLY_INTERVAL: Duration = Duration::from_millis(1000);
/// The client (`PingRole::Initiator`) pings this often by its own timer; the server
/// (`PingRole::Responder`) answers each ping at once and pings with its answer; the
/// client's pong to that waits for a datagram going out anyway, at the latest its next
/// ping, and says how long it waited (`held_us`, taken off the sample as QUIC takes off
/// `ack_delay`). So an idle link carries one datagram each way per interval, each with a
/// ping, the answer to the other's and the acknowledgements, whatever the path's delay:
/// half of ENet's traffic (a ping and its acknowledgement every 500 ms). On a server with
/// many idle peers each datagram costs a decryption, task wake-ups and a system call, and
/// no idle peer wakes it for a timer. Both sides still measure the round trip, and the
/// liveness each side's `idle_timeout` watches for is a datagram a second.
/// renet's own estimate times the acknowledgements of every packet, which on a quiet link wait for the next datagram, so it reads far too high;
/// hence netkit's own pings.
pub(crate) const PING_INTERVAL: Duration = Duration::from_millis(1000);
/// While reliable messages are in flight the link is flushed this often: renet resends
/// what was not acknowledged within `resend_interval`, and the stall check runs.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(10);
/// renet's statistics keep 300 ms buckets and clear one only when `update` lands in it;
/// a link flushed rarely advances renet's clock in steps no longer than this.
const RENET_STEP: Duration = Duration::from_millis(300);

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
    /// When feedback for newly handed-on messages goes out alone, if no datagram took it.
    feedback_at: Option<Duration>,
    /// Reliable messages handed on and not yet reported in a feedback.
    unreported: u64,
    last_feedback: Duration,
    last_received: Duration,
    /// When the acknowledgement of a reliable message goes out alone (`ACK_DELAY`).
    ack_at: Option<Duration>,
    /// The first datagram received since this side last sent acknowledgements.
    unacked_since: Option<Duration>,
    /// Unreliable messages queued since the last flush (they go out at once).
    queued_unreliable: bool,
    last_flush: Duration,
    /// Per renet channel, the highest reliable message id sent, to count resends.
    highest_sent: Vec<Option<u64>>,
    resent: u64,
    stalled_since: Option<Duration>,
    last_ping: Option<Duration>,
    /// When the datagram being read arrived (pongs are timed by it, not by the last flush).
    received_at: Duration,
    /// Smoothed round trip from pongs, seconds (RFC 6298 section 2's SRTT, alpha 1/8).
    srtt: Option<f64>,
    /// Its variation (RFC 6298's RTTVAR, beta 1/4), seconds.
    rttvar: f64,
    /// How many reliable messages may be in flight across the data channels.
    pacer: Pacer,
    /// The last flush left data waiting because of the pacer: only then is the queue on
    /// the path the link's own doing (see `update_resend_time`).
    pacing_limited: bool,
    /// The newest ping received and not yet answered (see `PING_INTERVAL` for when the
    /// answer goes).
    pong_due: Option<PongDue>,
    /// When this side last sent a pong: a responder answers at once at most four times
    /// per ping interval (see `answers_at_once`).
    last_pong: Option<Duration>,
    /// Clocks of this side's recent pings not yet answered, oldest first: only a pong
    /// carrying one of them is a sample (a forged, garbled or duplicated pong is not).
    pings_out: VecDeque<u32>,
}

/// A ping waiting for its answer.
#[derive(Clone, Copy, Debug)]
struct PongDue {
    /// The ping's clock, echoed.
    clock: u32,
    /// When it arrived: the answer says how long it was held.
    received: Duration,
}

/// Longest wait before a reliable message is sent again, however long the measured round
/// trip: beyond it a lost message would hold its channel up longer than a player bears.
pub(crate) const MAX_RESEND_TIMEOUT: Duration = Duration::from_secs(2);
/// RFC 6298's clock granularity G: the endpoint's flush timer is this fine.
const CLOCK_GRANULARITY: Duration = Duration::from_millis(10);

/// How long an unacknowledged reliable message waits before renet sends it again: RFC
/// 6298's RTO, `SRTT + max(G, 4 * RTTVAR)`, from the link's round-trip samples (seconds),
/// at most twice SRTT, and never below `floor` (the `resend_interval` option, 100 ms by default: what a short
/// path used before) nor above [`MAX_RESEND_TIMEOUT`]. RFC 6298's own one-second floor
/// suits TCP's bulk transfers, not a game's input on a 20 ms path. With a fixed 100 ms,
/// a path with a longer round trip had every reliable message sent at least twice.
pub(crate) fn resend_timeout(srtt: f64, rttvar: f64, floor: Duration) -> Duration {
    let floor = floor.min(MAX_RESEND_TIMEOUT);
    // Never more than twice the smoothed round trip: on a short path, jitter and
    // reordering make RTTVAR large next to SRTT, and a game would rather resend a message
    // that was only late than make every lost one wait several round trips.
    let rto = (srtt + (4.0 * rttvar).max(CLOCK_GRANULARITY.as_secs_f64())).min(2.0 * srtt);
    if !rto.is_finite() {
        return floor;
    }
    Duration::from_secs_f64(rto.clamp(0.0, MAX_RESEND_TIMEOUT.as_secs_f64()))
        .clamp(floor, MAX_RESEND_TIMEOUT)
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
            feedback_at: None,
            unreported: 0,
            last_feedback: Duration::ZERO,
            last_received: Duration::ZERO,
            ack_at: None,
            unacked_since: None,
            queued_unreliable: false,
            last_flush: Duration::ZERO,
            highest_sent: vec![None; n],
            resent: 0,
            stalled_since: None,
            last_ping: None,
            received_at: Duration::ZERO,
            srtt: None,
            rttvar: 0.0,
            pacer: Pacer::default(),
            pacing_limited: false,
            pong_due: None,
            last_pong: None,
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
                self.queued_unreliable = true;
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
    ) -> Result<(), LinkError> {
        let packets = bundle::unpack(datagram)?;
        self.last_received = now;
        self.received_at = now;
        self.unacked_since.get_or_insert(now);
        let mut channels = 0u128;
        for packet in packets {
            let kind = wire_check::check(packet, self.layout, &self.delivered)?;
            if let Some(channel) = wire_check::channel(packet) {
                channels |= 1u128 << channel;
            }
            if kind == Kind::Reliable {
                self.ack_at.get_or_insert(now + ACK_DELAY);
            }
            let renet = &mut self.renet;
            catch_unwind(AssertUnwindSafe(|| renet.process_packet(packet)))
                .map_err(|_| LinkError::Rejected)?;
            self.check_renet()?;
        }
        // Once per datagram, not per packet: a pull walks every renet channel. The window
        // check above may then see an older `delivered`, which is only stricter, and the
        // peer never sends beyond what this side reported.
        self.pull_channels(channels, room, out)
    }

    /// Hands on messages renet holds, as far as `room` allows.
    pub fn pull(&mut self, room: &mut Room, out: &mut Vec<Incoming>) -> Result<(), LinkError> {
        self.pull_channels(u128::MAX, room, out)
    }

    /// `pull` for the renet channels set in `channels` (bit `id`): a datagram brings
    /// messages only on the channels of its packets, and renet looks each channel up in
    /// a hash map, so walking all of them for every datagram showed in profiles.
    fn pull_channels(
        &mut self,
        channels: u128,
        room: &mut Room,
        out: &mut Vec<Incoming>,
    ) -> Result<(), LinkError> {
        for id in 0..self.layout.renet_channels() as u8 {
            if channels & (1u128 << id) == 0 {
                continue;
            }
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
                    self.unreported += 1;
                    self.feedback_at
                        .get_or_insert(self.received_at.max(self.now) + FEEDBACK_DELAY);
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
    ) -> Result<(), LinkError> {
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
                    // Answered once, for the newest ping (see `PING_INTERVAL`).
                    self.pong_due = Some(PongDue {
                        clock: t,
                        received: self.received_at,
                    });
                }
                Control::Pong { clock, held_us } => self.take_rtt_sample(clock, held_us),
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
            let delivered = self.data_channels().map(|id| self.peer_delivered[id]).sum();
            let busy = self.data_channels().any(|id| !self.pending[id].is_empty());
            self.pacer.on_delivered(self.received_at, delivered, busy);
            self.update_resend_time();
        }
    }

    /// The reliable channels that carry the game's data (not the control channel).
    fn data_channels(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.layout.renet_channels())
            .filter(|id| *id != CONTROL_RELIABLE as usize && self.layout.is_reliable(*id as u8))
    }

    /// True when the pacer allows one more data message in flight (see `pacing.rs`);
    /// control messages are never held. In flight: what renet still holds unacknowledged,
    /// in messages of at most `CHUNK` bytes.
    fn paced_room(&self, id: usize) -> bool {
        if id == CONTROL_RELIABLE as usize {
            return true;
        }
        let per_channel = (WINDOW as usize + 1) * CHUNK;
        let unacked: usize = self
            .data_channels()
            .map(|c| per_channel.saturating_sub(self.renet.channel_available_memory(c as u8)))
            .sum();
        (unacked.div_ceil(CHUNK) as u64) < self.pacer.allowance(ACK_DELAY)
    }

    /// Advances time to `now` and returns the datagrams to send. An error ends the link.
    pub fn flush(&mut self, now: Duration) -> Result<Vec<Vec<u8>>, LinkError> {
        let mut elapsed = now.saturating_sub(self.now);
        self.now = now;
        self.last_flush = now;
        let renet = &mut self.renet;
        catch_unwind(AssertUnwindSafe(|| {
            while elapsed > RENET_STEP {
                renet.update(RENET_STEP);
                elapsed -= RENET_STEP;
            }
            renet.update(elapsed)
        }))
        .map_err(|_| LinkError::Internal)?;
        let acks_due = self.ack_at.is_some_and(|at| now >= at)
            || self
                .unacked_since
                .is_some_and(|since| now.saturating_sub(since) >= ACK_ONLY_INTERVAL);
        let mut going_out = self.move_pending_into_window();
        going_out |= std::mem::take(&mut self.queued_unreliable);
        going_out |= self.send_ping();
        going_out |= self.send_feedback(going_out || acks_due);
        going_out |= acks_due;
        self.send_pong(going_out || self.answers_at_once());
        self.check_stall()?;
        let renet = &mut self.renet;
        let packets = catch_unwind(AssertUnwindSafe(|| renet.get_packets_to_send()))
            .map_err(|_| LinkError::Internal)?;
        self.check_renet()?;
        self.count_resends(&packets);
        // Acknowledgements ride along with anything else; alone they wait (see
        // `ACK_DELAY` and `ACK_ONLY_INTERVAL`).
        let only_acks = packets.iter().all(|p| p.first() == Some(&4));
        if packets.is_empty() || (only_acks && !acks_due) {
            return Ok(Vec::new());
        }
        self.ack_at = None;
        self.unacked_since = None;
        Ok(bundle::pack(packets))
    }

    /// When this link next needs a `flush`, by the link clock: now when something waits
    /// to go out, `FLUSH_INTERVAL` after the last flush while reliable data is in flight,
    /// else the earliest of its timers (acknowledgement, feedback, ping). The endpoint
    /// services a link only when it is due or had activity, so an idle link costs nothing
    /// between its pings.
    pub fn next_due(&self) -> Duration {
        if self.queued_unreliable || self.window_has_room() || self.answers_at_once() {
            return self.now;
        }
        let mut due = self.ping_due();
        if self.config.ping_role == PingRole::Responder && self.pong_due.is_some() {
            due = due.min(self.pong_allowed_at());
        }
        if self.in_flight() {
            due = due.min(self.last_flush + FLUSH_INTERVAL);
        }
        if let Some(at) = self.feedback_at {
            due = due.min(at);
        }
        if self.unreported >= FEEDBACK_BATCH {
            due = due.min(self.now);
        }
        if let Some(at) = self.ack_at {
            due = due.min(at);
        }
        if let Some(since) = self.unacked_since {
            due = due.min(since + ACK_ONLY_INTERVAL);
        }
        due
    }

    /// True when pending reliable bytes could enter renet's window now: the peer's
    /// feedback leaves room and so does renet's memory (see `move_pending_into_window`),
    /// else the link would be due at once, again and again, with nothing it can send.
    fn window_has_room(&self) -> bool {
        (0..self.layout.renet_channels()).any(|id| {
            !self.pending[id].is_empty()
                && self.sent[id] - self.peer_delivered[id] < WINDOW
                && self.paced_room(id)
                && self
                    .renet
                    .can_send_message(id as u8, self.pending[id].len().min(CHUNK))
        })
    }

    /// True while reliable messages wait for the peer's delivery feedback.
    fn in_flight(&self) -> bool {
        self.sent
            .iter()
            .zip(&self.peer_delivered)
            .any(|(s, d)| s > d)
    }

    fn ping_due(&self) -> Duration {
        let Some(last) = self.last_ping else {
            return Duration::ZERO;
        };
        match self.config.ping_role {
            PingRole::Initiator => last + self.config.ping_interval,
            // A responder pings with its answers, but not twice within half an interval
            // whatever the peer sends; by its timer only when the peer's pings stop.
            PingRole::Responder if self.answers_at_once() => last + self.config.ping_interval / 2,
            PingRole::Responder => last + self.config.ping_interval * 3 / 2,
        }
    }

    /// True for a responder with a ping to answer, at most four times per ping interval:
    /// the answer goes in the next flush. Answering every ping at once let a client that
    /// pings in every datagram draw a datagram back for each, each carrying the whole list
    /// of acknowledgement ranges its sequence numbers made long (11 times its bytes on the
    /// wire); beyond the rate, the answer waits for a datagram going out anyway or the
    /// next allowed instant.
    fn answers_at_once(&self) -> bool {
        self.config.ping_role == PingRole::Responder
            && self.pong_due.is_some()
            && self.pong_allowed_at() <= self.now
    }

    fn pong_allowed_at(&self) -> Duration {
        self.last_pong
            .map_or(Duration::ZERO, |at| at + self.config.ping_interval / 4)
    }

    /// Counts reliable messages in `packets` that renet sent before (its resends).
    fn count_resends(&mut self, packets: &[Vec<u8>]) {
        for p in packets {
            let Some((channel, ids)) = wire_check::reliable_ids(p) else {
                continue;
            };
            let Some(highest) = self.highest_sent.get_mut(channel as usize) else {
                continue;
            };
            for id in ids {
                match highest {
                    Some(h) if id <= *h => self.resent += 1,
                    _ => *highest = Some(id),
                }
            }
        }
    }

    /// Hands renet what the window allows. Two bounds: the peer's delivery feedback (at
    /// most `WINDOW` messages it has not handed on) and renet's own memory for the channel,
    /// which it frees only when the packet carrying a message is acknowledged. The
    /// feedback can run ahead of those acknowledgements (a megabyte each way at once got
    /// 96 messages delivered but 33 acknowledged), and renet ends a link whose sender
    /// exceeds its memory, so a message waits here until renet has room for it. True if
    /// anything was handed.
    fn move_pending_into_window(&mut self) -> bool {
        let mut moved = false;
        let was_limited = self.pacing_limited;
        self.pacing_limited = false;
        for id in 0..self.layout.renet_channels() {
            while !self.pending[id].is_empty()
                && self.sent[id] - self.peer_delivered[id] < WINDOW
                && self.paced_room(id)
            {
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
                moved = true;
            }
            if !self.pending[id].is_empty()
                && self.sent[id] - self.peer_delivered[id] < WINDOW
                && !self.paced_room(id)
            {
                self.pacing_limited = true;
            }
        }
        if was_limited != self.pacing_limited {
            self.update_resend_time();
        }
        moved
    }

    /// Sends delivery feedback when it is due, when a batch of messages was handed on, or
    /// (`going_out`: a datagram leaves anyway) to repeat it while the peer keeps sending.
    fn send_feedback(&mut self, going_out: bool) -> bool {
        let due =
            self.feedback_at.is_some_and(|at| self.now >= at) || self.unreported >= FEEDBACK_BATCH;
        let repeat = going_out
            && self.last_received > self.last_feedback
            && self.now.saturating_sub(self.last_feedback) >= FEEDBACK_REPEAT;
        if !(due || repeat) || self.delivered.iter().all(|d| *d == 0) {
            return false;
        }
        let counts = (0..self.layout.renet_channels() as u8)
            .filter(|id| self.delivered[*id as usize] > 0)
            .map(|id| (id, self.delivered[id as usize]))
            .collect();
        self.renet
            .send_message(CONTROL_UNRELIABLE, Control::Delivered(counts).encode());
        self.feedback_at = None;
        self.unreported = 0;
        self.last_feedback = self.now;
        true
    }

    /// Answers the newest ping received when a datagram goes out anyway (`going_out`),
    /// saying how long the answer waited; at the latest it goes with this side's next
    /// ping (see `PING_INTERVAL`).
    fn send_pong(&mut self, going_out: bool) {
        let Some(PongDue {
            clock, received, ..
        }) = self.pong_due
        else {
            return;
        };
        if !going_out {
            return;
        }
        self.pong_due = None;
        self.last_pong = Some(self.now);
        let held = self.now.saturating_sub(received);
        let held_us = held.as_micros().min(u128::from(u32::MAX)) as u32;
        self.renet.send_message(
            CONTROL_UNRELIABLE,
            Control::Pong { clock, held_us }.encode(),
        );
    }

    /// Pings when due (see `PING_INTERVAL`); true if it did.
    fn send_ping(&mut self) -> bool {
        if self.now < self.ping_due() {
            return false;
        }
        self.last_ping = Some(self.now);
        let clock = clock_us(self.now);
        if self.pings_out.len() == PINGS_REMEMBERED {
            self.pings_out.pop_front();
        }
        self.pings_out.push_back(clock);
        self.renet
            .send_message(CONTROL_UNRELIABLE, Control::Ping(clock).encode());
        true
    }

    fn take_rtt_sample(&mut self, sent_us: u32, held_us: u32) {
        let Some(at) = self.pings_out.iter().position(|t| *t == sent_us) else {
            return;
        };
        // Older pings still unanswered will not be answered after a newer one was.
        self.pings_out.drain(..=at);
        let elapsed_us = clock_us(self.now.max(self.received_at)).wrapping_sub(sent_us);
        // A pong for a ping this side never sent (or from before a wrap) is ignored.
        if Duration::from_micros(u64::from(elapsed_us)) > self.config.ack_timeout {
            return;
        }
        // An honest peer holds an answer at most until its next ping (a late timer on a
        // busy peer adds a little, hence twice the interval). A longer hold, or one
        // longer than the whole wait, is a lie or garbage: not a sample. A peer
        // that lies within the bounds only mistimes the resends sent to itself, which
        // `resend_timeout` keeps between `resend_interval` and `MAX_RESEND_TIMEOUT`.
        if u128::from(held_us) > 2 * PING_INTERVAL.as_micros() || held_us >= elapsed_us {
            return;
        }
        let sample_us = elapsed_us - held_us;
        let sample = f64::from(sample_us) / 1e6;
        self.pacer
            .on_rtt(self.received_at, sample, !self.in_flight());
        let srtt = match self.srtt {
            None => {
                self.rttvar = sample / 2.0;
                sample
            }
            Some(srtt) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (srtt - sample).abs();
                srtt + (sample - srtt) / 8.0
            }
        };
        self.srtt = Some(srtt);
        self.update_resend_time();
    }

    /// The resend time: RFC 6298's from the pings, raised while the pacer holds data back.
    fn update_resend_time(&mut self) {
        let floor = self.config.resend_interval;
        let from_pings = self
            .srtt
            .map_or(floor, |srtt| resend_timeout(srtt, self.rttvar, floor));
        // While the pacer holds data back, never shorter than what its allowance takes to
        // drain through the path: that queue is the sender's doing, and resending what is
        // only queued feeds it. A game's traffic that does not fill the path keeps RFC
        // 6298's time (a small allowance over a low rate would read as seconds).
        let from_pacing = match self.pacing_limited {
            true => self
                .pacer
                .drain_time(ACK_DELAY)
                .map_or(floor, |d| d.min(MAX_RESEND_TIMEOUT)),
            false => floor,
        };
        self.renet.set_resend_time(from_pings.max(from_pacing));
        // A message is presumed lost before that once one sent after it was acknowledged
        // and a round trip plus a reordering window passed (RACK, RFC 8985: a window of a
        // quarter round trip, plus the flush timer's granularity).
        self.renet.set_loss_wait(
            self.srtt
                .map(|srtt| Duration::from_secs_f64(srtt * 1.25) + CLOCK_GRANULARITY),
        );
    }

    /// The link carries on over a new DTLS session after an interruption (`resume.rs`):
    /// the `ack_timeout` counts afresh from `now`, since nothing could be acknowledged
    /// while no session carried the link; renet resends what is unacknowledged at the next
    /// flush.
    pub fn resume(&mut self, now: Duration) {
        self.stalled_since = None;
        // Delivery feedback rides along again in the first datagram on the new session.
        self.last_received = self.last_received.max(now);
    }

    fn check_stall(&mut self) -> Result<(), LinkError> {
        if !self.in_flight() {
            self.stalled_since = None;
            return Ok(());
        }
        let since = *self.stalled_since.get_or_insert(self.now);
        if self.now.saturating_sub(since) > self.config.ack_timeout {
            return Err(LinkError::Stalled {
                ack_timeout: self.config.ack_timeout,
            });
        }
        Ok(())
    }

    fn check_renet(&self) -> Result<(), LinkError> {
        match self.renet.disconnect_reason() {
            None => Ok(()),
            Some(reason) => Err(LinkError::Renet(reason.to_string())),
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

    /// Reliable messages renet sent again so far.
    pub fn resent(&self) -> u64 {
        self.resent
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
            resent: self.resent,
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

    /// Datagrams on their way to a link, each with the time it arrives.
    type InFlight = Vec<(Duration, Vec<u8>)>;

    /// Hands `link` every datagram of `queue` due by `now`.
    fn deliver_due(link: &mut Link, queue: &mut InFlight, now: Duration, got: &mut Vec<Incoming>) {
        let (due, later): (Vec<_>, Vec<_>) = queue.drain(..).partition(|(t, _)| *t <= now);
        *queue = later;
        for (_, d) in due {
            link.receive(now, &d, &mut room(), got).unwrap();
        }
    }

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
        let mut to_b: InFlight = Vec::new();
        let mut to_a: InFlight = Vec::new();
        let mut out = Vec::new();
        for step in 0..10_000u64 {
            let now = Duration::from_millis(step);
            for (link, queue) in [(&mut a, &mut to_a), (&mut b, &mut to_b)] {
                deliver_due(link, queue, now, &mut out);
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
        let mut to_b: InFlight = Vec::new();
        let mut to_a: InFlight = Vec::new();
        let one_way = Duration::from_millis(15);
        // The endpoint's rhythm: every datagram that arrived, then one flush per 10 ms.
        for step in 0..2_000u64 {
            let now = Duration::from_millis(step * 10);
            for (link, queue, got) in [
                (&mut a, &mut to_a, &mut at_a),
                (&mut b, &mut to_b, &mut at_b),
            ] {
                deliver_due(link, queue, now, got);
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
        // Before any feedback the pacer's first allowance holds the rest back (see
        // `pacing.rs`); the per-channel window bounds what follows.
        assert_eq!(
            a.sent[a.layout.lane_id(0, TransferMode::Reliable) as usize],
            super::super::pacing::INITIAL_FLIGHT.min(WINDOW)
        );
        assert!(a.queued_reliable_bytes() >= data.len());
        let refused = (0..8)
            .map(|_| a.queue(1, TransferMode::Reliable, &vec![0; 1 << 20]))
            .find(Result::is_err);
        assert_eq!(refused, Some(Err(QueueError::BufferFull(4 << 20))));
        assert!(a.flush(Duration::from_secs(1)).is_ok());
        let err = a.flush(Duration::from_secs(3)).unwrap_err();
        assert_eq!(
            err,
            LinkError::Stalled {
                ack_timeout: Duration::from_secs(2)
            }
        );
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

    fn server() -> LinkConfig {
        LinkConfig {
            ping_role: PingRole::Responder,
            ..LinkConfig::default()
        }
    }

    /// A peer that sends hundreds of pings per datagram gets one pong per flush back, for
    /// the newest ping, and the server pings with it at most every half interval:
    /// answering is not a reflector for whatever the peer sends.
    #[test]
    fn a_ping_flood_is_answered_by_one_pong_per_flush() {
        let mut attacker = Link::new(LinkConfig::default());
        let mut b = Link::new(server());
        let mut out = Vec::new();
        for round in 0..6u32 {
            let now = Duration::from_millis(1) + PING_INTERVAL / 4 * round;
            attacker.flush(now).unwrap(); // its own ping goes nowhere
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
                .filter(|c| matches!(c, Control::Pong { .. }))
                .collect();
            assert_eq!(
                pongs,
                [Control::Pong {
                    clock: round * 1000 + 299,
                    held_us: 0
                }],
                "one pong, for the newest ping"
            );
            let pings = controls_in(&answer)
                .into_iter()
                .filter(|c| matches!(c, Control::Ping(_)))
                .count();
            assert_eq!(pings, usize::from(round % 2 == 0), "round {round}");
            let bytes: usize = answer.iter().map(Vec::len).sum();
            assert!(bytes < 200, "{bytes} bytes answer 300 pings");
        }
    }

    fn pong(clock: u32, held_us: u32) -> Vec<u8> {
        Control::Pong { clock, held_us }.encode()
    }

    /// A pong that says it was held is timed without the hold; a hold longer than a peer
    /// can honestly take (beyond its next ping, or beyond the whole wait) is no sample.
    #[test]
    fn a_held_pong_is_timed_without_its_hold() {
        let mut out = Vec::new();
        let at = Duration::from_millis(900);
        for (held_us, expected) in [
            (850_000, Some(0.05)),
            (0, Some(0.9)),
            (900_000, None),
            (2_500_000, None),
        ] {
            let mut a = Link::new(LinkConfig::default());
            let mut peer = Link::new(LinkConfig::default());
            a.flush(Duration::ZERO).unwrap(); // a pings at clock 0
            peer.renet
                .send_message(CONTROL_UNRELIABLE, pong(0, held_us));
            for d in peer.flush(at).unwrap() {
                a.receive(at, &d, &mut room(), &mut out).unwrap();
            }
            let srtt = a.srtt.map(|s| (s * 1e6).round() / 1e6);
            assert_eq!(srtt, expected, "held {held_us} µs of a 900 ms wait");
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
            forger.renet.send_message(CONTROL_UNRELIABLE, pong(t, 0));
        }
        for d in forger.flush(at).unwrap() {
            a.receive(at, &d, &mut room(), &mut out).unwrap();
        }
        assert_eq!(a.srtt, None, "no sample from pongs to pings never sent");
        forger.renet.send_message(CONTROL_UNRELIABLE, pong(0, 0));
        for d in forger.flush(at).unwrap() {
            a.receive(at, &d, &mut room(), &mut out).unwrap();
        }
        assert_eq!(a.srtt, Some(0.3), "the real answer counts");
        let later = Duration::from_millis(400);
        forger.renet.send_message(CONTROL_UNRELIABLE, pong(0, 0));
        for d in forger.flush(later).unwrap() {
            a.receive(later, &d, &mut room(), &mut out).unwrap();
        }
        assert_eq!(a.srtt, Some(0.3), "a duplicate of it does not count again");
    }

    /// Two links over a path with `one_way` delay, each flushed only when it says it is
    /// due (as the endpoint does); returns the datagrams each side sent over `secs`.
    fn run_idle(a: &mut Link, b: &mut Link, one_way: Duration, secs: u64) -> (usize, usize) {
        let mut to_b: InFlight = Vec::new();
        let mut to_a: InFlight = Vec::new();
        let (mut sent_a, mut sent_b) = (0, 0);
        let mut out = Vec::new();
        for step in 0..secs * 1000 {
            let now = Duration::from_millis(step);
            for (link, queue) in [(&mut *a, &mut to_a), (&mut *b, &mut to_b)] {
                deliver_due(link, queue, now, &mut out);
            }
            if a.next_due() <= now {
                let d = a.flush(now).unwrap();
                sent_a += d.len();
                to_b.extend(d.into_iter().map(|d| (now + one_way, d)));
            }
            if b.next_due() <= now {
                let d = b.flush(now).unwrap();
                sent_b += d.len();
                to_a.extend(d.into_iter().map(|d| (now + one_way, d)));
            }
        }
        (sent_a, sent_b)
    }

    /// An idle link sends one datagram each way per `PING_INTERVAL`, half of ENet's
    /// traffic: each carries the side's ping and its answer to the other's, with the
    /// acknowledgements; both sides still measure the round trip, whatever the path's
    /// delay (up to a round trip longer than the interval) and the server's own phase.
    #[test]
    fn an_idle_link_sends_one_datagram_each_way_per_second() {
        for (one_way_ms, b_starts_ms) in [
            (20, 0),
            (20, 300),
            (1, 700),
            (150, 999),
            (400, 50),
            (700, 200),
        ] {
            let mut a = Link::new(LinkConfig::default());
            let mut b = Link::new(server());
            // b's clock starts later: its pings fall at another phase.
            b.flush(Duration::from_millis(b_starts_ms)).unwrap();
            b.last_ping = Some(Duration::from_millis(b_starts_ms));
            let one_way = Duration::from_millis(one_way_ms);
            let (sent_a, sent_b) = run_idle(&mut a, &mut b, one_way, 60);
            let case = format!("{one_way_ms} ms each way, b starts at {b_starts_ms} ms");
            for (side, sent) in [("a", sent_a), ("b", sent_b)] {
                assert!(
                    (59..=63).contains(&sent),
                    "{case}: {side} sent {sent} datagrams in 60 s"
                );
            }
            let path = 2.0 * one_way.as_secs_f64();
            for link in [&a, &b] {
                let rtt = link.stats().rtt;
                assert!(
                    (rtt - path).abs() < 0.005,
                    "{case}: rtt {rtt} s over a {path} s path"
                );
            }
        }
    }

    /// The endpoint services a link only when `next_due` says so: at once when something
    /// waits to go out, every `FLUSH_INTERVAL` while reliable data is in flight, and at
    /// the next ping when the link is idle.
    #[test]
    fn next_due_says_when_the_link_needs_a_flush() {
        let mut a = Link::new(LinkConfig::default());
        assert_eq!(a.next_due(), Duration::ZERO, "a new link pings at once");
        let t = Duration::from_secs(1);
        a.flush(t).unwrap();
        assert_eq!(a.next_due(), t + PING_INTERVAL, "idle: the next ping");
        a.queue(1, TransferMode::Unreliable, b"state").unwrap();
        assert_eq!(a.next_due(), t, "queued data goes at once");
        a.flush(t).unwrap();
        a.queue(0, TransferMode::Reliable, b"rpc").unwrap();
        assert_eq!(
            a.next_due(),
            t,
            "reliable data with room in the window goes at once"
        );
        a.flush(t).unwrap();
        assert_eq!(
            a.next_due(),
            t + FLUSH_INTERVAL,
            "in flight: renet's resends and the stall check"
        );
    }

    /// A reliable message's acknowledgement and delivery feedback wait for the reply the
    /// game sends within a frame, so an RPC and its answer cost one datagram each way;
    /// without a reply the acknowledgement goes alone after `ACK_DELAY`.
    #[test]
    fn acknowledgements_ride_on_the_reply_or_go_alone_after_ack_delay() {
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        let mut out = Vec::new();
        let t0 = Duration::from_millis(300);
        for d in a.flush(Duration::ZERO).unwrap() {
            b.receive(Duration::ZERO, &d, &mut room(), &mut out)
                .unwrap();
        }
        b.flush(Duration::ZERO).unwrap();
        a.queue(0, TransferMode::Reliable, b"call").unwrap();
        let call = a.flush(t0).unwrap();
        assert_eq!(call.len(), 1);
        b.receive(t0, &call[0], &mut room(), &mut out).unwrap();
        assert!(b.flush(t0).unwrap().is_empty(), "the acknowledgement waits");
        assert_eq!(b.next_due(), t0 + ACK_DELAY);
        let reply_at = t0 + Duration::from_millis(16);
        b.queue(0, TransferMode::Reliable, b"reply").unwrap();
        let reply = b.flush(reply_at).unwrap();
        assert_eq!(reply.len(), 1, "reply and acknowledgement in one datagram");
        let parts = bundle::unpack(&reply[0]).unwrap();
        assert!(
            parts.iter().any(|p| p[0] == 4),
            "it carries the acknowledgement"
        );
        assert!(b.ack_at.is_none());

        a.queue(0, TransferMode::Reliable, b"another").unwrap();
        let t1 = Duration::from_millis(400);
        for d in a.flush(t1).unwrap() {
            b.receive(t1, &d, &mut room(), &mut out).unwrap();
        }
        assert!(b.flush(t1 + ACK_DELAY / 2).unwrap().is_empty());
        let alone = b.flush(t1 + ACK_DELAY).unwrap();
        assert_eq!(alone.len(), 1, "no reply: the acknowledgement goes alone");
    }

    #[test]
    fn the_resend_timeout_follows_rfc_6298_within_its_floor_and_ceiling() {
        let floor = Duration::from_millis(100);
        // A short path keeps the floor: what the link did before.
        assert_eq!(resend_timeout(0.001, 0.0005, floor), floor);
        // 200 ms with little variation: SRTT + 4 RTTVAR.
        let rto = resend_timeout(0.2, 0.01, floor);
        assert!((rto.as_secs_f64() - 0.24).abs() < 1e-9, "{rto:?}");
        // No variation at all still leaves the clock's granularity.
        let rto = resend_timeout(0.2, 0.0, floor);
        assert!((rto.as_secs_f64() - 0.21).abs() < 1e-9, "{rto:?}");
        // Jitter larger than the round trip: twice the round trip, here below the floor.
        assert_eq!(resend_timeout(0.01, 0.05, floor), floor);
        assert!((resend_timeout(0.08, 0.05, floor).as_secs_f64() - 0.16).abs() < 1e-9);
        // A very long or erratic path stops at the ceiling.
        assert_eq!(resend_timeout(1.5, 0.5, floor), MAX_RESEND_TIMEOUT);
        assert_eq!(resend_timeout(f64::NAN, 0.0, floor), floor);
    }

    /// Over a 200 ms round trip, reliable messages sent once the round trip is known are
    /// not sent twice (a fixed 100 ms resend time sent every one of them again).
    #[test]
    fn a_long_round_trip_does_not_resend_what_arrives() {
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        // Idle long enough for a few pings to measure the path.
        run_idle(&mut a, &mut b, Duration::from_millis(100), 5);
        let before = a.stats().resent;
        let start = Duration::from_secs(5);
        for i in 0..20u8 {
            a.queue(0, TransferMode::Reliable, &[i]).unwrap();
        }
        let mut to_b: InFlight = Vec::new();
        let mut to_a: InFlight = Vec::new();
        let mut out = Vec::new();
        let mut got = Vec::new();
        for ms in 0..3_000u64 {
            let now = start + Duration::from_millis(ms);
            for (link, queue, sink) in [
                (&mut a, &mut to_a, None),
                (&mut b, &mut to_b, Some(&mut got)),
            ] {
                deliver_due(link, queue, now, &mut out);
                if let Some(sink) = sink {
                    sink.append(&mut out);
                }
                out.clear();
            }
            let one_way = Duration::from_millis(100);
            for (link, queue) in [(&mut a, &mut to_b), (&mut b, &mut to_a)] {
                if link.next_due() <= now {
                    let sent = link.flush(now).unwrap();
                    queue.extend(sent.into_iter().map(|d| (now + one_way, d)));
                }
            }
        }
        assert_eq!(got.len(), 20, "every message arrived");
        assert_eq!(
            a.stats().resent,
            before,
            "nothing was sent twice over a 200 ms round trip"
        );
    }

    /// Behind a 256 kbit/s link whose queue holds one second (the simulator's), a
    /// megabyte arrives whole in at most twice the ideal time, with a handful of resends:
    /// the pacer keeps about a path's worth queued instead of a whole window, which would
    /// overflow the queue and be resent again and again.
    #[test]
    fn a_megabyte_through_a_narrow_link_arrives_with_few_resends() {
        use crate::core::simulate::{Conditions, Fate, Shaper};
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        let narrow = Conditions::parse("bandwidth=256kbit latency=20ms").unwrap();
        let mut up = Shaper::new(narrow.outbound.clone(), Some(1));
        let one_way = Duration::from_millis(20);
        let origin = std::time::Instant::now();
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (mut to_a, mut to_b): (InFlight, InFlight) = (Vec::new(), Vec::new());
        let (mut at_b, mut out) = (Vec::new(), Vec::new());
        let mut dropped = 0;
        let mut done_at = None;
        for step in 0..120_000u64 {
            let now = Duration::from_millis(step);
            if step == 2_000 {
                // After a few pings measured the path, as a game's first seconds would.
                a.queue(2, TransferMode::Reliable, &big).unwrap();
            }
            for (link, queue, got) in [
                (&mut a, &mut to_a, &mut out),
                (&mut b, &mut to_b, &mut at_b),
            ] {
                deliver_due(link, queue, now, got);
            }
            out.clear();
            if a.next_due() <= now {
                for d in a.flush(now).unwrap() {
                    match up.judge(d.len(), origin + now) {
                        Fate::Deliver(after, _) => to_b.push((now + after, d)),
                        Fate::Drop(_) => dropped += 1,
                    }
                }
            }
            if b.next_due() <= now {
                to_a.extend(
                    b.flush(now)
                        .unwrap()
                        .into_iter()
                        .map(|d| (now + one_way, d)),
                );
            }
            if !at_b.is_empty() {
                done_at = Some(now - Duration::from_secs(2));
                break;
            }
        }
        let took = done_at.expect("the megabyte arrived within two minutes");
        let ideal = Duration::from_secs_f64(1_000_000.0 * 8.0 / 256_000.0);
        let resent = a.stats().resent;
        assert!(
            took <= ideal * 2 && resent <= 30,
            "{took:?} for an ideal {ideal:?}; {resent} resends, {dropped} datagrams dropped by the full queue"
        );
    }

    /// Through the bench's lossy path (20 % loss, 5 % duplicates, 10 % held back 20-60 ms,
    /// loopback otherwise), a small reliable message sent every frame and answered comes
    /// back in about one resend time at the median: pacing and the resend-time bounds
    /// must not slow a game's traffic that does not fill the path.
    #[test]
    fn a_games_traffic_through_loss_keeps_its_round_trip() {
        use crate::core::simulate::{Conditions, Fate, Shaper};
        let lossy = Conditions::parse("loss=20% duplicate=5% reorder=10%").unwrap();
        let mut up = Shaper::new(lossy.outbound.clone(), Some(5));
        let mut down = Shaper::new(lossy.outbound.clone(), Some(6));
        let origin = std::time::Instant::now();
        let mut a = Link::new(LinkConfig::default());
        let mut b = Link::new(LinkConfig::default());
        let (mut to_a, mut to_b): (InFlight, InFlight) = (Vec::new(), Vec::new());
        let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
        let mut sent_at = Vec::new();
        let mut rtts = Vec::new();
        for ms in 0..30_000u64 {
            let now = Duration::from_millis(ms);
            if ms % 16 == 0 && ms < 25_000 {
                a.queue(
                    0,
                    TransferMode::Reliable,
                    &(sent_at.len() as u32).to_le_bytes(),
                )
                .unwrap();
                sent_at.push(now);
            }
            deliver_due(&mut a, &mut to_a, now, &mut at_a);
            deliver_due(&mut b, &mut to_b, now, &mut at_b);
            for m in at_b.drain(..) {
                if let Incoming::Data { data, .. } = m {
                    b.queue(0, TransferMode::Reliable, &data).unwrap();
                }
            }
            for m in at_a.drain(..) {
                if let Incoming::Data { data, .. } = m {
                    let i = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
                    rtts.push(now - sent_at[i]);
                }
            }
            for (link, shaper, queue) in
                [(&mut a, &mut up, &mut to_b), (&mut b, &mut down, &mut to_a)]
            {
                if link.next_due() <= now {
                    for d in link.flush(now).unwrap() {
                        if let Fate::Deliver(first, second) = shaper.judge(d.len(), origin + now) {
                            if let Some(again) = second {
                                queue.push((now + again, d.clone()));
                            }
                            queue.push((now + first, d));
                        }
                    }
                }
            }
        }
        rtts.sort();
        let p50 = rtts[rtts.len() / 2];
        assert_eq!(rtts.len(), sent_at.len(), "every message came back");
        assert!(
            p50 <= Duration::from_millis(160),
            "round trip p50 {p50:?} through loss"
        );
    }

    /// renet resends reliable messages without counting them; the link counts them for
    /// the statistics and the stats log.
    #[test]
    fn resends_are_counted() {
        let mut a = Link::new(LinkConfig::default());
        a.queue(0, TransferMode::Reliable, b"lost").unwrap();
        for ms in 0..=350u64 {
            let now = Duration::from_millis(ms);
            if a.next_due() <= now {
                a.flush(now).unwrap();
            }
        }
        let resent = a.stats().resent;
        assert!((2..=4).contains(&resent), "resent {resent} times in 350 ms");
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

    /// On an ordered channel a lost message holds back every later one, so it is sent
    /// again as soon as a message sent after it was acknowledged and a round trip plus a
    /// reordering window passed (RACK), not only after the resend time; without that
    /// evidence it waits for the resend time.
    #[test]
    fn a_lost_message_is_sent_again_once_a_later_one_is_acknowledged() {
        for later_arrives in [true, false] {
            let mut a = Link::new(LinkConfig::default());
            let mut b = Link::new(server());
            let mut out = Vec::new();
            // A short path: 5 ms round trip, so the resend time is its 100 ms floor.
            a.srtt = Some(0.005);
            a.update_resend_time();
            let ms = Duration::from_millis;
            a.queue(0, TransferMode::Reliable, b"lost").unwrap();
            drop(a.flush(ms(0)).unwrap());
            a.queue(0, TransferMode::Reliable, b"later").unwrap();
            for d in a.flush(ms(17)).unwrap() {
                if later_arrives {
                    b.receive(ms(18), &d, &mut room(), &mut out).unwrap();
                }
            }
            for d in b.flush(ms(40)).unwrap() {
                a.receive(ms(41), &d, &mut room(), &mut out).unwrap();
            }
            drop(a.flush(ms(42)).unwrap());
            let resent = a.stats().resent;
            if later_arrives {
                assert_eq!(resent, 1, "sent again at 42 ms, on the evidence");
            } else {
                assert_eq!(resent, 0, "no evidence: it waits for the resend time");
                drop(a.flush(ms(101)).unwrap());
                assert!(a.stats().resent >= 1, "then it is sent again");
            }
        }
    }

    /// A client that pings in every datagram, a thousand a second, draws at most four
    /// answers a second from the server, not one per datagram: answering is no amplifier
    /// (each answer carries the acknowledgement ranges the client's datagrams made).
    #[test]
    fn a_server_answers_a_ping_in_every_datagram_at_most_four_times_a_second() {
        let mut attacker = Link::new(LinkConfig::default());
        let mut b = Link::new(server());
        let mut out = Vec::new();
        let (mut sent_in, mut sent_out) = (0, 0);
        for ms in 0..1_000u64 {
            let now = Duration::from_millis(ms);
            attacker
                .renet
                .send_message(CONTROL_UNRELIABLE, Control::Ping(ms as u32).encode());
            for d in attacker.flush(now).unwrap() {
                sent_in += 1;
                b.receive(now, &d, &mut room(), &mut out).unwrap();
            }
            if b.next_due() <= now {
                sent_out += b.flush(now).unwrap().len();
            }
        }
        assert_eq!(sent_in, 1_000);
        assert!(
            (3..=6).contains(&sent_out),
            "{sent_out} datagrams answered 1,000 pings in a second"
        );
    }
}
