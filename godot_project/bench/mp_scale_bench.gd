## A dedicated server's cost at scale: one headless server process and one crowd process of
## N clients, DTLSMultiplayerPeer or ENetMultiplayerPeer (`--transport=dtls|enet`), both at
## 60 frames/s on loopback. Driven by rust/tools/bench/mp_scale_runs.rs.
##
## Both sides use the MultiplayerPeer API directly (what SceneMultiplayer sits on), so the
## figures are the transport's: the server calls `poll()` once per frame as SceneMultiplayer
## would and reads every packet.
##
## Server (`--role=server --expect=N`): prints `READY {json}`, waits until N clients are
## connected (or until none joined for --stall seconds: ENet may not connect them all),
## lets them settle for 3 s, then measures its own CPU time (/proc/self/stat, user +
## system) over --measure seconds and prints `BENCH {json}`: peers, connect seconds (first
## to last connection), CPU % of one core, VmRSS before `create_server` and now, frames.
## With --relay=1 it sends each unreliable packet it gets on to the 8 peers after the
## sender in its peer list, as a small game's synchronizer would.
##
## Crowd (`--role=crowd --clients=N`): N clients in this one process, all created in the
## first frame (a reconnect storm); a client whose connection fails is created again. With
## --state-rate=R each connected client sends R unreliable 64-byte packets per second, and
## with --rpc-rate=Q Q reliable 16-byte packets per second, to the server; it reads and
## drops what the server relays.
extends Node

const Proc := preload("res://bench/proc_info.gd")
const SETTLE_USEC := 3_000_000

var role := "server"
var transport := "dtls"
var args := {}
var peer: MultiplayerPeer
var finished := false

# Server
var expect := 0
var measure_usec := 10_000_000
var stall_usec := 15_000_000
var relay := false
var rss_before_kb := 0
var peers: Array[int] = []
var index_of := {}
var first_connect_usec := 0
var last_connect_usec := 0
var phase := "connect"
var phase_usec := 0
var cpu_ticks_start := 0
var frames := 0
var relayed := 0
var received := 0

# Crowd
var clients: Array[MultiplayerPeer] = []
var state_rate := 0.0
var rpc_rate := 0.0
var start_usec := 0
var state_sent: PackedInt64Array = []
var rpc_sent: PackedInt64Array = []
var connected_at: PackedInt64Array = []
var fingerprint := ""
var port := 0
var state := PackedByteArray()
var rpc_payload := PackedByteArray()


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		var kv: PackedStringArray = arg.trim_prefix("--").split("=", true, 1)
		if kv.size() == 2:
			args[kv[0]] = kv[1]
	role = args.get("role", "server")
	transport = args.get("transport", "dtls")
	# A dedicated server ticks at 60 frames/s; headless Godot otherwise sleeps 6.9 ms
	# between frames on top of that.
	OS.low_processor_usage_mode_sleep_usec = 0
	Engine.max_fps = 60
	get_tree().multiplayer_poll = false
	if transport == "dtls" and not ClassDB.class_exists("DTLSMultiplayerPeer"):
		_report({}, "the netkit extension did not load")
		return
	var err := _start_server() if role == "server" else _start_crowd()
	if err != OK:
		_report({}, "creating the %s peer failed: error %d" % [transport, err])


func _start_server() -> Error:
	expect = int(args.get("expect", "100"))
	measure_usec = int(float(args.get("measure", "10")) * 1_000_000)
	stall_usec = int(float(args.get("stall", "15")) * 1_000_000)
	relay = args.get("relay", "0") == "1"
	rss_before_kb = Proc.status_kb("VmRSS:")
	var fp := ""
	if transport == "dtls":
		var ident := DTLSPeer.generate_self_signed("localhost")
		fp = ident.sha256_fingerprint
		var s := DTLSMultiplayerPeer.new()
		var err := s.create_server(0, {"certificate": ident.certificate, "private_key": ident.private_key, "bind_address": "127.0.0.1", "max_clients": maxi(32, expect)})
		if err != OK:
			return err
		peer = s
		port = s.get_local_port()
	else:
		var s := ENetMultiplayerPeer.new()
		s.set_bind_ip("127.0.0.1")
		var err := s.create_server(0, maxi(32, expect))
		if err != OK:
			return err
		peer = s
		port = s.host.get_local_port()
	peer.peer_connected.connect(_on_peer_connected)
	peer.peer_disconnected.connect(_on_peer_disconnected)
	phase_usec = Time.get_ticks_usec()
	print("READY ", JSON.stringify({"port": port, "fingerprint": fp}))
	return OK


func _on_peer_connected(id: int) -> void:
	var now := Time.get_ticks_usec()
	if first_connect_usec == 0:
		first_connect_usec = now
	last_connect_usec = now
	index_of[id] = peers.size()
	peers.append(id)


func _on_peer_disconnected(id: int) -> void:
	if not index_of.has(id):
		return
	peers.remove_at(index_of[id])
	index_of.clear()
	for i in peers.size():
		index_of[peers[i]] = i


func _start_crowd() -> Error:
	port = int(args.get("port", "0"))
	fingerprint = args.get("fingerprint", "")
	state_rate = float(args.get("state-rate", "0"))
	rpc_rate = float(args.get("rpc-rate", "0"))
	state.resize(64)
	rpc_payload.resize(16)
	var n := int(args.get("clients", "100"))
	for i in n:
		clients.append(null)
		state_sent.append(0)
		rpc_sent.append(0)
		connected_at.append(0)
		var err := _connect(i)
		if err != OK:
			return err
	start_usec = Time.get_ticks_usec()
	print("CROWD started")
	return OK


func _connect(i: int) -> Error:
	var err: Error
	if transport == "dtls":
		var c := DTLSMultiplayerPeer.new()
		err = c.create_client("127.0.0.1", port, {"pinned_sha256": fingerprint})
		clients[i] = c
	else:
		var c := ENetMultiplayerPeer.new()
		err = c.create_client("127.0.0.1", port)
		clients[i] = c
	connected_at[i] = 0
	return err


func _process(_delta: float) -> void:
	if finished:
		return
	if role == "server":
		_serve()
	else:
		_crowd()


func _serve() -> void:
	peer.poll()
	while peer.get_available_packet_count() > 0:
		var from := peer.get_packet_peer()
		var mode := peer.get_packet_mode()
		var packet := peer.get_packet()
		received += 1
		if not relay or mode == MultiplayerPeer.TRANSFER_MODE_RELIABLE or not index_of.has(from):
			continue
		var at: int = index_of[from]
		peer.transfer_mode = MultiplayerPeer.TRANSFER_MODE_UNRELIABLE
		for k in mini(8, peers.size() - 1):
			peer.set_target_peer(peers[(at + 1 + k) % peers.size()])
			peer.put_packet(packet)
			relayed += 1
	var now := Time.get_ticks_usec()
	match phase:
		"connect":
			var stalled := now - maxi(last_connect_usec, phase_usec) > stall_usec
			if peers.size() >= expect or (stalled and peers.size() > 0):
				phase = "settle"
				phase_usec = now
			elif stalled:
				_report({}, "no client connected within %d s" % (stall_usec / 1_000_000))
		"settle":
			if now - phase_usec >= SETTLE_USEC:
				phase = "measure"
				phase_usec = now
				cpu_ticks_start = _cpu_ticks()
				frames = 0
				received = 0
				relayed = 0
				print("MEASURE start")
		"measure":
			frames += 1
			if now - phase_usec >= measure_usec:
				var seconds := float(now - phase_usec) / 1_000_000.0
				var cpu := float(_cpu_ticks() - cpu_ticks_start) / 100.0 / seconds * 100.0
				_report({
					"peers": peers.size(),
					"connect_s": float(last_connect_usec - first_connect_usec) / 1_000_000.0,
					"cpu_pct": cpu,
					"rss_before_kb": rss_before_kb,
					"rss_after_kb": Proc.status_kb("VmRSS:"),
					"frames_per_s": frames / seconds,
					"received_per_s": received / seconds,
					"relayed_per_s": relayed / seconds,
				}, "")


## User plus system CPU time of this process in clock ticks (USER_HZ, 100 on Linux).
func _cpu_ticks() -> int:
	var f := FileAccess.open("/proc/self/stat", FileAccess.READ)
	if f == null:
		return 0
	var line := f.get_line()
	# The command name (field 2) may hold spaces; fields after it are plain.
	var fields := line.substr(line.rfind(")") + 2).split(" ")
	return int(fields[11]) + int(fields[12])


func _crowd() -> void:
	var now := Time.get_ticks_usec()
	for i in clients.size():
		var c := clients[i]
		c.poll()
		while c.get_available_packet_count() > 0:
			c.get_packet()
		var status := c.get_connection_status()
		if status == MultiplayerPeer.CONNECTION_DISCONNECTED:
			_connect(i)
			continue
		if status != MultiplayerPeer.CONNECTION_CONNECTED:
			continue
		if connected_at[i] == 0:
			connected_at[i] = now
			state_sent[i] = 0
			rpc_sent[i] = 0
		var alive := float(now - connected_at[i]) / 1_000_000.0
		c.set_target_peer(MultiplayerPeer.TARGET_PEER_SERVER)
		c.transfer_mode = MultiplayerPeer.TRANSFER_MODE_UNRELIABLE
		while state_sent[i] < int(alive * state_rate):
			c.put_packet(state)
			state_sent[i] += 1
		c.transfer_mode = MultiplayerPeer.TRANSFER_MODE_RELIABLE
		while rpc_sent[i] < int(alive * rpc_rate):
			c.put_packet(rpc_payload)
			rpc_sent[i] += 1


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
	if peer != null:
		peer.close()
	get_tree().quit(0 if error.is_empty() else 1)
