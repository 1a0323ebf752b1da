extends Node
## The demo's headless dedicated server. It registers itself with the backend and sends
## heartbeats through HTTPPool, serves DTLS through DTLSPeer, checks every joining
## player's token with the backend before accepting them, and on SIGTERM deregisters,
## says goodbye to its players and quits.
##     godot --headless --path godot_project res://demo/server.tscn -- \
##         --backend-url=http://127.0.0.1:PORT --server-key=KEY [--port=0]
## In an Agones fleet (AGONES_SDK_HTTP_PORT set) it also talks to the SDK sidecar through
## AgonesSDK: label and ready() once registered, the GameServer's state as it changes,
## and shutdown() on SIGTERM after saving (docs/DEPLOY.md).

var pool: HTTPPool
var dtls: DTLSPeer
var server_id := 0
var players := {}  # peer id -> player name, once their token was validated
var ticks := {}  # peer id -> messages handled
var agones: AgonesSDK  # only in an Agones fleet
var agones_state := ""


func _ready() -> void:
	var args := DemoArgs.parse()
	pool = HTTPPool.new()
	pool.base_url = args.get("backend-url", "http://127.0.0.1:8080")
	pool.default_headers = {"X-Server-Key": args.get("server-key", "")}
	pool.timeout = 5.0
	add_child(pool)

	dtls = DTLSPeer.new()
	add_child(dtls)
	dtls.peer_connected.connect(func(id: int): say("peer %d connected from %s, waiting for its token" % [id, dtls.get_peer_address(id)]))
	dtls.peer_disconnected.connect(_on_peer_disconnected)
	dtls.packet_received.connect(_on_packet)

	var keys := DTLSPeer.generate_self_signed("localhost")
	var err := dtls.start_server(int(args.get("port", "0")), {"certificate": keys["certificate"], "private_key": keys["private_key"]})
	if err != OK:
		say("cannot start DTLS: error %d" % err)
		get_tree().quit(1)
		return

	Netkit.shutdown_requested.connect(_on_shutdown_requested)
	Netkit.enable_graceful_shutdown(5.0)
	if OS.has_environment("AGONES_SDK_HTTP_PORT"):
		_start_agones()

	var reg: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/servers/register", {
		"name": "demo-arena", "host": "127.0.0.1", "port": dtls.get_local_port(),
		"fingerprint": keys["sha256_fingerprint"]}).completed
	if not reg.ok:
		say("registration failed: %s" % reg.error_message)
		get_tree().quit(1)
		return
	server_id = reg.json["server_id"]
	say("registered as server %d, DTLS on udp/%d" % [server_id, dtls.get_local_port()])

	var heartbeat := Timer.new()
	heartbeat.wait_time = reg.json["heartbeat_every"]
	heartbeat.timeout.connect(_heartbeat)
	add_child(heartbeat)
	heartbeat.start()
	if agones:
		_agones_ready()


func _heartbeat() -> void:
	var res: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/servers/heartbeat", {"server_id": server_id}).completed
	if not res.ok:
		say("heartbeat failed: %s" % res.error_message)


func _on_packet(id: int, data: PackedByteArray) -> void:
	var json := JSON.new()
	if json.parse(data.get_string_from_utf8()) != OK or not json.data is Dictionary:
		say("peer %d sent something that is not a JSON message; ignored" % id)
		return
	var msg: Dictionary = json.data
	if not players.has(id):
		if msg.get("type") == "hello":
			_admit(id, String(msg.get("token", "")))
		return
	if msg.get("type") == "move":
		ticks[id] = ticks.get(id, 0) + 1
		_send(id, {"type": "state", "tick": ticks[id], "x": msg.get("x", 0), "y": msg.get("y", 0)})


func _admit(id: int, token: String) -> void:
	var res: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/tokens/validate", {"token": token}).completed
	if not dtls.get_peer_ids().has(id):
		return  # left while we asked
	if res.ok and res.json["valid"]:
		players[id] = res.json["name"]
		say("peer %d is %s: token valid, welcome" % [id, players[id]])
		_send(id, {"type": "welcome", "name": players[id], "server_id": server_id})
	else:
		var why: String = res.json["reason"] if res.ok else res.error_message
		say("peer %d refused: %s" % [id, why])
		_send(id, {"type": "refused", "reason": why})
		# Let the refusal leave before the session closes.
		for i in 5:
			await get_tree().process_frame
		dtls.disconnect_peer(id)


func _on_peer_disconnected(id: int, reason: String) -> void:
	say("peer %d (%s) left: %s" % [id, players.get(id, "not admitted"), reason])
	players.erase(id)


func _on_shutdown_requested(grace_seconds: float) -> void:
	say("SIGTERM: shutting down within %.0f s" % grace_seconds)
	dtls.broadcast(JSON.stringify({"type": "shutdown"}).to_utf8_buffer())
	var res: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/servers/deregister", {"server_id": server_id}).completed
	say("deregistered from the backend: %s" % ("yes" if res.ok and res.json["removed"] else res.error_message))
	if agones:
		var done: HTTPResponse = await agones.shutdown().completed
		say("agones: shutdown() -> %s" % _outcome(done))
	dtls.close()
	say("bye")
	get_tree().quit(0)


# --- Agones (only when AGONES_SDK_HTTP_PORT is set) -----------------------------------

func _start_agones() -> void:
	agones = AgonesSDK.new()
	add_child(agones)   # health pings start now, from a background thread
	say("agones: SDK sidecar on port %s, health pings every %.1f s" % [OS.get_environment("AGONES_SDK_HTTP_PORT"), agones.health_interval])
	agones.game_server_changed.connect(func(gs: Dictionary):
		var state: String = gs["status"]["state"]
		if state != agones_state:
			agones_state = state
			say("agones: GameServer %s is %s" % [gs["object_meta"]["name"], state]))


func _agones_ready() -> void:
	var label: HTTPResponse = await agones.set_label("arena", "demo-arena").completed
	say("agones: set_label(arena, demo-arena) -> %s" % _outcome(label))
	var marked: HTTPResponse = await agones.ready().completed
	say("agones: ready() -> %s" % _outcome(marked))


func _outcome(res: HTTPResponse) -> String:
	return "ok" if res.ok else "%s: %s" % [res.get_error_name(), res.error_message]


func _send(id: int, msg: Dictionary) -> void:
	dtls.send(id, JSON.stringify(msg).to_utf8_buffer())


func say(text: String) -> void:
	print("[server] " + text)

