extends NetkitTest
## Bursts through DTLSPeer on loopback: 1,000 packets sent in one frame arrive complete,
## client to server and server to client, and nothing is counted as dropped. Godot's own
## DTLS delivers such a burst whole; a fixed 64-datagram queue per peer used to lose a
## third of it.

const TIMEOUT := 60.0
const BURST := 1000

var ident: Dictionary


func _ready() -> void:
	ident = DTLSPeer.generate_self_signed("localhost")


func payload(i: int) -> PackedByteArray:
	return ("burst %04d " % i + "x".repeat(80)).to_utf8_buffer()


func test_thousand_packets_in_one_frame_arrive_both_ways() -> void:
	var server := DTLSPeer.new()
	var client := DTLSPeer.new()
	add_child(server)
	add_child(client)
	var at_server := {}
	var at_client := {}
	var server_ids := []
	server.peer_connected.connect(func(id: int) -> void: server_ids.append(id))
	server.packet_received.connect(func(_id: int, data: PackedByteArray) -> void: at_server[data] = true)
	client.packet_received.connect(func(_id: int, data: PackedByteArray) -> void: at_client[data] = true)
	assert_eq(server.start_server(0, {
		"certificate": ident["certificate"],
		"private_key": ident["private_key"],
		"bind_address": "127.0.0.1",
	}), OK)
	assert_eq(client.connect_to_server("127.0.0.1", server.get_local_port(),
		{"pinned_sha256": ident["sha256_fingerprint"]}), OK)
	var up := func() -> bool:
		return client.get_status() == DTLSPeer.STATUS_CONNECTED and server_ids.size() == 1
	if not assert_true(await wait_until(up, 10.0), "connected"): return

	# One frame: every send is accepted.
	var refused := 0
	for i in BURST:
		if client.send(1, payload(i)) != OK:
			refused += 1
	assert_eq(refused, 0, "client sends refused")
	assert_true(await wait_until(func() -> bool: return at_server.size() >= BURST, 20.0),
		"server received %d of %d" % [at_server.size(), BURST])
	assert_eq(at_server.size(), BURST)

	refused = 0
	for i in BURST:
		if server.send(server_ids[0], payload(i)) != OK:
			refused += 1
	assert_eq(refused, 0, "server sends refused")
	assert_true(await wait_until(func() -> bool: return at_client.size() >= BURST, 20.0),
		"client received %d of %d" % [at_client.size(), BURST])
	assert_eq(at_client.size(), BURST)
	assert_eq(server.get_stats()["inbound_drops"], 0)
	assert_eq(client.get_stats()["inbound_drops"], 0)
	client.close()
	server.close()
