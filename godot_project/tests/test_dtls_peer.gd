extends NetkitTest
## DTLSPeer against itself on loopback: handshakes with every way of trusting a server,
## ids, broadcast, timeouts, limits, bad input, and freeing nodes mid-session.

const TIMEOUT := 30.0


## What one DTLSPeer's signals delivered, and whether any came off the main thread.
class Log:
	var connected: Array = []
	var disconnected: Array = []  # [id, reason]
	var packets: Array = []  # [id, data]
	var failed: PackedStringArray = []
	var off_main_thread := 0

	func watch(peer: DTLSPeer) -> void:
		peer.peer_connected.connect(_on_connected)
		peer.peer_disconnected.connect(_on_disconnected)
		peer.packet_received.connect(_on_packet)
		peer.connection_failed.connect(_on_failed)

	func _check_thread() -> void:
		if OS.get_thread_caller_id() != OS.get_main_thread_id():
			off_main_thread += 1

	func _on_connected(id: int) -> void:
		_check_thread()
		connected.append(id)

	func _on_disconnected(id: int, reason: String) -> void:
		_check_thread()
		disconnected.append([id, reason])

	func _on_packet(id: int, data: PackedByteArray) -> void:
		_check_thread()
		packets.append([id, data])

	func _on_failed(reason: String) -> void:
		_check_thread()
		failed.append(reason)


var ident: Dictionary
var logs := {}


func _ready() -> void:
	ident = DTLSPeer.generate_self_signed("localhost")


func after_each() -> void:
	for rec: Log in logs.values():
		assert_eq(rec.off_main_thread, 0, "every signal is emitted on the main thread")


func log_of(peer: DTLSPeer) -> Log:
	return logs[peer]


func new_peer() -> DTLSPeer:
	var peer := DTLSPeer.new()
	add_child(peer)
	var rec := Log.new()
	rec.watch(peer)
	logs[peer] = rec
	return peer


## A certificate server on 127.0.0.1 and a free port; `extra` adds or overrides options.
func make_server(extra := {}) -> DTLSPeer:
	var server := new_peer()
	var options := {
		"certificate": ident["certificate"],
		"private_key": ident["private_key"],
		"bind_address": "127.0.0.1",
	}
	options.merge(extra, true)
	assert_eq(server.start_server(0, options), OK, "start_server")
	return server


## A server that sends every packet back to whoever sent it.
func make_echo_server(extra := {}) -> DTLSPeer:
	var server := make_server(extra)
	server.packet_received.connect(func(id: int, data: PackedByteArray) -> void: server.send(id, data))
	return server


## A client of `server`, trusting it by its pinned fingerprint unless `options` says otherwise.
func make_client(server: DTLSPeer, options := {}) -> DTLSPeer:
	var client := new_peer()
	if options.is_empty():
		options = {"pinned_sha256": ident["sha256_fingerprint"]}
	assert_eq(client.connect_to_server("127.0.0.1", server.get_local_port(), options), OK, "connect_to_server")
	return client


## Waits until the client connected or failed; true when connected.
func connected(client: DTLSPeer, timeout_s := 5.0) -> bool:
	var rec := log_of(client)
	await wait_until(func() -> bool: return rec.connected.size() > 0 or rec.failed.size() > 0, timeout_s)
	return rec.connected.size() > 0


func failed_reason(client: DTLSPeer, timeout_s := 5.0) -> String:
	var rec := log_of(client)
	if not await wait_until(func() -> bool: return rec.failed.size() > 0 or rec.connected.size() > 0, timeout_s):
		fail("neither connected nor failed within %ss" % timeout_s)
		return ""
	if rec.connected.size() > 0:
		fail("connected, but was expected to fail")
		return ""
	return rec.failed[0]


func wait_packets(peer: DTLSPeer, n: int, timeout_s := 5.0) -> bool:
	var rec := log_of(peer)
	return await wait_until(func() -> bool: return rec.packets.size() >= n, timeout_s)


func wait_disconnects(peer: DTLSPeer, n: int, timeout_s := 5.0) -> bool:
	var rec := log_of(peer)
	return await wait_until(func() -> bool: return rec.disconnected.size() >= n, timeout_s)


func test_generate_self_signed() -> void:
	assert_true(ident["certificate"].begins_with("-----BEGIN CERTIFICATE-----"))
	assert_true(ident["private_key"].contains("PRIVATE KEY-----"))
	var fp: String = ident["sha256_fingerprint"]
	assert_eq(fp.length(), 32 * 3 - 1, fp)
	var cert := X509Certificate.new()
	assert_eq(cert.load_from_string(ident["certificate"]), OK, "Godot reads the certificate")
	var key := CryptoKey.new()
	assert_eq(key.load_from_string(ident["private_key"]), OK, "Godot reads the key")
	var other := DTLSPeer.generate_self_signed("game.example.com", PackedStringArray(["127.0.0.1"]))
	assert_ne(other["sha256_fingerprint"], fp, "a fresh key every time")


func test_handshake_and_echo() -> void:
	var server := make_echo_server()
	assert_eq(server.get_status(), DTLSPeer.STATUS_CONNECTED, "a listening server reports connected")
	assert_true(server.is_server())
	assert_gt(server.get_local_port(), 0)
	var client := make_client(server)
	assert_false(client.is_server())
	assert_eq(client.get_status(), DTLSPeer.STATUS_HANDSHAKING)
	if not assert_true(await connected(client), str(log_of(client).failed)): return
	assert_eq(log_of(client).connected, [1], "a client calls the server 1")
	assert_eq(client.get_status(), DTLSPeer.STATUS_CONNECTED)
	assert_eq(client.get_peer_ids(), PackedInt32Array([1]))
	assert_eq(client.get_peer_address(1), "127.0.0.1:%d" % server.get_local_port())
	assert_true(await wait_until(func() -> bool: return log_of(server).connected.size() == 1))
	var id: int = log_of(server).connected[0]
	assert_eq(id, 2, "the first client of a server is 2")
	assert_eq(server.get_peer_ids(), PackedInt32Array([2]))
	assert_true(server.get_peer_address(id).begins_with("127.0.0.1:"), server.get_peer_address(id))
	assert_eq(server.get_peer_address(99), "")

	assert_eq(client.send(1, "hello".to_utf8_buffer()), OK)
	var empty_and_binary := PackedByteArray([0, 255, 0, 7])
	assert_eq(client.send(1, empty_and_binary), OK)
	if not assert_true(await wait_packets(client, 2), "the echo comes back"): return
	assert_eq(log_of(client).packets[0], [1, "hello".to_utf8_buffer()])
	assert_eq(log_of(client).packets[1], [1, empty_and_binary])
	assert_eq(log_of(server).packets[0], [id, "hello".to_utf8_buffer()])

	var stats := server.get_stats()
	assert_eq(stats["peers"], 1)
	assert_eq(stats["handshakes_ok"], 1)
	assert_eq(stats["packets_in"], 2)
	assert_eq(stats["bytes_in"], 9)
	var cstats := client.get_stats()
	assert_eq(cstats["packets_out"], 2)
	assert_eq(cstats["packets_in"], 2)
	assert_eq(client.send(7, "x".to_utf8_buffer()), ERR_DOES_NOT_EXIST, "a client has only peer 1")
	assert_eq(server.send(99, "x".to_utf8_buffer()), ERR_DOES_NOT_EXIST)


func test_several_clients_get_unique_ids_and_broadcast() -> void:
	var server := make_server()
	var clients: Array[DTLSPeer] = []
	for i in 4:
		clients.append(make_client(server))
	for client in clients:
		if not assert_true(await connected(client)): return
	assert_true(await wait_until(func() -> bool: return log_of(server).connected.size() == 4))
	var ids: Array = log_of(server).connected.duplicate()
	ids.sort()
	assert_eq(ids, [2, 3, 4, 5], "unique ids from 2 up")
	assert_eq(server.get_peer_ids(), PackedInt32Array([2, 3, 4, 5]))
	assert_eq(server.broadcast("news".to_utf8_buffer()), OK)
	for client in clients:
		if not assert_true(await wait_packets(client, 1), "every client gets the broadcast"): return
		assert_eq(log_of(client).packets[0], [1, "news".to_utf8_buffer()])
	# Ids are never reused: a client that leaves and one that comes get different ids.
	clients[0].close()
	assert_true(await wait_disconnects(server, 1))
	var late := make_client(server)
	assert_true(await connected(late))
	assert_true(await wait_until(func() -> bool: return log_of(server).connected.size() == 5))
	assert_eq(log_of(server).connected[4], 6)


func test_pinned_fingerprint_right_and_wrong() -> void:
	var server := make_server()
	var good := make_client(server, {"pinned_sha256": ident["sha256_fingerprint"].to_lower().replace(":", "")})
	assert_true(await connected(good), "colons and case do not matter")
	var other := DTLSPeer.generate_self_signed("localhost")
	var bad := make_client(server, {"pinned_sha256": other["sha256_fingerprint"], "handshake_timeout": 3.0})
	var reason := await failed_reason(bad)
	assert_contains(reason, "does not match the pinned fingerprint")
	assert_eq(bad.get_status(), DTLSPeer.STATUS_ERROR)
	assert_eq(log_of(server).connected.size(), 1, "only the good client got in")


func test_ca_chain_right_missing_and_wrong_name() -> void:
	var server := make_server()
	# A self-signed certificate is its own CA; it is issued for "localhost".
	var good := make_client(server, {"ca_certificate": ident["certificate"], "server_name": "localhost"})
	assert_true(await connected(good), str(log_of(good).failed))
	var other := DTLSPeer.generate_self_signed("localhost")
	var unknown_ca := make_client(server, {"ca_certificate": other["certificate"], "server_name": "localhost"})
	assert_ne(await failed_reason(unknown_ca), "", "a certificate from an unknown CA is refused")
	var wrong_name := make_client(server, {"ca_certificate": ident["certificate"], "server_name": "evil.example.com"})
	assert_ne(await failed_reason(wrong_name), "", "a certificate for another name is refused")
	# Without server_name the host dialled (127.0.0.1) is checked, which this certificate lacks.
	var by_ip := make_client(server, {"ca_certificate": ident["certificate"]})
	assert_ne(await failed_reason(by_ip), "")


func test_godot_certificate_and_key_objects_are_accepted() -> void:
	var cert := X509Certificate.new()
	cert.load_from_string(ident["certificate"])
	var key := CryptoKey.new()
	key.load_from_string(ident["private_key"])
	# Godot writes the key back as SEC1 ("EC PRIVATE KEY"), which must load too.
	assert_true(key.save_to_string().contains("EC PRIVATE KEY"), key.save_to_string())
	var server := new_peer()
	assert_eq(server.start_server(0, {"certificate": cert, "private_key": key, "bind_address": "127.0.0.1"}), OK)
	var client := make_client(server, {"ca_certificate": cert, "server_name": "localhost"})
	assert_true(await connected(client), str(log_of(client).failed))


func test_psk_right_and_wrong() -> void:
	var key := PackedByteArray([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
	var server := new_peer()
	var err := server.start_server(0, {
		"psk_keys": {"alice": key, "bob": "00112233445566778899aabbccddeeff"},
		"bind_address": "127.0.0.1",
	})
	assert_eq(err, OK)
	server.packet_received.connect(func(id: int, data: PackedByteArray) -> void: server.send(id, data))
	var alice := make_client(server, {"psk": key, "psk_identity": "alice"})
	var bob := make_client(server, {"psk": "00112233445566778899AABBCCDDEEFF", "psk_identity": "bob"})
	assert_true(await connected(alice), str(log_of(alice).failed))
	assert_true(await connected(bob), str(log_of(bob).failed))
	alice.send(1, "psk".to_utf8_buffer())
	assert_true(await wait_packets(alice, 1))
	var wrong_key := make_client(server, {"psk": "ffff", "psk_identity": "alice", "handshake_timeout": 3.0})
	assert_ne(await failed_reason(wrong_key), "", "a wrong key is refused")
	var stranger := make_client(server, {"psk": key, "psk_identity": "mallory", "handshake_timeout": 3.0})
	assert_ne(await failed_reason(stranger), "", "an unknown identity is refused")
	assert_eq(log_of(server).connected.size(), 2)


func test_silent_port_fails_within_handshake_timeout() -> void:
	# A bound socket that is never read: the ClientHello goes nowhere.
	var silent := UDPServer.new()
	assert_eq(silent.listen(0, "127.0.0.1"), OK)
	var port := silent.get_local_port()
	var client := new_peer()
	var started := Time.get_ticks_msec()
	assert_eq(client.connect_to_server("127.0.0.1", port,
		{"pinned_sha256": ident["sha256_fingerprint"], "handshake_timeout": 1.0}), OK)
	var reason := await failed_reason(client, 5.0)
	var elapsed := (Time.get_ticks_msec() - started) / 1000.0
	assert_contains(reason, "1000 ms")
	assert_ge(elapsed, 0.9)
	assert_lt(elapsed, 2.5, "fails close to the timeout")
	assert_eq(client.get_status(), DTLSPeer.STATUS_ERROR)
	silent.stop()
	# Nothing listening at all (ICMP port unreachable) ends the same way.
	var nobody := new_peer()
	started = Time.get_ticks_msec()
	assert_eq(nobody.connect_to_server("127.0.0.1", port,
		{"pinned_sha256": ident["sha256_fingerprint"], "handshake_timeout": 1.0}), OK)
	assert_contains(await failed_reason(nobody, 5.0), "1000 ms")
	assert_lt((Time.get_ticks_msec() - started) / 1000.0, 2.5)


func test_idle_timeout_and_keepalive() -> void:
	# The server waits longer than the client, so the client's own idle timeout fires
	# first (with equal timeouts the server's close_notify could arrive first).
	var quiet_server := make_server({"idle_timeout": 2.0})
	var quiet := make_client(quiet_server, {"pinned_sha256": ident["sha256_fingerprint"], "idle_timeout": 1.0})
	# The lively pair gets a longer idle timeout than the quiet one, so a loaded machine
	# that delays a keepalive does not turn this into a race; it stays silent (apart from
	# keepalives) for well over its 2 s below.
	var lively_server := make_server({"idle_timeout": 2.0, "keepalive_interval": 0.25})
	var lively := make_client(lively_server,
		{"pinned_sha256": ident["sha256_fingerprint"], "idle_timeout": 2.0, "keepalive_interval": 0.25})
	assert_true(await connected(quiet))
	assert_true(await connected(lively))
	var started := Time.get_ticks_msec()
	assert_true(await wait_disconnects(quiet, 1, 4.0), "a silent session ends")
	assert_lt((Time.get_ticks_msec() - started) / 1000.0, 2.5)
	assert_contains(log_of(quiet).disconnected[0][1], "idle timeout")
	assert_eq(quiet.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	assert_true(await wait_disconnects(quiet_server, 1, 4.0), "the server drops it too")
	await wait_seconds(2.0)
	assert_eq(log_of(lively).disconnected, [], "keepalives hold a quiet session open")
	assert_eq(lively.get_status(), DTLSPeer.STATUS_CONNECTED)


func test_close_is_seen_promptly_by_the_other_side() -> void:
	var server := make_server()
	var a := make_client(server)
	var b := make_client(server)
	assert_true(await connected(a))
	assert_true(await connected(b))
	a.close()
	assert_eq(a.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	var started := Time.get_ticks_msec()
	assert_true(await wait_disconnects(server, 1, 2.0), "the server sees the client leave")
	assert_lt(Time.get_ticks_msec() - started, 2000, "promptly, not at the 15 s idle timeout")
	assert_contains(log_of(server).disconnected[0][1], "closed")
	await wait_frames(5)
	assert_eq(log_of(a).disconnected, [], "close() reports nothing on its own side")
	server.close()
	assert_eq(server.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	assert_true(await wait_disconnects(b, 1, 2.0), "the client sees the server close")
	assert_contains(log_of(b).disconnected[0][1], "closed")
	assert_eq(b.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	assert_eq(b.send(1, "late".to_utf8_buffer()), ERR_UNCONFIGURED)


## close() frees the port before it returns, as ENet's and PacketPeerUDP's close() do:
## a server started again on the same port in the same frame (a lobby's "host again")
## gets OK, with a client connected and another one mid-handshake when it closed.
func test_close_then_start_again_on_the_same_port() -> void:
	var server := make_server()
	var port := server.get_local_port()
	var a := make_client(server)
	assert_true(await connected(a))
	for round in 5:
		# A handshake in flight: a client has sent its first flight and not finished.
		var b := make_client(server)
		await wait_frames(round)
		server.close()
		var err := server.start_server(port, {
			"certificate": ident["certificate"],
			"private_key": ident["private_key"],
			"bind_address": "127.0.0.1",
		})
		assert_eq(err, OK, "round %d: start_server() on the port close() just freed" % round)
		assert_eq(server.get_local_port(), port)
		b.close()
	var c := make_client(server)
	assert_true(await connected(c), "a client connects to the server started again")


func test_disconnect_peer_and_reentrant_handlers() -> void:
	var server := make_server()
	# A handler that kicks the sender from inside the signal (re-entering the node).
	server.packet_received.connect(func(id: int, _data: PackedByteArray) -> void: server.disconnect_peer(id))
	var client := make_client(server)
	# A handler that closes its own node from inside peer_disconnected.
	client.peer_disconnected.connect(func(_id: int, _reason: String) -> void: client.close())
	assert_true(await connected(client))
	client.send(1, "kick me".to_utf8_buffer())
	assert_true(await wait_disconnects(client, 1, 3.0), "the kicked client hears it")
	assert_true(await wait_disconnects(server, 1, 3.0))
	assert_contains(log_of(server).disconnected[0][1], "this side")
	assert_eq(client.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	assert_eq(server.get_peer_ids(), PackedInt32Array())
	# The node can be used again after close().
	assert_eq(client.connect_to_server("127.0.0.1", server.get_local_port(),
		{"pinned_sha256": ident["sha256_fingerprint"]}), OK)
	assert_true(await wait_until(func() -> bool: return log_of(client).connected.size() == 2))


func test_max_clients_refuses_cleanly() -> void:
	var server := make_server({"max_clients": 1})
	var first := make_client(server)
	assert_true(await connected(first))
	var second := make_client(server)
	var started := Time.get_ticks_msec()
	var reason := await failed_reason(second, 5.0)
	assert_ne(reason, "")
	assert_lt(Time.get_ticks_msec() - started, 3000, "refused, not left to time out")
	assert_eq(log_of(first).disconnected, [], "the connected client is untouched")
	first.close()
	assert_true(await wait_disconnects(server, 1))
	var third := make_client(server)
	assert_true(await connected(third), "a freed slot is usable again")


func test_oversized_send_is_an_error_not_a_truncation() -> void:
	var server := make_echo_server()
	var client := make_client(server)
	assert_true(await connected(client))
	var max := client.get_max_payload()
	assert_eq(max, 1200 - 37)
	var too_big := PackedByteArray()
	too_big.resize(max + 1)
	expect_error("exceeds the 1163-byte datagram limit")
	assert_eq(client.send(1, too_big), ERR_INVALID_PARAMETER)
	assert_eq(server.broadcast(too_big), ERR_INVALID_PARAMETER)
	var just_fits := PackedByteArray()
	just_fits.resize(max)
	just_fits.fill(42)
	assert_eq(client.send(1, just_fits), OK)
	assert_true(await wait_packets(client, 1))
	assert_eq(log_of(client).packets[0][1], just_fits, "the largest payload arrives whole")
	# A bigger MTU raises the limit.
	var big_server := make_echo_server({"mtu": 4000})
	var big_client := make_client(big_server, {"pinned_sha256": ident["sha256_fingerprint"], "mtu": 4000})
	assert_eq(big_client.get_max_payload(), 4000 - 37)
	assert_true(await connected(big_client))
	too_big.fill(7)
	assert_eq(big_client.send(1, too_big), OK)
	assert_true(await wait_packets(big_client, 1))
	assert_eq(log_of(big_client).packets[0][1], too_big)


func test_freeing_connected_nodes_is_safe_and_seen() -> void:
	var server := make_echo_server()
	var client := make_client(server)
	var doomed_client := make_client(server)
	assert_true(await connected(client))
	assert_true(await connected(doomed_client))
	# Packets in flight while the node goes away are simply never delivered.
	for i in 20:
		doomed_client.send(1, ("%d" % i).to_utf8_buffer())
	logs.erase(doomed_client)
	doomed_client.free()
	assert_true(await wait_disconnects(server, 1, 2.0), "the server sees the freed client go")
	for i in 20:
		client.send(1, "ping".to_utf8_buffer())
	logs.erase(server)
	server.queue_free()
	assert_true(await wait_disconnects(client, 1, 2.0), "the client sees the freed server go")
	assert_eq(client.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	# Removing from the tree closes as well.
	var server2 := make_server()
	var client2 := make_client(server2)
	assert_true(await connected(client2))
	remove_child(server2)
	assert_eq(server2.get_status(), DTLSPeer.STATUS_DISCONNECTED)
	assert_true(await wait_disconnects(client2, 1, 2.0))
	server2.free()


func test_bad_options_are_refused_with_a_sentence() -> void:
	var peer := new_peer()
	var cert := {"certificate": ident["certificate"], "private_key": ident["private_key"]}
	expect_error("unknown option \"certifcate\"")
	assert_eq(peer.start_server(0, {"certifcate": ident["certificate"], "private_key": ident["private_key"]}), ERR_INVALID_PARAMETER)
	expect_error("\"pinned_sha256\" belongs to connect_to_server")
	assert_eq(peer.start_server(0, cert.merged({"pinned_sha256": "00"})), ERR_INVALID_PARAMETER)
	expect_error("a server needs credentials")
	assert_eq(peer.start_server(0, {}), ERR_INVALID_PARAMETER)
	expect_error("\"certificate\" needs its \"private_key\"")
	assert_eq(peer.start_server(0, {"certificate": ident["certificate"]}), ERR_INVALID_PARAMETER)
	expect_error("\"idle_timeout\" must be more than 0 seconds")
	assert_eq(peer.start_server(0, cert.merged({"idle_timeout": 0})), ERR_INVALID_PARAMETER)
	expect_error("\"max_clients\" must be an int, got String")
	assert_eq(peer.start_server(0, cert.merged({"max_clients": "5"})), ERR_INVALID_PARAMETER)
	expect_error("\"bind_address\" must be an IP address")
	assert_eq(peer.start_server(0, cert.merged({"bind_address": "localhost"})), ERR_INVALID_PARAMETER)
	expect_error("no CERTIFICATE block")
	assert_eq(peer.start_server(0, {"certificate": "junk", "private_key": ident["private_key"]}), ERR_INVALID_PARAMETER)
	expect_error("the port must be 0 to 65535")
	assert_eq(peer.start_server(70000, cert), ERR_INVALID_PARAMETER)
	# Godot's Crypto makes RSA keys (accepted, see test_dtls_interop.gd); one that does not
	# belong to the certificate is refused up front, not by every client's handshake.
	var crypto := Crypto.new()
	var rsa := crypto.generate_rsa(2048)
	var rsa_cert := crypto.generate_self_signed_certificate(crypto.generate_rsa(2048), "CN=localhost")
	expect_error("the private key does not belong to the certificate")
	assert_eq(peer.start_server(0, {"certificate": rsa_cert, "private_key": rsa}), ERR_INVALID_PARAMETER)
	expect_error("must be a PEM String or an X509Certificate, got")
	assert_eq(peer.start_server(0, {"certificate": rsa, "private_key": rsa}), ERR_INVALID_PARAMETER)

	expect_error("say how to trust the server")
	assert_eq(peer.connect_to_server("127.0.0.1", 4433, {}), ERR_INVALID_PARAMETER)
	expect_error("give only one of")
	assert_eq(peer.connect_to_server("127.0.0.1", 4433,
		{"pinned_sha256": ident["sha256_fingerprint"], "insecure_skip_verify": true}), ERR_INVALID_PARAMETER)
	expect_error("not 32 bytes of hex")
	assert_eq(peer.connect_to_server("127.0.0.1", 4433, {"pinned_sha256": "AB:CD"}), ERR_INVALID_PARAMETER)
	expect_error("\"psk\" needs \"psk_identity\"")
	assert_eq(peer.connect_to_server("127.0.0.1", 4433, {"psk": "0011"}), ERR_INVALID_PARAMETER)
	expect_error("must be hex digits")
	assert_eq(peer.connect_to_server("127.0.0.1", 4433, {"psk": "xyz", "psk_identity": "a"}), ERR_INVALID_PARAMETER)
	expect_error("\"max_clients\" belongs to start_server")
	assert_eq(peer.connect_to_server("127.0.0.1", 4433, {"insecure_skip_verify": true, "max_clients": 2}), ERR_INVALID_PARAMETER)
	expect_error("\"mtu\" must be between")
	assert_eq(peer.connect_to_server("127.0.0.1", 4433, {"insecure_skip_verify": true, "mtu": 10}), ERR_INVALID_PARAMETER)
	expect_error("the host is empty")
	assert_eq(peer.connect_to_server("", 4433, {"insecure_skip_verify": true}), ERR_INVALID_PARAMETER)
	expect_error("the port must be 1 to 65535")
	assert_eq(peer.connect_to_server("127.0.0.1", 0, {"insecure_skip_verify": true}), ERR_INVALID_PARAMETER)
	assert_eq(peer.get_status(), DTLSPeer.STATUS_DISCONNECTED, "nothing started")
	assert_eq(peer.send(1, PackedByteArray([1])), ERR_UNCONFIGURED)
	assert_eq(peer.broadcast(PackedByteArray([1])), ERR_UNCONFIGURED)

	# Running twice, and a port already taken.
	var server := make_server()
	expect_error("already serving; call close() first")
	assert_eq(server.start_server(0, cert), ERR_ALREADY_IN_USE)
	expect_error("cannot bind")
	assert_eq(peer.start_server(server.get_local_port(), cert.merged({"bind_address": "127.0.0.1"})), ERR_CANT_CREATE)
	assert_eq(peer.get_status(), DTLSPeer.STATUS_DISCONNECTED)


func test_insecure_skip_verify_connects_with_a_warning() -> void:
	var server := make_server()
	var client := make_client(server, {"insecure_skip_verify": true})
	assert_true(await connected(client))


func test_dispatch_budget_spreads_a_burst_over_frames() -> void:
	var server := make_server()
	server.dispatch_max_per_frame = 10
	var client := make_client(server)
	assert_true(await connected(client))
	assert_true(await wait_until(func() -> bool: return log_of(server).connected.size() == 1))
	for i in 50:
		client.send(1, PackedByteArray([i]))
	assert_true(await wait_until(func() -> bool: return server.get_stats()["packets_in"] == 50, 3.0), "all arrive in the core")
	var before := log_of(server).packets.size()
	await wait_frames(1)
	assert_le(log_of(server).packets.size() - before, 10, "no more than dispatch_max_per_frame per frame")
	assert_true(await wait_packets(server, 50))
	var order := []
	for p: Array in log_of(server).packets:
		order.append(p[1][0])
	assert_eq(order, range(50), "in order")


## A server and a client set up in the Inspector alone (properties, empty options), as a
## scene would; the options Dictionary still wins for the keys it names.
func test_inspector_properties_stand_in_for_options() -> void:
	var server := new_peer()
	var cert := X509Certificate.new()
	assert_eq(cert.load_from_string(ident["certificate"]), OK)
	var key := CryptoKey.new()
	assert_eq(key.load_from_string(ident["private_key"]), OK)
	server.certificate = cert
	server.private_key = key
	server.bind_address = "127.0.0.1"
	server.max_clients = 1
	assert_eq(server.start_server(0, {}), OK, "start_server from properties")
	var port := server.get_local_port()

	var client := new_peer()
	client.pinned_sha256 = ident["sha256_fingerprint"]
	assert_eq(client.connect_to_server("127.0.0.1", port, {}), OK)
	assert_true(await connected(client), "the pinned fingerprint property is used")

	# max_clients = 1 from the property: a second client is refused at once.
	var second := new_peer()
	second.pinned_sha256 = ident["sha256_fingerprint"]
	assert_eq(second.connect_to_server("127.0.0.1", port, {}), OK)
	assert_false(await connected(second), "the server is full")

	# The options' own way of trusting replaces the property's, never mixes with it: a
	# wrong pinned property and a right "pinned_sha256" option connect.
	var third := new_peer()
	third.pinned_sha256 = "00:11"
	assert_eq(third.connect_to_server("127.0.0.1", port, {"pinned_sha256": ident["sha256_fingerprint"]}), OK)
	# (refused as the server is full, but by the server: the fingerprint matched)
	assert_false((await failed_reason(third)).contains("fingerprint"), "the option's fingerprint is used")

	# Without credentials in properties or options, the error still says what is missing.
	var bare := new_peer()
	assert_eq(bare.start_server(0, {}), ERR_INVALID_PARAMETER)
	expect_error("a server needs credentials")


func test_dtls_peer_inspector_is_grouped() -> void:
	var groups: Array[String] = []
	for prop in ClassDB.class_get_property_list("DTLSPeer", true):
		if prop["usage"] & PROPERTY_USAGE_GROUP:
			groups.append(prop["name"])
		if prop["name"] == "certificate":
			assert_eq(prop["hint_string"], "X509Certificate", str(prop))
	assert_eq(groups, ["Server", "Client", "Session", "Dispatch"] as Array[String])
