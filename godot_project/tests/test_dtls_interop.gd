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


## Godot's own DTLS server as a game runs it: a UDPServer and a DTLSServer polled once
## per frame (see DTLSServer's docs), echoing every packet with a prefix.
class GodotServer:
	var udp_server := UDPServer.new()
	var dtls_server := DTLSServer.new()
	var peers: Array[PacketPeerDTLS] = []
	var received: Array = []
	## After Godot's side closes, our client answers its close_notify with one of its own
	## (RFC 5246 7.2.1); Godot's UDPServer no longer knows the address and offers that
	## datagram as a new connection. Handing it to DTLSServer would only make mbedTLS log
	## "unexpected message", so from then on new connections are read, not accepted.
	var closed := false
	var content_types_after_close: Array = []

	func start(tls: TLSOptions) -> int:
		var err := udp_server.listen(0, "127.0.0.1")
		if err != OK:
			return err
		return dtls_server.setup(tls)

	func port() -> int:
		return udp_server.get_local_port()

	func pump() -> void:
		udp_server.poll()
		while udp_server.is_connection_available():
			var udp_peer := udp_server.take_connection()
			if closed:
				while udp_peer.get_available_packet_count() > 0:
					content_types_after_close.append(udp_peer.get_packet()[0])
				continue
			var dtls_peer := dtls_server.take_connection(udp_peer)
			# The first hello only gets a cookie; that connection ends here by design.
			if dtls_peer.get_status() == PacketPeerDTLS.STATUS_HANDSHAKING:
				peers.append(dtls_peer)
		for p in peers:
			p.poll()
			if p.get_status() != PacketPeerDTLS.STATUS_CONNECTED:
				continue
			while p.get_available_packet_count() > 0:
				var text := p.get_packet().get_string_from_utf8()
				received.append(text)
				p.put_packet(("godot echo:" + text).to_utf8_buffer())

	func close_all() -> void:
		closed = true
		for p in peers:
			if p.get_status() == PacketPeerDTLS.STATUS_CONNECTED:
				p.disconnect_from_peer()

	func stop() -> void:
		udp_server.stop()


## A DTLSPeer client and what its signals delivered.
func our_client(events: Dictionary) -> DTLSPeer:
	var client := DTLSPeer.new()
	add_child(client)
	events.merge({"connected": 0, "failed": [], "packets": [], "disconnected": []})
	client.peer_connected.connect(func(_id: int) -> void: events["connected"] += 1)
	client.connection_failed.connect(func(reason: String) -> void: events["failed"].append(reason))
	client.packet_received.connect(func(_id: int, data: PackedByteArray) -> void: events["packets"].append(data.get_string_from_utf8()))
	client.peer_disconnected.connect(func(_id: int, reason: String) -> void: events["disconnected"].append(reason))
	return client


func test_our_client_against_godot_dtls_server() -> void:
	var pair := godot_identity()
	var godot := GodotServer.new()
	assert_eq(godot.start(TLSOptions.server(pair[0], pair[1])), OK)
	var events := {}
	var client := our_client(events)
	var err := client.connect_to_server("127.0.0.1", godot.port(),
		{"pinned_sha256": ident["sha256_fingerprint"], "handshake_timeout": 5.0})
	assert_eq(err, OK)
	var settled := func() -> bool:
		godot.pump()
		return events["connected"] > 0 or events["failed"].size() > 0
	var ok := await wait_until(settled, 8.0)
	if not assert_true(ok, "handshake finished"): return
	if not assert_eq(events["connected"], 1, "our client connected to Godot's server: %s" % [events["failed"]]): return
	assert_eq(client.send(1, "from netkit".to_utf8_buffer()), OK)
	var echoed := func() -> bool:
		godot.pump()
		return events["packets"].size() > 0
	ok = await wait_until(echoed, 5.0)
	assert_true(ok, "our client got Godot's echo")
	assert_eq(godot.received, ["from netkit"])
	assert_eq(events["packets"], ["godot echo:from netkit"])
	# Godot's side closes; our client hears close_notify.
	godot.close_all()
	var closed := func() -> bool:
		godot.pump()
		return events["disconnected"].size() > 0
	ok = await wait_until(closed, 3.0)
	assert_true(ok, "our client saw Godot's server close")
	assert_eq(client.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	await wait_frames(3)
	godot.pump()
	for content_type: int in godot.content_types_after_close:
		assert_eq(content_type, 21, "only an alert record (close_notify) follows the close")
	godot.stop()


# --- RSA keys from Godot's Crypto, both ways (issue 9) -------------------------------

const PACKETS := 100


## An identity made the way a Godot game makes one: `Crypto.generate_rsa()` and a
## self-signed certificate from `Crypto.generate_self_signed_certificate()`.
func rsa_identity(bits: int) -> Dictionary:
	var crypto := Crypto.new()
	var key := crypto.generate_rsa(bits)
	var cert := crypto.generate_self_signed_certificate(key, "CN=localhost,O=netkit test,C=IT")
	return {"key": key, "cert": cert, "sha256": sha256_of(cert)}


## SHA-256 of a certificate's DER, as hex: what "pinned_sha256" takes.
func sha256_of(cert: X509Certificate) -> String:
	var pem := cert.save_to_string()
	var body := pem.get_slice("-----BEGIN CERTIFICATE-----", 1).get_slice("-----END CERTIFICATE-----", 0)
	var ctx := HashingContext.new()
	ctx.start(HashingContext.HASH_SHA256)
	ctx.update(Marshalls.base64_to_raw(body.replace("\n", "").strip_edges()))
	return ctx.finish().hex_encode()


## Godot's PacketPeerDTLS client, verifying our RSA server's certificate as its trusted
## CA, sends PACKETS packets and receives PACKETS from the server.
func godot_client_against_rsa_server(bits: int) -> void:
	var id := rsa_identity(bits)
	var server := DTLSPeer.new()
	add_child(server)
	var ids := []
	var at_server := []
	server.peer_connected.connect(func(i: int) -> void: ids.append(i))
	server.packet_received.connect(func(_i: int, d: PackedByteArray) -> void: at_server.append(d.get_string_from_utf8()))
	if not assert_eq(server.start_server(0, {"certificate": id["cert"], "private_key": id["key"],
			"bind_address": "127.0.0.1"}), OK, "RSA-%d key from Crypto accepted" % bits): return
	var udp := PacketPeerUDP.new()
	assert_eq(udp.connect_to_host("127.0.0.1", server.get_local_port()), OK)
	var dtls := PacketPeerDTLS.new()
	assert_eq(dtls.connect_to_peer(udp, "localhost", TLSOptions.client(id["cert"])), OK)
	var handshake_over := func() -> bool:
		dtls.poll()
		return dtls.get_status() != PacketPeerDTLS.STATUS_HANDSHAKING
	if not assert_true(await wait_until(handshake_over, 10.0), "handshake finished"): return
	if not assert_eq(dtls.get_status(), PacketPeerDTLS.STATUS_CONNECTED, "Godot's client connected to our RSA-%d server" % bits): return
	if not assert_true(await wait_until(func() -> bool: return ids.size() == 1), "our server saw it"): return
	for i in PACKETS:
		assert_eq(dtls.put_packet(("up %d" % i).to_utf8_buffer()), OK)
	assert_true(await wait_until(func() -> bool: return at_server.size() >= PACKETS, 5.0),
		"our server received %d of %d" % [at_server.size(), PACKETS])
	for i in PACKETS:
		assert_eq(server.send(ids[0], ("down %d" % i).to_utf8_buffer()), OK)
	var at_client := []
	var read_all := func() -> bool:
		dtls.poll()
		while dtls.get_available_packet_count() > 0:
			at_client.append(dtls.get_packet().get_string_from_utf8())
		return at_client.size() >= PACKETS
	assert_true(await wait_until(read_all, 5.0), "Godot's client received %d of %d" % [at_client.size(), PACKETS])
	at_server.sort()
	at_client.sort()
	var want_up := range(PACKETS).map(func(i: int) -> String: return "up %d" % i)
	var want_down := range(PACKETS).map(func(i: int) -> String: return "down %d" % i)
	want_up.sort()
	want_down.sort()
	assert_eq(at_server, want_up)
	assert_eq(at_client, want_down)
	dtls.disconnect_from_peer()
	server.close()


func test_godot_client_against_our_rsa_2048_server() -> void:
	await godot_client_against_rsa_server(2048)


func test_godot_client_against_our_rsa_4096_server() -> void:
	await godot_client_against_rsa_server(4096)


## Our client against Godot's DTLSServer holding an RSA key from Crypto, trusting it by
## `trust` (CA verification or a pin), PACKETS packets each way.
func our_client_against_godot_rsa_server(trust: Dictionary) -> void:
	var godot := GodotServer.new()
	assert_eq(godot.start(TLSOptions.server(rsa["key"], rsa["cert"])), OK)
	var events := {}
	var client := our_client(events)
	trust["handshake_timeout"] = 5.0
	assert_eq(client.connect_to_server("127.0.0.1", godot.port(), trust), OK)
	var settled := func() -> bool:
		godot.pump()
		return events["connected"] > 0 or events["failed"].size() > 0
	if not assert_true(await wait_until(settled, 8.0), "handshake finished"): return
	if not assert_eq(events["connected"], 1, "our client connected to Godot's RSA server: %s" % [events["failed"]]): return
	for i in PACKETS:
		assert_eq(client.send(1, ("up %d" % i).to_utf8_buffer()), OK)
	var echoed := func() -> bool:
		godot.pump()
		return events["packets"].size() >= PACKETS
	assert_true(await wait_until(echoed, 5.0), "echoes received: %d of %d" % [events["packets"].size(), PACKETS])
	assert_eq(godot.received.size(), PACKETS, "Godot's server received every packet")
	var want := range(PACKETS).map(func(i: int) -> String: return "godot echo:up %d" % i)
	var got: Array = events["packets"].duplicate()
	want.sort()
	got.sort()
	assert_eq(got, want)
	client.close()
	godot.stop()


var rsa: Dictionary


func test_our_client_against_godot_rsa_server_with_ca_verification() -> void:
	rsa = rsa_identity(2048)
	await our_client_against_godot_rsa_server({"ca_certificate": rsa["cert"], "server_name": "localhost"})


func test_our_client_against_godot_rsa_server_with_pinning() -> void:
	rsa = rsa_identity(2048)
	await our_client_against_godot_rsa_server({"pinned_sha256": rsa["sha256"]})


## A refusal says what to fix: a client trusting another certificate is told which
## option to look at, not only the alert's name.
func test_wrong_trust_against_godot_rsa_server_says_why() -> void:
	rsa = rsa_identity(2048)
	var other := rsa_identity(2048)
	var godot := GodotServer.new()
	assert_eq(godot.start(TLSOptions.server(rsa["key"], rsa["cert"])), OK)
	# mbedTLS logs the refusal it receives from our client.
	expect_error("TLS handshake error")
	for trust: Dictionary in [{"ca_certificate": other["cert"]}, {"pinned_sha256": other["sha256"]}]:
		var events := {}
		var client := our_client(events)
		trust["handshake_timeout"] = 5.0
		assert_eq(client.connect_to_server("127.0.0.1", godot.port(), trust), OK)
		var settled := func() -> bool:
			godot.pump()
			return events["connected"] > 0 or events["failed"].size() > 0
		if not assert_true(await wait_until(settled, 8.0), "handshake finished"): return
		if not assert_eq(events["failed"].size(), 1, "refused"): return
		var reason: String = events["failed"][0]
		assert_contains(reason, "ca_certificate" if trust.has("ca_certificate") else "pinned_sha256")
		client.queue_free()
	godot.stop()
