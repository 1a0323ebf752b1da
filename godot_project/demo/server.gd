extends Node
## The demo's headless dedicated server. It registers itself with the backend and sends
## heartbeats through HTTPPool and runs the game with SceneMultiplayer over
## DTLSMultiplayerPeer: each joining peer's token arrives through `send_auth`, the
## `auth_callback` checks it with the backend and calls `complete_auth` only when the backend
## says yes; a MultiplayerSpawner spawns the admitted player and a MultiplayerSynchronizer
## replicates its position, which clients change with `@rpc` moves. What must not be lost
## (a leaving player's result, the world at shutdown) is saved through the pool's durable
## outbox: on disk before the call returns, sent with an Idempotency-Key until the backend
## accepts it, replayed at the next start if the backend was down. On SIGTERM it saves the
## world, deregisters, tells its players and quits.
##     godot --headless --path godot_project res://demo/server.tscn -- \
##         --backend-url=http://127.0.0.1:PORT --server-key=KEY [--port=0] [--outbox=PATH]
## In an Agones fleet (AGONES_SDK_HTTP_PORT set) it also talks to the SDK sidecar through
## AgonesSDK: label and ready() once registered, the GameServer's state as it changes,
## and shutdown() on SIGTERM after saving (docs/DEPLOY.md).

const World := preload("res://demo/world.gd")

var pool: HTTPPool
var peer: DTLSMultiplayerPeer
var mp: SceneMultiplayer
var world: World
var server_id := 0
var fingerprint := ""  # SHA-256 of the certificate, published in the registry for pinning
var players := {}  # peer id -> player name, once the backend validated its token
var agones: AgonesSDK  # only in an Agones fleet
var agones_state := ""
var heartbeat: Timer
var heartbeat_task: HTTPTask  # the heartbeat in flight, awaited before quitting


func _ready() -> void:
	var args := DemoArgs.parse()
	pool = HTTPPool.new()
	pool.base_url = args.get("backend-url", "http://127.0.0.1:8080")
	pool.default_headers = {"X-Server-Key": args.get("server-key", "")}
	pool.timeout = 5.0
	pool.outbox_path = args.get("outbox", "user://demo_server_outbox.redb")
	pool.outbox_enabled = true  # sends what an earlier run could not deliver
	pool.durable_delivered.connect(func(id: int, res: HTTPResponse):
		say("outbox: save %d delivered%s" % [id, " (the backend had it already)" if res.json is Dictionary and res.json.get("replayed", false) else ""]))
	pool.durable_dead_lettered.connect(func(id: int, res: HTTPResponse):
		say("outbox: save %d given up: %s" % [id, res.error_message]))
	add_child(pool)

	if _start_game(int(args.get("port", "0"))) != OK:
		get_tree().quit(1)
		return

	Netkit.shutdown_requested.connect(_on_shutdown_requested)
	Netkit.enable_graceful_shutdown(5.0)
	if OS.has_environment("AGONES_SDK_HTTP_PORT"):
		_start_agones()

	var reg: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/servers/register", {
		"name": "demo-arena", "host": "127.0.0.1", "port": peer.get_local_port(),
		"fingerprint": fingerprint}).completed
	if not reg.ok:
		say("registration failed: %s" % reg.error_message)
		get_tree().quit(1)
		return
	server_id = reg.json["server_id"]
	say("registered as server %d, SceneMultiplayer over DTLS on udp/%d" % [server_id, peer.get_local_port()])

	heartbeat = Timer.new()
	heartbeat.wait_time = reg.json["heartbeat_every"]
	heartbeat.timeout.connect(_heartbeat)
	add_child(heartbeat)
	heartbeat.start()
	if agones:
		_agones_ready()


func _heartbeat() -> void:
	heartbeat_task = pool.request(HTTPClient.METHOD_POST, "/servers/heartbeat", {"server_id": server_id})
	var res: HTTPResponse = await heartbeat_task.completed
	if not res.ok:
		say("heartbeat failed: %s" % res.error_message)


## The game's network side: SceneMultiplayer with authentication over DTLSMultiplayerPeer,
## rooted at this node so the shared `World` has the same path as on the clients.
func _start_game(port: int) -> Error:
	mp = SceneMultiplayer.new()
	mp.auth_callback = _authenticate
	mp.auth_timeout = 5.0
	mp.peer_authenticating.connect(func(id: int): say("peer %d connected from %s, waiting for its token" % [id, peer.get_peer_stats(id).get("address", "?")]))
	mp.peer_authentication_failed.connect(func(id: int): say("peer %d did not complete authentication" % id))
	mp.peer_connected.connect(_on_peer_connected)
	mp.peer_disconnected.connect(_on_peer_disconnected)
	# Before the world enters the tree: its spawner registers with the multiplayer it finds.
	get_tree().set_multiplayer(mp, get_path())
	world = World.new()
	add_child(world)
	var keys := DTLSPeer.generate_self_signed("localhost")
	fingerprint = keys["sha256_fingerprint"]
	peer = DTLSMultiplayerPeer.new()
	var err := peer.create_server(port, {"certificate": keys["certificate"], "private_key": keys["private_key"], "bind_address": "127.0.0.1"})
	if err != OK:
		say("cannot start DTLSMultiplayerPeer: error %d" % err)
		return err
	mp.multiplayer_peer = peer
	return OK


## SceneMultiplayer's `auth_callback`: `data` is the token the client passed to `send_auth`.
## Nothing of the game sees this peer until `complete_auth`, which only a yes from the
## backend leads to.
func _authenticate(id: int, data: PackedByteArray) -> void:
	var token := data.get_string_from_utf8()
	var res: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/tokens/validate", {"token": token}).completed
	if not mp.get_authenticating_peers().has(id):
		return  # left (or timed out) while we asked
	if res.ok and res.json["valid"]:
		players[id] = res.json["name"]
		say("peer %d is %s: token valid, authentication complete" % [id, players[id]])
		mp.send_auth(id, ("welcome:" + String(players[id])).to_utf8_buffer())
		mp.complete_auth(id)
		return
	var why: String = res.json["reason"] if res.ok else res.error_message
	say("peer %d refused at authentication: %s (RPCs from it that reached game code: %d)" % [id, why, world.rpcs_from.get(id, 0)])
	mp.send_auth(id, ("refused:" + why).to_utf8_buffer())
	# Let the refusal leave before the session closes (disconnect_peer delivers what is
	# already queued, but give the client a few frames to read it too).
	for i in 5:
		await get_tree().process_frame
	if mp.get_authenticating_peers().has(id):
		mp.disconnect_peer(id)


func _on_peer_connected(id: int) -> void:
	var p := world.spawn_player(id, players.get(id, "?"))
	say("peer %d (%s) joined: spawned player %s at (%d, %d)" % [id, players.get(id, "?"), p.name, p.position.x, p.position.y])


func _on_peer_disconnected(id: int) -> void:
	var why := peer.get_last_disconnect_reason()
	say("peer %d (%s) left%s; %d move RPCs handled" % [id, players.get(id, "not admitted"), (": " + why) if why != "" else "", world.rpcs_from.get(id, 0)])
	if players.has(id):
		pool.request_durable(HTTPClient.METHOD_PUT, "/servers/saves", {"server_id": server_id,
			"kind": "player", "player": players[id], "moves": world.rpcs_from.get(id, 0)})
		say("%s's result is on disk in the outbox, sending it to the backend" % players[id])
	world.despawn_player(id)
	players.erase(id)


func _on_shutdown_requested(grace_seconds: float) -> void:
	say("SIGTERM: shutting down within %.0f s" % grace_seconds)
	if heartbeat:
		heartbeat.stop()
	world.notice.rpc("shutdown")
	# On disk before request_durable returns: even if the backend is down now, the next
	# start of this server sends it. Wait a little for the answer, not past the grace period.
	var saved := pool.request_durable(HTTPClient.METHOD_PUT, "/servers/saves", {"server_id": server_id,
		"kind": "world", "players": players.values()})
	var deadline := Time.get_ticks_msec() + 2000
	while not saved.is_done() and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	if saved.is_done() and saved.response.ok:
		say("world state saved through the outbox: delivered")
	else:
		say("world state saved to the outbox; it is sent at the next start")
	var res: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/servers/deregister", {"server_id": server_id}).completed
	say("deregistered from the backend: %s" % ("yes" if res.ok and res.json["removed"] else res.error_message))
	if agones:
		var done: HTTPResponse = await agones.shutdown().completed
		say("agones: shutdown() -> %s" % _outcome(done))
	# Players still online leave the world first: their nodes' synchronizers belong to
	# this SceneMultiplayer, and freed after it is gone they would be untracked by the
	# tree's default one (Godot prints replication errors). A frame lets the despawns run.
	for id in players.keys():
		world.despawn_player(id)
	await get_tree().process_frame
	# A coroutine still awaiting a task's `completed` when the game quits is never resumed,
	# and Godot reports it and the task as leaked at exit: let the last heartbeat finish.
	if heartbeat_task and not heartbeat_task.is_done():
		await heartbeat_task.completed
	peer.close()
	get_tree().set_multiplayer(null, get_path())
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


func say(text: String) -> void:
	print("[server] " + text)

