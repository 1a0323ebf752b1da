extends NetkitTest
## DTLSPeer against Godot's own DTLS (mbedTLS): our client with Godot's DTLSServer, and
## Godot's PacketPeerDTLS with our server, packets both ways. Godot's objects are polled
## here every frame, as a game would in _process.

const TIMEOUT := 30.0

var ident: Dictionary
var received: Array = []
var disconnects: Array = []


func _ready() -> void:
	ident = DTLSPeer.generate_self_signed("localhost")


func godot_identity() -> Array:
	var key := CryptoKey.new()
	assert_eq(key.load_from_string(ident["private_key"]), OK, "Godot loads our ECDSA key")
	var cert := X509Certificate.new()
	assert_eq(cert.load_from_string(ident["certificate"]), OK, "Godot loads our certificate")
	return [key, cert]


func our_server() -> DTLSPeer:
	var server := DTLSPeer.new()
	add_child(server)
	var echo := func(id: int, data: PackedByteArray) -> void:
		received.append(data.get_string_from_utf8())
		server.send(id, ("echo:" + data.get_string_from_utf8()).to_utf8_buffer())
	server.packet_received.connect(echo)
	server.peer_disconnected.connect(func(id: int, reason: String) -> void: disconnects.append([id, reason]))
	var err := server.start_server(0, {
		"certificate": ident["certificate"],
		"private_key": ident["private_key"],
		"bind_address": "127.0.0.1",
	})
	assert_eq(err, OK)
	return server


## Godot's PacketPeerDTLS client against our server: connects, sends, reads the echo,
## receives a packet the server sends on its own, then disconnects.
func godot_client_round_trip(tls: TLSOptions, hostname: String) -> void:
	var server := our_server()
	var connected_ids := []
	server.peer_connected.connect(func(id: int) -> void: connected_ids.append(id))
	var udp := PacketPeerUDP.new()
	assert_eq(udp.connect_to_host("127.0.0.1", server.get_local_port()), OK)
	var dtls := PacketPeerDTLS.new()
	assert_eq(dtls.connect_to_peer(udp, hostname, tls), OK)
	var handshake_over := func() -> bool:
		dtls.poll()
		return dtls.get_status() != PacketPeerDTLS.STATUS_HANDSHAKING
	var ok := await wait_until(handshake_over, 5.0)
	if not assert_true(ok, "handshake finished"): return
	if not assert_eq(dtls.get_status(), PacketPeerDTLS.STATUS_CONNECTED, "Godot's client connected"): return
	assert_true(await wait_until(func() -> bool: return connected_ids.size() == 1), "our server saw it")
	assert_eq(dtls.put_packet("from godot".to_utf8_buffer()), OK)
	var replies: Array = []
	var read_replies := func(n: int) -> bool:
		dtls.poll()
		while dtls.get_available_packet_count() > 0:
			replies.append(dtls.get_packet().get_string_from_utf8())
		return replies.size() >= n
	var got := await wait_until(read_replies.bind(1), 5.0)
	assert_true(got, "Godot's client got our echo")
	assert_eq(received, ["from godot"])
	assert_eq(replies, ["echo:from godot"])
	assert_eq(server.send(connected_ids[0], "push".to_utf8_buffer()), OK)
	got = await wait_until(read_replies.bind(2), 5.0)
	assert_true(got, "Godot's client got a server-initiated packet")
	assert_eq(replies, ["echo:from godot", "push"])
	dtls.disconnect_from_peer()
	assert_true(await wait_until(func() -> bool: return disconnects.size() == 1, 3.0),
		"our server saw Godot's close_notify")
	if disconnects.size() == 1:
		assert_contains(disconnects[0][1], "closed")


func test_godot_client_verifying_our_certificate() -> void:
	var pair := godot_identity()
	await godot_client_round_trip(TLSOptions.client(pair[1]), "localhost")


func test_godot_client_unsafe() -> void:
	await godot_client_round_trip(TLSOptions.client_unsafe(), "localhost")


func test_our_client_against_godot_dtls_server() -> void:
	var pair := godot_identity()
	var udp_server := UDPServer.new()
	assert_eq(udp_server.listen(0, "127.0.0.1"), OK)
	var dtls_server := DTLSServer.new()
	assert_eq(dtls_server.setup(TLSOptions.server(pair[0], pair[1])), OK)
	var godot_peers: Array[PacketPeerDTLS] = []
	var godot_received: Array = []
	var client := DTLSPeer.new()
	add_child(client)
	var events := {"connected": 0, "failed": [], "packets": [], "disconnected": []}
	client.peer_connected.connect(func(_id: int) -> void: events["connected"] += 1)
	client.connection_failed.connect(func(reason: String) -> void: events["failed"].append(reason))
	client.packet_received.connect(func(_id: int, data: PackedByteArray) -> void: events["packets"].append(data.get_string_from_utf8()))
	client.peer_disconnected.connect(func(_id: int, reason: String) -> void: events["disconnected"].append(reason))
	var err := client.connect_to_server("127.0.0.1", udp_server.get_local_port(),
		{"pinned_sha256": ident["sha256_fingerprint"], "handshake_timeout": 5.0})
	assert_eq(err, OK)
	# One poll of Godot's side, as a game's _process would do it (see DTLSServer's docs).
	# After Godot's side closes, our client answers its close_notify with one of its own
	# (RFC 5246 7.2.1); Godot's UDPServer no longer knows the address and offers that
	# datagram as a new connection. Handing it to DTLSServer would only make mbedTLS log
	# "unexpected message", so from then on new connections are read, not accepted.
	var after_close := {"closed": false, "content_types": []}
	var pump := func() -> void:
		udp_server.poll()
		while udp_server.is_connection_available():
			var udp_peer := udp_server.take_connection()
			if after_close["closed"]:
				while udp_peer.get_available_packet_count() > 0:
					after_close["content_types"].append(udp_peer.get_packet()[0])
				continue
			var dtls_peer := dtls_server.take_connection(udp_peer)
			# The first hello only gets a cookie; that connection ends here by design.
			if dtls_peer.get_status() == PacketPeerDTLS.STATUS_HANDSHAKING:
				godot_peers.append(dtls_peer)
		for p in godot_peers:
			p.poll()
			if p.get_status() != PacketPeerDTLS.STATUS_CONNECTED:
				continue
			while p.get_available_packet_count() > 0:
				var text := p.get_packet().get_string_from_utf8()
				godot_received.append(text)
				p.put_packet(("godot echo:" + text).to_utf8_buffer())
	var settled := func() -> bool:
		pump.call()
		return events["connected"] > 0 or events["failed"].size() > 0
	var ok := await wait_until(settled, 8.0)
	if not assert_true(ok, "handshake finished"): return
	if not assert_eq(events["connected"], 1, "our client connected to Godot's server: %s" % [events["failed"]]): return
	assert_eq(client.send(1, "from netkit".to_utf8_buffer()), OK)
	var echoed := func() -> bool:
		pump.call()
		return events["packets"].size() > 0
	ok = await wait_until(echoed, 5.0)
	assert_true(ok, "our client got Godot's echo")
	assert_eq(godot_received, ["from netkit"])
	assert_eq(events["packets"], ["godot echo:from netkit"])
	# Godot's side closes; our client hears close_notify.
	after_close["closed"] = true
	for p in godot_peers:
		if p.get_status() == PacketPeerDTLS.STATUS_CONNECTED:
			p.disconnect_from_peer()
	var closed := func() -> bool:
		pump.call()
		return events["disconnected"].size() > 0
	ok = await wait_until(closed, 3.0)
	assert_true(ok, "our client saw Godot's server close")
	assert_eq(client.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	await wait_frames(3)
	pump.call()
	for content_type: int in after_close["content_types"]:
		assert_eq(content_type, 21, "only an alert record (close_notify) follows the close")
	udp_server.stop()
