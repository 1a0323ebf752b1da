## DTLS handshakes through a lossy path, Godot's own DTLS against DTLSPeer, driven by the
## Rust bench (rust/tools/bench/dtls_lossy_runs.rs). The bench process runs the lossy UDP
## relay (rust/test_support/src/relay.rs) in front of --port; this scene listens on --port and
## connects --clients clients to --relay, at most --parallel at a time. A client counts as
## completed when it is connected within --timeout seconds of its connect call, as
## DTLSPeer's `handshake_timeout` would allow; otherwise it is given up. Prints one line
## `BENCH {json}` and quits.
##
## Arguments after `--`:
##   --impl=godot     Godot's UDPServer + DTLSServer and PacketPeerDTLS clients verifying
##                    the certificate, everything polled once per frame (a game's _process).
##   --impl=dtlspeer  one DTLSPeer server and DTLSPeer client nodes pinning its fingerprint.
##   --port=P --relay=R --clients=100 --parallel=20 --timeout=10
extends Node

const Proc := preload("res://bench/proc_info.gd")

var impl := "dtlspeer"
var port := 0
var relay := 0
var clients := 100
var parallel := 20
var timeout_usec := 10_000_000

var ident: Dictionary
var started := 0
var connect_usec: PackedInt64Array = []
var started_at: PackedInt64Array = []
## 0 running, 1 connected in time, 2 failed or given up.
var state: PackedByteArray = []
var failures := {}
var finished := false

# Godot's DTLS
var tls_client: TLSOptions
var udp_server: UDPServer
var dtls_server: DTLSServer
var server_peers: Array[PacketPeerDTLS] = []
var godot_clients: Array[PacketPeerDTLS] = []

# DTLSPeer
var server: Node = null
var peer_clients: Array[Node] = []


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		var kv: PackedStringArray = arg.trim_prefix("--").split("=", true, 1)
		if kv.size() != 2:
			continue
		match kv[0]:
			"impl": impl = kv[1]
			"port": port = int(kv[1])
			"relay": relay = int(kv[1])
			"clients": clients = int(kv[1])
			"parallel": parallel = int(kv[1])
			"timeout": timeout_usec = int(float(kv[1]) * 1_000_000)
	if not ClassDB.class_exists("DTLSPeer"):
		_report("the DTLSPeer class is not registered: the netkit extension did not load")
		return
	ident = DTLSPeer.generate_self_signed("localhost")
	connect_usec.resize(clients)
	started_at.resize(clients)
	state.resize(clients)
	var err := _start_godot_server() if impl == "godot" else _start_peer_server()
	if not err.is_empty():
		_report(err)


func _process(_delta: float) -> void:
	if finished:
		return
	var now := Time.get_ticks_usec()
	while started < clients and _running() < parallel:
		_start_client(started)
		started += 1
	if impl == "godot":
		_poll_godot()
	for i in started:
		if state[i] == 0 and now - started_at[i] > timeout_usec:
			_give_up(i, "not connected within the timeout")
	if started >= clients and _running() == 0:
		_report("")


func _running() -> int:
	var n := 0
	for i in started:
		if state[i] == 0:
			n += 1
	return n


func _connected(i: int) -> void:
	if state[i] != 0:
		return
	state[i] = 1
	connect_usec[i] = Time.get_ticks_usec() - started_at[i]


func _give_up(i: int, why: String) -> void:
	if state[i] != 0:
		return
	state[i] = 2
	failures[why] = failures.get(why, 0) + 1
	if impl == "godot":
		godot_clients[i].disconnect_from_peer()
	else:
		peer_clients[i].close()


func _start_client(i: int) -> void:
	started_at[i] = Time.get_ticks_usec()
	if impl == "godot":
		var udp := PacketPeerUDP.new()
		udp.connect_to_host("127.0.0.1", relay)
		var c := PacketPeerDTLS.new()
		godot_clients.append(c)
		if c.connect_to_peer(udp, "localhost", tls_client) != OK:
			_give_up(i, "connect_to_peer failed")
		return
	var c: Node = ClassDB.instantiate("DTLSPeer")
	add_child(c)
	peer_clients.append(c)
	c.peer_connected.connect(func(_id: int) -> void: _connected(i))
	c.connection_failed.connect(func(reason: String) -> void: _give_up(i, reason))
	var err: int = c.connect_to_server("127.0.0.1", relay, {
		"pinned_sha256": ident["sha256_fingerprint"],
		"handshake_timeout": timeout_usec / 1_000_000.0,
	})
	if err != OK:
		_give_up(i, "connect_to_server: %s" % error_string(err))


# --- Godot's own DTLS -------------------------------------------------------------

func _start_godot_server() -> String:
	var key := CryptoKey.new()
	var cert := X509Certificate.new()
	if key.load_from_string(ident["private_key"]) != OK or cert.load_from_string(ident["certificate"]) != OK:
		return "Godot could not load the generated certificate or key"
	tls_client = TLSOptions.client(cert)
	udp_server = UDPServer.new()
	udp_server.max_pending_connections = clients * 4 + 16
	if udp_server.listen(port, "127.0.0.1") != OK:
		return "UDPServer.listen(%d) failed" % port
	dtls_server = DTLSServer.new()
	if dtls_server.setup(TLSOptions.server(key, cert)) != OK:
		return "DTLSServer.setup failed"
	return ""


## One poll of everything, as a game's _process would do it; connected clients and
## server peers keep being polled, as a game keeps its connections.
func _poll_godot() -> void:
	udp_server.poll()
	while udp_server.is_connection_available():
		var p := dtls_server.take_connection(udp_server.take_connection())
		# The first hello only gets a cookie; that connection ends here by design.
		if p.get_status() == PacketPeerDTLS.STATUS_HANDSHAKING:
			server_peers.append(p)
	for p in server_peers:
		p.poll()
	for i in godot_clients.size():
		var c := godot_clients[i]
		if state[i] == 2:
			continue
		c.poll()
		var s := c.get_status()
		if s == PacketPeerDTLS.STATUS_CONNECTED:
			_connected(i)
		elif s != PacketPeerDTLS.STATUS_HANDSHAKING and state[i] == 0:
			_give_up(i, "PacketPeerDTLS status %d" % s)


# --- DTLSPeer ---------------------------------------------------------------------

func _start_peer_server() -> String:
	server = ClassDB.instantiate("DTLSPeer")
	add_child(server)
	var err: int = server.start_server(port, {
		"certificate": ident["certificate"],
		"private_key": ident["private_key"],
		"bind_address": "127.0.0.1",
		"max_clients": clients * 2,
		"handshake_timeout": timeout_usec / 1_000_000.0,
	})
	if err != OK:
		return "DTLSPeer.start_server(%d) failed: %s" % [port, error_string(err)]
	return ""


## Connected sessions the server holds at the end: a peer it announced whose client never
## finished (a phantom) would show as more server sessions than connected clients.
func _server_sessions() -> int:
	if impl == "godot":
		var n := 0
		for p in server_peers:
			if p.get_status() == PacketPeerDTLS.STATUS_CONNECTED:
				n += 1
		return n
	return int(server.get_stats().get("peers", -1))


# --- reporting --------------------------------------------------------------------

func _report(error: String) -> void:
	if finished:
		return
	finished = true
	var times: Array = []
	for i in started:
		if state[i] == 1:
			times.append(connect_usec[i] / 1000.0)
	times.sort()
	var line := {
		"mode": "lossy handshakes, %s" % impl,
		"error": error,
		"netkit_library": Proc.mapped_library("libnetkit"),
		"clients": clients,
		"completed": times.size(),
		"p50_ms": _percentile(times, 0.5),
		"p90_ms": _percentile(times, 0.9),
		"server_sessions": _server_sessions() if error.is_empty() else -1,
		"failures": failures,
	}
	print("BENCH ", JSON.stringify(line))
	get_tree().quit(0 if error.is_empty() else 1)


func _percentile(sorted: Array, q: float) -> float:
	if sorted.is_empty():
		return -1.0
	return float(sorted[mini(int(q * sorted.size()), sorted.size() - 1)])
