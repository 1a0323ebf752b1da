extends NetkitTest
## DTLSPeer against hostile senders, inside Godot (issue 8): chains of empty handshake
## fragments, which used to overflow a worker thread's stack and kill the whole process
## (highest offset first) or pin the workers for seconds (lowest offset first). Sent
## from fresh addresses and from the address of a connected Godot client, while a
## DTLSPeer client and a Godot PacketPeerDTLS client keep echoing through the server.

const TIMEOUT := 90.0
## Records per attack datagram (25 bytes each, well under the 8 KiB datagram limit).
const PER_DATAGRAM := 300

var ident: Dictionary


func _ready() -> void:
	ident = DTLSPeer.generate_self_signed("localhost")


## `count` handshake records of one `count`-byte message (type 16, `message_seq`),
## each claiming one byte at its offset and carrying none, packed into datagrams.
static func fragment_chain(message_seq: int, count: int, reverse: bool, first_seq: int) -> Array[PackedByteArray]:
	var template := PackedByteArray([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12,
		16, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff,
		(message_seq >> 8) & 0xff, message_seq & 0xff, 0, 0, 0, 0, 0, 1])
	var out: Array[PackedByteArray] = []
	var sent := 0
	while sent < count:
		var n := mini(PER_DATAGRAM, count - sent)
		var d := PackedByteArray()
		d.resize(n * 25)
		for i in n:
			var at := i * 25
			for b in 25:
				d[at + b] = template[b]
			var k := sent + i
			var offset := count - 1 - k if reverse else k
			var seq := first_seq + k
			for b in 6:
				d[at + 5 + b] = (seq >> (8 * (5 - b))) & 0xff
			d[at + 19] = (offset >> 16) & 0xff
			d[at + 20] = (offset >> 8) & 0xff
			d[at + 21] = offset & 0xff
		out.append(d)
		sent += n
	return out


## The first datagram a DTLSPeer client sends: a real ClientHello.
func capture_client_hello() -> PackedByteArray:
	var trap := PacketPeerUDP.new()
	assert_eq(trap.bind(0, "127.0.0.1"), OK)
	var prober := DTLSPeer.new()
	add_child(prober)
	prober.connect_to_server("127.0.0.1", trap.get_local_port(), {"pinned_sha256": ident["sha256_fingerprint"]})
	await wait_until(func() -> bool: return trap.get_available_packet_count() > 0, 5.0)
	var hello := trap.get_packet()
	prober.close()
	prober.queue_free()
	trap.close()
	return hello


func test_fragment_chains_neither_crash_nor_stall_the_server() -> void:
	var server := DTLSPeer.new()
	add_child(server)
	server.packet_received.connect(func(id: int, data: PackedByteArray) -> void: server.send(id, data))
	assert_eq(server.start_server(0, {
		"certificate": ident["certificate"],
		"private_key": ident["private_key"],
		"bind_address": "127.0.0.1",
	}), OK)
	var port := server.get_local_port()

	# Echoing client 1: a DTLSPeer.
	var client := DTLSPeer.new()
	add_child(client)
	var pings := {}  # sequence number -> send time (usec)
	var rtts: Array[int] = []
	client.packet_received.connect(func(_id: int, data: PackedByteArray) -> void:
		var n := data.decode_u32(0)
		if pings.has(n):
			rtts.append(Time.get_ticks_usec() - pings[n])
			pings.erase(n))
	client.connect_to_server("127.0.0.1", port, {"pinned_sha256": ident["sha256_fingerprint"]})
	if not assert_true(await wait_until(func() -> bool: return client.get_status() == DTLSPeer.STATUS_CONNECTED), "client connected"):
		return

	# Echoing client 2: Godot's PacketPeerDTLS, whose UDP socket the attack also uses.
	var udp := PacketPeerUDP.new()
	assert_eq(udp.connect_to_host("127.0.0.1", port), OK)
	var dtls := PacketPeerDTLS.new()
	var cert := X509Certificate.new()
	cert.load_from_string(ident["certificate"])
	assert_eq(dtls.connect_to_peer(udp, "localhost", TLSOptions.client(cert)), OK)
	var handshake_over := func() -> bool:
		dtls.poll()
		return dtls.get_status() != PacketPeerDTLS.STATUS_HANDSHAKING
	await wait_until(handshake_over, 5.0)
	if not assert_eq(dtls.get_status(), PacketPeerDTLS.STATUS_CONNECTED, "Godot's client connected"):
		return

	# Built first: the attack must reach the pending handshakes before they time out.
	var reverse := fragment_chain(1, 30000, true, 1000)
	var forward := fragment_chain(1, 5000, false, 40000)
	var reverse_connected := fragment_chain(4, 30000, true, 1000)
	var forward_connected := fragment_chain(4, 5000, false, 40000)
	var hello := await capture_client_hello()
	var attackers: Array[PacketPeerUDP] = []
	for i in 2:
		var a := PacketPeerUDP.new()
		a.connect_to_host("127.0.0.1", port)
		a.put_packet(hello)
		attackers.append(a)
	await wait_seconds(0.3)

	# Attacks: [chain, sender]. Pending handshakes wait for message 1; the connected
	# Godot client has sent messages 0 to 3.
	var attacks: Array = []
	for a in attackers:
		attacks.append([reverse, a])
	attacks.append([reverse_connected, udp])
	for a in attackers:
		attacks.append([forward, a])
	attacks.append([forward_connected, udp])
	var fragments := 2 * 30000 + 30000 + 2 * 5000 + 5000

	var seq := 0
	# Counters in a Dictionary: lambdas capture local ints by value.
	var godot := {"pings": 0, "echoes": 0, "sent_at": 0, "longest": 0}
	var read_godot := func() -> void:
		dtls.poll()
		while dtls.get_available_packet_count() > 0:
			dtls.get_packet()
			godot["echoes"] += 1
			godot["longest"] = maxi(godot["longest"], Time.get_ticks_usec() - godot["sent_at"])
	for attack: Array in attacks:
		var chain: Array[PackedByteArray] = attack[0]
		var sender: PacketPeerUDP = attack[1]
		var i := 0
		while i < chain.size():
			# A few datagrams per frame, with one ping from each client per frame.
			for k in 4:
				if i < chain.size():
					sender.put_packet(chain[i])
					i += 1
			seq += 1
			pings[seq] = Time.get_ticks_usec()
			var ping := PackedByteArray()
			ping.resize(4)
			ping.encode_u32(0, seq)
			client.send(1, ping)
			read_godot.call()
			if godot["echoes"] == godot["pings"]:
				godot["pings"] += 1
				godot["sent_at"] = Time.get_ticks_usec()
				dtls.put_packet("ping".to_utf8_buffer())
			await get_tree().process_frame
	await wait_until(func() -> bool:
		read_godot.call()
		return pings.is_empty() and godot["echoes"] == godot["pings"], 3.0)

	rtts.sort()
	var p99 := rtts[(rtts.size() - 1) * 99 / 100] if rtts.size() > 0 else -1
	print("  DTLSPeer client: %d echoes, p50 %d us, p99 %d us, max %d us; Godot client: %d of %d echoes, longest wait %d us; server %s" % [
		rtts.size(), rtts[rtts.size() / 2] if rtts.size() > 0 else -1, p99,
		rtts.back() if rtts.size() > 0 else -1, godot["echoes"], godot["pings"], godot["longest"], server.get_stats()])
	assert_eq(pings.size(), 0, "every ping of the DTLSPeer client came back")
	assert_eq(godot["echoes"], godot["pings"], "every ping of Godot's client came back")
	assert_gt(godot["pings"], 20, "Godot's client kept echoing throughout")
	assert_lt(godot["longest"], 100000, "Godot's client waited under 100 ms for each echo")
	assert_gt(rtts.size(), 60, "the DTLSPeer client kept echoing throughout (a ping a frame)")
	assert_lt(p99, 100000, "p99 round trip under 100 ms during the attacks")
	assert_eq(client.get_status(), DTLSPeer.STATUS_CONNECTED)
	assert_eq(dtls.get_status(), PacketPeerDTLS.STATUS_CONNECTED)
	assert_eq(server.get_stats()["dropped_fragments"], fragments, "every attack fragment, and nothing else, was dropped")
	assert_eq(server.get_peer_ids().size(), 2)
	dtls.disconnect_from_peer()
	for a in attackers:
		a.close()
