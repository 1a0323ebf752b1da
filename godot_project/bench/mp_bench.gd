## High-level multiplayer benchmark: a dedicated server process and a client process, both
## headless Godot at 60 frames/s with SceneMultiplayer over DTLSMultiplayerPeer or
## ENetMultiplayerPeer, plain or with its DTLS layer (`--transport=dtls|enet|enet_dtls`;
## `enet_dtls` calls `host.dtls_server_setup` / `host.dtls_client_setup` right after
## `create_server` / `create_client`, before the first poll sends anything) on loopback. Driven by
## rust/bin/bench/mp_runs.rs. The server prints `READY {json}` (port, fingerprint), then
## each side prints one line `BENCH {json}` and quits (the server once the client left).
##
## Client phases: connect (`create_client` until `connected_to_server`); round trip (one
## reliable `ping` RPC per frame for --rtt-frames frames, the server answers with a
## reliable `pong`); throughput (--rpcs reliable RPCs to the server, at most 2,000 issued
## per frame and 8,000 beyond the server's last `progress` RPC, which it sends once per
## frame while the count changes). The tree's automatic multiplayer polling is off: each
## process polls its SceneMultiplayer itself and times the poll and its `rpc` calls, which
## is all the main-thread work the transport and SceneMultiplayer do.
##
## More runs for the second table (each side gets the same arguments):
##   --phases=rtt        the client stops after the round-trip phase (no throughput phase);
##                       it prints `PHASE rtt` when that phase starts, so the bench can count
##                       the bytes its relay sees from there on. --drain-frames=N: how long
##                       the client waits for the last pongs (default 120 frames).
##   --expect=N          server: once N peers are connected (and 1 s later), prints
##                       `MEM {json}` with VmRSS before `create_server` and now.
##   --role=crowd        --clients=N clients in this one process, each in its own
##                       SceneMultiplayer branch, that connect and stay (for --expect).
extends Node

const Proc := preload("res://bench/proc_info.gd")
const Rpc := preload("res://bench/mp_bench_rpc.gd")
const WINDOW := 8000
const PER_FRAME := 2000

var role := "server"
var transport := "dtls"
var rtt_frames := 600
var rpcs := 20000
var cap_usec := 120_000_000

var mp: SceneMultiplayer
var rpc_node: Rpc
var phase := "connect"
var phase_start := 0
var connect_usec := 0
var frames := 0
var sent := 0
var main_usec := 0
var start_usec := 0
var last_progress := 0
var first_count_usec := 0
var last_count_usec := 0
var finished := false
var phases := "all"
var drain_frames := 120
var expect := 0
var rss_before_kb := 0
var expect_reached_usec := 0
var crowd: Array[SceneMultiplayer] = []


func _ready() -> void:
	var args := {}
	for arg in OS.get_cmdline_user_args():
		var kv: PackedStringArray = arg.trim_prefix("--").split("=", true, 1)
		if kv.size() == 2:
			args[kv[0]] = kv[1]
	role = args.get("role", "server")
	transport = args.get("transport", "dtls")
	rtt_frames = int(args.get("rtt-frames", "600"))
	rpcs = int(args.get("rpcs", "20000"))
	cap_usec = int(args.get("cap", "120")) * 1_000_000
	phases = args.get("phases", "all")
	drain_frames = int(args.get("drain-frames", "120"))
	expect = int(args.get("expect", "0"))
	rss_before_kb = Proc.status_kb("VmRSS:")
	start_usec = Time.get_ticks_usec()
	get_tree().multiplayer_poll = false
	# A dedicated server and a game both tick at 60 frames/s; headless Godot otherwise
	# sleeps 6.9 ms between frames on top of that.
	OS.low_processor_usage_mode_sleep_usec = 0
	Engine.max_fps = 60
	mp = SceneMultiplayer.new()
	get_tree().set_multiplayer(mp, get_path())
	rpc_node = Rpc.new()
	rpc_node.name = "Rpc"
	add_child(rpc_node)
	if transport == "dtls" and not ClassDB.class_exists("DTLSMultiplayerPeer"):
		_report({}, "the netkit extension did not load")
		return
	var err: Error
	match role:
		"server": err = _start_server(args)
		"crowd": err = _start_crowd(args)
		_: err = _start_client(args)
	if err != OK:
		_report({}, "creating the %s peer failed: error %d" % [transport, err])


func _start_server(args: Dictionary) -> Error:
	var port := 0
	var fingerprint := ""
	if transport == "dtls":
		var ident := DTLSPeer.generate_self_signed("localhost")
		fingerprint = ident.sha256_fingerprint
		var s := DTLSMultiplayerPeer.new()
		var err := s.create_server(0, {"certificate": ident.certificate, "private_key": ident.private_key, "bind_address": "127.0.0.1", "max_clients": maxi(32, expect)})
		if err != OK:
			return err
		port = s.get_local_port()
		mp.multiplayer_peer = s
	elif transport == "enet" or transport == "enet_dtls":
		var s := ENetMultiplayerPeer.new()
		s.set_bind_ip("127.0.0.1")
		var err := s.create_server(int(args.get("port", "0")), maxi(32, expect))
		if err != OK:
			return err
		if transport == "enet_dtls":
			var ident := DTLSPeer.generate_self_signed("localhost")
			fingerprint = ident.certificate
			var key := CryptoKey.new()
			var cert := X509Certificate.new()
			if key.load_from_string(ident.private_key) != OK or cert.load_from_string(ident.certificate) != OK:
				return ERR_PARSE_ERROR
			err = s.host.dtls_server_setup(TLSOptions.server(key, cert))
			if err != OK:
				return err
		port = s.host.get_local_port()
		mp.multiplayer_peer = s
	else:
		return ERR_INVALID_PARAMETER
	if expect == 0:
		mp.peer_disconnected.connect(func(_id: int): _finish_server())
	phase = "serve"
	print("READY ", JSON.stringify({"port": port, "fingerprint": fingerprint}))
	return OK


## --clients peers in this process, each with its own SceneMultiplayer, as that many
## players' games would be; they only connect and stay.
func _start_crowd(args: Dictionary) -> Error:
	for i in int(args.get("clients", "50")):
		var branch := Node.new()
		branch.name = "Player%d" % i
		add_child(branch)
		var m := SceneMultiplayer.new()
		get_tree().set_multiplayer(m, branch.get_path())
		var peer: MultiplayerPeer
		if transport == "dtls":
			var c := DTLSMultiplayerPeer.new()
			var err := c.create_client("127.0.0.1", int(args.get("port", "0")), {"pinned_sha256": args.get("fingerprint", "")})
			if err != OK:
				return err
			peer = c
		else:
			var c := ENetMultiplayerPeer.new()
			var err := c.create_client("127.0.0.1", int(args.get("port", "0")))
			if err != OK:
				return err
			peer = c
		m.multiplayer_peer = peer
		crowd.append(m)
	phase = "crowd"
	return OK


func _start_client(args: Dictionary) -> Error:
	var err: Error
	phase_start = Time.get_ticks_usec()
	if transport == "dtls":
		var c := DTLSMultiplayerPeer.new()
		err = c.create_client("127.0.0.1", int(args.get("port", "0")), {"pinned_sha256": args.get("fingerprint", "")})
		mp.multiplayer_peer = c
	elif transport == "enet" or transport == "enet_dtls":
		var c := ENetMultiplayerPeer.new()
		err = c.create_client("127.0.0.1", int(args.get("port", "0")))
		if err == OK and transport == "enet_dtls":
			# The server's certificate (PEM, passed in place of a fingerprint), verified.
			var cert := X509Certificate.new()
			if cert.load_from_string(args.get("fingerprint", "")) != OK:
				return ERR_PARSE_ERROR
			err = c.host.dtls_client_setup("localhost", TLSOptions.client(cert))
		mp.multiplayer_peer = c
	else:
		return ERR_INVALID_PARAMETER
	mp.connected_to_server.connect(func():
		connect_usec = Time.get_ticks_usec() - phase_start
		print("PHASE rtt")
		_next_phase("rtt"))
	mp.connection_failed.connect(func(): _report({}, "the connection failed"))
	return err


func _next_phase(next: String) -> void:
	phase = next
	phase_start = Time.get_ticks_usec()
	frames = 0
	main_usec = 0


func _process(_delta: float) -> void:
	if finished:
		return
	if Time.get_ticks_usec() - start_usec > cap_usec:
		_report({}, "time cap reached in phase %s" % phase)
		return
	frames += 1
	if role == "crowd":
		for m in crowd:
			m.poll()
		return
	if role == "server" and expect > 0:
		_check_expected()
	var t0 := Time.get_ticks_usec()
	if phase == "rtt" and frames <= rtt_frames:
		rpc_node.ping.rpc_id(1, Time.get_ticks_usec(), Time.get_unix_time_from_system())
	elif phase == "throughput":
		var n := 0
		while sent < rpcs and sent - rpc_node.acknowledged < WINDOW and n < PER_FRAME:
			rpc_node.count.rpc_id(1, sent)
			sent += 1
			n += 1
	var before := rpc_node.received
	mp.poll()
	if role == "server" and rpc_node.received != last_progress and mp.get_peers().size() > 0:
		last_progress = rpc_node.received
		rpc_node.progress.rpc_id(mp.get_peers()[0], last_progress)
	var spent := Time.get_ticks_usec() - t0
	if role == "server":
		if rpc_node.received > before:
			if first_count_usec == 0:
				first_count_usec = t0
			last_count_usec = Time.get_ticks_usec()
		# Server work counts from the frame the first counted RPC arrived in.
		if first_count_usec != 0 and (rpc_node.received < rpcs or rpc_node.received > before):
			main_usec += spent
		return
	main_usec += spent
	match phase:
		"rtt":
			# Pongs of the last pings may still be in flight: wait for them, boundedly.
			if rpc_node.round_trips.size() >= rtt_frames or frames > rtt_frames + drain_frames:
				if phases == "rtt":
					_finish_client()
				else:
					_next_phase("throughput")
		"throughput":
			if rpc_node.acknowledged >= rpcs:
				_finish_client()


func _finish_client() -> void:
	var span := float(Time.get_ticks_usec() - phase_start) / 1_000_000.0
	var rtt := rpc_node.round_trips.duplicate()
	rtt.sort()
	var error := ""
	if rtt.size() < rtt_frames:
		error = "only %d of %d round trips completed" % [rtt.size(), rtt_frames]
	_report({
		"connect_ms": connect_usec / 1000.0,
		"rtt_samples": rtt.size(),
		"rtt_p50_ms": _percentile(rtt, 0.50) / 1000.0,
		"rtt_p99_ms": _percentile(rtt, 0.99) / 1000.0,
		"rpcs": rpc_node.acknowledged,
		"rpcs_per_sec": float(rpc_node.acknowledged) / span,
		"main_usec": main_usec,
	}, error)


## Server with --expect: prints `MEM` once the crowd is connected and has settled for 1 s.
func _check_expected() -> void:
	if expect_reached_usec == 0 and mp.get_peers().size() >= expect:
		expect_reached_usec = Time.get_ticks_usec()
	if expect_reached_usec != 0 and Time.get_ticks_usec() - expect_reached_usec > 1_000_000:
		print("MEM ", JSON.stringify({
			"peers": mp.get_peers().size(),
			"rss_before_kb": rss_before_kb,
			"rss_after_kb": Proc.status_kb("VmRSS:"),
		}))
		expect = -1


func _finish_server() -> void:
	var error := ""
	var one_way := rpc_node.one_way_ms.duplicate()
	one_way.sort()
	if phases == "rtt":
		_report({
			"pings": one_way.size(),
			"one_way_p50_ms": _percentile(one_way, 0.50),
			"one_way_p99_ms": _percentile(one_way, 0.99),
			"main_usec": main_usec,
		}, "" if one_way.size() >= rtt_frames else "the server got %d of %d pings" % [one_way.size(), rtt_frames])
		return
	if rpc_node.received != rpcs:
		error = "the server handled %d of %d RPCs" % [rpc_node.received, rpcs]
	if rpc_node.out_of_order > 0:
		error = "%d reliable RPCs arrived out of order" % rpc_node.out_of_order
	_report({
		"rpcs": rpc_node.received,
		"main_usec": main_usec,
		"seconds": float(last_count_usec - first_count_usec) / 1_000_000.0,
	}, error)


func _percentile(sorted: Variant, q: float) -> float:
	if sorted.is_empty():
		return NAN
	return float(sorted[mini(int(q * sorted.size()), sorted.size() - 1)])


func _report(figures: Dictionary, error: String) -> void:
	if finished:
		return
	finished = true
	var line := {
		"mode": "%s %s" % [transport, role],
		"error": error,
		"netkit_library": Proc.mapped_library("libnetkit"),
		"vm_hwm_kb": Proc.status_kb("VmHWM:"),
	}
	line.merge(figures)
	print("BENCH ", JSON.stringify(line))
	if mp.multiplayer_peer != null:
		mp.multiplayer_peer.close()
		mp.multiplayer_peer = null
	get_tree().quit(0 if error.is_empty() else 1)
