## DTLS benchmark runs in a headless Godot, one mode per run, driven by the Rust bench
## (rust/tools/bench/dtls_runs.rs). Each run prints one line `BENCH {json}` and quits; the
## modes that need clients from the bench process first print `READY {json}` with the
## port and the certificate fingerprint to pin.
##
## Arguments after `--`:
##   --mode=godot_handshake  Godot's DTLSServer + UDPServer and --clients PacketPeerDTLS
##                           clients in this process, all polled once per frame.
##   --mode=peer_handshake   one DTLSPeer server and --clients DTLSPeer client nodes.
##   --mode=echo_server      a DTLSPeer server echoing every packet from GDScript
##                           (packet_received -> send); ends 1.5 s after the last packet.
##   --mode=idle_server      a DTLSPeer server; reports VmRSS before listening and once
##                           --clients peers are connected (or at the time cap).
##   --clients=N, --cap=SECONDS (time cap of the run).
##
## Handshakes/s: connections completed on the client side, divided by the time from the
## first connect call to the last client seeing its connection complete.
extends Node

const Proc := preload("res://bench/proc_info.gd")

var mode := ""
var clients := 200
var cap_usec := 60_000_000

var ident: Dictionary
var start_usec := 0
var last_usec := 0
var done := 0
var finished := false
var cpu_start := 0.0

# godot_handshake
var udp_server: UDPServer
var dtls_server: DTLSServer
var server_peers: Array[PacketPeerDTLS] = []
var godot_clients: Array[PacketPeerDTLS] = []
var client_done: PackedByteArray = []

# DTLSPeer modes
var server: Node = null
var peer_clients: Array = []
var failed := 0
var first_error := ""

# echo_server
var packets := 0
var bytes := 0
var first_packet_usec := 0
var last_packet_usec := 0
var send_errors := 0

# idle_server
var rss_before_kb := 0
var reached_usec := 0


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		var kv: PackedStringArray = arg.trim_prefix("--").split("=", true, 1)
		if kv.size() != 2:
			continue
		match kv[0]:
			"mode": mode = kv[1]
			"clients": clients = int(kv[1])
			"cap": cap_usec = int(kv[1]) * 1_000_000
	if not ClassDB.class_exists("DTLSPeer"):
		_report({}, "the DTLSPeer class is not registered: the netkit extension did not load")
		return
	ident = DTLSPeer.generate_self_signed("localhost")
	process_priority = 1000
	start_usec = Time.get_ticks_usec()
	cpu_start = _cpu_seconds()
	match mode:
		"godot_handshake": _start_godot_handshake()
		"peer_handshake": _start_peer_handshake()
		"echo_server": _start_echo_server()
		"idle_server": _start_idle_server()
		_: _report({}, "unknown --mode '%s'" % mode)


func _process(_delta: float) -> void:
	if finished:
		return
	var now := Time.get_ticks_usec()
	match mode:
		"godot_handshake":
			_poll_godot()
			if done >= clients:
				_report_handshakes(false)
			elif now - start_usec > cap_usec:
				_report_handshakes(true)
		"peer_handshake":
			if done + failed >= clients:
				_report_handshakes(false)
			elif now - start_usec > cap_usec:
				_report_handshakes(true)
		"echo_server":
			if packets > 0 and now - last_packet_usec > 1_500_000:
				_report_echo(false)
			elif now - start_usec > cap_usec:
				_report_echo(true)
		"idle_server":
			if reached_usec == 0 and (done >= clients or now - start_usec > cap_usec):
				reached_usec = now
			# Let allocations settle for a second before reading VmRSS.
			if reached_usec != 0 and now - reached_usec > 1_000_000:
				_report_idle()


# --- Godot's own DTLS -------------------------------------------------------------

func _start_godot_handshake() -> void:
	var key := CryptoKey.new()
	var cert := X509Certificate.new()
	if key.load_from_string(ident["private_key"]) != OK or cert.load_from_string(ident["certificate"]) != OK:
		_report({}, "Godot could not load the generated certificate or key")
		return
	udp_server = UDPServer.new()
	udp_server.max_pending_connections = clients * 2 + 16
	if udp_server.listen(0, "127.0.0.1") != OK:
		_report({}, "UDPServer.listen failed")
		return
	dtls_server = DTLSServer.new()
	if dtls_server.setup(TLSOptions.server(key, cert)) != OK:
		_report({}, "DTLSServer.setup failed")
		return
	var port := udp_server.get_local_port()
	var tls := TLSOptions.client(cert)
	client_done.resize(clients)
	start_usec = Time.get_ticks_usec()
	for i in clients:
		var udp := PacketPeerUDP.new()
		udp.connect_to_host("127.0.0.1", port)
		var c := PacketPeerDTLS.new()
		if c.connect_to_peer(udp, "localhost", tls) != OK:
			failed += 1
		godot_clients.append(c)


## One poll of everything, as a game's _process would do it.
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
		if client_done[i] != 0:
			continue
		var c := godot_clients[i]
		c.poll()
		var s := c.get_status()
		if s == PacketPeerDTLS.STATUS_CONNECTED:
			client_done[i] = 1
			done += 1
			last_usec = Time.get_ticks_usec()
		elif s != PacketPeerDTLS.STATUS_HANDSHAKING:
			client_done[i] = 2
			failed += 1
			if first_error.is_empty():
				first_error = "PacketPeerDTLS status %d" % s
	if done + failed >= clients and failed > 0:
		_report_handshakes(false)


# --- DTLSPeer ---------------------------------------------------------------------

func _new_peer_server(extra: Dictionary) -> int:
	server = ClassDB.instantiate("DTLSPeer")
	add_child(server)
	var opts := {
		"certificate": ident["certificate"],
		"private_key": ident["private_key"],
		"bind_address": "127.0.0.1",
		"max_clients": 2000,
		"max_pending_handshakes": 256,
		"handshake_timeout": 30.0,
		"idle_timeout": 600.0,
	}
	opts.merge(extra, true)
	var err: int = server.start_server(0, opts)
	if err != OK:
		_report({}, "DTLSPeer.start_server failed: %s" % error_string(err))
	return err


func _start_peer_handshake() -> void:
	if _new_peer_server({}) != OK:
		return
	var port: int = server.get_local_port()
	start_usec = Time.get_ticks_usec()
	for i in clients:
		var c: Node = ClassDB.instantiate("DTLSPeer")
		add_child(c)
		c.peer_connected.connect(func(_id: int) -> void:
			done += 1
			last_usec = Time.get_ticks_usec())
		c.connection_failed.connect(func(reason: String) -> void:
			failed += 1
			if first_error.is_empty():
				first_error = reason)
		var err: int = c.connect_to_server("127.0.0.1", port,
			{"pinned_sha256": ident["sha256_fingerprint"], "handshake_timeout": 30.0})
		if err != OK:
			failed += 1
		peer_clients.append(c)


func _start_echo_server() -> void:
	if _new_peer_server({}) != OK:
		return
	cpu_start = _cpu_seconds()
	# Raised from 256 packets / 2 ms per frame, so the dispatch budget does not cap the
	# throughput figure (stated in BENCHMARKS.md).
	server.dispatch_max_per_frame = 1_000_000
	server.dispatch_budget_usec = 16_000
	server.packet_received.connect(_on_echo_packet)
	server.peer_connected.connect(func(_id: int) -> void: done += 1)
	_ready_line({})


func _on_echo_packet(id: int, data: PackedByteArray) -> void:
	var now := Time.get_ticks_usec()
	if packets == 0:
		first_packet_usec = now
	last_packet_usec = now
	packets += 1
	bytes += data.size()
	if server.send(id, data) != OK:
		send_errors += 1


func _start_idle_server() -> void:
	rss_before_kb = Proc.status_kb("VmRSS:")
	if _new_peer_server({}) != OK:
		return
	server.peer_connected.connect(func(_id: int) -> void:
		done += 1
		last_usec = Time.get_ticks_usec())
	start_usec = Time.get_ticks_usec()
	_ready_line({"rss_before_kb": rss_before_kb})


# --- reporting --------------------------------------------------------------------

func _ready_line(extra: Dictionary) -> void:
	var line := {"port": server.get_local_port(), "fingerprint": ident["sha256_fingerprint"]}
	line.merge(extra)
	print("READY ", JSON.stringify(line))


func _report_handshakes(capped: bool) -> void:
	var span := float(maxi(last_usec - start_usec, 1)) / 1_000_000.0
	var error := ""
	if done == 0:
		error = "no handshake completed (%d failed, first: %s)" % [failed, first_error]
	_report({
		"completed": done,
		"failed": failed,
		"capped": capped,
		"seconds": span,
		"handshakes_per_sec": float(done) / span,
		"cpu_seconds": _cpu_seconds() - cpu_start,
		"first_error": first_error,
	}, error)


func _report_echo(capped: bool) -> void:
	var span := float(maxi(last_packet_usec - first_packet_usec, 1)) / 1_000_000.0
	_report({
		"connected": done,
		"packets": packets,
		"bytes": bytes,
		"seconds": span,
		"packets_per_sec": float(packets) / span,
		"send_errors": send_errors,
		"cpu_seconds": _cpu_seconds() - cpu_start,
		"capped": capped,
	}, "no packet arrived" if packets == 0 else "")


func _report_idle() -> void:
	var after := Proc.status_kb("VmRSS:")
	var stats: Dictionary = server.get_stats()
	_report({
		"connected": done,
		"peers": stats.get("peers", -1),
		"rss_before_kb": rss_before_kb,
		"rss_after_kb": after,
		"seconds": float(last_usec - start_usec) / 1_000_000.0,
	}, "")


func _report(figures: Dictionary, error: String) -> void:
	if finished:
		return
	finished = true
	var line := {
		"mode": mode,
		"error": error,
		"netkit_library": Proc.mapped_library("libnetkit"),
		"vm_hwm_kb": Proc.status_kb("VmHWM:"),
	}
	line.merge(figures)
	print("BENCH ", JSON.stringify(line))
	get_tree().quit(0 if error.is_empty() else 1)


## User + system CPU time of this process so far (all threads), from /proc/self/stat
## (clock ticks, 100 per second on Linux); 0 where /proc is missing.
func _cpu_seconds() -> float:
	var f := FileAccess.open("/proc/self/stat", FileAccess.READ)
	if f == null:
		return 0.0
	var l := f.get_line()
	var fields := l.substr(l.rfind(")") + 2).split(" ")
	return (int(fields[11]) + int(fields[12])) / 100.0
